//! Lessons: interactive explanations built on the live engine. A lesson is
//! data, not code: `lessons/NN-slug/lesson.toml` (title, summary,
//! references, an ordered list of steps) plus one Markdown file per step,
//! embedded in the binary at build time. Each step names the live panel it
//! shows and that panel's settings; numbers in the prose come only from
//! `{placeholders}` the panel fills from code.

pub mod schema;

pub use schema::{Lesson, Panel, Step};
