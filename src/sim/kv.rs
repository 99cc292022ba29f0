//! KV-cache arithmetic: the bytes of keys and values a transformer holds at
//! N positions, and the fixed state a Mamba or Mamba-2 holds instead.
//!
//! bytes = 2 (K and V) × layers × kv_heads × head_dim × positions × batch ×
//! bytes per value. Each attention layer keeps K and V shaped (batch,
//! kv_heads, positions, head_dim), after RoPE and before the heads are
//! repeated for GQA. A sliding-window layer holds min(positions, W − 1):
//! all the next query can still see, as the engine's `KvCache` does
//! (`model/kv_cache.rs`); Mistral's reference rolling cache keeps W slots,
//! one more. q8_0 is ggml's block format: 32 values in 34 bytes (an f16
//! scale and 32 int8), over each position's row of kv_heads × head_dim.

use super::heads::HeadMap;
use crate::error::{Error, Result};
use serde::Serialize;

/// How each cached value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F16,
    Bf16,
    /// ggml's 8-bit blocks: 32 values share one f16 scale (34 bytes).
    Q8_0,
}

/// Values in one q8_0 block, and its size in bytes (`block_q8_0` in ggml-common.h).
const Q8_0_BLOCK: u64 = 32;
const Q8_0_BYTES: u64 = 34;

impl Dtype {
    pub const ALL: [Dtype; 4] = [Dtype::F32, Dtype::F16, Dtype::Bf16, Dtype::Q8_0];

    /// f32, f16, bf16 or q8_0 (also float32, fp16, float16, bfloat16).
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Dtype::F32,
            "f16" | "fp16" | "float16" => Dtype::F16,
            "bf16" | "bfloat16" => Dtype::Bf16,
            "q8_0" => Dtype::Q8_0,
            _ => return Err(Error::Usage(format!("dtype {s:?}: expected f32, f16, bf16 or q8_0"))),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
            Dtype::Q8_0 => "q8_0",
        }
    }

    /// Average bytes per value (q8_0: 34 / 32 = 1.0625).
    pub fn bytes_per_value(self) -> f64 {
        match self {
            Dtype::F32 => 4.0,
            Dtype::F16 | Dtype::Bf16 => 2.0,
            Dtype::Q8_0 => Q8_0_BYTES as f64 / Q8_0_BLOCK as f64,
        }
    }

    /// Bytes of one stored row of `values` values (q8_0: whole blocks, the last one padded).
    pub fn row_bytes(self, values: u64) -> u64 {
        match self {
            Dtype::F32 => 4 * values,
            Dtype::F16 | Dtype::Bf16 => 2 * values,
            Dtype::Q8_0 => values.div_ceil(Q8_0_BLOCK) * Q8_0_BYTES,
        }
    }
}

/// Positions a layer holds after `positions` were fed: all of them, or
/// W − 1 for a window W (the keys the next query sees besides its own).
pub fn held(window: Option<usize>, positions: usize) -> usize {
    match window {
        Some(w) => positions.min(w.saturating_sub(1)),
        None => positions,
    }
}

/// The attention shape that sets a KV cache's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvShape {
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Per layer (`layers` entries): Some(W) for a sliding window.
    pub windows: Vec<Option<usize>>,
}

/// A cache's size at one length, and the same model's variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvReport {
    /// Bytes held as configured.
    pub kv_bytes: u64,
    /// Bytes one more position adds to one sequence with no window in the way.
    pub bytes_per_token: u64,
    /// Positions each layer holds.
    pub positions_held: Vec<usize>,
    /// As multi-head attention (kv_heads = heads).
    pub mha: u64,
    /// As multi-query attention (kv_heads = 1).
    pub mqa: u64,
    /// With every window removed.
    pub no_window: u64,
}

