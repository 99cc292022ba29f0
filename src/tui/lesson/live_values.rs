//! The values of the live placeholders (`lesson::LIVE_PLACEHOLDERS`): numbers
//! that exist only while a model runs, read from the step's live pane and
//! the panel's controls, and written into the step's text as it is drawn.
//! A value not known yet shows as "…".

use super::panels::sdpa::Sdpa;
use super::panels::tiling::{run, TileInputs};
use super::state::LessonApp;
use crate::lesson::{Panel, LIVE_PLACEHOLDERS};
use crate::tui::views::memory::human_bytes;
use std::collections::BTreeMap;

impl LessonApp {
    /// Every live placeholder the current step can fill now.
    pub fn live_values(&self) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        let Some(p) = self.pane(0) else { return v };
        let c = &self.controls;
        if let Some(last) = p.steps.last() {
            v.insert("positions".into(), last.positions.to_string());
            v.insert("cache_bytes".into(), human_bytes(last.kv_bytes as u64));
            let held = last.kv_len.iter().copied().min().unwrap_or(last.positions);
            v.insert("evicted".into(), last.positions.saturating_sub(held).to_string());
        }
        // Without a cache every step would redo the prefill's work over all positions.
        let decode: Vec<f64> = p.steps.iter().skip(1).map(|s| s.forward_ms).collect();
        if let (Some(first), false) = (p.steps.first(), decode.is_empty()) {
            let cached = decode.iter().sum::<f64>() / decode.len() as f64;
            v.insert("decode_ms_cached".into(), format!("{cached:.2}"));
            v.insert("decode_ms_uncached".into(), format!("{:.2}", first.forward_ms));
            if cached > 0.0 {
                v.insert("decode_speedup".into(), format!("{:.1}", first.forward_ms / cached));
            }
        }
        if let Some(qk) = &p.qk {
            let query = c.query.unwrap_or(qk.positions.saturating_sub(1));
            if let Some(s) = Sdpa::compute(qk, query) {
                let (w, u) = s.top();
                v.insert("max_weight".into(), format!("{w:.3}"));
                v.insert("max_weight_unscaled".into(), format!("{u:.3}"));
            }
            if let Panel::Tiling { .. } = self.panel() {
                if let Some(inp) = TileInputs::new(qk) {
                    if let Some((tiler, _, total)) = run(&inp, c.block_rows, c.block_cols, c.tiles) {
                        v.insert("tile".into(), c.tiles.min(total).to_string());
                        v.insert("tiles".into(), total.to_string());
                        if c.tiles >= total {
                            let want = crate::sim::tiling::attention(&inp.problem()).unwrap_or_default();
                            let got = tiler.output();
                            let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                            v.insert("max_diff".into(), format!("{diff:.1e}"));
                        }
                    }
                }
            }
        }
        if let Panel::Scan { .. } = self.panel() {
            let pos = c.token.unwrap_or(p.positions().saturating_sub(1)).min(p.positions().saturating_sub(1));
            if let Some(t) = p.tokens.get(pos) {
                v.insert("token".into(), format!("{:?}", t.text));
            }
            if let Some(Ok(scan)) = &p.scan {
                let worst = scan
                    .rows
                    .iter()
                    .filter_map(|r| r.h_diff.map(|(_, d)| d))
                    .fold(None, |m: Option<f32>, d| Some(m.map_or(d, |m| m.max(d))));
                if let Some(w) = worst {
                    v.insert("scan_max_diff".into(), format!("{w:.1e}"));
                }
            }
        }
        v
    }

    /// The current step's text with its live placeholders written in ("…" until known).
    pub fn shown_text(&self) -> String {
        let mut text = self.text().to_string();
        let values = self.live_values();
        for (name, _) in LIVE_PLACEHOLDERS {
            let key = format!("{{{name}}}");
            if text.contains(&key) {
                text = text.replace(&key, values.get(*name).map_or("…", String::as_str));
            }
        }
        text
    }
}
