//! Scaled dot-product attention of one head and one query, from the live
//! model's post-RoPE queries and keys: q·k for every key, the 1/√d scale,
//! the mask, softmax, and the weighted sum of values written out (values
//! are not recorded by the trace, the weights are). With `unscaled`, the
//! softmax of the raw q·k: what saturation looks like.

use super::{bar, text, token_cell, waiting};
use crate::sim::mask::MaskKind;
use crate::tui::data::{HeadQk, Token};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

/// One key's row of the computation.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRow {
    pub key: usize,
    /// q·k (None where masked).
    pub dot: Option<f32>,
    /// softmax(scale · q·k), 0 where masked.
    pub weight: f32,
    /// softmax(q·k) without the scale.
    pub unscaled: f32,
}

/// The whole computation for one query.
#[derive(Debug, Clone, PartialEq)]
pub struct Sdpa {
    pub query: usize,
    pub scale: f32,
    pub head_dim: usize,
    pub rows: Vec<KeyRow>,
}

fn softmax(xs: &[Option<f32>]) -> Vec<f32> {
    let max = xs.iter().flatten().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = xs.iter().map(|x| x.map_or(0.0, |x| (x - max).exp())).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|v| if sum > 0.0 { v / sum } else { 0.0 }).collect()
}

impl Sdpa {
    /// Query `query` (clamped to the positions) against every key.
    pub fn compute(qk: &HeadQk, query: usize) -> Option<Sdpa> {
        let (n, d) = (qk.positions, qk.head_dim);
        if n == 0 || d == 0 || qk.q.len() < n * d || qk.k.len() < n * d {
            return None;
        }
        let i = query.min(n - 1);
        let mask = qk.window.map_or(MaskKind::Causal, MaskKind::Sliding);
        let q = &qk.q[i * d..(i + 1) * d];
        let dots: Vec<Option<f32>> = (0..n)
            .map(|j| mask.visible(i, j).then(|| q.iter().zip(&qk.k[j * d..(j + 1) * d]).map(|(a, b)| a * b).sum()))
            .collect();
        let scaled: Vec<Option<f32>> = dots.iter().map(|x| x.map(|x| x * qk.scale)).collect();
        let (w, u) = (softmax(&scaled), softmax(&dots));
        let rows = (0..n).map(|j| KeyRow { key: j, dot: dots[j], weight: w[j], unscaled: u[j] }).collect();
        Some(Sdpa { query: i, scale: qk.scale, head_dim: d, rows })
    }

    /// The largest weight, with and without the scale.
    pub fn top(&self) -> (f32, f32) {
        let m = |f: fn(&KeyRow) -> f32| self.rows.iter().map(f).fold(0.0, f32::max);
        (m(|r| r.weight), m(|r| r.unscaled))
    }
}

pub struct SdpaPanel<'a> {
    pub qk: Option<&'a HeadQk>,
    pub tokens: &'a [Token],
    /// None: the newest position.
    pub query: Option<usize>,
    pub unscaled: bool,
    pub theme: &'a Theme,
}

