//! Everything a generation run leaves behind, as plain owned data: tokens,
//! per-step logits, cache sizes and timings, and per layer the post-RoPE
//! queries and keys of every position. Attention maps are not stored (they
//! grow as layers × heads × N²); `attention` recomputes any head's rows
//! exactly, with the same masks the model used. State-space models keep
//! their states instead (`state`).

pub mod file;
mod state;

pub use file::TraceFile;

pub use state::StateTrace;

use crate::model::config::Config;
use crate::model::gemv::dot;
use crate::model::{Capture, Model};
use crate::session::Step;

/// Geometry of one layer's attention, enough to recompute it.
#[derive(Debug, Clone)]
pub struct LayerGeometry {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub scale: f32,
    /// Scores become c·tanh(s/c) before the softmax (Gemma 2).
    pub softcap: Option<f32>,
    pub window: Option<usize>,
}

#[derive(Debug, Clone, Default)]
struct LayerData {
    q: Vec<f32>, // (positions, heads, head_dim)
    k: Vec<f32>, // (positions, kv_heads, head_dim)
}

#[derive(Debug, Clone)]
pub struct Trace {
    pub geometry: Vec<LayerGeometry>,
    /// Prompt ids, then generated ids.
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    /// Row s: logits of the forward that chose generated token s.
    pub logits: Vec<Vec<f32>>,
    /// Row s: positions each layer's KV cache holds after that forward.
    pub kv_len: Vec<Vec<usize>>,
    pub kv_bytes: Vec<usize>,
    /// Wall time of each forward pass, milliseconds.
    pub forward_ms: Vec<f64>,
    /// SSM and convolution states, for state-space models.
    pub state: Option<StateTrace>,
    layers: Vec<LayerData>,
    positions: usize,
}

impl Trace {
    pub fn new(cfg: &Config, prompt: &[u32]) -> Self {
        let geometry = (0..cfg.num_layers)
            .map(|l| LayerGeometry {
                heads: cfg.num_heads,
                kv_heads: cfg.num_kv_heads,
                head_dim: cfg.head_dim,
                scale: attention_scale(cfg, l),
                softcap: cfg.features.attn_softcap.map(|c| c as f32),
                window: cfg.windows[l],
            })
            .collect();
        Self::empty(prompt, geometry, None)
    }

    /// An empty trace shaped for `model`.
    pub fn for_model(model: &Model, prompt: &[u32]) -> Self {
        match model {
            Model::Decoder(d) => Self::new(d.config(), prompt),
            _ => Self::empty(prompt, vec![], model.state_dims().map(|dims| StateTrace::new(&dims))),
        }
    }

    fn empty(prompt: &[u32], geometry: Vec<LayerGeometry>, state: Option<StateTrace>) -> Self {
        Self {
            layers: vec![LayerData::default(); geometry.len()],
            geometry,
            tokens: prompt.to_vec(),
            prompt_len: prompt.len(),
            logits: vec![],
            kv_len: vec![],
            kv_bytes: vec![],
            forward_ms: vec![],
            state,
            positions: 0,
        }
    }

    /// Positions fed through the model so far (P = T + N − 1 after N tokens).
    pub fn positions(&self) -> usize {
        self.positions
    }

    pub fn num_layers(&self) -> usize {
        self.state.as_ref().map_or(self.geometry.len(), StateTrace::num_layers)
    }

    /// Generated tokens so far.
    pub fn generated(&self) -> &[u32] {
        &self.tokens[self.prompt_len..]
    }

