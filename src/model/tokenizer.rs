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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Value as GgufValue;
use minijinja::{Environment, ErrorKind};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Merges, Vocab, BPE};
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, DecoderWrapper, PreTokenizerWrapper, SplitDelimiterBehavior};

use crate::error::{Error, Result};

/// GGUF `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

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
        let text = read_text(tokenizer_json)?;
        let inner: tokenizers::Tokenizer = text
            .parse()
            .map_err(|e| Error::bad_file(tokenizer_json, format!("not a tokenizer.json: {e}")))?;
        let config = match tokenizer_config {
            Some(path) => read_config(path)?,
            None => TokenizerConfig::default(),
        };
        let chat_template = match config.chat_template {
            Some(t) => Some(t),
            None => read_jinja_beside(tokenizer_config.unwrap_or(tokenizer_json))?,
        };
        Ok(Self::assemble(
            inner,
            chat_template,
            config.bos,
            config.eos,
            tokenizer_json,
        ))
    }

    /// Rebuild the tokenizer a GGUF file describes from its `tokenizer.ggml.*` metadata.
    /// `path` is only used in error messages.
    pub fn from_gguf(md: &HashMap<String, GgufValue>, path: &Path) -> Result<Self> {
        let meta = Meta { md, path };
        let model = meta
            .str("tokenizer.ggml.model")?
            .ok_or_else(|| Error::bad_file(path, "no tokenizer.ggml.model in the GGUF metadata"))?;
        let vocab = GgufVocab::read(&meta)?;
        let inner = match model {
            "gpt2" => byte_level_bpe(&meta, &vocab)?,
            "llama" => sentencepiece_bpe(&meta, &vocab)?,
            other => {
                return Err(Error::bad_file(
                    path,
                    format!("tokenizer model {other:?} is not supported (supported: gpt2, llama)"),
                ))
            }
        };
        let chat_template = meta.str("tokenizer.chat_template")?.map(str::to_string);
        let bos = vocab.special("tokenizer.ggml.bos_token_id", &meta)?;
        let eos = vocab.special("tokenizer.ggml.eos_token_id", &meta)?;
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
        let highest_added = inner
            .get_added_tokens_decoder()
            .keys()
            .map(|&id| id as usize + 1)
            .max()
            .unwrap_or(0);
        let vocab_size = inner.get_vocab_size(false).max(highest_added);
        let byte_level = matches!(inner.get_decoder(), Some(DecoderWrapper::ByteLevel(_)));
        Self {
            inner,
            chat_template,
            bos,
            eos,
            vocab_size,
            byte_level,
            source: source.to_path_buf(),
        }
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
        let messages = [ChatMessage {
            role: "user",
            content: user,
        }];
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
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn read_config(path: &Path) -> Result<TokenizerConfig> {
    let text = read_text(path)?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::bad_file(path, format!("not JSON: {e}")))?;
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
        Some(_) => Err(Error::bad_file(
            path,
            "chat_template is neither a string nor a list of {name, template}",
        )),
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
    std::fs::read_to_string(&path)
        .map(Some)
        .map_err(|e| Error::io(path, e))
}

// ---------------------------------------------------------------------------------------
// Chat template

#[derive(serde::Serialize)]
struct ChatMessage<'a> {
    role: &'a str,
    content: &'a str,
}

/// Render like transformers: jinja with `trim_blocks` and `lstrip_blocks`, Python string
/// methods (`.strip()`, `.startswith()`...), `raise_exception`, `tojson` as Python's
/// `json.dumps(ensure_ascii=False)`, and booleans and none printed the Python way.
fn render_chat(
    template: &str,
    messages: &[ChatMessage<'_>],
    (bos, eos): (Option<&str>, Option<&str>),
    origin: &Path,
) -> Result<String> {
    let fail = |what: &str, e: minijinja::Error| {
        Error::Prompt(format!("{}: chat template {what}: {e}", origin.display()))
    };
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_filter("tojson", tojson);
    env.set_formatter(python_formatter);
    let compiled = env
        .template_from_str(template)
        .map_err(|e| fail("does not compile", e))?;
    // transformers passes only the special tokens that are set; unset ones stay undefined.
    let mut ctx = BTreeMap::new();
    ctx.insert("messages", minijinja::Value::from_serialize(messages));
    ctx.insert("add_generation_prompt", minijinja::Value::from(true));
    if let Some(bos) = bos {
        ctx.insert("bos_token", minijinja::Value::from(bos));
    }
    if let Some(eos) = eos {
        ctx.insert("eos_token", minijinja::Value::from(eos));
    }
    compiled.render(ctx).map_err(|e| fail("failed", e))
}

/// Print `True`, `False` and `None` as Python does; everything else as minijinja does.
fn python_formatter(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &minijinja::Value,
) -> std::result::Result<(), minijinja::Error> {
    let word = match value.kind() {
        minijinja::value::ValueKind::Bool if value.is_true() => "True",
        minijinja::value::ValueKind::Bool => "False",
        minijinja::value::ValueKind::None => "None",
        _ => return minijinja::escape_formatter(out, state, value),
    };
    out.write_str(word).map_err(minijinja::Error::from)
}

/// transformers' `raise_exception(msg)`: the template refuses the conversation.
fn raise_exception(msg: String) -> std::result::Result<minijinja::Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent)`: `", "` and `": "` between
/// items without indent; minijinja's own `tojson` escapes `<>&'` for HTML, which templates
/// written for transformers do not expect.
fn tojson(
    value: minijinja::Value,
    indent: Option<usize>,
) -> std::result::Result<String, minijinja::Error> {
    let mut out = Vec::new();
    let written = match indent {
        Some(n) => {
            let pad = vec![b' '; n];
            let fmt = serde_json::ser::PrettyFormatter::with_indent(&pad);
            serde::Serialize::serialize(
                &value,
                &mut serde_json::Serializer::with_formatter(&mut out, fmt),
            )
        }
        None => serde::Serialize::serialize(
            &value,
            &mut serde_json::Serializer::with_formatter(&mut out, PyFormatter),
        ),
    };
    written.map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    String::from_utf8(out)
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

/// serde_json formatter with Python's default separators.
struct PyFormatter;

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

// ---------------------------------------------------------------------------------------
// GGUF metadata

/// Typed reads of GGUF metadata, with errors that name the file and key.
struct Meta<'a> {
    md: &'a HashMap<String, GgufValue>,
    path: &'a Path,
}

