//! What a worker computes for the views, one unit at a time (a map, a row,
//! a state, one layer of head thumbnails), so the inbox is read between
//! units; throttled while the model generates.

use super::{Message, Report, Wants};
use crate::tui::data::HeadGrid;
use crate::tui::products;
use crate::tui::source::Source;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// Computes the wanted products, a unit at a time.
#[derive(Default)]
pub(super) struct Computer {
    wants: Wants,
    /// Positions each product was last computed at (None: must recompute).
    map_at: Option<usize>,
    row_at: Option<usize>,
    state_at: Option<usize>,
    qk_at: Option<usize>,
    scan_at: Option<usize>,
    /// Kept across runs: the model's weights for the scan replay.
    pub(super) scan: super::scan::ScanCache,
    grid: Option<HeadGrid>,
    /// Next layer of the grid being filled, and whether it is scored.
    grid_next: Option<(usize, bool)>,
    grid_scored_at: Option<usize>,
    last_heavy: Option<Instant>,
    /// When the grid was last started, so a running model refreshes it every few seconds.
    last_grid: Option<Instant>,
}

impl Computer {
    pub(super) fn want(&mut self, w: Wants) {
        if w.map != self.wants.map {
            self.map_at = None;
        }
        if w.row != self.wants.row {
            self.row_at = None;
        }
        if w.state != self.wants.state {
            self.state_at = None;
        }
        if w.qk != self.wants.qk {
            self.qk_at = None;
        }
        if w.scan != self.wants.scan {
            self.scan_at = None;
        }
        self.wants = w;
    }

    pub(super) fn reset(&mut self) {
        let (wants, scan) = (std::mem::take(&mut self.wants), std::mem::take(&mut self.scan));
        *self = Computer { wants, scan, ..Computer::default() };
    }

    /// Is there a unit of work to do for a source with `p` positions?
    fn pending(&self, p: usize, running: bool) -> Pending {
        if p == 0 {
            return Pending::None;
        }
        let throttled = running && self.last_heavy.is_some_and(|t| t.elapsed() < Duration::from_millis(200));
        if self.wants.row.is_some() && self.row_at != Some(p) {
            return Pending::Row;
        }
        if self.wants.map.is_some() && self.map_at != Some(p) && (!throttled || self.map_at.is_none()) {
            return Pending::Map;
        }
        if self.wants.state.is_some() && self.state_at != Some(p) {
            return Pending::State;
        }
        if self.wants.qk.is_some() && self.qk_at != Some(p) {
            return Pending::Qk;
        }
        if self.wants.scan.is_some() && self.scan_at != Some(p) {
            return Pending::Scan;
        }
        if self.wants.grid {
            if self.grid_next.is_some() {
                return Pending::Grid;
            }
            let stale = self.grid.as_ref().is_none_or(|g| g.positions != p);
            let slow = running && self.last_grid.is_some_and(|t| t.elapsed() < Duration::from_millis(3000));
            let unscored = !running && self.grid_scored_at != Some(p);
            if (stale && !slow && self.grid.is_some()) || self.grid.is_none() || unscored {
                return Pending::GridStart(!running);
            }
        }
        Pending::None
    }

    pub(super) fn busy(&self, p: usize, running: bool) -> bool {
        !matches!(self.pending(p, running), Pending::None)
    }

    /// Do one unit; false when the app has gone.
    pub(super) fn work(&mut self, pane: usize, src: &dyn Source, running: bool, out: &Sender<Message>) -> bool {
        let p = src.positions();
        let report = match self.pending(p, running) {
            Pending::None => return true,
            Pending::Row => {
                self.row_at = Some(p);
                let (l, h, q) = self.wants.row.unwrap_or_default();
                products::query_row(src, l, h, q).ok().map(Report::Row)
            }
            Pending::Map => {
                self.map_at = Some(p);
                self.last_heavy = Some(Instant::now());
                self.wants.map.as_ref().and_then(|w| products::map_view(src, w).ok()).map(|(m, c)| Report::Map(m, c))
            }
            Pending::State => {
                self.state_at = Some(p);
                let (layer, held, rows) = self.wants.state.unwrap_or_default();
                let n = src.state_steps().len();
                let held = held.unwrap_or(n.saturating_sub(1)).min(n.saturating_sub(1));
                Some(Report::State(products::state_view(src, layer, held, rows).ok().flatten()))
            }
            Pending::Qk => {
                self.qk_at = Some(p);
                let (l, h) = self.wants.qk.unwrap_or_default();
                src.head_qk(l, h).ok().map(Report::Qk)
            }
            Pending::Scan => {
                self.scan_at = Some(p);
                let (layer, channel) = self.wants.scan.unwrap_or_default();
                Some(Report::Scan(self.scan.view(src, layer, channel)))
            }
            Pending::GridStart(score) => {
                self.grid_next = Some((0, score));
                self.last_grid = Some(Instant::now());
                let mut g = products::empty_grid(src);
                if let Some(old) = self.grid.take().filter(|o| o.layers == g.layers && o.heads == g.heads) {
                    g.thumbs = old.thumbs;
                    g.scores = old.scores;
                }
                self.grid = Some(g);
                None
            }
            Pending::Grid => self.grid_step(src),
        };
        report.is_none_or(|r| out.send(Message { pane, report: r }).is_ok())
    }