impl Widget for SdpaPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let Some(qk) = self.qk else { return waiting("waiting for the model's queries and keys…", t, area, buf) };
        let query = self.query.unwrap_or(usize::MAX);
        let Some(s) = Sdpa::compute(qk, query) else { return waiting("no positions yet…", t, area, buf) };
        let tok = |j: usize| self.tokens.get(j).map_or(String::new(), |x| token_cell(&x.text, 10));
        let bold = t.accent().add_modifier(Modifier::BOLD);
        let mut lines = vec![
            Line::from(vec![
                Span::styled(
                    format!(" layer {} · head {} · query {} {}", qk.layer, qk.head, s.query, tok(s.query)),
                    bold,
                ),
                Span::styled(format!("   d = {} · scale 1/√{} = {:.4}", s.head_dim, s.head_dim, s.scale), t.dim()),
            ]),
            Line::styled(
                format!(
                    " {:>4}  {:<10} {:>8} {:>8}  {}",
                    "key",
                    "token",
                    "q·k",
                    format!("×{:.3}", s.scale),
                    if self.unscaled { "softmax(q·k), no scale" } else { "softmax" }
                ),
                t.dim(),
            ),
        ];
        // Rows: visible keys and the first masked one, cut to the room left (the heaviest kept).
        let room = (area.height as usize).saturating_sub(lines.len() + 4).max(1);
        let mut shown: Vec<&KeyRow> = s.rows.iter().filter(|r| r.dot.is_some() || r.key == s.query + 1).collect();
        let weight = |r: &KeyRow| if self.unscaled { r.unscaled } else { r.weight };
        let hidden = shown.len().saturating_sub(room);
        if hidden > 0 {
            let mut by_weight = shown.clone();
            by_weight.sort_by(|a, b| weight(b).total_cmp(&weight(a)));
            let keep: Vec<usize> = by_weight.iter().take(room).map(|r| r.key).collect();
            shown.retain(|r| keep.contains(&r.key));
        }
        let bar_w = (area.width as usize).saturating_sub(45).clamp(1, 30);
        for r in &shown {
            let line = match r.dot {
                Some(d) => Line::from(vec![
                    Span::raw(format!(" {:>4}  {:<10} {:>8.3} {:>8.3}  ", r.key, tok(r.key), d, d * s.scale)),
                    Span::styled(format!("{:.3} ", weight(r)), if r.key == s.query { bold } else { t.accent() }),
                    Span::styled(bar(weight(r) as f64, bar_w), t.accent()),
                ]),
                None => Line::styled(
                    format!(" {:>4}  {:<10} {:>8} {:>8}  0 (−∞ before softmax)", r.key, tok(r.key), "masked", ""),
                    t.dim(),
                ),
            };
            lines.push(line);
        }
        if hidden > 0 {
            lines.push(Line::styled(format!(" … {hidden} lighter keys not shown"), t.dim()));
        }
        let mut top: Vec<&KeyRow> = s.rows.iter().filter(|r| r.dot.is_some()).collect();
        top.sort_by(|a, b| weight(b).total_cmp(&weight(a)));
        let terms: Vec<String> = top.iter().take(3).map(|r| format!("{:.2}·v{}", weight(r), r.key)).collect();
        let more = if top.len() > 3 { " + …" } else { "" };
        lines.push(Line::from(format!(" output = Σ weight·v = {}{more}", terms.join(" + "))));
        let (scaled, raw) = s.top();
        let sat = if raw > 0.95 { " (saturated)" } else { "" };
        lines.push(Line::from(format!(" top weight {scaled:.3} with the scale, {raw:.3} without it{sat}")));
        lines.push(Line::styled(" values are not recorded: the sum is written out with the real weights", t.dim()));
        text(lines, area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::lesson::panels::testing::{draw, head_qk, theme, tokens};

    #[test]
    fn weights_are_a_causal_softmax_of_scaled_dots() {
        let qk = head_qk(6, 4);
        let s = Sdpa::compute(&qk, 3).unwrap();
        assert_eq!(s.query, 3);
        assert!(s.rows[4].dot.is_none() && s.rows[4].weight == 0.0);
        let sum: f32 = s.rows.iter().map(|r| r.weight).sum();
        assert!((sum - 1.0).abs() < 1e-6);
        // softmax by hand for row 3
        let d: Vec<f32> = (0..4).map(|j| s.rows[j].dot.unwrap() * 0.5).collect();
        let m = d.iter().copied().fold(f32::MIN, f32::max);
        let z: f32 = d.iter().map(|x| (x - m).exp()).sum();
        assert!((s.rows[0].weight - (d[0] - m).exp() / z).abs() < 1e-6);
        // without the scale the top weight is larger (sharper)
        let (a, b) = s.top();
        assert!(b >= a);
        // a window masks old keys
        let mut w = qk.clone();
        w.window = Some(2);
        let s = Sdpa::compute(&w, 5).unwrap();
        assert_eq!(s.rows.iter().filter(|r| r.dot.is_some()).count(), 2);
    }

    #[test]
    fn sdpa_panel_snapshot() {
        let (qk, toks, th) = (head_qk(8, 4), tokens(8), theme());
        let t = draw(80, 16, SdpaPanel { qk: Some(&qk), tokens: &toks, query: Some(5), unscaled: false, theme: &th });
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn sdpa_panel_unscaled_and_cut_to_fit() {
        let (qk, toks, th) = (head_qk(24, 4), tokens(24), theme());
        let t = draw(72, 12, SdpaPanel { qk: Some(&qk), tokens: &toks, query: None, unscaled: true, theme: &th });
        insta::assert_snapshot!(t.backend());
        let t = draw(10, 2, SdpaPanel { qk: None, tokens: &[], query: None, unscaled: false, theme: &th });
        assert!(format!("{:?}", t.backend()).contains("waiting"));
    }
}
