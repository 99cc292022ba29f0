//! One widget per view. Each draws plain data (`super::data`) with a theme
//! and has no side effects.

pub mod attention;
pub mod editor;
pub mod grid;
pub mod help;
pub mod memory;
pub mod state;
pub mod status;
pub mod tokens;
