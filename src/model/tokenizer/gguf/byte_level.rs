//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`) and its pre-tokenizers, chosen by the
//! `tokenizer.ggml.pre` name.

use std::collections::HashSet;
use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

use super::{parse_merges, vocab_map, AddedAround, GgufVocab, Meta, TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED};
use crate::error::{Error, Result};
use crate::model::tokenizer::bytes::byte_alphabet;

pub(super) fn byte_level_bpe(meta: &Meta<'_>, vocab: &GgufVocab) -> Result<tokenizers::Tokenizer> {
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
    let merges = meta
        .strings("tokenizer.ggml.merges")?
        .ok_or_else(|| Error::bad_file(meta.path, "no tokenizer.ggml.merges for the gpt2 tokenizer"))?;
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
    tok.add_special_tokens(control).map_err(|e| Error::bad_file(meta.path, format!("special tokens: {e}")))?;
    let user: Vec<AddedToken> = vocab
        .tokens_of_type(TOKEN_TYPE_USER_DEFINED)
        .filter(|t| t.chars().all(|c| alphabet.contains(&c)))
        .map(|t| AddedToken::from(t, false).normalized(false))
        .collect();
    tok.add_tokens(user).map_err(|e| Error::bad_file(meta.path, format!("added tokens: {e}")))?;
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
const DIGITS_GPT2_NAMES: &[&str] = &["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"];

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
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
    let mut names: Vec<&str> = GPT2_NAMES.iter().chain(DIGITS_GPT2_NAMES).copied().collect();
    names.extend(SPLIT_NAMES.iter().map(|(n, _, _)| *n));
    names
}

fn byte_level_pre(name: Option<&str>, path: &Path) -> Result<PreChoice> {
    let gpt2 = || PreTokenizerWrapper::from(ByteLevel::new(false, true, true));
    // A file without the key predates `tokenizer.ggml.pre`: GPT-2's split is what
    // transformers uses then (llama.cpp's "default").
    let name = name.unwrap_or("default");
    if GPT2_NAMES.contains(&name) {
        return Ok(PreChoice { pre_tokenizer: gpt2(), ignore_merges: false });
    }
    if DIGITS_GPT2_NAMES.contains(&name) {
        let seq = PreSequence::new(vec![Digits::new(true).into(), gpt2()]);
        return Ok(PreChoice { pre_tokenizer: seq.into(), ignore_merges: false });
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
    let split = Split::new(SplitPattern::Regex(regex.to_string()), SplitDelimiterBehavior::Isolated, false)
        .map_err(|e| Error::bad_file(path, format!("pre-tokenizer {name:?}: {e}")))?;
    let seq = PreSequence::new(vec![split.into(), ByteLevel::new(false, true, false).into()]);
    Ok(PreChoice { pre_tokenizer: seq.into(), ignore_merges })
}

#[cfg(test)]
mod tests {
    use super::super::tests::tiny;
    use super::*;

    #[test]
    fn tiny_gguf_encodes_merges_and_specials() {
        let tok = tiny("smollm");
        let hello = tok.token_id("hello").unwrap();
        let space_hello = tok.token_id("Ġhello").unwrap();
        assert_eq!(tok.encode("hello hello", true).unwrap(), vec![hello, space_hello]);
        assert_eq!(tok.encode("<|im_start|>hello<|im_end|>", false).unwrap(), vec![261, hello, 262]);
        // Digits are split one by one before the GPT-2 regex ("smollm").
        assert_eq!(tok.encode("12", false).unwrap(), vec![u32::from(b'1'), u32::from(b'2')]);
        assert_eq!(tok.vocab_size(), 263);
        assert_eq!(tok.eos_token(), Some("<|im_end|>"));
        assert_eq!(tok.bos_token(), Some("<|im_start|>"));
    }

    #[test]
    fn split_regex_pre_tokenizers_build() {
        for (name, _, _) in SPLIT_NAMES {
            let tok = tiny(name);
            let ids = tok.encode("Hello world 12345 don't", false).unwrap();
            assert_eq!(tok.decode(&ids).unwrap(), "Hello world 12345 don't", "{name}");
        }
    }
}
