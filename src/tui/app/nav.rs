//! Moving around: the selected token, the map cursor, layer and head, zoom,
//! the grid's tint — and from that, what each pane's worker should compute.

use super::{App, Focus, Pane};
use crate::metrics::Pattern;
use crate::tui::keymap::Action;
use crate::tui::products::MapWant;
use crate::tui::worker::Wants;
use std::ops::Range;

/// What the layout offers each pane, in pixels, so workers compute to fit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Room {
    /// Heatmap pixels (width, height) of the attention map; None when not shown.
    pub map: Option<(usize, usize)>,
    pub grid: bool,
    /// Pixel rows of the state heatmap (Mamba).
    pub state_rows: Option<usize>,
}

/// The visible square of a `p`-position map at `zoom` around (q, k), and
/// its pixel size within `px`: (rows, cols, width, height).
pub fn viewport(
    p: usize,
    zoom: u32,
    (q, k): (usize, usize),
    px: (usize, usize),
) -> (Range<usize>, Range<usize>, usize, usize) {
    if p == 0 || px.0 == 0 || px.1 == 0 {
        return (0..0, 0..0, 0, 0);
    }
    let span = (p >> zoom.min(31)).max(p.min(8));
    let start = |c: usize| c.saturating_sub(span / 2).min(p - span);
    let side = px.0.min(px.1);
    let n = if span <= side { span * (side / span) } else { side };
    let (r0, c0) = (start(q), start(k));
    (r0..r0 + span, c0..c0 + span, n, n)
}

impl App {
    /// Layers of the widest model shown.
    pub fn layers(&self) -> usize {
        self.panes.iter().filter_map(|p| p.info.as_ref()).map(|i| i.layers).max().unwrap_or(1).max(1)
    }

    pub fn heads(&self) -> usize {
        self.panes.iter().filter_map(|p| p.info.as_ref()).map(|i| i.heads()).max().unwrap_or(0)
    }

    /// The selected query of `pane`: the chosen one, clamped, or the newest row.
    pub fn query_of(&self, pane: &Pane) -> usize {
        let last = pane.positions().saturating_sub(1);
        self.sel.query.map_or(last, |q| q.min(last))
    }

    pub fn key_of(&self, pane: &Pane) -> usize {
        let q = self.query_of(pane);
        self.sel.key.map_or(q, |k| k.min(pane.positions().saturating_sub(1)))
    }

    /// Layer and head as `pane` has them ("the same layer/head where it exists").
    pub fn layer_head_of(&self, pane: &Pane) -> (usize, Option<usize>) {
        let Some(info) = &pane.info else { return (self.sel.layer, self.sel.head) };
        let layer = self.sel.layer.min(info.layers.saturating_sub(1));
        let head = self.sel.head.map(|h| h.min(info.heads().saturating_sub(1)));
        (layer, head)
    }