    fn grid_step(&mut self, src: &dyn Source) -> Option<Report> {
        let (layer, score) = self.grid_next?;
        let grid = self.grid.as_mut()?;
        self.last_heavy = Some(Instant::now());
        // A layer a trace file left out (`capture --layers`) stays blank.
        let (thumbs, scores) = products::grid_layer(src, layer, score).unwrap_or_default();
        let h = grid.heads;
        let total = grid.layers * h;
        grid.thumbs.resize(total, crate::tui::data::Image::default());
        grid.scores.resize(total, None);
        for (k, (t, s)) in thumbs.into_iter().zip(scores).enumerate() {
            grid.thumbs[layer * h + k] = t;
            if score {
                grid.scores[layer * h + k] = s;
            }
        }
        grid.positions = src.positions();
        if layer + 1 < grid.layers {
            self.grid_next = Some((layer + 1, score));
            return None;
        }
        self.grid_next = None;
        if score {
            self.grid_scored_at = Some(grid.positions);
        }
        Some(Report::Grid(grid.clone()))
    }
}

enum Pending {
    None,
    Row,
    Map,
    State,
    Qk,
    Scan,
    GridStart(bool),
    Grid,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{self, Options, Session};
    use crate::trace::Trace;
    use crate::tui::products::MapWant;
    use std::sync::mpsc::channel;
    use std::sync::Arc;

    fn trace() -> Trace {
        let l = crate::model::load("tiny-gqa", &candle_core::Device::Cpu).unwrap();
        let tok = Arc::new(l.tokenizer);
        let ids = session::prompt_ids(&tok, "It is a truth universally acknowledged", false, false, 512).unwrap();
        let mut t = Trace::for_model(&l.model, &ids);
        let opts =
            Options { max_new_tokens: 4, sampling: crate::sample::Sampling::Greedy, ignore_eos: true, capture: true };
        Session::start(l.model, tok, ids, opts).follow(|s| t.push(s)).unwrap();
        t
    }

    /// Do units until nothing is pending; the reports, in order.
    fn drain(c: &mut Computer, t: &Trace) -> Vec<Report> {
        let (tx, rx) = channel();
        for _ in 0..100 {
            if !c.busy(t.positions(), false) {
                break;
            }
            assert!(c.work(0, t, false, &tx));
        }
        rx.try_iter().map(|m| m.report).collect()
    }

    #[test]
    fn every_wanted_product_arrives_once_and_the_grid_is_scored_when_idle() {
        let t = trace();
        let p = t.positions();
        let mut c = Computer::default();
        let map = MapWant {
            layer: 1,
            head: Some(2),
            rows: 0..p,
            cols: 0..p,
            width: 20,
            height: 20,
            cursor: Some((p - 1, 0)),
        };
        c.want(Wants { map: Some(map), row: Some((1, None, p - 1)), grid: true, ..Wants::default() });
        let reports = drain(&mut c, &t);
        let kinds: Vec<&str> = reports
            .iter()
            .map(|r| match r {
                Report::Row(_) => "row",
                Report::Map(..) => "map",
                Report::Grid(_) => "grid",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["row", "map", "grid"]);
        let Report::Grid(g) = &reports[2] else { unreachable!() };
        assert_eq!((g.layers, g.heads, g.thumbs.len(), g.positions), (4, 4, 16, p));
        assert!(g.scores.iter().all(Option::is_some), "idle grids carry pattern scores");
        // Nothing changed: nothing more to do.
        assert!(drain(&mut c, &t).is_empty());
    }
}
