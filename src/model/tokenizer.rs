//! The tokenizer layer: text to ids and back, and the chat template.
//!
//! A [`Tokenizer`] comes from one of two places:
//!
//! * [`Tokenizer::from_files`]: a Hugging Face `tokenizer.json`, with the chat template and the
//!   BOS/EOS strings from the `tokenizer_config.json` beside it.
//! * [`Tokenizer::from_gguf`]: a GGUF file's `tokenizer.ggml.*` metadata. A GGUF carries no
//!   `tokenizer.json`, so the tokenizer is rebuilt the way llama.cpp reads those keys and
//!   transformers' `integrations/gguf` rebuilds them: byte-level BPE (`gpt2`) with the
//!   pre-tokenizer named by `tokenizer.ggml.pre`, and SentencePiece-style BPE (`llama`) with
//!   byte fallback and the `▁` metaspace.
//!
//! [`Tokenizer::encode`] with `add_special = true` matches transformers' `tokenizer(text)`.
//! [`Tokenizer::apply_chat`] matches `apply_chat_template(..., add_generation_prompt=True,
//! tokenize=False)`. transformers' `apply_chat_template(tokenize=True)` encodes that rendered
//! text with `add_special_tokens=False` (the template writes BOS itself where the model wants
//! it), so callers should do the same: `tok.encode(&tok.apply_chat(user)?, false)`.
//!
//! [`TextStream`] turns ids into text one at a time while generating, holding back a piece
//! while it ends in an incomplete UTF-8 character.

mod bytes;
mod chat;
mod gguf;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Value as GgufValue;
use tokenizers::DecoderWrapper;

use crate::error::{Error, Result};
use bytes::{byte_level_bytes, escape_bytes};
use chat::{render_chat, ChatMessage};

pub use gguf::supported_pre_tokenizers;

/// A UTF-8 character spans at most 4 bytes, so at most 4 byte tokens; a stream holding back
/// more than that is looking at a real U+FFFD, not an unfinished character.
const MAX_HELD_TOKENS: usize = 4;

/// A tokenizer with the model's chat template and special-token strings.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    chat_template: Option<String>,
    bos: Option<String>,
    eos: Option<String>,
    vocab_size: usize,
    /// Tokens are spelled in GPT-2's byte alphabet (for [`Tokenizer::token_text`]).
    byte_level: bool,
    /// Where it came from, for error messages.
    source: PathBuf,
}

impl Tokenizer {
    /// Load `tokenizer.json`, plus `tokenizer_config.json` for `chat_template`, `bos_token` and
    /// `eos_token`. `chat_template` may be a string or a list of `{name, template}` (the one
    /// named "default" is taken). Without a template there, a `chat_template.jinja` beside
    /// the config (newer Hub repos keep it in its own file) is used.
    pub fn from_files(tokenizer_json: &Path, tokenizer_config: Option<&Path>) -> Result<Self> {
        let config = match tokenizer_config {
            Some(path) => parse_config(&read_text(path)?, path)?,
            None => TokenizerConfig::default(),
        };
        let template_beside = || read_jinja_beside(tokenizer_config.unwrap_or(tokenizer_json));
        Self::from_parts(&read_text(tokenizer_json)?, config, template_beside, tokenizer_json)
    }

    /// From the texts of tokenizer.json and tokenizer_config.json held in
    /// memory (the zoo); `source` names them in errors.
    pub fn from_json_text(tokenizer_json: &str, tokenizer_config: Option<&str>, source: &Path) -> Result<Self> {
        let config = match tokenizer_config {
            Some(text) => parse_config(text, &source.join("tokenizer_config.json"))?,
            None => TokenizerConfig::default(),
        };
        Self::from_parts(tokenizer_json, config, || Ok(None), &source.join("tokenizer.json"))
    }

    fn from_parts(
        json: &str,
        config: TokenizerConfig,
        template_beside: impl FnOnce() -> Result<Option<String>>,
        path: &Path,
    ) -> Result<Self> {
        let inner: tokenizers::Tokenizer =
            json.parse().map_err(|e| Error::bad_file(path, format!("not a tokenizer.json: {e}")))?;
        let chat_template = match config.chat_template {
            Some(t) => Some(t),
            None => template_beside()?,
        };
        Ok(Self::assemble(inner, chat_template, config.bos, config.eos, path))
    }

