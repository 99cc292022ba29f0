//! attnviz: run a language model and record what its attention does.
//!
//! `model` loads a `--model SRC` (folder, Hub id, GGUF) into an instrumented
//! `Decoder`; `session` runs generation on a worker thread and streams one
//! `Step` per forward pass; `trace` keeps post-RoPE queries and keys and
//! recomputes any head's attention on demand; `capture` writes a trace file.
//! `metrics` scores heads; `sim` holds the lessons' math without candle
//! (masks, GQA maps, KV arithmetic, tiling, the scan); `tui` is the explorer
//! (workers own models and traces, views draw plain data) and `lesson` the
//! lessons it shows.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod capture;
pub mod error;
pub mod lesson;
pub mod metrics;
pub mod model;
pub mod sample;
pub mod session;
pub mod sim;
pub mod trace;
pub mod train;
pub mod tui;

pub use error::{Error, Result};
