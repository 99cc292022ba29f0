//! The scan panel's data, computed on a pane's worker: the model's weights
//! are read once (`Replay::load`), then the pane's tokens are replayed through
//! the chosen layer and every position is checked against the engine's
//! captured Δ and, where the engine holds one, its state h.

use crate::sim::scan::{Channels, Replay};
use crate::tui::data::{ScanRow, ScanView};
use crate::tui::source::Source;
use std::sync::Arc;

/// The replay's weights, read on first use.
#[derive(Default)]
pub struct ScanCache {
    /// The model source string (None: a trace file, nothing to read).
    pub source: Option<String>,
    replay: Option<Result<Arc<Replay>, String>>,
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

impl ScanCache {
    fn replay(&mut self) -> Result<Arc<Replay>, String> {
        if self.replay.is_none() {
            let r = match &self.source {
                Some(s) => Replay::load(s).map(Arc::new).map_err(|e| super::one_line(&e.to_string())),
                None => Err("the scan replays a loaded model's weights; this pane has none".into()),
            };
            self.replay = Some(r);
        }
        self.replay.clone().unwrap_or_else(|| Err("no replay".into()))
    }

    /// `layer`'s scan for `channel` over `src`'s positions.
    pub fn view(&mut self, src: &dyn Source, layer: usize, channel: usize) -> Result<ScanView, String> {
        let replay = self.replay()?;
        let (di, n) = (replay.dims.d_inner, replay.dims.d_state);
        let p = src.positions().min(src.tokens().len());
        let dt = src.dt(layer).unwrap_or_default();
        // Held step s ends at position p − 1 − (last − s).
        let steps = src.state_steps();
        let last = steps.last().copied().unwrap_or(0);
        let ends: Vec<(usize, usize, usize)> = steps
            .iter()
            .enumerate()
            .filter_map(|(held, &s)| (p + s).checked_sub(1 + last).map(|pos| (pos, s, held)))
            .collect();
        let mut checks = vec![(None, None); p];
        let steps_out = replay
            .replay_with(&src.tokens()[..p], layer, Channels::One(channel), |f| {
                let dt_diff = dt.get(f.position * di..(f.position + 1) * di).map(|d| max_diff(f.dt, d));
                let h_diff = ends.iter().find(|e| e.0 == f.position).and_then(|&(_, s, held)| {
                    let (h, _) = src.state(layer, held).ok()?;
                    (h.len() == f.h.len()).then(|| (s, max_diff(f.h, &h)))
                });
                if let Some(c) = checks.get_mut(f.position) {
                    *c = (dt_diff, h_diff);
                }
            })
            .map_err(|e| super::one_line(&e.to_string()))?;
        let w = &replay.layers[layer];
        let rows = steps_out
            .into_iter()
            .zip(checks)
            .map(|(s, (dt_diff, h_diff))| ScanRow {
                x: s.x[0],
                dt: s.dt[0],
                ch: s.ch[0],
                y: s.y[0],
                b: s.b,
                c: s.c,
                a_bar: s.a_bar,
                bx: s.bx,
                h_before: s.h_before,
                h: s.h,
                dt_diff,
                h_diff,
            })
            .collect();
        Ok(ScanView {
            layer,
            channel,
            d_inner: di,
            d_state: n,
            a: w.a[channel * n..(channel + 1) * n].to_vec(),
            d: w.d[channel],
            rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Sampling;
    use crate::session::{Control, Options};
    use crate::trace::Trace;

    /// A short tiny-mamba run, traced as a pane's worker traces it.
    fn run() -> Trace {
        let loaded = crate::model::load("tiny-mamba", &candle_core::Device::Cpu).unwrap();
        let prompt = loaded.tokenizer.encode("The cat sat on the mat.", false).unwrap();
        let mut model = loaded.model;
        let mut trace = Trace::for_model(&model, &prompt);
        let opts = Options { max_new_tokens: 6, sampling: Sampling::Greedy, ignore_eos: true, capture: true };
        crate::session::run(&mut model, &loaded.tokenizer, &prompt, &opts, &Control::default(), |s| {
            trace.push(s);
            true
        })
        .unwrap();
        trace
    }

    #[test]
    fn replayed_h_equals_the_engines_state_at_every_step() {
        let trace = run();
        let mut cache = ScanCache { source: Some("tiny-mamba".into()), replay: None };
        let p = Source::positions(&trace);
        let steps = trace.state_steps();
        assert_eq!(steps.len(), 6);
        for layer in 0..4 {
            let v = cache.view(&trace, layer, 5).unwrap();
            assert_eq!((v.rows.len(), v.layer, v.channel, v.d_state), (p, layer, 5, 16));
            let checked: Vec<(usize, f32)> = v.rows.iter().filter_map(|r| r.h_diff).collect();
            // Every step the engine ran is checked, at its last position.
            assert_eq!(checked.iter().map(|c| c.0).collect::<Vec<_>>(), steps);
            assert!(checked.iter().all(|c| c.1 <= 1e-5), "layer {layer}: {checked:?}");
            assert!(v.rows.iter().all(|r| r.dt_diff.is_some_and(|d| d <= 1e-5)));
            let pos = p - 1 - (steps.len() - 1);
            assert!(v.rows[pos].h_diff.is_some() && v.rows[pos - 1].h_diff.is_none());
            // The trained A, not the initial −n.
            assert!(v.a.iter().all(|a| *a < 0.0));
        }
        assert!(cache.view(&trace, 9, 0).is_err());
        let mut none = ScanCache::default();
        assert!(none.view(&trace, 0, 0).is_err());
    }
}