impl KvShape {
    /// Fails on zero sizes, kv_heads not dividing heads, a window of 0 or a
    /// windows list that is not one entry per layer.
    pub fn new(
        layers: usize,
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        windows: Vec<Option<usize>>,
    ) -> Result<Self> {
        HeadMap::new(heads, kv_heads)?;
        if layers == 0 || head_dim == 0 {
            return Err(Error::Usage(format!("layers {layers}, head dim {head_dim}: both must be positive")));
        }
        if windows.len() != layers {
            return Err(Error::Usage(format!("{} windows for {layers} layers", windows.len())));
        }
        if windows.contains(&Some(0)) {
            return Err(Error::Usage("window 0: must be positive".into()));
        }
        Ok(Self { layers, heads, kv_heads, head_dim, windows })
    }

    /// The same window (or none) on every layer.
    pub fn uniform(
        layers: usize,
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        window: Option<usize>,
    ) -> Result<Self> {
        Self::new(layers, heads, kv_heads, head_dim, vec![window; layers])
    }

    pub fn head_map(&self) -> Result<HeadMap> {
        HeadMap::new(self.heads, self.kv_heads)
    }

    /// The largest window of any layer.
    pub fn window(&self) -> Option<usize> {
        self.windows.iter().flatten().copied().max()
    }

    pub fn as_mha(&self) -> Self {
        Self { kv_heads: self.heads, ..self.clone() }
    }

    pub fn as_mqa(&self) -> Self {
        Self { kv_heads: 1, ..self.clone() }
    }

    pub fn without_window(&self) -> Self {
        Self { windows: vec![None; self.layers], ..self.clone() }
    }

    /// Positions each layer holds after `positions` were fed.
    pub fn positions_held(&self, positions: usize) -> Vec<usize> {
        self.windows.iter().map(|&w| held(w, positions)).collect()
    }

    /// Bytes of keys and values held after `positions` were fed, for `batch` sequences.
    pub fn bytes(&self, positions: usize, batch: usize, dtype: Dtype) -> Result<u64> {
        let row = dtype.row_bytes(self.kv_heads as u64 * self.head_dim as u64);
        self.positions_held(positions).iter().try_fold(0u64, |sum, &held| {
            let layer = [2, held as u64, batch as u64, row].iter().try_fold(1u64, |p, &x| p.checked_mul(x));
            layer.and_then(|l| sum.checked_add(l)).ok_or_else(too_large)
        })
    }

    /// Bytes one position adds to one sequence in every layer, windows aside.
    pub fn bytes_per_token(&self, dtype: Dtype) -> Result<u64> {
        self.without_window().bytes(1, 1, dtype)
    }

    /// Everything `attnviz memory` and the calculator panel show.
    pub fn report(&self, positions: usize, batch: usize, dtype: Dtype) -> Result<KvReport> {
        Ok(KvReport {
            kv_bytes: self.bytes(positions, batch, dtype)?,
            bytes_per_token: self.bytes_per_token(dtype)?,
            positions_held: self.positions_held(positions),
            mha: self.as_mha().bytes(positions, batch, dtype)?,
            mqa: self.as_mqa().bytes(positions, batch, dtype)?,
            no_window: self.without_window().bytes(positions, batch, dtype)?,
        })
    }
}

fn too_large() -> Error {
    Error::Usage("the cache would hold more than 2^64 bytes".into())
}

/// A Mamba's recurrent state, the same at any length. Per layer: the SSM
/// state, d_inner × d_state values (Mamba-2: heads × head_dim × d_state, the
/// same count), and the conv window, conv_channels() × d_conv: the d_inner x
/// channels (Mamba-2 also convolves B and C: + 2 × n_groups × d_state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MambaShape {
    pub layers: usize,
    pub d_inner: usize,
    pub d_state: usize,
    pub d_conv: usize,
    /// Mamba-2's heads and B/C groups; None for Mamba (v1).
    pub ssd: Option<SsdHeads>,
}

/// Mamba-2 (SSD): d_inner channels in `heads` heads; B and C per group of heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SsdHeads {
    pub heads: usize,
    pub n_groups: usize,
}

impl MambaShape {
    /// Mamba (v1).
    pub fn mamba(layers: usize, d_inner: usize, d_state: usize, d_conv: usize) -> Self {
        Self { layers, d_inner, d_state, d_conv, ssd: None }
    }