impl<'a> Meta<'a> {
    fn bad(&self, key: &str, want: &str) -> Error {
        Error::bad_file(self.path, format!("GGUF metadata {key} is not {want}"))
    }

    fn str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.md.get(key) {
            None => Ok(None),
            Some(GgufValue::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(self.bad(key, "a string")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.md.get(key) {
            None => Ok(None),
            Some(GgufValue::Bool(b)) => Ok(Some(*b)),
            Some(v) => int_of(v)
                .map(|i| Some(i != 0))
                .ok_or_else(|| self.bad(key, "a bool")),
        }
    }

    fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.md.get(key) {
            None => Ok(None),
            Some(v) => int_of(v)
                .map(Some)
                .ok_or_else(|| self.bad(key, "an integer")),
        }
    }

    fn array(&self, key: &str) -> Result<Option<&'a [GgufValue]>> {
        match self.md.get(key) {
            None => Ok(None),
            Some(GgufValue::Array(items)) => Ok(Some(items.as_slice())),
            Some(_) => Err(self.bad(key, "an array")),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| match v {
                GgufValue::String(s) => Ok(s.clone()),
                _ => Err(self.bad(key, "an array of strings")),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    fn ints(&self, key: &str) -> Result<Option<Vec<i64>>> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| int_of(v).ok_or_else(|| self.bad(key, "an array of integers")))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    fn floats(&self, key: &str) -> Result<Option<Vec<f32>>> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| match v {
                GgufValue::F32(f) => Ok(*f),
                GgufValue::F64(f) => Ok(*f as f32),
                _ => Err(self.bad(key, "an array of floats")),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

fn int_of(v: &GgufValue) -> Option<i64> {
    match *v {
        GgufValue::U8(x) => Some(x.into()),
        GgufValue::I8(x) => Some(x.into()),
        GgufValue::U16(x) => Some(x.into()),
        GgufValue::I16(x) => Some(x.into()),
        GgufValue::U32(x) => Some(x.into()),
        GgufValue::I32(x) => Some(x.into()),
        GgufValue::U64(x) => i64::try_from(x).ok(),
        GgufValue::I64(x) => Some(x),
        _ => None,
    }
}

/// The vocabulary part of the metadata, shared by both tokenizer kinds.
struct GgufVocab {
    tokens: Vec<String>,
    token_types: Vec<i64>,
}

impl GgufVocab {
    fn read(meta: &Meta<'_>) -> Result<Self> {
        let tokens = meta
            .strings("tokenizer.ggml.tokens")?
            .ok_or_else(|| Error::bad_file(meta.path, "no tokenizer.ggml.tokens in the GGUF"))?;
        let token_types = meta.ints("tokenizer.ggml.token_type")?.unwrap_or_default();
        if !token_types.is_empty() && token_types.len() != tokens.len() {
            return Err(Error::bad_file(
                meta.path,
                format!(
                    "tokenizer.ggml.token_type has {} entries for {} tokens",
                    token_types.len(),
                    tokens.len()
                ),
            ));
        }
        Ok(Self {
            tokens,
            token_types,
        })
    }

    /// The token text at the id stored under `key`, e.g. `tokenizer.ggml.eos_token_id`.
    fn special(&self, key: &str, meta: &Meta<'_>) -> Result<Option<String>> {
        let Some(id) = meta.int(key)? else {
            return Ok(None);
        };
        let token = usize::try_from(id).ok().and_then(|i| self.tokens.get(i));
        match token {
            Some(t) => Ok(Some(t.clone())),
            None => Err(Error::bad_file(
                meta.path,
                format!(
                    "{key} = {id} is outside the {}-token vocabulary",
                    self.tokens.len()
                ),
            )),
        }
    }

    fn id_of(&self, key: &str, meta: &Meta<'_>) -> Result<Option<SpecialId>> {
        let Some(token) = self.special(key, meta)? else {
            return Ok(None);
        };
        let id = meta.int(key)?.and_then(|i| u32::try_from(i).ok());
        Ok(id.map(|id| (token, id)))
    }

    fn tokens_of_type(&self, kind: i64) -> impl Iterator<Item = &str> + '_ {
        self.tokens
            .iter()
            .zip(&self.token_types)
            .filter(move |(_, t)| **t == kind)
            .map(|(s, _)| s.as_str())
    }
}

/// `token -> id`, keeping every id reachable: an empty or repeated spelling (rare broken
/// files) gets a placeholder name, as llama.cpp does, instead of shadowing an id.
fn vocab_map(tokens: &[String]) -> Vocab {
    let mut vocab = Vocab::default();
    for (id, token) in tokens.iter().enumerate() {
        let id = id as u32;
        if token.is_empty() || vocab.contains_key(token) {
            vocab.insert(format!("[UNUSED_{id}]"), id);
        } else {
            vocab.insert(token.clone(), id);
        }
    }
    vocab
}

/// Merges are stored as `"left right"`; split at the first space after the first character,
/// as llama.cpp does.
fn parse_merges(merges: &[String], path: &Path) -> Result<Merges> {
    merges
        .iter()
        .map(|m| {
            let at = m
                .char_indices()
                .skip(1)
                .find(|&(_, c)| c == ' ')
                .map(|(i, _)| i);
            match at {
                Some(i) => Ok((m[..i].to_string(), m[i + 1..].to_string())),
                None => Err(Error::bad_file(
                    path,
                    format!("tokenizer.ggml.merges entry {m:?} is not \"left right\""),
                )),
            }
        })
        .collect()
}

/// A special token's text and id.
type SpecialId = (String, u32);

/// The tokens the post-processor puts around a sequence (`add_bos_token`, `add_eos_token`).
struct AddedAround {
    bos: Option<SpecialId>,
    eos: Option<SpecialId>,
}

impl AddedAround {
    fn read(meta: &Meta<'_>, vocab: &GgufVocab, add_bos_default: bool) -> Result<Self> {
        let add_bos = meta
            .bool("tokenizer.ggml.add_bos_token")?
            .unwrap_or(add_bos_default);
        let add_eos = meta.bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
        let bos = match add_bos {
            true => vocab.id_of("tokenizer.ggml.bos_token_id", meta)?,
            false => None,
        };
        let eos = match add_eos {
            true => vocab.id_of("tokenizer.ggml.eos_token_id", meta)?,
            false => None,
        };
        Ok(Self { bos, eos })
    }

    /// transformers' template: `[bos] $A [eos]`, and for pairs `[bos] $A [eos] [bos] $B [eos]`.
    /// Built from JSON so that token text with spaces or colons needs no escaping.
    fn processor(&self) -> serde_json::Value {
        let piece = |tok: &Option<SpecialId>, type_id: u32| {
            tok.as_ref().map(
                |(name, _)| serde_json::json!({"SpecialToken": {"id": name, "type_id": type_id}}),
            )
        };
        let half = |seq: &str, type_id: u32| -> Vec<serde_json::Value> {
            let seq = serde_json::json!({"Sequence": {"id": seq, "type_id": type_id}});
            let (bos, eos) = (piece(&self.bos, type_id), piece(&self.eos, type_id));
            bos.into_iter().chain([seq]).chain(eos).collect()
        };
        let single = half("A", 0);
        let pair: Vec<_> = single.iter().cloned().chain(half("B", 1)).collect();
        let specials: serde_json::Map<String, serde_json::Value> = [&self.bos, &self.eos]
            .into_iter()
            .flatten()
            .map(|(name, id)| {
                let entry = serde_json::json!({"id": name, "ids": [id], "tokens": [name]});
                (name.clone(), entry)
            })
            .collect();
        serde_json::json!({
            "type": "TemplateProcessing",
            "single": single,
            "pair": pair,
            "special_tokens": specials,
        })
    }

    fn install(&self, tok: &mut tokenizers::Tokenizer, path: &Path) -> Result<()> {
        if self.bos.is_none() && self.eos.is_none() {
            return Ok(());
        }
        let processor: TemplateProcessing =
            serde_json::from_value(self.processor()).map_err(|e| {
                Error::bad_file(
                    path,
                    format!("cannot build the BOS/EOS post-processor: {e}"),
                )
            })?;
        tok.with_post_processor(Some(processor));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Byte-level BPE (`tokenizer.ggml.model = "gpt2"`)

/// GPT-2's `bytes_to_unicode`: each byte's printable stand-in character.
fn byte_alphabet() -> [char; 256] {
    let mut table = ['\0'; 256];
    let printable = |b: u32| {
        (u32::from('!')..=u32::from('~')).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b)
    };
    let mut next = 256u32;
    for b in 0..256u32 {
        let code = if printable(b) {
            b
        } else {
            next += 1;
            next - 1
        };
        table[b as usize] = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
    }
    table
}

/// A byte-level token's bytes (characters outside the alphabet are kept as their UTF-8).
fn byte_level_bytes(token: &str) -> Vec<u8> {
    let table = byte_alphabet();
    let mut out = Vec::with_capacity(token.len());
    for c in token.chars() {
        match table.iter().position(|&t| t == c) {
            Some(b) => out.push(b as u8),
            None => out.extend_from_slice(c.to_string().as_bytes()),
        }
    }
    out
}

/// Bytes as text, with invalid UTF-8 written as `\xNN`.
fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

fn byte_level_bpe(meta: &Meta<'_>, vocab: &GgufVocab) -> Result<tokenizers::Tokenizer> {
    let alphabet: HashSet<char> = byte_alphabet().into_iter().collect();
    let table = byte_alphabet();
    // Tokens are stored in the byte alphabet; transformers re-spells any that are not.
    let spelled: Vec<String> = vocab
        .tokens
        .iter()
        .map(|t| {
            if t.chars().all(|c| alphabet.contains(&c)) {
                t.clone()
            } else {
                t.bytes().map(|b| table[b as usize]).collect()
            }
        })
        .collect();
    let merges = meta.strings("tokenizer.ggml.merges")?.ok_or_else(|| {
        Error::bad_file(meta.path, "no tokenizer.ggml.merges for the gpt2 tokenizer")
    })?;
    let pre_name = meta.str("tokenizer.ggml.pre")?;
    let pre = byte_level_pre(pre_name, meta.path)?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab_map(&spelled), parse_merges(&merges, meta.path)?)
        .ignore_merges(pre.ignore_merges)
        .build()
        .map_err(|e| Error::bad_file(meta.path, format!("cannot build the BPE vocabulary: {e}")))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(pre.pre_tokenizer));
    tok.with_decoder(Some(ByteLevel::default()));
    // Control tokens outside the byte alphabet are llama.cpp mislabels (transformers skips
    // them too); user-defined ones are added only when the vocabulary spells them as is.
    let control: Vec<AddedToken> = vocab
        .tokens_of_type(TOKEN_TYPE_CONTROL)
        .filter(|t| t.chars().all(|c| alphabet.contains(&c)))
        .map(|t| AddedToken::from(t, true).normalized(false))
        .collect();
    tok.add_special_tokens(control)
        .map_err(|e| Error::bad_file(meta.path, format!("special tokens: {e}")))?;
    let user: Vec<AddedToken> = vocab
        .tokens_of_type(TOKEN_TYPE_USER_DEFINED)
        .filter(|t| t.chars().all(|c| alphabet.contains(&c)))
        .map(|t| AddedToken::from(t, false).normalized(false))
        .collect();
    tok.add_tokens(user)
        .map_err(|e| Error::bad_file(meta.path, format!("added tokens: {e}")))?;
    AddedAround::read(meta, vocab, false)?.install(&mut tok, meta.path)?;
    Ok(tok)
}

/// The pre-tokenizer for a `tokenizer.ggml.pre` name, and whether BPE should take a whole
/// word that is in the vocabulary without merging (llama.cpp's `ignore_merges`).
struct PreChoice {
    pre_tokenizer: PreTokenizerWrapper,
    ignore_merges: bool,
}

/// llama.cpp's GPT-2 regex is HF's ByteLevel regex.
const GPT2_NAMES: &[&str] = &[
    "default",
    "gpt2",
    "gpt-2",
    "phi-2",
    "mpt",
    "olmo",
    "jais",
    "roberta-bpe",
    "jina-es",
    "jina-de",
    "jina-v1-en",
    "jina-v2-es",
    "jina-v2-de",
    "jina-v2-code",
    "gigachat",
    "trillion",
    "granite-docling",
    "exaone4",
];
/// llama.cpp splits `\p{N}` off first, then the GPT-2 regex: HF's
/// `Sequence[Digits(individual_digits=true), ByteLevel(use_regex=true)]` (SmolLM's own
/// tokenizer.json).
const DIGITS_GPT2_NAMES: &[&str] = &[
    "smollm",
    "starcoder",
    "refact",
    "command-r",
    "codeshell",
    "exaone",
    "minerva-7b",
];

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const TEKKEN_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Split regexes by name (the table in transformers' `gguf_tokenizer_mapping.py`), and
/// whether llama.cpp sets `ignore_merges` for them.
const SPLIT_NAMES: &[(&str, &str, bool)] = &[
    ("llama3", LLAMA3_SPLIT, true),
    ("llama-v3", LLAMA3_SPLIT, true),
    ("llama-bpe", LLAMA3_SPLIT, true),
    ("falcon3", LLAMA3_SPLIT, true),
    ("falcon-h1", LLAMA3_SPLIT, true),
    ("pixtral", LLAMA3_SPLIT, true),
    ("midm-2.0", LLAMA3_SPLIT, true),
    ("lfm2", LLAMA3_SPLIT, true),
    ("dbrx", LLAMA3_SPLIT, false),
    ("smaug-bpe", LLAMA3_SPLIT, false),
    ("qwen2", QWEN2_SPLIT, false),
    ("deepseek-r1-qwen", QWEN2_SPLIT, false),
    ("megrez", QWEN2_SPLIT, false),
    ("stablelm2", QWEN2_SPLIT, false),
    ("qwen35", QWEN35_SPLIT, false),
    ("tekken", TEKKEN_SPLIT, true),
    ("gpt-4o", GPT4O_SPLIT, false),
    ("llama4", GPT4O_SPLIT, false),
    ("minimax-m2", GPT4O_SPLIT, false),
];

/// Names this module can build a byte-level pre-tokenizer for (for the error message).
pub fn supported_pre_tokenizers() -> Vec<&'static str> {
    let mut names: Vec<&str> = GPT2_NAMES
        .iter()
        .chain(DIGITS_GPT2_NAMES)
        .copied()
        .collect();
    names.extend(SPLIT_NAMES.iter().map(|(n, _, _)| *n));
    names
}

fn byte_level_pre(name: Option<&str>, path: &Path) -> Result<PreChoice> {
    let gpt2 = || PreTokenizerWrapper::from(ByteLevel::new(false, true, true));
    // A file without the key predates `tokenizer.ggml.pre`: GPT-2's split is what
    // transformers uses then (llama.cpp's "default").
    let name = name.unwrap_or("default");
    if GPT2_NAMES.contains(&name) {
        return Ok(PreChoice {
            pre_tokenizer: gpt2(),
            ignore_merges: false,
        });
    }
    if DIGITS_GPT2_NAMES.contains(&name) {
        let seq = PreSequence::new(vec![Digits::new(true).into(), gpt2()]);
        return Ok(PreChoice {
            pre_tokenizer: seq.into(),
            ignore_merges: false,
        });
    }
    let Some(&(_, regex, ignore_merges)) = SPLIT_NAMES.iter().find(|(n, _, _)| *n == name) else {
        return Err(Error::bad_file(
            path,
            format!(
                "tokenizer.ggml.pre {name:?} is not supported (supported: {})",
                supported_pre_tokenizers().join(", ")
            ),
        ));
    };
    let split = Split::new(
        SplitPattern::Regex(regex.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| Error::bad_file(path, format!("pre-tokenizer {name:?}: {e}")))?;
    let seq = PreSequence::new(vec![
        split.into(),
        ByteLevel::new(false, true, false).into(),
    ]);
    Ok(PreChoice {
        pre_tokenizer: seq.into(),
        ignore_merges,
    })
}

// ---------------------------------------------------------------------------------------
// SentencePiece-style BPE (`tokenizer.ggml.model = "llama"`)

/// Architectures whose SentencePiece vocabulary needs special handling in transformers
/// (respelled tokens, a different prefix-space scheme) that is not done here.
const SPM_UNSUPPORTED_ARCHS: &[&str] = &["gemma", "gemma2", "gemma3", "phi3"];

fn sentencepiece_bpe(meta: &Meta<'_>, vocab: &GgufVocab) -> Result<tokenizers::Tokenizer> {
    if let Some(arch) = meta.str("general.architecture")? {
        if SPM_UNSUPPORTED_ARCHS.contains(&arch) {
            return Err(Error::bad_file(
                meta.path,
                format!("the SentencePiece tokenizer of architecture {arch:?} is not supported"),
            ));
        }
    }
    let merges = match meta.strings("tokenizer.ggml.merges")? {
        Some(m) => parse_merges(&m, meta.path)?,
        None => {
            let scores = meta.floats("tokenizer.ggml.scores")?.ok_or_else(|| {
                Error::bad_file(
                    meta.path,
                    "llama tokenizer without tokenizer.ggml.merges or scores",
                )
            })?;
            if scores.len() != vocab.tokens.len() {
                return Err(Error::bad_file(
                    meta.path,
                    "tokenizer.ggml.scores and tokenizer.ggml.tokens differ in length",
                ));
            }
            merges_from_scores(&vocab.tokens, &scores)
        }
    };
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab_map(&vocab.tokens), merges)
        .fuse_unk(true)
        .byte_fallback(true);
    if let Some(unk) = vocab.special("tokenizer.ggml.unknown_token_id", meta)? {
        builder = builder.unk_token(unk);
    }
    let bpe = builder
        .build()
        .map_err(|e| Error::bad_file(meta.path, format!("cannot build the BPE vocabulary: {e}")))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    let prefix_space = meta
        .bool("tokenizer.ggml.add_space_prefix")?
        .unwrap_or(true);
    let scheme = if prefix_space {
        PrependScheme::First
    } else {
        PrependScheme::Never
    };
    tok.with_pre_tokenizer(Some(Metaspace::new('▁', scheme, false)));
    tok.with_decoder(Some(spm_decoder(prefix_space, meta.path)?));
    let control: Vec<AddedToken> = vocab
        .tokens_of_type(TOKEN_TYPE_CONTROL)
        .map(|t| AddedToken::from(t, true).normalized(false))
        .collect();
    tok.add_special_tokens(control)
        .map_err(|e| Error::bad_file(meta.path, format!("special tokens: {e}")))?;
    let user: Vec<AddedToken> = vocab
        .tokens_of_type(TOKEN_TYPE_USER_DEFINED)
        .map(|t| AddedToken::from(t, false).normalized(false))
        .collect();
    tok.add_tokens(user)
        .map_err(|e| Error::bad_file(meta.path, format!("added tokens: {e}")))?;
    // llama.cpp adds BOS to a SentencePiece vocabulary unless the file says otherwise.
    AddedAround::read(meta, vocab, true)?.install(&mut tok, meta.path)?;
    Ok(tok)
}

/// transformers' LlamaTokenizer decoder: `▁` back to spaces, `<0xNN>` tokens to bytes, and
/// the prefix space dropped.
fn spm_decoder(prefix_space: bool, path: &Path) -> Result<DecoderWrapper> {
    let replace = Replace::new("▁", " ")
        .map_err(|e| Error::bad_file(path, format!("cannot build the decoder: {e}")))?;
    let mut steps: Vec<DecoderWrapper> = vec![
        replace.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if prefix_space {
        steps.push(Strip::new(' ', 1, 0).into());
    }
    Ok(DecoderSequence::new(steps).into())
}

/// transformers' `generate_merges` for a vocabulary with scores and no merges: every split
/// of a token into two vocabulary tokens is a merge, best score first.
fn merges_from_scores(tokens: &[String], scores: &[f32]) -> Merges {
    // As Python dicts: the last index of a spelling wins, the first position orders.
    let ids: HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let mut score_of: HashMap<&str, f32> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for (token, &score) in tokens.iter().zip(scores) {
        if score_of.insert(token.as_str(), score).is_none() {
            order.push(token.as_str());
        }
    }
    let mut merges: Vec<(&str, &str, f32)> = Vec::new();
    for token in order {
        let score = score_of.get(token).copied().unwrap_or_default();
        let mut local: Vec<(&str, &str, f32)> = token
            .char_indices()
            .skip(1)
            .map(|(at, _)| token.split_at(at))
            .filter(|(l, r)| ids.contains_key(l) && ids.contains_key(r))
            .map(|(l, r)| (l, r, score))
            .collect();
        local.sort_by_key(|(l, r, _)| (ids.get(l).copied(), ids.get(r).copied()));
        merges.extend(local);
    }
    // Python's stable `sorted(..., key=(score, len(l), len(r)), reverse=True)`.
    merges.sort_by(|a, b| {
        b.2.total_cmp(&a.2)
            .then_with(|| b.0.chars().count().cmp(&a.0.chars().count()))
            .then_with(|| b.1.chars().count().cmp(&a.1.chars().count()))
    });
    merges
        .into_iter()
        .map(|(l, r, _)| (l.to_string(), r.to_string()))
        .collect()
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

    const MERGES: &[&str] = &["h e", "l l", "he ll", "hell o", "Ġ hello"];
    const SPECIALS: &[&str] = &["<|im_start|>", "<|im_end|>"];

    fn s(x: &str) -> GgufValue {
        GgufValue::String(x.to_string())
    }

    /// GGUF metadata for a tiny byte-level vocabulary: the 256 byte tokens (id = byte), the
    /// merged tokens of `MERGES`, then two control tokens.
    fn tiny_gguf(pre: &str, add_bos: bool) -> HashMap<String, GgufValue> {
        let mut tokens: Vec<GgufValue> =
            byte_alphabet().iter().map(|c| s(&c.to_string())).collect();
        for m in MERGES {
            tokens.push(s(&m.replace(' ', "")));
        }
        let normal = tokens.len();
        tokens.extend(SPECIALS.iter().map(|t| s(t)));
        let types: Vec<GgufValue> = (0..tokens.len())
            .map(|i| GgufValue::I32(if i < normal { 1 } else { 3 }))
            .collect();
        let mut md = HashMap::new();
        md.insert("tokenizer.ggml.model".into(), s("gpt2"));
        md.insert("tokenizer.ggml.pre".into(), s(pre));
        md.insert("tokenizer.ggml.tokens".into(), GgufValue::Array(tokens));
        md.insert("tokenizer.ggml.token_type".into(), GgufValue::Array(types));
        md.insert(
            "tokenizer.ggml.merges".into(),
            GgufValue::Array(MERGES.iter().map(|m| s(m)).collect()),
        );
        md.insert("tokenizer.ggml.bos_token_id".into(), GgufValue::U32(261));
        md.insert("tokenizer.ggml.eos_token_id".into(), GgufValue::U32(262));
        md.insert(
            "tokenizer.ggml.add_bos_token".into(),
            GgufValue::Bool(add_bos),
        );
        md.insert(
            "tokenizer.chat_template".into(),
            s("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | trim }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"),
        );
        md
    }

    fn tiny(pre: &str) -> Tokenizer {
        let md = tiny_gguf(pre, false);
        match Tokenizer::from_gguf(&md, Path::new("tiny.gguf")) {
            Ok(t) => t,
            Err(e) => panic!("tiny tokenizer: {e}"),
        }
    }

    #[test]
    fn byte_alphabet_matches_gpt2() {
        let table = byte_alphabet();
        assert_eq!(table[b'a' as usize], 'a');
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        assert_eq!(table[0], 'Ā');
        assert_eq!(table[0xAD], 'Ń');
        assert_eq!(table.iter().collect::<HashSet<_>>().len(), 256);
    }

    #[test]
    fn tiny_gguf_encodes_merges_and_specials() {
        let tok = tiny("smollm");
        let hello = tok.token_id("hello").unwrap();
        let space_hello = tok.token_id("Ġhello").unwrap();
        assert_eq!(
            tok.encode("hello hello", true).unwrap(),
            vec![hello, space_hello]
        );
        assert_eq!(
            tok.encode("<|im_start|>hello<|im_end|>", false).unwrap(),
            vec![261, hello, 262]
        );
        // Digits are split one by one before the GPT-2 regex ("smollm").
        assert_eq!(
            tok.encode("12", false).unwrap(),
            vec![u32::from(b'1'), u32::from(b'2')]
        );
        assert_eq!(tok.vocab_size(), 263);
        assert_eq!(tok.eos_token(), Some("<|im_end|>"));
        assert_eq!(tok.bos_token(), Some("<|im_start|>"));
    }

    #[test]
    fn add_bos_token_adds_bos_only_with_special() {
        let md = tiny_gguf("gpt-2", true);
        let tok = Tokenizer::from_gguf(&md, Path::new("tiny.gguf")).unwrap();
        let hello = tok.token_id("hello").unwrap();
        assert_eq!(tok.encode("hello", true).unwrap(), vec![261, hello]);
        assert_eq!(tok.encode("hello", false).unwrap(), vec![hello]);
        let mut md = tiny_gguf("gpt-2", true);
        md.insert("tokenizer.ggml.add_eos_token".into(), GgufValue::Bool(true));
        let tok = Tokenizer::from_gguf(&md, Path::new("tiny.gguf")).unwrap();
        assert_eq!(tok.encode("hello", true).unwrap(), vec![261, hello, 262]);
    }

    #[test]
    fn round_trip_and_token_text() {
        let tok = tiny("default");
        for text in [
            "hello hello",
            "  café 日本語 🙂\n\tx",
            "<|im_start|>a<|im_end|>",
            "",
        ] {
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
    fn chat_template_renders_like_transformers() {
        let tok = tiny("default");
        assert_eq!(
            tok.apply_chat("  Hi ").unwrap(),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn chat_template_python_methods_and_blocks() {
        let template = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}\n\
            {% for m in messages %}\n  [{{ m['content'].strip().upper() }}|{{ m.content.startswith('  h') }}]\n{% endfor %}\
            {{ bos_token }}{{ eos_token }}{{ messages | tojson }}";
        let msgs = [ChatMessage {
            role: "user",
            content: "  hi <b> é ",
        }];
        let out = render_chat(template, &msgs, (Some("<s>"), None), Path::new("t.json")).unwrap();
        assert_eq!(
            out,
            "  [HI <B> É|True]\n<s>[{\"role\": \"user\", \"content\": \"  hi <b> é \"}]"
        );
        let msgs = [ChatMessage {
            role: "system",
            content: "x",
        }];
        let err = render_chat(template, &msgs, (None, None), Path::new("t.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("user first") && err.contains("t.json"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
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
        assert!(err
            .to_string()
            .contains("/nonexistent/attnviz/tokenizer.json"));
    }

    #[test]
    fn unsupported_gguf_tokenizers_are_refused_by_name() {
        let mut md = tiny_gguf("default", false);
        md.insert("tokenizer.ggml.model".into(), s("bert"));
        let err = Tokenizer::from_gguf(&md, Path::new("m.gguf"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.gguf") && err.contains("\"bert\""), "{err}");
        let md = tiny_gguf("deepseek-coder", false);
        let err = Tokenizer::from_gguf(&md, Path::new("m.gguf"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m.gguf") && err.contains("deepseek-coder"),
            "{err}"
        );
        assert!(!err.contains('\n'));
        let mut md = tiny_gguf("default", false);
        md.insert("tokenizer.ggml.eos_token_id".into(), GgufValue::U32(70000));
        let err = Tokenizer::from_gguf(&md, Path::new("m.gguf"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("eos_token_id") && err.contains("70000"),
            "{err}"
        );
    }

    #[test]
    fn split_regex_pre_tokenizers_build() {
        for (name, _, _) in SPLIT_NAMES {
            let tok = tiny(name);
            let ids = tok.encode("Hello world 12345 don't", false).unwrap();
            assert_eq!(
                tok.decode(&ids).unwrap(),
                "Hello world 12345 don't",
                "{name}"
            );
        }
    }

    #[test]
    fn config_chat_template_forms() {
        let path = Path::new("tokenizer_config.json");
        let plain = serde_json::json!({"chat_template": "abc", "bos_token": {"content": "<s>"}, "eos_token": "</s>"});
        assert_eq!(
            config_chat_template(&plain, path).unwrap().as_deref(),
            Some("abc")
        );
        assert_eq!(config_token(&plain, "bos_token").as_deref(), Some("<s>"));
        assert_eq!(config_token(&plain, "eos_token").as_deref(), Some("</s>"));
        let list = serde_json::json!({"chat_template": [
            {"name": "tool_use", "template": "t"}, {"name": "default", "template": "d"}]});
        assert_eq!(
            config_chat_template(&list, path).unwrap().as_deref(),
            Some("d")
        );
        let bad = serde_json::json!({"chat_template": 3});
        assert!(config_chat_template(&bad, path).is_err());
    }

    #[test]
    fn merges_from_scores_sort_like_transformers() {
        // Expected values from transformers' generate_merges on the same vocabulary.
        let tokens: Vec<String> = ["<unk>", "▁", "a", "b", "ab", "▁a", "▁ab", "ba", "aba"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        let scores = [0.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -4.0, -7.0];
        let got = merges_from_scores(&tokens, &scores);
        let want: Vec<(String, String)> = [
            ("a", "b"),
            ("b", "a"),
            ("▁", "a"),
            ("▁a", "b"),
            ("▁", "ab"),
            ("ab", "a"),
            ("a", "ba"),
        ]
        .iter()
        .map(|(l, r)| (l.to_string(), r.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    /// The toy SentencePiece vocabulary of `ref/spm_toy.py` (scores, no merges).
    fn toy_spm() -> Tokenizer {
        let pieces = [
            "▁",
            "▁h",
            "▁he",
            "▁hel",
            "▁hell",
            "▁hello",
            "h",
            "e",
            "l",
            "o",
            "w",
            "r",
            "d",
            "▁w",
            "▁wo",
            "▁wor",
            "▁worl",
            "▁world",
            "ll",
            "he",
            "lo",
            "or",
            "wor",
            "▁▁",
            "▁▁▁",
            "x",
            "▁x",
            "é",
        ];
        let mut tokens = vec![s("<unk>"), s("<s>"), s("</s>")];
        tokens.extend((0..256).map(|b| s(&format!("<0x{b:02X}>"))));
        tokens.extend(pieces.iter().map(|p| s(p)));
        tokens.push(s("<|user|>"));
        let mut types = vec![2, 3, 3];
        types.extend([6; 256]);
        types.extend(vec![1; pieces.len()]);
        types.push(4);
        let mut scores = vec![0.0f32; 259];
        scores.extend((0..pieces.len()).map(|i| -(i as f32)));
        scores.push(0.0);
        let mut md = HashMap::new();
        md.insert("general.architecture".into(), s("llama"));
        md.insert("tokenizer.ggml.model".into(), s("llama"));
        md.insert("tokenizer.ggml.tokens".into(), GgufValue::Array(tokens));
        let types = types.into_iter().map(GgufValue::I32).collect();
        md.insert("tokenizer.ggml.token_type".into(), GgufValue::Array(types));
        let scores = scores.into_iter().map(GgufValue::F32).collect();
        md.insert("tokenizer.ggml.scores".into(), GgufValue::Array(scores));
        md.insert("tokenizer.ggml.bos_token_id".into(), GgufValue::U32(1));
        md.insert("tokenizer.ggml.eos_token_id".into(), GgufValue::U32(2));
        md.insert("tokenizer.ggml.unknown_token_id".into(), GgufValue::U32(0));
        Tokenizer::from_gguf(&md, Path::new("toy.gguf")).unwrap()
    }

    #[test]
    fn sentencepiece_gguf_matches_transformers() {
        // (text, tokenizer(text), tokenizer(text, add_special_tokens=False)) from transformers.
        let cases: &[(&str, &[u32], &[u32])] = &[
            ("hello world", &[1, 264, 276], &[264, 276]),
            (" hello", &[1, 264], &[264]),
            ("hello  world", &[1, 264, 259, 276], &[264, 259, 276]),
            ("  hello", &[1, 259, 264], &[259, 264]),
            (
                "helloworld",
                &[1, 264, 281, 267, 271],
                &[264, 281, 267, 271],
            ),
            ("héllo", &[1, 260, 286, 277, 268], &[260, 286, 277, 268]),
            (
                "hello\nworld",
                &[1, 264, 13, 281, 267, 271],
                &[264, 13, 281, 267, 271],
            ),
            (
                "<s>hello</s>",
                &[1, 1, 278, 277, 268, 2],
                &[1, 278, 277, 268, 2],
            ),
            ("x<|user|>x", &[1, 285, 287, 284], &[285, 287, 284]),
            ("日", &[1, 259, 233, 154, 168], &[259, 233, 154, 168]),
            ("", &[1], &[]),
            (" ", &[1, 259], &[259]),
            ("wor", &[1, 274], &[274]),
            ("hello world ", &[1, 264, 276, 259], &[264, 276, 259]),
        ];
        let tok = toy_spm();
        for &(text, with, without) in cases {
            assert_eq!(tok.encode(text, true).unwrap(), with, "{text:?}");
            assert_eq!(tok.encode(text, false).unwrap(), without, "{text:?}");
        }
        // transformers drops the leading space of the first piece when decoding.
        assert_eq!(tok.decode(&[264, 276]).unwrap(), "hello world");
        assert_eq!(tok.decode(&[259, 233, 154, 168]).unwrap(), "日");
        assert_eq!(tok.token_text(233), "<0xE6>");
        assert_eq!(tok.token_text(264), " hello");
        assert_eq!(tok.token_text(281), "wor");
        let mut stream = TextStream::new();
        let pieces: Vec<String> = [264, 276, 259, 233, 154, 168]
            .iter()
            .map(|&id| stream.push(&tok, id).unwrap())
            .collect();
        assert_eq!(pieces, ["hello", " world", " ", "", "", "日"]);
    }

    #[test]
    fn text_after_handles_changed_prefix() {
        assert_eq!(text_after("ab", "abc"), "c");
        assert_eq!(text_after("a\u{FFFD}", "aé"), "é");
        assert_eq!(text_after("", "x"), "x");
    }
}