    /// Record one forward pass. Queries and keys (or states) are kept when the step carries them.
    pub fn push(&mut self, step: Step) {
        self.tokens.push(step.token);
        if let Some(l) = step.logits {
            self.logits.push(l);
        }
        self.kv_len.push(step.kv_len);
        self.kv_bytes.push(step.kv_bytes);
        self.forward_ms.push(step.forward_ms);
        self.positions = step.fed.end;
        match step.capture {
            Capture::Attention(layers) => {
                for (data, cap) in self.layers.iter_mut().zip(layers) {
                    if data.q.is_empty() && data.k.is_empty() {
                        // The prefill's buffers become the trace's: an 8,192-token prompt's q and k
                        // (755 MB on SmolLM2) are not held twice.
                        (data.q, data.k) = (cap.q, cap.k);
                    } else {
                        data.q.extend_from_slice(&cap.q);
                        data.k.extend_from_slice(&cap.k);
                    }
                }
            }
            Capture::State(layers) => {
                if let Some(s) = &mut self.state {
                    s.push(step.index, layers);
                }
            }
            Capture::None => {}
        }
    }

    /// True when queries and keys were captured for every position.
    pub fn has_attention(&self) -> bool {
        !self.layers.is_empty()
            && self.layers.iter().zip(&self.geometry).all(|(d, g)| d.q.len() == self.positions * g.heads * g.head_dim)
            && self.positions > 0
    }

    /// Queries of `head` (positions × head_dim) and the keys of the KV head it
    /// reads (positions × head_dim), post-RoPE; None without a capture.
    pub fn head_qk(&self, layer: usize, head: usize) -> Option<(Vec<f32>, Vec<f32>)> {
        let g = self.geometry.get(layer).filter(|g| head < g.heads && self.has_attention())?;
        let (data, d) = (&self.layers[layer], g.head_dim);
        let kv = head / (g.heads / g.kv_heads).max(1);
        let rows = |x: &[f32], n: usize, h: usize| -> Vec<f32> {
            (0..self.positions).flat_map(|i| x[(i * n + h) * d..(i * n + h + 1) * d].iter().copied()).collect()
        };
        Some((rows(&data.q, g.heads, head), rows(&data.k, g.kv_heads, kv)))
    }

    /// Attention probabilities of `head` in `layer` for query rows `rows`,
    /// each over key positions 0..positions(); exactly 0 where masked.
    /// Returns rows.len() × positions() values, row-major.
    pub fn attention(&self, layer: usize, head: usize, rows: std::ops::Range<usize>) -> Vec<f32> {
        let (g, data) = (&self.geometry[layer], &self.layers[layer]);
        let q = &data.q[rows.start * g.heads * g.head_dim..];
        attention_rows(g, q, &data.k, head, rows, self.positions)
    }

    /// Post-RoPE queries (positions, heads, head_dim) and keys (positions, kv_heads, head_dim) of `layer`.
    pub fn layer_qk(&self, layer: usize) -> (&[f32], &[f32]) {
        let d = &self.layers[layer];
        (&d.q, &d.k)
    }
}

/// Rows `rows` of `head`'s attention over `p` key positions, exactly 0 where
/// masked: the one recomputation behind `Trace::attention` and a format-2
/// `TraceFile`. `q` holds (heads, head_dim) per position from `rows.start`,
/// `k` (kv_heads, head_dim) per position from 0, at least to `rows.end`.
pub fn attention_rows(
    g: &LayerGeometry,
    q: &[f32],
    k: &[f32],
    head: usize,
    rows: std::ops::Range<usize>,
    p: usize,
) -> Vec<f32> {
    let d = g.head_dim;
    let kv = head / (g.heads / g.kv_heads);
    let mut out = vec![0f32; rows.len() * p];
    let mut scores = Vec::with_capacity(p);
    let start = rows.start;
    for (r, i) in rows.enumerate() {
        let first = g.window.map_or(0, |w| (i + 1).saturating_sub(w));
        let qo = ((i - start) * g.heads + head) * d;
        let q = &q[qo..qo + d];
        scores.clear();
        for j in first..=i {
            let ko = (j * g.kv_heads + kv) * d;
            let s = dot(q, &k[ko..ko + d]) * g.scale;
            scores.push(g.softcap.map_or(s, |c| (s / c).tanh() * c));
        }
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            total += *s;
        }
        let row = &mut out[r * p..(r + 1) * p];
        for (j, s) in (first..=i).zip(&scores) {
            row[j] = s / total;
        }
    }
    out
}

