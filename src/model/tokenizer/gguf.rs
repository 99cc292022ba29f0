//! Rebuilding a tokenizer from a GGUF file's `tokenizer.ggml.*` metadata. A GGUF carries no
//! `tokenizer.json`, so this follows how llama.cpp reads those keys and transformers'
//! `integrations/gguf` rebuilds them: byte-level BPE (`gpt2`) in `byte_level`,
//! SentencePiece-style BPE (`llama`) in `spm`; the typed reads and shared parts are here.

mod byte_level;
mod spm;

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::Value as GgufValue;
use tokenizers::models::bpe::{Merges, Vocab};
use tokenizers::processors::template::TemplateProcessing;

use crate::error::{Error, Result};

pub use byte_level::supported_pre_tokenizers;

/// GGUF `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// What the metadata describes: the tokenizer, its chat template and the BOS/EOS text.
pub(super) struct Parts {
    pub(super) inner: tokenizers::Tokenizer,
    pub(super) chat_template: Option<String>,
    pub(super) bos: Option<String>,
    pub(super) eos: Option<String>,
}

/// Build the tokenizer from the metadata; `path` is only used in error messages.
pub(super) fn read(md: &HashMap<String, GgufValue>, path: &Path) -> Result<Parts> {
    let meta = Meta { md, path };
    let model = meta
        .str("tokenizer.ggml.model")?
        .ok_or_else(|| Error::bad_file(path, "no tokenizer.ggml.model in the GGUF metadata"))?;
    let vocab = GgufVocab::read(&meta)?;
    let inner = match model {
        "gpt2" => byte_level::byte_level_bpe(&meta, &vocab)?,
        "llama" => spm::sentencepiece_bpe(&meta, &vocab)?,
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
    Ok(Parts { inner, chat_template, bos, eos })
}

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
            Some(v) => int_of(v).map(|i| Some(i != 0)).ok_or_else(|| self.bad(key, "a bool")),
        }
    }

    fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.md.get(key) {
            None => Ok(None),
            Some(v) => int_of(v).map(Some).ok_or_else(|| self.bad(key, "an integer")),
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
                format!("tokenizer.ggml.token_type has {} entries for {} tokens", token_types.len(), tokens.len()),
            ));
        }
        Ok(Self { tokens, token_types })
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
                format!("{key} = {id} is outside the {}-token vocabulary", self.tokens.len()),
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
        self.tokens.iter().zip(&self.token_types).filter(move |(_, t)| **t == kind).map(|(s, _)| s.as_str())
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
            let at = m.char_indices().skip(1).find(|&(_, c)| c == ' ').map(|(i, _)| i);
            match at {
                Some(i) => Ok((m[..i].to_string(), m[i + 1..].to_string())),
                None => Err(Error::bad_file(path, format!("tokenizer.ggml.merges entry {m:?} is not \"left right\""))),
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
        let add_bos = meta.bool("tokenizer.ggml.add_bos_token")?.unwrap_or(add_bos_default);
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
            tok.as_ref().map(|(name, _)| serde_json::json!({"SpecialToken": {"id": name, "type_id": type_id}}))
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
        let processor: TemplateProcessing = serde_json::from_value(self.processor())
            .map_err(|e| Error::bad_file(path, format!("cannot build the BOS/EOS post-processor: {e}")))?;
        tok.with_post_processor(Some(processor));
        Ok(())
    }
}

// Visible to the rest of the tokenizer: `tiny` is the fixture its unit tests share.
#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::tokenizer::bytes::byte_alphabet;
    use crate::model::tokenizer::Tokenizer;

    const MERGES: &[&str] = &["h e", "l l", "he ll", "hell o", "Ġ hello"];
    const SPECIALS: &[&str] = &["<|im_start|>", "<|im_end|>"];

    pub(crate) fn s(x: &str) -> GgufValue {
        GgufValue::String(x.to_string())
    }

    /// GGUF metadata for a tiny byte-level vocabulary: the 256 byte tokens (id = byte), the
    /// merged tokens of `MERGES`, then two control tokens.
    pub(crate) fn tiny_gguf(pre: &str, add_bos: bool) -> HashMap<String, GgufValue> {
        let mut tokens: Vec<GgufValue> = byte_alphabet().iter().map(|c| s(&c.to_string())).collect();
        for m in MERGES {
            tokens.push(s(&m.replace(' ', "")));
        }
        let normal = tokens.len();
        tokens.extend(SPECIALS.iter().map(|t| s(t)));
        let types: Vec<GgufValue> = (0..tokens.len()).map(|i| GgufValue::I32(if i < normal { 1 } else { 3 })).collect();
        let mut md = HashMap::new();
        md.insert("tokenizer.ggml.model".into(), s("gpt2"));
        md.insert("tokenizer.ggml.pre".into(), s(pre));
        md.insert("tokenizer.ggml.tokens".into(), GgufValue::Array(tokens));
        md.insert("tokenizer.ggml.token_type".into(), GgufValue::Array(types));
        md.insert("tokenizer.ggml.merges".into(), GgufValue::Array(MERGES.iter().map(|m| s(m)).collect()));
        md.insert("tokenizer.ggml.bos_token_id".into(), GgufValue::U32(261));
        md.insert("tokenizer.ggml.eos_token_id".into(), GgufValue::U32(262));
        md.insert("tokenizer.ggml.add_bos_token".into(), GgufValue::Bool(add_bos));
        md.insert(
            "tokenizer.chat_template".into(),
            s("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | trim }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"),
        );
        md
    }

    pub(crate) fn tiny(pre: &str) -> Tokenizer {
        let md = tiny_gguf(pre, false);
        match Tokenizer::from_gguf(&md, Path::new("tiny.gguf")) {
            Ok(t) => t,
            Err(e) => panic!("tiny tokenizer: {e}"),
        }
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
    fn unsupported_gguf_tokenizers_are_refused_by_name() {
        let mut md = tiny_gguf("default", false);
        md.insert("tokenizer.ggml.model".into(), s("bert"));
        let err = Tokenizer::from_gguf(&md, Path::new("m.gguf")).unwrap_err().to_string();
        assert!(err.contains("m.gguf") && err.contains("\"bert\""), "{err}");
        let md = tiny_gguf("deepseek-coder", false);
        let err = Tokenizer::from_gguf(&md, Path::new("m.gguf")).unwrap_err().to_string();
        assert!(err.contains("m.gguf") && err.contains("deepseek-coder"), "{err}");
        assert!(!err.contains('\n'));
        let mut md = tiny_gguf("default", false);
        md.insert("tokenizer.ggml.eos_token_id".into(), GgufValue::U32(70000));
        let err = Tokenizer::from_gguf(&md, Path::new("m.gguf")).unwrap_err().to_string();
        assert!(err.contains("eos_token_id") && err.contains("70000"), "{err}");
    }
}
