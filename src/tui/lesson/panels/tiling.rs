//! FlashAttention's tiles over one head's real scores, stepped: the tile
//! grid (done, current, skipped), each current row's running max m, sum ℓ
//! and rescale factor, the partial output, and at the end the largest
//! difference from ordinary attention and the slow-memory (HBM) counts of
//! both algorithms (`sim::tiling`). Values are not recorded, so V is the
//! identity: each output row is that query's attention row itself.

use super::text;
use crate::sim::mask::MaskKind;
use crate::sim::tiling::{attention, standard_io, tiled_io, Order, Problem, TileStep, Tiler};
use crate::tui::data::HeadQk;
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

/// Positions tiled at most (the first ones of the trace: a causal prefix is a whole problem).
pub const MAX_N: usize = 32;

/// The inputs of the tiled problem, owned.
pub struct TileInputs {
    pub n: usize,
    pub d: usize,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    /// The identity, (n, n).
    pub v: Vec<f32>,
    pub scale: f32,
    pub mask: MaskKind,
}

impl TileInputs {
    pub fn new(qk: &HeadQk) -> Option<Self> {
        let (n, d) = (qk.positions.min(MAX_N), qk.head_dim);
        if n == 0 || d == 0 || qk.q.len() < n * d || qk.k.len() < n * d {
            return None;
        }
        let v = (0..n * n).map(|x| if x / n == x % n { 1.0 } else { 0.0 }).collect();
        let mask = qk.window.map_or(MaskKind::Causal, MaskKind::Sliding);
        Some(Self { n, d, q: qk.q[..n * d].to_vec(), k: qk.k[..n * d].to_vec(), v, scale: qk.scale, mask })
    }

    pub fn problem(&self) -> Problem<'_> {
        Problem { q: &self.q, k: &self.k, v: &self.v, d: self.d, d_v: self.n, scale: self.scale, mask: self.mask }
    }
}

/// The tiler after `steps` tiles, the last step, and the tile count.
pub fn run(inp: &TileInputs, br: usize, bc: usize, steps: usize) -> Option<(Tiler<'_>, Option<TileStep>, usize)> {
    let mut t = Tiler::new(inp.problem(), br.max(1), bc.max(1), Order::KvOuter).ok()?;
    let total = t.tiles().len();
    let mut last = None;
    for _ in 0..steps.min(total) {
        last = t.step();
    }
    Some((t, last, total))
}

pub struct TilingPanel<'a> {
    pub qk: Option<&'a HeadQk>,
    pub block_rows: usize,
    pub block_cols: usize,
    /// Tiles stepped.
    pub steps: usize,
    pub theme: &'a Theme,
}

fn num(x: f64) -> String {
    if x == f64::NEG_INFINITY {
        "−∞".into()
    } else {
        format!("{x:.3}")
    }
}