    /// Rebuild the tokenizer a GGUF file describes from its `tokenizer.ggml.*` metadata.
    /// `path` is only used in error messages.
    pub fn from_gguf(md: &HashMap<String, GgufValue>, path: &Path) -> Result<Self> {
        let gguf::Parts { inner, chat_template, bos, eos } = gguf::read(md, path)?;
        Ok(Self::assemble(inner, chat_template, bos, eos, path))
    }

    fn assemble(
        inner: tokenizers::Tokenizer,
        chat_template: Option<String>,
        bos: Option<String>,
        eos: Option<String>,
        source: &Path,
    ) -> Self {
        // Added tokens may sit past the model's vocabulary, or overlap it; the model's
        // embedding needs the id range, so count up to the highest id.
        let highest_added = inner.get_added_tokens_decoder().keys().map(|&id| id as usize + 1).max().unwrap_or(0);
        let vocab_size = inner.get_vocab_size(false).max(highest_added);
        let byte_level = matches!(inner.get_decoder(), Some(DecoderWrapper::ByteLevel(_)));
        Self { inner, chat_template, bos, eos, vocab_size, byte_level, source: source.to_path_buf() }
    }

    /// Text to ids. `add_special = true` is transformers' `tokenizer(text)`: the
    /// post-processor adds BOS/EOS where the model wants them. Special-token text in `text`
    /// (such as `<|im_start|>`) becomes that special token either way, as in transformers.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode_fast(text, add_special)
            .map_err(|e| Error::Tokenizer(format!("cannot encode {}: {e}", preview(text))))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Ids to text, special tokens included.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| Error::Tokenizer(format!("cannot decode ids {}: {e}", preview_ids(ids))))
    }

    /// One token as a person should see it: its text, or for a token that is only part of
    /// a UTF-8 character, its bytes as `\xNN` (byte-level) or its raw name such as `<0xE6>`.
    pub fn token_text(&self, id: u32) -> String {
        let Some(raw) = self.inner.id_to_token(id) else {
            return format!("<unknown id {id}>");
        };
        match self.inner.decode(&[id], false) {
            // SentencePiece decoders drop the space a text starts with; one token shows it.
            Ok(text) if raw.starts_with('▁') && !text.starts_with(' ') => format!(" {text}"),
            Ok(text) if !text.contains(char::REPLACEMENT_CHARACTER) => text,
            _ if self.byte_level => escape_bytes(&byte_level_bytes(&raw)),
            _ => raw,
        }
    }

    /// Number of ids the model can see, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The id of a token given as its vocabulary spelling (e.g. `"<|im_end|>"`).
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.inner.token_to_id(text)
    }

    /// The end-of-sequence token's text, if the model names one.
    pub fn eos_token(&self) -> Option<&str> {
        self.eos.as_deref()
    }

    /// The beginning-of-sequence token's text, if the model names one.
    pub fn bos_token(&self) -> Option<&str> {
        self.bos.as_deref()
    }

    /// Whether the model ships a chat template.
    pub fn has_chat_template(&self) -> bool {
        self.chat_template.is_some()
    }

    /// Render the chat template for one user message, with `add_generation_prompt = true`,
    /// like transformers' `apply_chat_template(tokenize=False)`. Encode the result with
    /// `add_special = false`, as transformers does.
    pub fn apply_chat(&self, user: &str) -> Result<String> {
        let template = self.chat_template.as_deref().ok_or_else(|| {
            Error::Prompt(format!(
                "{}: the model has no chat template; give a raw prompt instead",
                self.source.display()
            ))
        })?;
        let messages = [ChatMessage { role: "user", content: user }];
        let specials = (self.bos.as_deref(), self.eos.as_deref());
        render_chat(template, &messages, specials, &self.source)
    }
}

