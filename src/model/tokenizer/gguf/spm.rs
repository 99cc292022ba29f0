//! SentencePiece-style BPE (`tokenizer.ggml.model = "llama"`): byte fallback, the `▁`
//! metaspace, and merges derived from scores when the file has none.

use std::collections::HashMap;
use std::path::Path;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Merges, BPE};
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, DecoderWrapper};

use super::{parse_merges, vocab_map, AddedAround, GgufVocab, Meta, TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED};
use crate::error::{Error, Result};

/// Architectures whose SentencePiece vocabulary needs special handling in transformers
/// (respelled tokens, a different prefix-space scheme) that is not done here.
const SPM_UNSUPPORTED_ARCHS: &[&str] = &["gemma", "gemma2", "gemma3", "phi3"];

pub(super) fn sentencepiece_bpe(meta: &Meta<'_>, vocab: &GgufVocab) -> Result<tokenizers::Tokenizer> {
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
            let scores = meta
                .floats("tokenizer.ggml.scores")?
                .ok_or_else(|| Error::bad_file(meta.path, "llama tokenizer without tokenizer.ggml.merges or scores"))?;
            if scores.len() != vocab.tokens.len() {
                return Err(Error::bad_file(
                    meta.path,
                    "tokenizer.ggml.scores and tokenizer.ggml.tokens differ in length",
                ));
            }
            merges_from_scores(&vocab.tokens, &scores)
        }
    };
    let mut builder =
        BPE::builder().vocab_and_merges(vocab_map(&vocab.tokens), merges).fuse_unk(true).byte_fallback(true);
    if let Some(unk) = vocab.special("tokenizer.ggml.unknown_token_id", meta)? {
        builder = builder.unk_token(unk);
    }
    let bpe =
        builder.build().map_err(|e| Error::bad_file(meta.path, format!("cannot build the BPE vocabulary: {e}")))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    let prefix_space = meta.bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
    let scheme = if prefix_space { PrependScheme::First } else { PrependScheme::Never };
    tok.with_pre_tokenizer(Some(Metaspace::new('▁', scheme, false)));
    tok.with_decoder(Some(spm_decoder(prefix_space, meta.path)?));
    let control: Vec<AddedToken> =
        vocab.tokens_of_type(TOKEN_TYPE_CONTROL).map(|t| AddedToken::from(t, true).normalized(false)).collect();
    tok.add_special_tokens(control).map_err(|e| Error::bad_file(meta.path, format!("special tokens: {e}")))?;
    let user: Vec<AddedToken> =
        vocab.tokens_of_type(TOKEN_TYPE_USER_DEFINED).map(|t| AddedToken::from(t, false).normalized(false)).collect();
    tok.add_tokens(user).map_err(|e| Error::bad_file(meta.path, format!("added tokens: {e}")))?;
    // llama.cpp adds BOS to a SentencePiece vocabulary unless the file says otherwise.
    AddedAround::read(meta, vocab, true)?.install(&mut tok, meta.path)?;
    Ok(tok)
}

/// transformers' LlamaTokenizer decoder: `▁` back to spaces, `<0xNN>` tokens to bytes, and
/// the prefix space dropped.
fn spm_decoder(prefix_space: bool, path: &Path) -> Result<DecoderWrapper> {
    let replace =
        Replace::new("▁", " ").map_err(|e| Error::bad_file(path, format!("cannot build the decoder: {e}")))?;
    let mut steps: Vec<DecoderWrapper> = vec![replace.into(), ByteFallback::new().into(), Fuse::new().into()];
    if prefix_space {
        steps.push(Strip::new(' ', 1, 0).into());
    }
    Ok(DecoderSequence::new(steps).into())
}

/// transformers' `generate_merges` for a vocabulary with scores and no merges: every split
/// of a token into two vocabulary tokens is a merge, best score first.
fn merges_from_scores(tokens: &[String], scores: &[f32]) -> Merges {
    // As Python dicts: the last index of a spelling wins, the first position orders.
    let ids: HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
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
    merges.into_iter().map(|(l, r, _)| (l.to_string(), r.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::s;
    use super::*;
    use crate::model::tokenizer::{TextStream, Tokenizer};
    use candle_core::quantized::gguf_file::Value as GgufValue;

    #[test]
    fn merges_from_scores_sort_like_transformers() {
        // Expected values from transformers' generate_merges on the same vocabulary.
        let tokens: Vec<String> =
            ["<unk>", "▁", "a", "b", "ab", "▁a", "▁ab", "ba", "aba"].iter().map(|t| t.to_string()).collect();
        let scores = [0.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -4.0, -7.0];
        let got = merges_from_scores(&tokens, &scores);
        let want: Vec<(String, String)> =
            [("a", "b"), ("b", "a"), ("▁", "a"), ("▁a", "b"), ("▁", "ab"), ("ab", "a"), ("a", "ba")]
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
            ("helloworld", &[1, 264, 281, 267, 271], &[264, 281, 267, 271]),
            ("héllo", &[1, 260, 286, 277, 268], &[260, 286, 277, 268]),
            ("hello\nworld", &[1, 264, 13, 281, 267, 271], &[264, 13, 281, 267, 271]),
            ("<s>hello</s>", &[1, 1, 278, 277, 268, 2], &[1, 278, 277, 268, 2]),
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
        let pieces: Vec<String> =
            [264, 276, 259, 233, 154, 168].iter().map(|&id| stream.push(&tok, id).unwrap()).collect();
        assert_eq!(pieces, ["hello", " world", " ", "", "", "日"]);
    }
}