impl Widget for TilingPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let th = self.theme;
        let Some(qk) = self.qk else {
            return super::waiting("waiting for the model's queries and keys…", th, area, buf);
        };
        let Some(inp) = TileInputs::new(qk) else { return super::waiting("no positions yet…", th, area, buf) };
        let (br, bc) = (self.block_rows.max(1), self.block_cols.max(1));
        let Some((tiler, last, total)) = run(&inp, br, bc, self.steps) else { return };
        let n = inp.n;
        let bold = th.accent().add_modifier(Modifier::BOLD);
        let mut lines = vec![Line::from(vec![
            Span::styled(format!(" layer {} · head {} · {n}×{n} scores", qk.layer, qk.head), bold),
            Span::raw(format!(" · blocks {br}×{bc} · tile {}/{total}", tiler.steps_taken())),
        ])];
        lines.push(Line::styled(
            " rows: queries, columns: keys · █ this tile  ▒ done  · to do  ▫ or blank: masked",
            th.dim(),
        ));
        // The grid: one cell per (query, key).
        let done: Vec<bool> = {
            let mut d = vec![false; n * n];
            for tile in &tiler.tiles()[..tiler.steps_taken()] {
                for i in tile.q.clone() {
                    for j in tile.k.clone() {
                        d[i * n + j] = true;
                    }
                }
            }
            d
        };
        let cur = last.as_ref().map(|s| s.tile.clone());
        let grid_rows = (area.height as usize).saturating_sub(10).min(n);
        for i in 0..grid_rows {
            let mut spans = vec![Span::styled(format!(" {i:>3} "), th.dim())];
            let cells: String = (0..n)
                .map(|j| {
                    let in_cur = cur.as_ref().is_some_and(|c| c.q.contains(&i) && c.k.contains(&j));
                    match () {
                        _ if !inp.mask.visible(i, j) => {
                            if in_cur {
                                '▫'
                            } else {
                                ' '
                            }
                        }
                        _ if in_cur => '█',
                        _ if done[i * n + j] => '▒',
                        _ => '·',
                    }
                })
                .collect();
            spans.push(Span::styled(cells, th.accent()));
            // Beside the grid: the current tile's rows' running statistics.
            if let Some(s) = last.as_ref().filter(|s| s.tile.q.contains(&i)) {
                let r = i - s.tile.q.start;
                let (b, a) = (&s.before[r], &s.after[r]);
                let out = a.output();
                let (arg, top) = out.iter().enumerate().fold((0, 0f32), |m, (j, &v)| if v > m.1 { (j, v) } else { m });
                spans.push(Span::raw(format!(
                    "  m {}→{} ℓ {:.3}→{:.3} ×{:.3} O: key {arg} {top:.3}",
                    num(b.m),
                    num(a.m),
                    b.l,
                    a.l,
                    s.rescale[r]
                )));
            }
            lines.push(Line::from(spans));
        }
        if grid_rows < n {
            lines.push(Line::styled(format!(" … rows {grid_rows}–{} not drawn", n - 1), th.dim()));
        }
        match &last {
            Some(s) if s.skipped => {
                lines.push(Line::styled(" every cell of this tile is masked: a kernel skips it", th.dim()))
            }
            Some(s) => lines.push(Line::from(format!(
                " tile: queries {}..{}, keys {}..{}: m_new = max(m, rowmax S), ℓ ← e^(m−m_new)·ℓ + Σ e^(S−m_new)",
                s.tile.q.start, s.tile.q.end, s.tile.k.start, s.tile.k.end
            ))),
            None => lines.push(Line::from(" m = −∞, ℓ = 0, O = 0 for every row; press space to load the first tile")),
        }
        if tiler.done() {
            let diff = attention(&inp.problem())
                .map(|o| o.iter().zip(tiler.output()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max));
            if let Ok(d) = diff {
                lines.push(Line::styled(format!(" done: max |tiled − ordinary attention| = {d:.1e}"), bold));
            }
        }
        let (sio, tio) = (standard_io(n, inp.d), tiled_io(n, inp.d, bc));
        lines.push(Line::from(format!(
            " HBM values (attnviz's count): standard {} reads + {} writes, tiled {} + {}",
            sio.reads, sio.writes, tio.reads, tio.writes
        )));
        lines.push(Line::styled(
            " V is the identity (values are not recorded): each output row is that query's attention row",
            th.dim(),
        ));
        text(lines, area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::lesson::panels::testing::{draw, head_qk, theme};

    #[test]
    fn tiled_rows_equal_the_attention_rows() {
        let qk = head_qk(10, 4);
        let inp = TileInputs::new(&qk).unwrap();
        let (t, _, total) = run(&inp, 4, 3, usize::MAX).unwrap();
        assert_eq!(total, 3 * 4);
        assert!(t.done());
        // With V = I the output is softmax(S): compare with the sdpa panel's weights.
        let out = t.output();
        let s = crate::tui::lesson::panels::sdpa::Sdpa::compute(&qk, 7).unwrap();
        for j in 0..10 {
            assert!((out[7 * 10 + j] - s.rows[j].weight).abs() < 1e-6);
        }
    }

    #[test]
    fn tiling_mid_way_snapshot() {
        let (qk, th) = (head_qk(12, 4), theme());
        let p = TilingPanel { qk: Some(&qk), block_rows: 4, block_cols: 4, steps: 5, theme: &th };
        insta::assert_snapshot!(draw(100, 22, p).backend());
    }

    #[test]
    fn tiling_done_snapshot() {
        let (qk, th) = (head_qk(8, 4), theme());
        let p = TilingPanel { qk: Some(&qk), block_rows: 2, block_cols: 4, steps: 99, theme: &th };
        insta::assert_snapshot!(draw(100, 18, p).backend());
        draw(5, 2, TilingPanel { qk: Some(&qk), block_rows: 0, block_cols: 0, steps: 3, theme: &th });
    }
}
