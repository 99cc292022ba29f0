//! Placeholders in lesson prose: filling them, the live ones only the lesson
//! screen knows, and the rule that the prose states no number of its own.

use super::markdown::{self, is_name};
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Placeholders that exist only while a model runs; the lesson screen
/// fills them (name, meaning). Allowed only in steps whose panel runs a model.
pub const LIVE_PLACEHOLDERS: &[(&str, &str)] = &[
    ("positions", "positions fed so far (prompt and generated tokens)"),
    ("cache_bytes", "bytes of keys and values the loaded model holds now (f32)"),
    ("evicted", "positions the sliding window has dropped from the cache so far"),
    ("decode_ms_cached", "milliseconds per decode step with the KV cache, measured"),
    ("decode_ms_uncached", "milliseconds of the prefill's forward pass over every prompt position, measured: the work each step would redo without a cache"),
    ("decode_speedup", "decode_ms_uncached / decode_ms_cached"),
    ("max_weight", "the current query's largest softmax weight, with the 1/√d scale"),
    ("max_weight_unscaled", "the same weight without the scale"),
    ("tile", "the tile shown, counted from 1"),
    ("tiles", "the current head's tiles in all"),
    ("max_diff", "max |tiled − ordinary| over the head's output once every tile is done"),
    ("token", "the token the scan is on"),
    ("scan_max_diff", "max |replayed h − the engine's h| over every state the engine holds, scan layer"),
];

/// Whether `name` is one of `LIVE_PLACEHOLDERS`.
pub fn is_live(name: &str) -> bool {
    LIVE_PLACEHOLDERS.iter().any(|(n, _)| *n == name)
}

/// Replace every `{name}` in `markdown` by its value. A live placeholder
/// missing from `values` stays as it is, for the screen to fill; any other
/// missing one is an error.
pub fn fill(markdown: &str, values: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|c| &after[..c]).filter(|n| is_name(n)) {
            Some(name) => {
                match values.get(name) {
                    Some(v) => out.push_str(v),
                    None if is_live(name) => out.push_str(&rest[open..open + name.len() + 2]),
                    None => return Err(Error::Usage(format!("unknown placeholder {{{name}}}"))),
                }
                rest = &after[name.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Problems with numbers in `markdown`: a digit outside a `{placeholder}`,
/// other than in a code span holding a formula (`1/√d`, `L × (W − 1)`).
pub fn prose_digits(markdown: &str) -> Vec<String> {
    let Ok(blocks) = markdown::parse(markdown) else { return vec![] };
    let mut out = vec![];
    for span in blocks.iter().flat_map(|b| b.spans()) {
        if span.code {
            if has_digit(&span.text) && !span.text.contains(FORMULA) {
                out.push(format!("a number in `{}`: a code span with digits must hold a formula", span.text));
            }
            continue;
        }
        for text in [Some(&span.text), span.link.as_ref()].into_iter().flatten() {
            let bare = strip_placeholders(text);
            if has_digit(&bare) {
                out.push(format!("a number in the prose: {:?} (use a {{placeholder}} filled from code)", bare.trim()));
            }
        }
    }
    out
}

/// Characters that make a code span a formula.
const FORMULA: &[char] = &['=', '/', '×', '·', '−', '+', '√', '^', '*', '<', '>', '≤', '≥', '⌈', '∑', 'Σ', 'Π'];

/// Any digit, ASCII or not (², ½, …).
pub fn has_digit(s: &str) -> bool {
    s.chars().any(char::is_numeric)
}

fn strip_placeholders(text: &str) -> String {
    let mut out = text.to_string();
    for name in markdown::placeholders(text) {
        out = out.replacen(&format!("{{{name}}}"), " ", 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_and_keeps_live_ones() {
        let v = BTreeMap::from([("kv_gb".to_string(), "154.6".to_string())]);
        assert_eq!(fill("{kv_gb} GB, now {cache_bytes}; {x y}", &v).unwrap(), "154.6 GB, now {cache_bytes}; {x y}");
        assert_eq!(fill("{nope}", &v).unwrap_err().to_string(), "unknown placeholder {nope}");
    }

    #[test]
    fn digits_are_caught_outside_placeholders_and_formulas() {
        assert!(prose_digits("The {layers} layers, `1/√d` and `L × (W − 1)`.").is_empty());
        assert_eq!(prose_digits("It takes 48 GB.").len(), 1);
        assert_eq!(prose_digits("A `48` span and N² here.").len(), 2);
        assert_eq!(prose_digits("[paper](https://arxiv.org/abs/1706.03762)").len(), 1);
    }
}
