//! The model zoo: small models trained by `attnviz train` on the same text
//! for the same budget, differing only in how tokens mix (see the README),
//! compiled into the binary by `build.rs` from `assets/models/`.

use crate::error::{Error, Result};

/// The model every command falls back to without `--model`.
pub const DEFAULT: &str = "tiny-gqa";

/// One embedded Hugging Face-format folder.
pub struct Embedded {
    pub name: &'static str,
    pub config: Option<&'static str>,
    pub weights: Option<&'static [u8]>,
    pub tokenizer: Option<&'static str>,
    pub tokenizer_config: Option<&'static str>,
    pub generation_config: Option<&'static str>,
    /// `training.json` written by `attnviz train`: steps, tokens, time, losses.
    pub training: Option<&'static str>,
}

// By name: the bytes are large and one name is one model.
impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "zoo:{}", self.name)
    }
}

impl PartialEq for Embedded {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

include!(concat!(env!("OUT_DIR"), "/zoo.rs"));

pub fn all() -> &'static [Embedded] {
    EMBEDDED
}

pub fn get(name: &str) -> Option<&'static Embedded> {
    EMBEDDED.iter().find(|m| m.name == name)
}

/// Whether `name` looks like a zoo name (so a missing one is reported as such, not as a path).
pub fn is_zoo_name(name: &str) -> bool {
    name.starts_with("tiny-") && !name.contains(['/', '\\', '.'])
}

impl Embedded {
    /// The required parts, or a one-line error naming the missing file.
    pub fn parts(&self) -> Result<(&'static str, &'static [u8], &'static str)> {
        let missing = |f: &str| Error::Usage(format!("zoo model {} was built without its {f}", self.name));
        Ok((
            self.config.ok_or_else(|| missing("config.json"))?,
            self.weights.ok_or_else(|| missing("model.safetensors"))?,
            self.tokenizer.ok_or_else(|| missing("tokenizer.json"))?,
        ))
    }
}

/// The names built in, for error messages.
pub fn names() -> String {
    if EMBEDDED.is_empty() {
        return "none (this build has no assets/models)".into();
    }
    EMBEDDED.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}
