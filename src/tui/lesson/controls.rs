//! What the keys change on a step's panel: the head, layer, query, window,
//! context, batch, dtype, block sizes, tiles and tokens stepped. Reset from
//! the step's settings each time a step is entered.

use super::keys::LessonAction as A;
use crate::lesson::Panel;
use crate::metrics::Pattern;
use crate::sim::kv::Dtype;
use crate::sim::presets::{self, PRESETS};

#[derive(Debug, Clone, PartialEq)]
pub struct Controls {
    pub layer: usize,
    pub head: usize,
    /// sdpa: the query shown (None: the newest).
    pub query: Option<usize>,
    pub unscaled: bool,
    /// mask
    pub size: usize,
    pub window: Option<usize>,
    pub layers: usize,
    /// calculator
    pub context: usize,
    pub batch: usize,
    pub dtype: Dtype,
    /// Index into `PRESETS` when the calculator shows a preset.
    pub preset: Option<usize>,
    /// tiling
    pub block_rows: usize,
    pub block_cols: usize,
    pub tiles: usize,
    /// scan: the position shown (None: the newest) and the channel.
    pub token: Option<usize>,
    pub channel: usize,
    pub pattern: Option<Pattern>,
}

const BATCHES: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];

impl Controls {
    pub fn for_panel(p: &Panel) -> Self {
        let mut c = Controls {
            layer: 0,
            head: 0,
            query: None,
            unscaled: false,
            size: 8,
            window: None,
            layers: 1,
            context: 4096,
            batch: 1,
            dtype: Dtype::F16,
            preset: None,
            block_rows: 4,
            block_cols: 4,
            tiles: 0,
            token: None,
            channel: 0,
            pattern: None,
        };
        match p {
            Panel::Sdpa { layer, head, unscaled, .. } => {
                (c.layer, c.head, c.unscaled) = (*layer, *head, *unscaled);
            }
            Panel::Attention { layer, head, .. } => (c.layer, c.head) = (*layer, *head),
            Panel::Heads { pattern, .. } => {
                c.pattern =
                    pattern.as_deref().and_then(|n| Pattern::ALL.into_iter().find(|p| p.name() == n || p.key() == n));
            }
            Panel::Mask { size, window, layers, .. } => (c.size, c.window, c.layers) = (*size, *window, *layers),
            Panel::Calculator { model, context, batch, dtype, .. } => {
                c.context = *context;
                c.batch = *batch;
                c.dtype = Dtype::parse(dtype).unwrap_or(Dtype::F16);
                c.preset = presets::find(model).and_then(|f| PRESETS.iter().position(|p| p.name == f.name));
            }
            Panel::Tiling { layer, head, block_rows, block_cols, .. } => {
                (c.layer, c.head, c.block_rows, c.block_cols) = (*layer, *head, *block_rows, *block_cols);
            }
            Panel::Scan { layer, .. } => c.layer = *layer,
            Panel::None | Panel::Cache { .. } | Panel::Compare { .. } => {}
        }
        c
    }

