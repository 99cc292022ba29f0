//! The chat template of a `tokenizer.json` model, checked against transformers: the
//! `llama_gqa` fixture's `ref_chat.safetensors` holds what `apply_chat_template` rendered
//! (`tokenize=False`, `add_generation_prompt=True`) and the ids it gave (`tokenize=True`).

mod common;
use common::*;

use attnviz::model::tokenizer::Tokenizer;

#[test]
fn chat_template_renders_and_encodes_like_transformers() {
    let dir = fixtures().join("llama_gqa");
    let reference = StFile::read(&dir.join("ref_chat.safetensors"));
    let tok = Tokenizer::from_files(&dir.join("tokenizer.json"), Some(&dir.join("tokenizer_config.json")))
        .expect("load the fixture tokenizer");

    let rendered = tok.apply_chat(&reference.meta["prompt"]).unwrap();
    assert_eq!(rendered, reference.meta["rendered"]);

    // apply_chat_template(tokenize=True) encodes the rendering without added specials.
    let ids: Vec<i64> = tok.encode(&rendered, false).unwrap().into_iter().map(i64::from).collect();
    let (shape, want) = reference.i64("tokens");
    assert_eq!(shape, &[want.len()]);
    assert_eq!(&ids, want);
}
