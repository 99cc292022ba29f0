//! Lessons: interactive explanations built on the live engine. A lesson is
//! data, not code: `lessons/NN-slug/lesson.toml` (title, summary,
//! references, an ordered list of steps) plus one Markdown file per step,
//! embedded in the binary at build time. Each step names the live panel it
//! shows and that panel's settings; numbers in the prose come only from
//! `{placeholders}` the panel fills from code (`values`, then `fill`).

mod load;
pub mod markdown;
pub mod schema;
mod text;
mod validate;
mod values;

pub use load::{all, find, load_dir};
pub use schema::{Lesson, Panel, Step};
pub use text::{fill, prose_digits, LIVE_PLACEHOLDERS};
pub use validate::validate;
pub use values::{citation, step_values, values, MAX_MASK, PROBE};
