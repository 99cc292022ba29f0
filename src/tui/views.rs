//! One widget per view. Each draws plain data (`super::data`) with a theme
//! and has no side effects.

pub mod grid;
pub mod memory;
pub mod state;
