//! The math behind the lessons, as pure functions on plain numbers (no candle):
//! attention masks and receptive fields, GQA head maps, KV-cache arithmetic,
//! FlashAttention's tiling with online softmax, and Mamba's selective-scan
//! stepper. One source of truth for the lessons, the UI, `attnviz memory`
//! and the tests.

pub mod heads;
pub mod kv;
pub mod mask;
pub mod presets;
pub mod scan;
pub mod tiling;
