//! Plain owned data the views draw. Workers produce it from a trace (live or
//! read from a file) and send it over channels; views never see a tensor.

use crate::metrics::HeadScores;
use std::ops::Range;

/// A grid of values, row-major. `f32::NAN` marks a masked cell (in the
/// future of its query, or outside a sliding window), which views draw
/// differently from a small value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
}

impl Image {
    pub fn new(width: usize, height: usize, values: Vec<f32>) -> Self {
        debug_assert_eq!(values.len(), width * height);
        Self { width, height, values }
    }

    /// The value at column `x`, row `y` (NaN outside the image).
    pub fn get(&self, x: usize, y: usize) -> f32 {
        if x < self.width && y < self.height {
            self.values[y * self.width + x]
        } else {
            f32::NAN
        }
    }

    /// Shrink (or stretch) to `width` × `height` pixels; each pixel takes the
    /// maximum of the pixels it covers, NaN only if all of them are NaN.
    pub fn pooled(&self, width: usize, height: usize) -> Image {
        let span = |i: usize, n: usize, out: usize| {
            let a = i * n / out;
            a..((i + 1) * n / out).max(a + 1).min(n.max(1))
        };
        let mut values = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                let mut best = f32::NAN;
                for sy in span(y, self.height, height) {
                    for sx in span(x, self.width, width) {
                        let v = self.get(sx, sy);
                        if !v.is_nan() && (best.is_nan() || v > best) {
                            best = v;
                        }
                    }
                }
                values.push(best);
            }
        }
        Image::new(width, height, values)
    }
}

/// How a model mixes tokens.
#[derive(Debug, Clone, PartialEq)]
pub enum Mixing {
    Attention {
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        /// Which KV head each query head reads (GQA groups as data).
        kv_head_of: Vec<usize>,
        /// Per layer: the sliding window, if any.
        windows: Vec<Option<usize>>,
    },
    StateSpace {
        d_inner: usize,
        d_state: usize,
        d_conv: usize,
        /// Mamba-2's heads (h is heads × d_inner / heads × d_state); 0 for Mamba.
        ssm_heads: usize,
        /// Channels in the convolution window: d_inner, or Mamba-2's x, B and C.
        conv_rows: usize,
    },
}

/// What the UI knows about a loaded model, from its config.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// What the user named (`tiny-gqa`, a path, a Hub id).
    pub source: String,
    pub arch: String,
    pub layers: usize,
    pub mixing: Mixing,
    pub max_positions: usize,
    pub device: String,
    pub dtype: String,
    /// KV-cache bytes per cached position, one layer, keys + values (0 for a state-space model).
    pub kv_bytes_per_position: usize,
    /// Recurrent state bytes of all layers (0 for a transformer).
    pub state_bytes: usize,
}

#[cfg(test)]
impl ModelInfo {
    /// A Llama-like transformer for tests: f32 cache, no window, context 512.
    pub fn for_test(source: &str, layers: usize, heads: usize, kv_heads: usize, head_dim: usize) -> ModelInfo {
        ModelInfo {
            source: source.into(),
            arch: "llama".into(),
            layers,
            mixing: Mixing::Attention {
                heads,
                kv_heads,
                head_dim,
                kv_head_of: (0..heads).map(|h| h / (heads / kv_heads)).collect(),
                windows: vec![None; layers],
            },
            max_positions: 512,
            device: "cpu".into(),
            dtype: "f32".into(),
            kv_bytes_per_position: 2 * kv_heads * head_dim * 4,
            state_bytes: 0,
        }
    }
}

impl ModelInfo {
    pub fn heads(&self) -> usize {
        match &self.mixing {
            Mixing::Attention { heads, .. } => *heads,
            Mixing::StateSpace { .. } => 0,
        }
    }

    pub fn is_state_space(&self) -> bool {
        matches!(self.mixing, Mixing::StateSpace { .. })
    }
}

/// One token of the sequence, as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub id: u32,
    /// The token's own text (spaces and control bytes visible as the tokenizer gives them).
    pub text: String,
    /// True for prompt tokens, false for generated ones.
    pub prompt: bool,
}

/// One forward pass as the UI sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepInfo {
    /// Generated token index (0 = chosen by the prefill).
    pub index: usize,
    /// Positions fed through the model after this pass.
    pub positions: usize,
    /// Positions each layer's KV cache holds afterwards (empty for state-space models).
    pub kv_len: Vec<usize>,
    /// Cache bytes (KV cache or recurrent state) held afterwards.
    pub kv_bytes: usize,
    pub forward_ms: f64,
}

