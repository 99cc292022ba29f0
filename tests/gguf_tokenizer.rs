//! The tokenizer rebuilt from the SmolLM2-135M-Instruct GGUF, checked against Hugging Face.
//!
//! The expected ids come from transformers 5.23 loading the same GGUF, with the
//! pre-tokenizer set to SmolLM2's own `tokenizer.json` one (`Digits(individual_digits)` then
//! `ByteLevel`), which is also what llama.cpp does for `tokenizer.ggml.pre = "smollm"`.
//! transformers' GGUF loader skips the digit split; the two strings where that shows are
//! marked. The file is fetched by `scripts/fetch-smollm2.sh`; `ATTNVIZ_SMOLLM2` may point
//! elsewhere.

use std::path::PathBuf;
use std::sync::OnceLock;

use attnviz::model::tokenizer::{TextStream, Tokenizer};
use candle_core::quantized::gguf_file;

const GGUF_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn gguf_path() -> PathBuf {
    if let Some(path) = std::env::var_os("ATTNVIZ_SMOLLM2") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache/attnviz").join(GGUF_NAME)
}

fn tokenizer() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let path = gguf_path();
        assert!(path.is_file(), "{}: not found; run scripts/fetch-smollm2.sh (or set ATTNVIZ_SMOLLM2)", path.display());
        let mut file = std::fs::File::open(&path).expect("open the GGUF");
        let content = gguf_file::Content::read(&mut file).expect("read the GGUF header");
        Tokenizer::from_gguf(&content.metadata, &path).expect("build the tokenizer")
    })
}

/// (text, ids of `tokenizer(text)`), from transformers.
const CASES: &[(&str, &[u32])] = &[
    ("Hello world", &[19556, 905]),
    ("The quick brown fox jumps over the lazy dog.", &[504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30]),
    ("hello", &[28120]),
    (" hello", &[33662]),
    ("  hello", &[216, 33662]),
    ("hello ", &[28120, 216]),
    ("hello  ", &[28120, 256]),
    ("   ", &[333]),
    (" ", &[216]),
    ("", &[]),
    ("a  b   c    d", &[81, 216, 278, 256, 265, 333, 287]),
    ("line1\nline2", &[1311, 33, 198, 1311, 34]),
    ("\n", &[198]),
    ("\n\n", &[1116]),
    ("a\n\nb", &[81, 198, 198, 82]),
    ("tab\there", &[15999, 197, 1531]),
    ("\t\tx", &[197, 197, 104]),
    ("mixed \t\n whitespace \n", &[35781, 216, 197, 198, 13938, 6525, 3717]),
    ("trailing newline\n", &[4861, 4966, 725, 1311, 198]),
    ("\r\n windows\r\n", &[2738, 8393, 2738]),
    ("12345 3.14", &[33, 34, 35, 36, 37, 216, 35, 30, 33, 36]),
    ("1 22 333 4444", &[33, 216, 34, 34, 216, 35, 35, 35, 216, 36, 36, 36, 36]),
    // transformers' GGUF loader (no digit split) gives [216, 216, 33, 34].
    ("  12", &[256, 33, 34]),
    ("x1y2z3", &[104, 33, 105, 34, 106, 35]),
    ("0.5e-10", &[32, 30, 37, 85, 29, 33, 32]),
    ("$100,000.00", &[20, 33, 32, 32, 28, 32, 32, 32, 30, 32, 32]),
    ("2024-01-31", &[34, 32, 34, 36, 29, 32, 33, 29, 35, 33]),
    (
        "Hello, world! How are you? (fine) [ok] {x}",
        &[19556, 28, 905, 17, 1073, 359, 346, 47, 365, 38066, 25, 933, 2231, 77, 1662, 104, 109],
    ),
    ("a.b,c;d:e!f?g", &[81, 30, 82, 28, 83, 43, 84, 42, 85, 17, 86, 47, 87]),
    ("--- *** ___", &[5583, 33117, 36670]),
    ("\"quoted\" 'single'", &[18, 385, 5036, 18, 637, 18536, 23]),
    ("don't I'll we've they're she'd it's", &[12420, 982, 339, 3060, 392, 3543, 502, 2316, 1041, 6737, 357, 506]),
    ("DON'T I'LL", &[52, 2154, 23, 68, 339, 23, 16421]),
    ("café naïve 日本語 🙂", &[83, 1939, 2756, 15486, 46494, 17097, 241, 115, 40993, 179, 120, 248, 47526]),
    ("Ünïcödé", &[142, 246, 94, 25972, 83, 7466, 84, 2756]),
    ("Привет мир", &[155, 249, 46879, 16464, 32547, 41337, 7872, 9175]),
    ("مرحبا", &[21706, 20602, 44626, 31462, 10805]),
    ("😀😃😄 emoji", &[10813, 242, 218, 10813, 242, 221, 10813, 242, 222, 649, 33777]),
    ("über straße", &[7170, 593, 4040, 34878, 85]),
    (
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        &[
            23159, 238, 242, 23159, 238, 121, 23159, 238, 116, 23159, 238, 250, 23159, 238, 122, 23159, 238, 111,
            23159, 238, 112,
        ],
    ),
    ("a\u{a0}b", &[81, 15442, 82]),
    ("zero\u{200b}width", &[13723, 321, 229, 6930]),
    ("<|im_start|>user\nHi<|im_end|>", &[1, 4093, 198, 26843, 2]),
    ("<|im_start|>assistant\n", &[1, 520, 9531, 198]),
    ("<|endoftext|>", &[0]),
    ("x<|im_end|>y", &[104, 2, 105]),
    ("<|im_start|> spaced <|im_end|> ", &[1, 23861, 216, 2, 216]),
    ("<repo_name>foo<file_sep>", &[3, 15236, 5]),
    ("< |im_start| >", &[44, 2504, 306, 79, 3738, 108, 2986]),
    ("def f(x):\n    return x**2\n", &[1604, 275, 24, 104, 727, 472, 1003, 1792, 828, 34, 198]),
    ("for i in range(10):\n\tprint(i)", &[1710, 2056, 281, 1845, 24, 33, 32, 727, 198, 197, 3272, 24, 89, 25]),
    ("https://example.com/path?q=1&r=2", &[4687, 1742, 7434, 30, 824, 31, 1537, 47, 97, 45, 33, 22, 98, 45, 34]),
    ("user@example.com", &[4093, 48, 7434, 30, 824]),
    ("C:\\Windows\\System32", &[51, 19199, 25283, 76, 18403, 35, 34]),
    ("<html><body>hi</body></html>", &[44, 5699, 21198, 5226, 46, 6004, 9617, 5226, 29299, 5699, 46]),
    ("x = {\"a\": [1, 2]}", &[104, 446, 9583, 81, 1799, 933, 33, 28, 216, 34, 28852]),
    // transformers' GGUF loader (no digit split) gives [19133, 39050, 3351, 138, 4636, 223, 237, 16936, 111, 164, 112, 164, 113].
    ("²³ ½ ⅓ ١٢٣", &[19133, 39050, 216, 16738, 216, 173, 223, 237, 216, 164, 111, 164, 112, 164, 113]),
    ("SmolLM2 is a small model.", &[9207, 308, 34519, 34, 314, 253, 1165, 1743, 30]),
    ("What is the capital of France?", &[1780, 314, 260, 3575, 282, 4649, 47]),
];