    /// Mamba-2: `heads` × `head_dim` channels, B and C for each of `n_groups` groups.
    pub fn mamba2(
        layers: usize,
        heads: usize,
        head_dim: usize,
        d_state: usize,
        n_groups: usize,
        d_conv: usize,
    ) -> Self {
        Self { layers, d_inner: heads * head_dim, d_state, d_conv, ssd: Some(SsdHeads { heads, n_groups }) }
    }

    /// Channels through the convolution: x, and Mamba-2's B and C.
    pub fn conv_channels(&self) -> usize {
        self.d_inner + self.ssd.map_or(0, |s| 2 * s.n_groups * self.d_state)
    }

    /// layers × (d_inner × d_state + conv_channels × d_conv) values per sequence (× 4 bytes in f32).
    pub fn state_bytes(&self, batch: usize, dtype: Dtype) -> Result<u64> {
        let mul = |xs: &[usize]| xs.iter().try_fold(1u64, |p, &x| p.checked_mul(x as u64));
        let per_layer = mul(&[self.d_inner, self.d_state])
            .zip(mul(&[self.conv_channels(), self.d_conv]))
            .and_then(|(ssm, conv)| ssm.checked_add(conv));
        let values = per_layer.and_then(|v| mul(&[self.layers, batch])?.checked_mul(v)).ok_or_else(too_large)?;
        Ok(dtype.row_bytes(values))
    }
}

/// Decimal gigabytes (10⁹ bytes).
pub fn gb(bytes: u64) -> f64 {
    bytes as f64 / 1e9
}