    /// Apply a panel key; `heads` (channels on the scan), `layers` and `steps`
    /// (positions) bound the choices (from the loaded model; 0 when unknown). Returns a note for the user when
    /// the key does nothing here.
    pub fn apply(&mut self, p: &Panel, a: A, heads: usize, layers: usize, steps: usize) -> Option<&'static str> {
        let cycle = |x: usize, n: usize, up: bool| {
            if n == 0 {
                0
            } else if up {
                (x + 1) % n
            } else {
                (x + n - 1) % n
            }
        };
        let up = matches!(a, A::More | A::PickNext);
        match (p, a) {
            (
                Panel::Sdpa { .. } | Panel::Attention { .. } | Panel::Tiling { .. } | Panel::Compare { .. },
                A::PickNext | A::PickPrev,
            ) => {
                self.head = cycle(self.head, heads, up);
                self.tiles = 0;
            }
            (Panel::Attention { .. } | Panel::Compare { .. }, A::More | A::Less) => {
                self.layer = cycle(self.layer, layers, up)
            }
            (Panel::Sdpa { .. }, A::More | A::Less | A::Step) => {
                let n = steps.max(1);
                let q = self.query.unwrap_or(n - 1).min(n - 1);
                self.query = Some(cycle(q, n, a != A::Less));
            }
            (Panel::Sdpa { .. }, A::Scale) => self.unscaled = !self.unscaled,
            (Panel::Sdpa { .. }, A::Reset) => self.query = None,
            (Panel::Heads { .. }, A::PickNext | A::PickPrev | A::More | A::Less) => {
                let all = Pattern::ALL;
                let i =
                    self.pattern.and_then(|p| all.iter().position(|x| *x == p)).map_or(0, |i| cycle(i, all.len(), up));
                self.pattern = Some(all[i]);
            }
            (Panel::Mask { kind, .. }, A::More | A::Less) => {
                if kind == "sliding" {
                    let w = self.window.unwrap_or(4);
                    self.window = Some(if up { (w + 1).min(self.size) } else { w.saturating_sub(1).max(1) });
                } else {
                    self.size = if up { (self.size + 1).min(24) } else { self.size.saturating_sub(1).max(2) };
                }
            }
            (Panel::Mask { .. }, A::PickNext) => self.layers = (self.layers + 1).min(8),
            (Panel::Mask { .. }, A::PickPrev) => self.layers = self.layers.saturating_sub(1).max(1),
            (Panel::Calculator { .. }, A::More) => self.context = self.context.saturating_mul(2).min(1 << 24),
            (Panel::Calculator { .. }, A::Less) => self.context = (self.context / 2).max(1),
            (Panel::Calculator { .. }, A::PickNext | A::PickPrev) => match self.preset {
                Some(i) => self.preset = Some(cycle(i, PRESETS.len(), up)),
                None => return Some("this calculator shows the loaded model"),
            },
            (Panel::Calculator { .. }, A::Batch) => {
                let i = BATCHES.iter().position(|&b| b == self.batch).map_or(0, |i| (i + 1) % BATCHES.len());
                self.batch = BATCHES[i];
            }
            (Panel::Calculator { .. }, A::Dtype) => {
                let i = Dtype::ALL.iter().position(|&d| d == self.dtype).map_or(0, |i| (i + 1) % Dtype::ALL.len());
                self.dtype = Dtype::ALL[i];
            }
            (Panel::Tiling { .. }, A::More | A::Less) => {
                let f = |b: usize| if up { (b * 2).min(32) } else { (b / 2).max(1) };
                (self.block_rows, self.block_cols, self.tiles) = (f(self.block_rows), f(self.block_cols), 0);
            }
            (Panel::Tiling { .. }, A::Step) => self.tiles += 1,
            (Panel::Tiling { .. }, A::Reset) => self.tiles = 0,
            // The tiler stops at its last tile whatever the count.
            (Panel::Tiling { .. }, A::End) => self.tiles = usize::MAX / 2,
            (Panel::Scan { .. }, A::End) => self.token = None,
            (Panel::Scan { .. }, A::Step) => {
                let n = steps.max(1);
                self.token = Some(self.token.map_or(0, |t| (t + 1) % n));
            }
            (Panel::Scan { .. }, A::Reset) => self.token = Some(0),
            (Panel::Scan { .. }, A::PickNext | A::PickPrev) => self.channel = cycle(self.channel, heads, up),
            (Panel::Scan { .. }, A::More | A::Less) => self.layer = cycle(self.layer, layers, up),
            _ => return Some("that key does nothing on this panel (? lists the keys)"),
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calculator_keys_cycle_presets_batch_and_dtype() {
        let p = Panel::Calculator {
            model: "llama-2-7b".into(),
            context: 4096,
            batch: 1,
            dtype: "f16".into(),
            claim_gb: None,
        };
        let mut c = Controls::for_panel(&p);
        assert_eq!(c.preset, Some(0));
        c.apply(&p, A::More, 0, 0, 0);
        assert_eq!(c.context, 8192);
        c.apply(&p, A::Batch, 0, 0, 0);
        c.apply(&p, A::Dtype, 0, 0, 0);
        assert_eq!((c.batch, c.dtype), (2, Dtype::Bf16));
        c.apply(&p, A::PickPrev, 0, 0, 0);
        assert_eq!(c.preset, Some(PRESETS.len() - 1));
        assert!(c.apply(&p, A::Step, 0, 0, 0).is_some());
    }

    #[test]
    fn mask_tiling_sdpa_and_scan_keys() {
        let m = Panel::Mask { kind: "sliding".into(), size: 8, window: Some(3), layers: 1 };
        let mut c = Controls::for_panel(&m);
        c.apply(&m, A::More, 0, 0, 0);
        c.apply(&m, A::PickNext, 0, 0, 0);
        assert_eq!((c.window, c.layers), (Some(4), 2));
        let t = Panel::Tiling { model: "m".into(), layer: 0, head: 0, block_rows: 4, block_cols: 4 };
        let mut c = Controls::for_panel(&t);
        c.apply(&t, A::Step, 4, 2, 0);
        c.apply(&t, A::PickNext, 4, 2, 0);
        assert_eq!((c.head, c.tiles), (1, 0));
        c.apply(&t, A::Less, 4, 2, 0);
        assert_eq!((c.block_rows, c.block_cols), (2, 2));
        let s = Panel::Sdpa { model: "m".into(), layer: 0, head: 0, unscaled: false };
        let mut c = Controls::for_panel(&s);
        c.apply(&s, A::Less, 4, 2, 10);
        assert_eq!(c.query, Some(8));
        c.apply(&s, A::PickPrev, 4, 2, 10);
        assert_eq!(c.head, 3);
        let sc = Panel::Scan { model: "tiny-mamba".into(), layer: 0 };
        let mut c = Controls::for_panel(&sc);
        c.apply(&sc, A::Step, 8, 2, 3);
        c.apply(&sc, A::Step, 8, 2, 3);
        assert_eq!(c.token, Some(1));
        c.apply(&sc, A::PickPrev, 8, 2, 3);
        c.apply(&sc, A::More, 8, 2, 3);
        assert_eq!((c.channel, c.layer), (7, 1));
        c.apply(&sc, A::End, 8, 2, 3);
        assert_eq!(c.token, None);
    }
}