#[test]
fn encodes_like_transformers() {
    let tok = tokenizer();
    let mut wrong = Vec::new();
    for &(text, want) in CASES {
        let got = tok.encode(text, true).expect("encode");
        if got != want {
            wrong.push(format!("{text:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{} of {} differ:\n{}", wrong.len(), CASES.len(), wrong.join("\n"));
}

#[test]
fn decode_round_trips() {
    let tok = tokenizer();
    for &(text, want) in CASES {
        assert_eq!(tok.decode(want).expect("decode"), text);
        let ids = tok.encode(text, false).expect("encode");
        assert_eq!(tok.decode(&ids).expect("decode"), text);
    }
}

#[test]
fn special_tokens_and_vocabulary() {
    let tok = tokenizer();
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(tok.eos_token(), Some("<|im_end|>"));
    assert_eq!(tok.token_id("<|im_end|>"), Some(2));
    assert_eq!(tok.token_id("<|im_start|>"), Some(1));
    assert_eq!(tok.token_id("<|endoftext|>"), Some(0));
    // tokenizer.ggml.add_bos_token is false: no BOS even with special tokens on.
    assert_eq!(tok.encode("Hello", true).expect("encode"), vec![19556]);
    assert_eq!(tok.token_text(2), "<|im_end|>");
    assert_eq!(tok.token_text(19556), "Hello");
    assert_eq!(tok.token_text(198), "\n");
}

#[test]
fn chat_template_matches_transformers() {
    let tok = tokenizer();
    let chat = tok.apply_chat("Hi").expect("render");
    assert_eq!(chat, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    // apply_chat_template(tokenize=True) encodes without adding special tokens.
    let want: &[u32] = &[
        1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2,
        198, 1, 4093, 198, 26843, 2, 198, 1, 520, 9531, 198,
    ];
    assert_eq!(tok.encode(&chat, false).expect("encode"), want);
}

#[test]
fn streaming_reassembles_text() {
    let tok = tokenizer();
    let text = "café naïve 日本語 🙂 — “quotes” <|im_end|>\n12345";
    let ids = tok.encode(text, false).expect("encode");
    let mut stream = TextStream::new();
    let mut out = String::new();
    for id in ids {
        let piece = stream.push(tok, id).expect("push");
        assert!(!piece.contains('\u{FFFD}'), "{piece:?}");
        out.push_str(&piece);
    }
    out.push_str(&stream.flush(tok).expect("flush"));
    assert_eq!(out, text);
}