/// The factor on q·k in `layer`: 1/√d (Gemma: 1/√query_pre_attn_scalar), and
/// for GPT-2 with `scale_attn_by_inverse_layer_idx` also 1/(layer + 1).
pub fn attention_scale(cfg: &Config, layer: usize) -> f32 {
    let by_layer = if cfg.scale_by_layer { (layer + 1) as f64 } else { 1.0 };
    let d = cfg.features.query_pre_attn_scalar.unwrap_or(cfg.head_dim as f64);
    (1.0 / (d.sqrt() * by_layer)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decoder::LayerCapture;

    fn tiny_trace(window: Option<usize>) -> Trace {
        let geometry = vec![LayerGeometry { heads: 2, kv_heads: 1, head_dim: 2, scale: 1.0, softcap: None, window }];
        let mut t = Trace::empty(&[0, 1, 2], geometry, None);
        let step = Step {
            index: 0,
            fed: 0..3,
            token: 5,
            text: String::new(),
            forward_ms: 1.0,
            kv_len: vec![3],
            kv_bytes: 0,
            logits: None,
            capture: Capture::Attention(vec![LayerCapture {
                // head 0 asks for nothing (uniform); head 1 looks along axis 0
                q: vec![0., 0., 1., 0., 0., 0., 1., 0., 0., 0., 1., 0.],
                k: vec![0., 0., 1., 0., 2., 0.],
            }]),
        };
        t.push(step);
        t
    }

    #[test]
    fn head_qk_gives_one_heads_queries_and_its_kv_heads_keys() {
        let (q, k) = tiny_trace(None).head_qk(0, 1).unwrap();
        assert_eq!(q, vec![1., 0., 1., 0., 1., 0.]);
        assert_eq!(k, vec![0., 0., 1., 0., 2., 0.]);
        assert!(tiny_trace(None).head_qk(0, 2).is_none());
    }

    #[test]
    fn uniform_head_is_causal_and_uniform() {
        let a = tiny_trace(None).attention(0, 0, 0..3);
        let want = [1.0, 0.0, 0.0, 0.5, 0.5, 0.0, 1. / 3., 1. / 3., 1. / 3.];
        a.iter().zip(want).for_each(|(x, y)| assert!((x - y).abs() < 1e-6));
    }

    fn step(fed: std::ops::Range<usize>, q: Vec<f32>, k: Vec<f32>) -> Step {
        let kv_len = vec![fed.end];
        let capture = Capture::Attention(vec![LayerCapture { q, k }]);
        Step {
            index: 0,
            fed,
            token: 5,
            text: String::new(),
            forward_ms: 1.0,
            kv_len,
            kv_bytes: 0,
            logits: None,
            capture,
        }
    }

    #[test]
    fn prefill_buffers_are_taken_over_and_decode_rows_appended() {
        let geometry =
            vec![LayerGeometry { heads: 2, kv_heads: 1, head_dim: 2, scale: 1.0, softcap: None, window: None }];
        let mut t = Trace::empty(&[0, 1, 2], geometry, None);
        let (q, k) = ((0..12).map(|x| x as f32).collect::<Vec<_>>(), vec![1.; 6]);
        let q_at = q.as_ptr();
        t.push(step(0..3, q, k));
        assert_eq!(t.layer_qk(0).0.as_ptr(), q_at, "the prefill's queries are moved in, not copied");
        t.push(step(3..4, vec![9.; 4], vec![8.; 2]));
        let (q, k) = t.layer_qk(0);
        assert_eq!((q.len(), k.len(), t.positions()), (16, 8, 4));
        assert_eq!((q[11], &q[12..], &k[6..]), (11., &[9.; 4][..], &[8.; 2][..]));
        assert!(t.has_attention());
    }

    #[test]
    fn window_masks_old_keys_and_rows_sum_to_one() {
        let a = tiny_trace(Some(2)).attention(0, 1, 2..3);
        assert_eq!(a[0], 0.0);
        let e = std::f32::consts::E;
        assert!((a[2] - e / (1.0 + e)).abs() < 1e-6, "{a:?}");
        assert!((a.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