/// Incremental decoding for streaming output: push ids one by one and get the text each adds.
///
/// It decodes a small window (the last emitted token plus the pending ones) and returns what
/// it adds to the text, so decoders that strip a leading space see the same context every
/// time. A piece ending in U+FFFD is held back until the next tokens complete the character.
#[derive(Debug, Clone, Default)]
pub struct TextStream {
    ids: Vec<u32>,
    /// `ids[prefix..read]` is already emitted and kept as context.
    prefix: usize,
    read: usize,
}

impl TextStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one id; returns the new text, possibly empty while a character is incomplete.
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String> {
        self.ids.push(id);
        let held = self.ids.len() - self.read;
        let text = tok.decode(&self.ids[self.prefix..])?;
        if text.ends_with(char::REPLACEMENT_CHARACTER) && held < MAX_HELD_TOKENS {
            return Ok(String::new());
        }
        self.emit(tok, text)
    }

    /// Whatever is still held back (an unfinished character comes out as U+FFFD).
    pub fn flush(&mut self, tok: &Tokenizer) -> Result<String> {
        if self.read == self.ids.len() {
            return Ok(String::new());
        }
        let text = tok.decode(&self.ids[self.prefix..])?;
        self.emit(tok, text)
    }

    fn emit(&mut self, tok: &Tokenizer, text: String) -> Result<String> {
        let before = tok.decode(&self.ids[self.prefix..self.read])?;
        let piece = text_after(&before, &text).to_string();
        // Keep only the newly emitted tokens as context for the next piece.
        self.ids.drain(..self.read);
        self.prefix = 0;
        self.read = self.ids.len();
        Ok(piece)
    }
}

/// The part of `text` past what `before` already showed.
fn text_after<'a>(before: &str, text: &'a str) -> &'a str {
    if let Some(rest) = text.strip_prefix(before) {
        return rest;
    }
    // The window decoded differently (an unfinished character got completed): skip the
    // common prefix only.
    let common = before
        .char_indices()
        .zip(text.chars())
        .find(|((_, a), b)| a != b)
        .map_or(before.len().min(text.len()), |((i, _), _)| i);
    text.get(common..).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// tokenizer_config.json

#[derive(Debug, Default)]
struct TokenizerConfig {
    chat_template: Option<String>,
    bos: Option<String>,
    eos: Option<String>,
}

fn read_text(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound { path: path.to_path_buf() }),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn parse_config(text: &str, path: &Path) -> Result<TokenizerConfig> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::bad_file(path, format!("not JSON: {e}")))?;
    Ok(TokenizerConfig {
        chat_template: config_chat_template(&json, path)?,
        bos: config_token(&json, "bos_token"),
        eos: config_token(&json, "eos_token"),
    })
}

/// `chat_template` is a string, or a list of `{name, template}` of which we take "default".
fn config_chat_template(json: &serde_json::Value, path: &Path) -> Result<Option<String>> {
    match json.get("chat_template") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Array(list)) => Ok(list
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(|t| t.as_str())
            .map(str::to_string)),
        Some(_) => Err(Error::bad_file(path, "chat_template is neither a string nor a list of {name, template}")),
    }
}

/// A special token is a string, or an AddedToken object `{"content": ...}` in older files.
fn config_token(json: &serde_json::Value, key: &str) -> Option<String> {
    match json.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        obj => obj.get("content")?.as_str().map(str::to_string),
    }
}

/// `chat_template.jinja` in the folder of `file`, if there is one.
fn read_jinja_beside(file: &Path) -> Result<Option<String>> {
    let Some(path) = file.parent().map(|d| d.join("chat_template.jinja")) else {
        return Ok(None);
    };
    if !path.is_file() {
        return Ok(None);
    }
    std::fs::read_to_string(&path).map(Some).map_err(|e| Error::io(path, e))
}

// ---------------------------------------------------------------------------------------
// Error-message helpers

fn preview(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head:?}...")
    }
}

