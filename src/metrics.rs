//! Head-pattern scores: how much each attention head behaves like a
//! previous-token head, an attention sink, a local or a broad head, or an
//! induction head (Olsson et al. 2022, "In-context learning and induction
//! heads"). Pure functions over one head's causal attention matrix.
//!
//! The matrix `attn` is n × n, row-major, as `Trace::attention(l, h, 0..n)`
//! returns it: row i holds query position i's weights over key positions
//! 0..n, and only keys 0..=i count (anything right of the diagonal is ignored).
//! Masked keys (a sliding window) simply carry weight 0.

use crate::error::{Error, Result};
use crate::trace::Trace;
use serde::Serialize;
use std::collections::HashMap;

/// One head's scores, each in [0, 1]. Every score but induction averages
/// over rows 1..n, skipping row 0: it has a single key and no choice.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeadScores {
    /// Mean of A[i][i − 1]: weight on the previous position.
    pub previous_token: f32,
    /// Mean of A[i][0]: weight on the first position (the "attention sink").
    pub first_token: f32,
    /// Mean of 1 − d_i / i, where d_i = Σ_j A[i][j]·(i − j) is the row's mean
    /// attention distance and i the distance to position 0: 1 = attends to
    /// itself, 0 = attends to position 0; a uniform row scores 0.5.
    pub locality: f32,
    /// Mean of H_i / ln(i + 1), with H_i = −Σ_j A[i][j]·ln A[i][j] (0·ln 0 = 0):
    /// 0 = all weight on one key, 1 = uniform over keys 0..=i.
    pub entropy: f32,
    /// Mean of A[i][k + 1] over the rows i whose token id occurred before,
    /// k being its most recent earlier position: the weight on the token
    /// that followed it last time. Rows with k + 1 = i (a token repeated
    /// immediately) are skipped, so attending to oneself never counts.
    /// None when no row qualifies (no token repeats).
    pub induction: Option<f32>,
}

/// Score one head. `attn` is the n × n matrix described at the top of this
/// module and `tokens` the n token ids at its positions (used for induction).
/// Needs n ≥ 2: with one position there is nothing to choose between.
pub fn score_head(attn: &[f32], tokens: &[u32]) -> Result<HeadScores> {
    let n = tokens.len();
    if n < 2 {
        return Err(Error::Usage(format!("head scores need at least 2 positions, got {n}")));
    }
    if attn.len() != n * n {
        return Err(Error::Usage(format!(
            "attention matrix has {} values, expected {n} × {n} = {}",
            attn.len(),
            n * n
        )));
    }
    // Row i's visible keys 0..=i; in bounds since attn.len() == n * n.
    let row = |i: usize| &attn[i * n..i * n + i + 1];
    let (mut prev, mut first, mut local, mut entropy) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for i in 1..n {
        let r = row(i);
        prev += f64::from(r[i - 1]);
        first += f64::from(r[0]);
        let dist: f64 = r.iter().enumerate().map(|(j, &a)| f64::from(a) * (i - j) as f64).sum();
        local += 1.0 - dist / i as f64;
        let h: f64 = r.iter().filter(|&&a| a > 0.0).map(|&a| -f64::from(a) * f64::from(a).ln()).sum();
        entropy += h / ((i + 1) as f64).ln();
    }
    let rows = (n - 1) as f64;

    let mut last_seen: HashMap<u32, usize> = HashMap::new();
    let (mut induction, mut counted) = (0.0f64, 0usize);
    for (i, &t) in tokens.iter().enumerate() {
        if let Some(&k) = last_seen.get(&t) {
            if k + 1 < i {
                induction += f64::from(row(i)[k + 1]);
                counted += 1;
            }
        }
        last_seen.insert(t, i);
    }
    Ok(HeadScores {
        previous_token: unit(prev / rows),
        first_token: unit(first / rows),
        locality: unit(local / rows),
        entropy: unit(entropy / rows),
        induction: (counted > 0).then(|| unit(induction / counted as f64)),
    })
}

/// Clamp rounding error (a uniform row's entropy can come out at 1 + 1e-7).
fn unit(x: f64) -> f32 {
    x.clamp(0.0, 1.0) as f32
}

/// The scores of head `head` in layer `layer`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoredHead {
    pub layer: usize,
    pub head: usize,
    #[serde(flatten)]
    pub scores: HeadScores,
}

/// Score every (layer, head) of `trace` over all the positions it holds,
/// layer-major. Fails for traces without attention (state-space models).
pub fn score_trace(trace: &Trace) -> Result<Vec<ScoredHead>> {
    if !trace.has_attention() {
        return Err(Error::Usage(
            "the trace holds no attention: state-space models such as Mamba have no heads to score".into(),
        ));
    }
    let p = trace.positions();
    let tokens = trace
        .tokens
        .get(..p)
        .ok_or_else(|| Error::Usage(format!("the trace has {} tokens for {p} positions", trace.tokens.len())))?;
    let mut out = vec![];
    for (layer, g) in trace.geometry.iter().enumerate() {
        for head in 0..g.heads {
            let scores = score_head(&trace.attention(layer, head, 0..p), tokens)?;
            out.push(ScoredHead { layer, head, scores });
        }
    }
    Ok(out)
}

/// The five patterns, for ranking and display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    PreviousToken,
    FirstToken,
    Locality,
    Entropy,
    Induction,
}

impl Pattern {
    pub const ALL: [Pattern; 5] =
        [Pattern::PreviousToken, Pattern::FirstToken, Pattern::Locality, Pattern::Entropy, Pattern::Induction];

    /// The field name, as in `HeadScores` and the JSON output.
    pub fn key(self) -> &'static str {
        match self {
            Pattern::PreviousToken => "previous_token",
            Pattern::FirstToken => "first_token",
            Pattern::Locality => "locality",
            Pattern::Entropy => "entropy",
            Pattern::Induction => "induction",
        }
    }

    /// A label for people.
    pub fn label(self) -> &'static str {
        match self {
            Pattern::PreviousToken => "previous-token",
            Pattern::FirstToken => "first-token (sink)",
            Pattern::Locality => "locality",
            Pattern::Entropy => "entropy",
            Pattern::Induction => "induction",
        }
    }

    /// A short label for narrow places (the TUI).
    pub fn name(self) -> &'static str {
        match self {
            Pattern::PreviousToken => "previous-token",
            Pattern::FirstToken => "sink",
            Pattern::Locality => "locality",
            Pattern::Entropy => "entropy",
            Pattern::Induction => "induction",
        }
    }

    pub fn of(self, s: &HeadScores) -> Option<f32> {
        match self {
            Pattern::PreviousToken => Some(s.previous_token),
            Pattern::FirstToken => Some(s.first_token),
            Pattern::Locality => Some(s.locality),
            Pattern::Entropy => Some(s.entropy),
            Pattern::Induction => s.induction,
        }
    }
}

/// The `n` heads scoring highest on `pattern`, best first; ties keep
/// (layer, head) order and heads without that score are left out.
pub fn top_heads(heads: &[ScoredHead], pattern: Pattern, n: usize) -> Vec<(ScoredHead, f32)> {
    let mut ranked: Vec<(ScoredHead, f32)> =
        heads.iter().filter_map(|h| pattern.of(&h.scores).map(|s| (*h, s))).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.truncate(n);
    ranked
}

#[cfg(test)]
mod tests;
