//! One widget per view. Each draws plain data (`super::data`) with a theme
//! and has no side effects.

pub mod attention;
pub mod tokens;
pub mod editor;
pub mod help;
pub mod status;
pub mod grid;
pub mod memory;
pub mod state;