fn preview_ids(ids: &[u32]) -> String {
    const MAX: usize = 12;
    if ids.len() <= MAX {
        format!("{ids:?}")
    } else {
        format!("{:?}... ({} ids)", &ids[..MAX], ids.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gguf::tests::{tiny, tiny_gguf};

    #[test]
    fn round_trip_and_token_text() {
        let tok = tiny("default");
        for text in ["hello hello", "  café 日本語 🙂\n\tx", "<|im_start|>a<|im_end|>", ""] {
            let ids = tok.encode(text, false).unwrap();
            assert_eq!(tok.decode(&ids).unwrap(), text);
        }
        assert_eq!(tok.token_text(tok.token_id("Ġhello").unwrap()), " hello");
        assert_eq!(tok.token_text(0xE6), "\\xE6");
        assert_eq!(tok.token_text(261), "<|im_start|>");
        assert_eq!(tok.token_text(9999), "<unknown id 9999>");
    }

    #[test]
    fn text_stream_holds_back_split_characters() {
        let tok = tiny("default");
        let text = "hello é日本🙂 hello";
        let ids = tok.encode(text, false).unwrap();
        let mut stream = TextStream::new();
        let mut out = String::new();
        for &id in &ids {
            let piece = stream.push(&tok, id).unwrap();
            assert!(!piece.contains(char::REPLACEMENT_CHARACTER), "{piece:?}");
            out.push_str(&piece);
        }
        out.push_str(&stream.flush(&tok).unwrap());
        assert_eq!(out, text);
        // The first byte of "é" alone gives nothing yet; the second completes it.
        let mut stream = TextStream::new();
        assert_eq!(stream.push(&tok, 0xC3).unwrap(), "");
        assert_eq!(stream.push(&tok, 0xA9).unwrap(), "é");
    }

    #[test]
    fn text_stream_gives_up_on_a_lone_byte() {
        let tok = tiny("default");
        let mut stream = TextStream::new();
        let mut out = String::new();
        // 0xFF never starts a character; after four tokens the stream lets it through.
        for id in [0xFF, 0xFF, 0xFF, u32::from(b'a')] {
            out.push_str(&stream.push(&tok, id).unwrap());
        }
        assert_eq!(out, "\u{FFFD}\u{FFFD}\u{FFFD}a");
        let mut stream = TextStream::new();
        assert_eq!(stream.push(&tok, 0xE6).unwrap(), "");
        assert_eq!(stream.flush(&tok).unwrap(), "\u{FFFD}");
        assert_eq!(stream.flush(&tok).unwrap(), "");
    }

    #[test]
    fn text_after_handles_changed_prefix() {
        assert_eq!(text_after("ab", "abc"), "c");
        assert_eq!(text_after("a\u{FFFD}", "aé"), "é");
        assert_eq!(text_after("", "x"), "x");
    }

    #[test]
    fn no_chat_template_is_an_error() {
        let mut md = tiny_gguf("default", false);
        md.remove("tokenizer.chat_template");
        let tok = Tokenizer::from_gguf(&md, Path::new("tiny.gguf")).unwrap();
        let err = tok.apply_chat("Hi").unwrap_err();
        assert!(matches!(err, Error::Prompt(_)));
        assert!(err.to_string().contains("tiny.gguf"), "{err}");
    }

    #[test]
    fn missing_file_is_not_found() {
        let path = Path::new("/nonexistent/attnviz/tokenizer.json");
        let err = Tokenizer::from_files(path, None).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/attnviz/tokenizer.json"));
    }

    #[test]
    fn config_chat_template_forms() {
        let path = Path::new("tokenizer_config.json");
        let plain = serde_json::json!({"chat_template": "abc", "bos_token": {"content": "<s>"}, "eos_token": "</s>"});
        assert_eq!(config_chat_template(&plain, path).unwrap().as_deref(), Some("abc"));
        assert_eq!(config_token(&plain, "bos_token").as_deref(), Some("<s>"));
        assert_eq!(config_token(&plain, "eos_token").as_deref(), Some("</s>"));
        let list = serde_json::json!({"chat_template": [
            {"name": "tool_use", "template": "t"}, {"name": "default", "template": "d"}]});
        assert_eq!(config_chat_template(&list, path).unwrap().as_deref(), Some("d"));
        let bad = serde_json::json!({"chat_template": 3});
        assert!(config_chat_template(&bad, path).is_err());
    }
}
