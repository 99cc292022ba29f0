//! Reading typed values out of a model's `config.json`, with errors that
//! name the key at fault.

use crate::error::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// A config file as JSON, with errors that name it.
pub fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound { path: path.into() },
        _ => Error::io(path, e),
    })?;
    serde_json::from_str(&text).map_err(|e| Error::bad_file(path, format!("not valid JSON ({e})")))
}

pub fn get_usize(j: &Value, key: &str) -> Result<usize> {
    opt_usize(j, key)?.ok_or_else(|| Error::config(key, "missing"))
}

pub fn opt_usize(j: &Value, key: &str) -> Result<Option<usize>> {
    match j.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| Error::config(key, format!("expected a non-negative integer, got {v}"))),
    }
}

pub fn opt_f64(j: &Value, key: &str) -> Result<Option<f64>> {
    match j.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => number(v).map(Some).ok_or_else(|| Error::config(key, format!("expected a number, got {v}"))),
    }
}

/// A JSON number, or a non-finite float as transformers 5 writes it: `{"__float__": "Infinity"}`.
pub fn number(v: &Value) -> Option<f64> {
    if let Some(x) = v.as_f64() {
        return Some(x);
    }
    match v.get("__float__")?.as_str()? {
        "Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => None,
    }
}

pub fn opt_bool(j: &Value, key: &str, default: bool) -> Result<bool> {
    match j.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_bool().ok_or_else(|| Error::config(key, format!("expected true or false, got {v}"))),
    }
}

/// One id or a list; `default` when the key is absent, none when it is null.
pub fn token_ids(j: &Value, key: &str, default: Option<u32>) -> Result<Vec<u32>> {
    let one = |v: &Value| v.as_u64().map(|n| n as u32).ok_or_else(|| Error::config(key, format!("bad id {v}")));
    match j.get(key) {
        None => Ok(default.into_iter().collect()),
        Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => a.iter().map(one).collect(),
        Some(v) => Ok(vec![one(v)?]),
    }
}