    pub(super) fn navigate(&mut self, action: Action) {
        let p = self.main().positions();
        let last = p.saturating_sub(1);
        let q = self.query_of(self.main());
        let k = self.key_of(self.main());
        let (layers, heads) = (self.layers(), self.heads().max(1));
        let step = |v: usize, up: bool, n: usize, max: usize| if up { (v + n).min(max) } else { v.saturating_sub(n) };
        match (action, self.focus) {
            (Action::LayerPrev, _) | (Action::Up, Focus::Grid) => self.sel.layer = self.sel.layer.saturating_sub(1),
            (Action::LayerNext, _) | (Action::Down, Focus::Grid) => {
                self.sel.layer = (self.sel.layer + 1).min(layers - 1)
            }
            (Action::PageUp, Focus::Grid) => self.sel.layer = self.sel.layer.saturating_sub(5),
            (Action::PageDown, Focus::Grid) => self.sel.layer = (self.sel.layer + 5).min(layers - 1),
            (Action::HeadPrev, _) | (Action::Left, Focus::Grid) => {
                self.sel.head = Some(self.sel.head.map_or(0, |h| h.saturating_sub(1)))
            }
            (Action::HeadNext, _) | (Action::Right, Focus::Grid) => {
                self.sel.head = Some(self.sel.head.map_or(0, |h| (h + 1).min(heads - 1)))
            }
            (Action::MeanHeads, _) => {
                self.sel.head = if self.sel.head.is_some() { None } else { Some(0) };
            }
            (Action::Up, Focus::Side) => self.sel.layer = self.sel.layer.saturating_sub(1),
            (Action::Down, Focus::Side) => self.sel.layer = (self.sel.layer + 1).min(layers - 1),
            (Action::Left | Action::Right, Focus::Side) => {
                let held = self.main().state.as_ref().map_or(0, |s| s.step);
                let steps = self.main().steps.len().saturating_sub(1);
                self.sel.state_step = Some(step(held, action == Action::Right, 1, steps));
            }
            (Action::Left, Focus::Tokens) | (Action::Up, Focus::Map) => self.sel.query = Some(step(q, false, 1, last)),
            (Action::Right, Focus::Tokens) | (Action::Down, Focus::Map) => {
                self.sel.query = Some(step(q, true, 1, last))
            }
            (Action::Up, Focus::Tokens) => self.sel.query = Some(step(q, false, 10, last)),
            (Action::Down, Focus::Tokens) => self.sel.query = Some(step(q, true, 10, last)),
            (Action::Left, Focus::Map) => self.sel.key = Some(step(k, false, 1, last)),
            (Action::Right, Focus::Map) => self.sel.key = Some(step(k, true, 1, last)),
            (Action::PageUp, _) => self.sel.query = Some(step(q, false, (p >> self.sel.zoom).max(8) / 4, last)),
            (Action::PageDown, _) => self.sel.query = Some(step(q, true, (p >> self.sel.zoom).max(8) / 4, last)),
            (Action::First, _) => {
                self.sel.query = Some(0);
                self.sel.key = None;
            }
            (Action::Last, _) | (Action::Follow, _) => {
                self.sel.query = None;
                self.sel.key = None;
            }
            // The visible span stops shrinking at 8 positions.
            (Action::ZoomIn, _) if p >> (self.sel.zoom + 1) >= 8 => self.sel.zoom += 1,
            (Action::ZoomOut, _) => self.sel.zoom = self.sel.zoom.saturating_sub(1),
            (Action::ZoomFit, _) => self.sel.zoom = 0,
            (Action::Normalize, _) => self.sel.normalize = !self.sel.normalize,
            (Action::Pattern, _) => {
                let i = self.sel.pattern.and_then(|p| Pattern::ALL.iter().position(|x| *x == p));
                self.sel.pattern = match i {
                    None => Some(Pattern::ALL[0]),
                    Some(i) if i + 1 < Pattern::ALL.len() => Some(Pattern::ALL[i + 1]),
                    Some(_) => None,
                };
                self.sel.sorted &= self.sel.pattern.is_some();
            }
            (Action::SortGrid, _) => {
                self.sel.sorted = !self.sel.sorted;
                if self.sel.sorted && self.sel.pattern.is_none() {
                    self.sel.pattern = Some(Pattern::PreviousToken);
                }
            }
            _ => {}
        }
        // A key cursor left of the window or right of the query is still a valid cell: keep it.
        if self.sel.key.is_some_and(|k| k > last) {
            self.sel.key = None;
        }
    }

    /// What pane `i`'s worker should compute, given the room the layout gives it.
    pub fn wants(&self, i: usize, room: Room) -> Wants {
        let pane = &self.panes[i];
        let Some(info) = &pane.info else { return Wants::default() };
        let p = pane.positions();
        let (layer, head) = self.layer_head_of(pane);
        let (q, k) = (self.query_of(pane), self.key_of(pane));
        if info.is_state_space() {
            let state = room.state_rows.map(|rows| (layer, self.sel.state_step, rows));
            return Wants { state, ..Wants::default() };
        }
        let map = room.map.and_then(|px| {
            let (rows, cols, width, height) = viewport(p, self.sel.zoom, (q, k), px);
            (width > 0).then_some(MapWant { layer, head, rows, cols, width, height, cursor: Some((q, k)) })
        });
        Wants { map, row: (p > 0).then_some((layer, head, q)), grid: room.grid, ..Wants::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewport_fits_stretches_and_zooms_around_the_cursor() {
        // 20 positions in 100 × 80 pixels: 4 pixels a position.
        assert_eq!(viewport(20, 0, (19, 19), (100, 80)), (0..20, 0..20, 80, 80));
        // 2,048 positions: pooled to the square side.
        assert_eq!(viewport(2048, 0, (2047, 2047), (200, 120)), (0..2048, 0..2048, 120, 120));
        // Zoomed 4×: a 512-position window around the cursor, clamped to the map.
        assert_eq!(viewport(2048, 2, (100, 2047), (200, 120)), (0..512, 1536..2048, 120, 120));
        assert_eq!(viewport(0, 0, (0, 0), (10, 10)).2, 0);
    }
}