/// Binary gibibytes (2³⁰ bytes).
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Thousands separated by commas: 154618822656 → "154,618,822,656".
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_articles_claim_is_154_6_gb_not_48() {
        // 96 layers, 96 heads (MHA), head_dim 128, 32,768 tokens, fp16, batch 1.
        let claim = KvShape::uniform(96, 96, 96, 128, None).unwrap();
        let b = claim.bytes(32_768, 1, Dtype::F16).unwrap();
        assert_eq!(b, 154_618_822_656);
        assert_eq!((format!("{:.1}", gb(b)), gib(b)), ("154.6".to_string(), 144.0));
        // "32k" read as 32,000.
        assert_eq!(claim.bytes(32_000, 1, Dtype::F16).unwrap(), 150_994_944_000);
        // What gives 48: 32 KV heads (GQA), in GiB; MQA gives 1.5 GiB.
        let gqa32 = KvShape::uniform(96, 96, 32, 128, None).unwrap().bytes(32_768, 1, Dtype::F16).unwrap();
        assert_eq!((gqa32, gib(gqa32)), (51_539_607_552, 48.0));
        assert_eq!(gib(claim.as_mqa().bytes(32_768, 1, Dtype::F16).unwrap()), 1.5);
        // GQA divides by heads / kv_heads, it does not multiply.
        assert_eq!(b / gqa32, 3);
    }

    #[test]
    fn formula_by_hand_and_dtypes() {
        // 2 × 4 layers × 2 kv × 32 dim × 10 positions × 3 batch × 4 bytes.
        let s = KvShape::uniform(4, 4, 2, 32, None).unwrap();
        assert_eq!(s.bytes(10, 3, Dtype::F32).unwrap(), 2 * 4 * 2 * 32 * 10 * 3 * 4);
        assert_eq!(s.bytes(10, 3, Dtype::Bf16).unwrap(), 2 * 4 * 2 * 32 * 10 * 3 * 2);
        // q8_0: a 64-value row is 2 blocks of 34 bytes.
        assert_eq!(s.bytes(10, 3, Dtype::Q8_0).unwrap(), 2 * 4 * 10 * 3 * 2 * 34);
        assert_eq!(Dtype::Q8_0.row_bytes(33), 68);
        assert_eq!(Dtype::Q8_0.bytes_per_value(), 1.0625);
        assert_eq!(s.bytes(0, 1, Dtype::F32).unwrap(), 0);
        assert_eq!(s.bytes_per_token(Dtype::F32).unwrap(), 2 * 4 * 2 * 32 * 4);
        assert_eq!(Dtype::parse("BF16").unwrap(), Dtype::Bf16);
        assert_eq!(Dtype::parse("fp16").unwrap(), Dtype::F16);
        assert!(Dtype::ALL.iter().all(|d| Dtype::parse(d.name()).unwrap() == *d));
        assert_eq!(Dtype::parse("int4").unwrap_err().to_string(), "dtype \"int4\": expected f32, f16, bf16 or q8_0");
    }

    #[test]
    fn windows_hold_w_minus_one_positions() {
        assert_eq!((held(Some(16), 40), held(Some(16), 10), held(Some(1), 5), held(None, 40)), (15, 10, 0, 40));
        // tiny-swa: 4 layers, 2 KV heads, head_dim 32, window 16, at 40 positions.
        let swa = KvShape::uniform(4, 4, 2, 32, Some(16)).unwrap();
        let r = swa.report(40, 1, Dtype::F32).unwrap();
        assert_eq!(r.positions_held, [15; 4]);
        assert_eq!(r.kv_bytes, 2 * 4 * 2 * 32 * 15 * 4);
        assert_eq!(r.no_window, 2 * 4 * 2 * 32 * 40 * 4);
        assert_eq!((r.mha, r.mqa), (2 * r.kv_bytes, r.kv_bytes / 2));
        assert_eq!(r.bytes_per_token, 2 * 4 * 2 * 32 * 4);
        // Mixed layers (Qwen2's max_window_layers): only windowed ones are capped.
        let mixed = KvShape::new(2, 2, 2, 8, vec![None, Some(4)]).unwrap();
        assert_eq!(mixed.bytes(10, 1, Dtype::F32).unwrap(), 2 * 2 * 8 * 4 * (10 + 3));
        assert_eq!(mixed.window(), Some(4));
    }

    #[test]
    fn mamba_state_is_fixed() {
        // tiny-mamba: 4 layers, d_inner 512, d_state 16, d_conv 4.
        let m = MambaShape::mamba(4, 512, 16, 4);
        assert_eq!(m.state_bytes(1, Dtype::F32).unwrap(), 4 * 512 * 20 * 4);
        assert_eq!(m.state_bytes(1, Dtype::F32).unwrap(), 163_840);
        assert_eq!(m.state_bytes(2, Dtype::F16).unwrap(), 163_840);
        assert_eq!(m.conv_channels(), 512);
    }

    #[test]
    fn mamba2_state_convolves_b_and_c_too() {
        // mamba2-130m: 24 layers, 24 heads of 64, d_state 128, one group, d_conv 4.
        let m = MambaShape::mamba2(24, 24, 64, 128, 1, 4);
        assert_eq!((m.d_inner, m.conv_channels()), (1536, 1536 + 2 * 128));
        assert_eq!(m.state_bytes(1, Dtype::F32).unwrap(), 24 * (24 * 64 * 128 + 1792 * 4) * 4);
        assert_eq!(m.state_bytes(1, Dtype::F32).unwrap(), 19_562_496);
        // The fixture: 2 layers, 8 heads of 16 in 2 groups, d_state 8 (Mamba2Config::state_bytes agrees).
        let tiny = MambaShape::mamba2(2, 8, 16, 8, 2, 4);
        assert_eq!(tiny.state_bytes(1, Dtype::F32).unwrap(), 2 * (128 * 8 + 160 * 4) * 4);
        assert!(MambaShape::mamba2(usize::MAX / 4, 8, 16, 8, 2, 4).state_bytes(1, Dtype::F32).is_err());
    }

    #[test]
    fn bad_shapes_and_overflow_are_errors() {
        assert!(KvShape::uniform(0, 4, 2, 32, None).is_err());
        assert!(KvShape::uniform(4, 4, 2, 0, None).is_err());
        assert!(KvShape::uniform(4, 0, 0, 32, None).is_err());
        assert!(KvShape::uniform(4, 6, 4, 32, None).is_err());
        assert!(KvShape::uniform(4, 4, 2, 32, Some(0)).is_err());
        assert!(KvShape::new(4, 4, 2, 32, vec![None]).is_err());
        let s = KvShape::uniform(96, 96, 96, 128, None).unwrap();
        assert!(s.bytes(usize::MAX / 2, 1, Dtype::F32).is_err());
    }
}
