//! One error type for the library. Every message names the file or value at fault,
//! so the binary can print it as a single line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not found")]
    NotFound { path: PathBuf },
    #[error("{path}: {msg}")]
    BadFile { path: PathBuf, msg: String },
    #[error("config {field}: {msg}")]
    Config { field: String, msg: String },
    #[error("unsupported model_type {0:?}; supported: {list}", list = crate::model::config::SUPPORTED.join(", "))]
    UnsupportedArch(String),
    #[error("weights: {0}")]
    Weights(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("prompt: {0}")]
    Prompt(String),
    #[error("model {0}")]
    Hub(String),
    #[error("{0}")]
    Usage(String),
    #[error("compute: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn bad_file(path: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Self {
        Error::BadFile { path: path.into(), msg: msg.to_string() }
    }

    pub fn config(field: impl Into<String>, msg: impl std::fmt::Display) -> Self {
        Error::Config { field: field.into(), msg: msg.to_string() }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
