//! The terminal UI: `attnviz` with no command, `attnviz view`, `--compare`.
//!
//! Shape (as in gitui and ratatui's templates): `app` holds all state and
//! changes only through `update(Action)`, testable without a terminal;
//! `views` are widgets drawing plain data from `data`; workers own the models
//! and traces and send results back over channels, so a frame never waits.

pub mod app;
pub mod data;
pub mod export;
pub mod heatmap;
pub mod keymap;
pub mod launch;
pub mod layout;
pub mod lesson;
pub mod pool;
pub mod products;
pub mod run;
pub mod screen;
pub mod source;
pub mod tabs;
pub mod terminal;
pub mod theme;
pub mod views;
pub mod worker;

static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Note when the process started (the first-frame benchmark measures from here).
pub fn mark_start() {
    STARTED.get_or_init(std::time::Instant::now);
}

pub fn started() -> std::time::Instant {
    *STARTED.get_or_init(std::time::Instant::now)
}
