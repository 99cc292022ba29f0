//! Hand-built attention matrices whose scores are known exactly.

use super::*;

/// An n × n matrix whose row i is `row(i)` (i + 1 weights), zero-padded.
fn matrix(n: usize, row: impl Fn(usize) -> Vec<f32>) -> Vec<f32> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        let r = row(i);
        assert_eq!(r.len(), i + 1);
        out[i * n..i * n + i + 1].copy_from_slice(&r);
    }
    out
}

/// Row i puts all its weight on key `pick(i)`.
fn one_hot(n: usize, pick: impl Fn(usize) -> usize) -> Vec<f32> {
    matrix(n, |i| (0..=i).map(|j| if j == pick(i) { 1.0 } else { 0.0 }).collect())
}

fn close(what: &str, got: f32, want: f64) {
    assert!((f64::from(got) - want).abs() < 1e-6, "{what}: got {got}, want {want}");
}

fn check(s: &HeadScores, prev: f64, first: f64, local: f64, entropy: f64, induction: Option<f64>) {
    close("previous_token", s.previous_token, prev);
    close("first_token", s.first_token, first);
    close("locality", s.locality, local);
    close("entropy", s.entropy, entropy);
    match (s.induction, induction) {
        (Some(got), Some(want)) => close("induction", got, want),
        (got, want) => assert_eq!(got.is_some(), want.is_some(), "induction: got {got:?}, want {want:?}"),
    }
}

const DISTINCT: [u32; 5] = [1, 2, 3, 4, 5];

#[test]
fn previous_token_head() {
    let s = score_head(&one_hot(5, |i| i.saturating_sub(1)), &DISTINCT).unwrap();
    // Row 1's previous token is also the first; locality 1 − 1/i per row.
    let local = (0.0 + 1.0 / 2.0 + 2.0 / 3.0 + 3.0 / 4.0) / 4.0;
    check(&s, 1.0, 0.25, local, 0.0, None);
}

#[test]
fn sink_head() {
    let s = score_head(&one_hot(5, |_| 0), &DISTINCT).unwrap();
    check(&s, 0.25, 1.0, 0.0, 0.0, None);
}

#[test]
fn self_head() {
    let s = score_head(&one_hot(5, |i| i), &DISTINCT).unwrap();
    check(&s, 0.0, 0.0, 1.0, 0.0, None);
}

#[test]
fn uniform_head() {
    let s = score_head(&matrix(4, |i| vec![1.0 / (i + 1) as f32; i + 1]), &DISTINCT[..4]).unwrap();
    let edge = (1.0 / 2.0 + 1.0 / 3.0 + 1.0 / 4.0) / 3.0;
    check(&s, edge, edge, 0.5, 1.0, None);
}

/// BOS, then the segment 10 11 12 13 twice.
const REPEATED: [u32; 9] = [1, 10, 11, 12, 13, 10, 11, 12, 13];

#[test]
fn perfect_induction_head() {
    // Row i ≥ 5 saw its token at i − 4; the token after it is at i − 3.
    let attn = one_hot(9, |i| if i >= 5 { i - 3 } else { 0 });
    assert_eq!(score_head(&attn, &REPEATED).unwrap().induction, Some(1.0));
    let prev = score_head(&one_hot(9, |i| i.saturating_sub(1)), &REPEATED).unwrap();
    assert_eq!(prev.induction, Some(0.0));
}

#[test]
fn half_induction_row() {
    let attn = matrix(9, |i| {
        let mut r = vec![0.0; i + 1];
        match i {
            5 => (r[0], r[2]) = (0.5, 0.5),
            6.. => r[i - 3] = 1.0,
            _ => r[0] = 1.0,
        }
        r
    });
    close("induction", score_head(&attn, &REPEATED).unwrap().induction.unwrap(), (0.5 + 3.0) / 4.0);
}

#[test]
fn mixed_rows() {
    let attn = matrix(3, |i| [vec![1.0], vec![0.5, 0.5], vec![0.2, 0.3, 0.5]][i].clone());
    let s = score_head(&attn, &[7, 8, 7]).unwrap();
    // Row 1: distance 0.5 of 1, entropy ln 2 / ln 2. Row 2: distance 0.7 of 2.
    let h2 = -(0.2f64 * 0.2f64.ln() + 0.3 * 0.3f64.ln() + 0.5 * 0.5f64.ln()) / 3f64.ln();
    // Token 7 at position 2 last appeared at 0, so its target is position 1.
    check(&s, 0.4, 0.35, (0.5 + 0.65) / 2.0, (1.0 + h2) / 2.0, Some(0.3));
    close("h2 by hand", h2 as f32, 0.937_230_563);
}

#[test]
fn sliding_window_zeros() {
    // Uniform over the last two keys, as a window of 2 leaves it.
    let attn = matrix(4, |i| (0..=i).map(|j| if j + 2 > i { 0.5 } else { 0.0 }).collect());
    let s = score_head(&attn, &DISTINCT[..4]).unwrap();
    let local = (0.5 + 0.75 + (1.0 - 0.5 / 3.0)) / 3.0;
    let entropy = (1.0 + 2f64.ln() / 3f64.ln() + 0.5) / 3.0;
    check(&s, 0.5, 0.5 / 3.0, local, entropy, None);
}

#[test]
fn immediate_repeats_do_not_count_as_induction() {
    let s = score_head(&one_hot(3, |i| i), &[4, 9, 9]).unwrap();
    assert_eq!(s.induction, None);
}

#[test]
fn bad_shapes_are_errors() {
    assert!(score_head(&[1.0], &[3]).unwrap_err().to_string().contains("at least 2"));
    let e = score_head(&[1.0, 0.0, 1.0], &[3, 4]).unwrap_err().to_string();
    assert!(e.contains("3 values") && e.contains("2 × 2"), "{e}");
}

#[test]
fn top_heads_rank_and_skip_missing() {
    let scores = |prev: f32, induction: Option<f32>| HeadScores {
        previous_token: prev,
        first_token: 0.0,
        locality: 0.0,
        entropy: 0.0,
        induction,
    };
    let heads = [
        ScoredHead { layer: 0, head: 0, scores: scores(0.2, None) },
        ScoredHead { layer: 0, head: 1, scores: scores(0.9, Some(0.1)) },
        ScoredHead { layer: 1, head: 0, scores: scores(0.2, Some(0.7)) },
    ];
    let at = |v: Vec<(ScoredHead, f32)>| v.iter().map(|(h, s)| (h.layer, h.head, *s)).collect::<Vec<_>>();
    assert_eq!(at(top_heads(&heads, Pattern::PreviousToken, 2)), [(0, 1, 0.9), (0, 0, 0.2)]);
    assert_eq!(at(top_heads(&heads, Pattern::Induction, 5)), [(1, 0, 0.7), (0, 1, 0.1)]);
}
