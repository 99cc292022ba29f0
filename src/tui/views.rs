//! One widget per view. Each draws plain data (`super::data`) with a theme
//! and has no side effects.

pub mod editor;
pub mod help;
pub mod status;
