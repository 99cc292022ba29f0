//! The zoo's shared tokenizer: byte-level BPE (as GPT-2's) trained on the corpus.

use crate::error::{Error, Result};
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

/// Id 0: marks the end of a text (also used as BOS and EOS).
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// Train on `text` (split into paragraphs) up to `vocab_size` entries.
/// All 256 bytes are in the alphabet, so any text can be encoded.
pub fn train(text: &str, vocab_size: usize) -> Result<Tokenizer> {
    let fail = |e: tokenizers::Error| Error::Usage(format!("training the tokenizer failed: {e}"));
    let mut tok = Tokenizer::new(BPE::default());
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut trainer = TrainerWrapper::BpeTrainer(trainer);
    tok.train(&mut trainer, text.split("\n\n")).map_err(fail)?;
    Ok(tok)
}

/// The corpus as one stream of ids, paragraph breaks kept.
pub fn encode(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    let parts: Vec<&str> = text.split_inclusive("\n\n").collect();
    let enc = tok.encode_batch(parts, false).map_err(|e| Error::Usage(format!("encoding the corpus failed: {e}")))?;
    Ok(enc.iter().flat_map(|e| e.get_ids().iter().copied()).collect())
}

pub fn load(path: &Path) -> Result<Tokenizer> {
    Tokenizer::from_file(path).map_err(|e| Error::bad_file(path, format!("not a tokenizer.json ({e})")))
}

pub fn save(tok: &Tokenizer, path: &Path) -> Result<()> {
    tok.save(path, true).map_err(|e| Error::bad_file(path, format!("cannot write ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_text_and_reserves_id_0() -> Result<()> {
        let text = "It is a truth universally acknowledged, that a single man in possession of a good fortune, \
                    must be in want of a wife.\n\nHowever little known the feelings or views of such a man may be.";
        let tok = train(&text.repeat(20), 300)?;
        assert_eq!(tok.token_to_id(END_OF_TEXT), Some(0));
        let odd = "Ünïcödé ☃ and\ttabs";
        let ids = encode(&tok, odd)?;
        assert_eq!(tok.decode(&ids, false).map_err(|e| Error::Usage(e.to_string()))?, odd);
        assert!(encode(&tok, text)?.len() * 3 < text.len() * 2, "merges were learned");
        Ok(())
    }
}