/// A rectangle of one head's attention map (query rows × key columns),
/// pooled to `image` pixels by their maximum so one strong cell is never
/// averaged away. A pixel is NaN only when every cell under it is masked.
#[derive(Debug, Clone, PartialEq)]
pub struct MapView {
    pub layer: usize,
    /// None: the mean over the layer's heads.
    pub head: Option<usize>,
    pub rows: Range<usize>,
    pub cols: Range<usize>,
    /// Pixels: width over `cols`, height over `rows`; values in [0, 1].
    pub image: Image,
    /// Positions of the trace when this was computed.
    pub positions: usize,
}

/// Every head's thumbnail over its whole map, and its pattern scores.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadGrid {
    pub positions: usize,
    pub layers: usize,
    pub heads: usize,
    /// Layer-major: thumbs[layer * heads + head], values in [0, 1], NaN masked.
    pub thumbs: Vec<Image>,
    /// Layer-major like `thumbs`; None while fewer than two positions exist.
    pub scores: Vec<Option<HeadScores>>,
}

impl HeadGrid {
    pub fn thumb(&self, layer: usize, head: usize) -> Option<&Image> {
        self.thumbs.get(layer * self.heads + head)
    }

    pub fn score(&self, layer: usize, head: usize) -> Option<&HeadScores> {
        self.scores.get(layer * self.heads + head).and_then(Option::as_ref)
    }
}

/// Attention of one query over every key, for shading tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRow {
    pub layer: usize,
    /// None: the mean over the layer's heads.
    pub head: Option<usize>,
    pub query: usize,
    /// One weight per key position 0..positions (0 where masked).
    pub weights: Vec<f32>,
}

/// A state-space layer's state after one step, pooled to fit the screen.
#[derive(Debug, Clone, PartialEq)]
pub struct StateView {
    pub layer: usize,
    /// Generated-token step the state is from (0 = after the prefill).
    pub step: usize,
    /// The SSM state h: channels (rows, pooled) × d_state (columns); raw signed values.
    pub ssm: Image,
    /// The convolution state: channels (rows, pooled) × d_conv (columns, newest last).
    pub conv: Image,
    /// Channels per pixel row of `ssm` and `conv` (1 = unpooled).
    pub channels_per_row: usize,
    /// Per position fed: the mean Δ (after softplus) over channels.
    pub dt: Vec<f32>,
}

/// One head's post-RoPE queries and keys, for views that show the arithmetic
/// (scores, scale, softmax, tiling).
#[derive(Debug, Clone, PartialEq)]
pub struct HeadQk {
    pub layer: usize,
    pub head: usize,
    pub positions: usize,
    pub head_dim: usize,
    /// (positions, head_dim)
    pub q: Vec<f32>,
    /// (positions, head_dim): the KV head this head reads.
    pub k: Vec<f32>,
    /// The factor on q·k (1/√d).
    pub scale: f32,
    pub window: Option<usize>,
}

/// The head-pattern score a view sorts or tints by.
pub use crate::metrics::Pattern;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_keeps_the_maximum_and_masks_only_fully_masked_blocks() {
        let nan = f32::NAN;
        let img = Image::new(4, 2, vec![0.1, 0.9, nan, nan, 0.2, 0.3, nan, 0.4]);
        let p = img.pooled(2, 1);
        assert_eq!(p.values, vec![0.9, 0.4]);
        let q = Image::new(2, 1, vec![nan, nan]).pooled(1, 1);
        assert!(q.values[0].is_nan());
        // Stretching repeats pixels.
        assert_eq!(Image::new(1, 1, vec![0.5]).pooled(2, 2).values, vec![0.5; 4]);
    }
}

/// Mamba's selective scan of one layer and channel, replayed from the
/// model's weights over every position fed (lessons).
#[derive(Debug, Clone, PartialEq)]
pub struct ScanView {
    pub layer: usize,
    pub channel: usize,
    pub d_inner: usize,
    pub d_state: usize,
    /// (d_state) this channel's trained A = −exp(A_log).
    pub a: Vec<f32>,
    /// This channel's skip D.
    pub d: f32,
    /// One per position fed.
    pub rows: Vec<ScanRow>,
}

/// One position of a `ScanView` (n = d_state values where a vector).
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRow {
    /// x after the conv and SiLU, Δ after softplus, C·h and y = C·h + D·x.
    pub x: f32,
    pub dt: f32,
    pub ch: f32,
    pub y: f32,
    pub b: Vec<f32>,
    pub c: Vec<f32>,
    pub a_bar: Vec<f32>,
    pub bx: Vec<f32>,
    pub h_before: Vec<f32>,
    pub h: Vec<f32>,
    /// max |Δ − the engine's Δ| over the layer's channels, where captured.
    pub dt_diff: Option<f32>,
    /// The engine step whose state ends here, and max |h − its h| over the whole layer state.
    pub h_diff: Option<(usize, f32)>,
}
