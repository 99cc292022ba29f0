//! Panels drawn with the explorer's widgets over live panes: one head's
//! attention map, the head grid tinted by a pattern, the KV cache growing,
//! and several models side by side on the same prompt.

use super::waiting;
use crate::metrics::Pattern;
use crate::tui::app::{Pane, PaneStatus};
use crate::tui::data::Mixing;
use crate::tui::theme::Theme;
use crate::tui::views::attention::AttentionView;
use crate::tui::views::grid::GridView;
use crate::tui::views::memory::{CompareMemory, MemoryView};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Widget;

/// A pane that cannot draw yet: why, in one line (None when it can).
pub fn not_ready(p: &Pane) -> Option<String> {
    match (&p.status, &p.info) {
        (PaneStatus::Failed(e), _) => Some(format!("{} could not run: {e}", p.source)),
        (_, None) => Some(format!("loading {}…", p.source)),
        _ => None,
    }
}

/// Head `head` of `layer`'s attention map.
pub struct AttentionPanel<'a> {
    pub pane: &'a Pane,
    pub layer: usize,
    pub head: usize,
    pub theme: &'a Theme,
}

impl Widget for AttentionPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let p = self.pane;
        if let Some(why) = not_ready(p) {
            return waiting(&why, self.theme, area, buf);
        }
        let kv = p.info.as_ref().and_then(|i| match &i.mixing {
            Mixing::Attention { kv_head_of, .. } => kv_head_of.get(self.head).copied(),
            Mixing::StateSpace { .. } => None,
        });
        let what = kv.map_or(String::new(), |k| format!(" (KV head {k})"));
        AttentionView {
            map: p.map.as_ref(),
            tokens: &p.tokens,
            cursor: None,
            cursor_value: None,
            vmax: 1.0,
            title: format!("{} · attention L{} H{}{what}", p.source, self.layer, self.head),
            focused: false,
            theme: self.theme,
        }
        .render(area, buf);
    }
}

/// Every head as a thumbnail, tinted by `pattern`.
pub struct HeadsPanel<'a> {
    pub pane: &'a Pane,
    pub pattern: Option<Pattern>,
    pub theme: &'a Theme,
}

impl Widget for HeadsPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let p = self.pane;
        let Some(info) = p.info.as_ref().filter(|_| not_ready(p).is_none()) else {
            return waiting(&not_ready(p).unwrap_or_default(), self.theme, area, buf);
        };
        GridView {
            grid: p.grid.as_ref(),
            info,
            selected: (0, 0),
            pattern: self.pattern,
            sorted: false,
            scroll: 0,
            focused: false,
            theme: self.theme,
        }
        .render(area, buf);
    }
}

/// The KV cache (or a Mamba's state) against positions, live.
pub struct CachePanel<'a> {
    pub pane: &'a Pane,
    pub theme: &'a Theme,
}

impl Widget for CachePanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let p = self.pane;
        let Some(info) = p.info.as_ref().filter(|_| not_ready(p).is_none()) else {
            return waiting(&not_ready(p).unwrap_or_default(), self.theme, area, buf);
        };
        MemoryView { info, steps: &p.steps, focused: false, theme: self.theme }.render(area, buf);
    }
}

/// Columns of `n` panes in `area`.
pub fn columns(area: Rect, n: usize) -> Vec<Rect> {
    let n = n.max(1) as u32;
    Layout::horizontal((0..n).map(|_| Constraint::Ratio(1, n))).split(area).to_vec()
}

/// Models side by side: each pane's attention (layer, head) or head grid, or one memory chart.
pub struct ComparePanel<'a> {
    pub panes: &'a [Pane],
    /// attention, heads or memory.
    pub view: &'a str,
    pub layer: usize,
    pub head: usize,
    pub theme: &'a Theme,
}

