//! The terminal UI: `attnviz` with no command, `attnviz view`, `--compare`.
//!
//! Shape (as in gitui and ratatui's templates): `app` holds all state and
//! changes only through `update(Action)`, testable without a terminal;
//! `views` are widgets drawing plain data from `data`; workers own the models
//! and traces and send results back over channels, so a frame never waits.

pub mod data;
pub mod export;
pub mod heatmap;
pub mod theme;
pub mod views;