impl Widget for ComparePanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        if self.view == "memory" {
            let series: Vec<_> = self
                .panes
                .iter()
                .filter_map(|p| p.info.as_ref().map(|i| (p.source.as_str(), i, p.steps.as_slice())))
                .collect();
            let waiting_for: Vec<String> = self.panes.iter().filter_map(not_ready).collect();
            if series.is_empty() {
                return waiting(&waiting_for.join(" · "), t, area, buf);
            }
            let body = Rect { height: area.height.saturating_sub(u16::from(!waiting_for.is_empty())), ..area };
            CompareMemory { series, theme: t }.render(body, buf);
            if !waiting_for.is_empty() && area.height > 0 {
                let y = area.bottom() - 1;
                Line::styled(format!(" {}", waiting_for.join(" · ")), t.dim())
                    .render(Rect { y, height: 1, ..area }, buf);
            }
            return;
        }
        for (p, col) in self.panes.iter().zip(columns(area, self.panes.len())) {
            if self.view == "heads" {
                HeadsPanel { pane: p, pattern: None, theme: t }.render(col, buf);
            } else {
                let heads = p.info.as_ref().map_or(1, |i| i.heads().max(1));
                let layers = p.info.as_ref().map_or(1, |i| i.layers.max(1));
                AttentionPanel { pane: p, layer: self.layer.min(layers - 1), head: self.head.min(heads - 1), theme: t }
                    .render(col, buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::data::{Image, MapView, StepInfo};
    use crate::tui::lesson::panels::testing::{draw, theme, tokens};

    fn pane(source: &str, kv_heads: usize) -> Pane {
        let mut p = Pane::new(source);
        p.info = Some(crate::tui::data::ModelInfo::for_test(source, 2, 4, kv_heads, 8));
        p.status = PaneStatus::Done(crate::session::StopReason::MaxTokens);
        p.tokens = tokens(8);
        p.steps = (0..3)
            .map(|s| StepInfo {
                index: s,
                positions: 6 + s,
                kv_len: vec![6 + s; 2],
                kv_bytes: (6 + s) * 2 * 2 * kv_heads * 8 * 4,
                forward_ms: 1.0,
            })
            .collect();
        let n = 8;
        let values = (0..n * n).map(|x| if x % n > x / n { f32::NAN } else { 1.0 / (x / n + 1) as f32 }).collect();
        p.map = Some(MapView {
            layer: 0,
            head: Some(1),
            rows: 0..n,
            cols: 0..n,
            image: Image::new(n, n, values),
            positions: n,
        });
        p
    }

    #[test]
    fn compare_attention_snapshot() {
        let (a, b, th) = (pane("tiny-mha", 4), pane("tiny-gqa", 2), theme());
        let panes = [a, b];
        let p = ComparePanel { panes: &panes, view: "attention", layer: 0, head: 1, theme: &th };
        insta::assert_snapshot!(draw(80, 14, p).backend());
    }

    #[test]
    fn compare_memory_and_loading_snapshot() {
        let th = theme();
        let panes = [pane("tiny-mha", 4), pane("tiny-mqa", 1), Pane::new("tiny-swa")];
        let p = ComparePanel { panes: &panes, view: "memory", layer: 0, head: 0, theme: &th };
        insta::assert_snapshot!(draw(80, 14, p).backend());
    }

    #[test]
    fn attention_heads_and_cache_snapshots() {
        let (p, th) = (pane("tiny-gqa", 2), theme());
        insta::assert_snapshot!(
            "attention",
            draw(50, 14, AttentionPanel { pane: &p, layer: 0, head: 1, theme: &th }).backend()
        );
        insta::assert_snapshot!(
            "heads",
            draw(50, 12, HeadsPanel { pane: &p, pattern: Some(Pattern::FirstToken), theme: &th }).backend()
        );
        let mut ready = pane("tiny-gqa", 2);
        ready.grid = Some(crate::tui::views::grid::tests::head_grid(2, 4));
        insta::assert_snapshot!(
            "heads_ready",
            draw(60, 16, HeadsPanel { pane: &ready, pattern: Some(Pattern::FirstToken), theme: &th }).backend()
        );
        insta::assert_snapshot!("cache", draw(60, 14, CachePanel { pane: &p, theme: &th }).backend());
        let mut failed = Pane::new("nope");
        failed.status = PaneStatus::Failed("no such model".into());
        let t = draw(60, 3, CachePanel { pane: &failed, theme: &th });
        assert!(format!("{:?}", t.backend()).contains("nope could not run"));
    }
}
