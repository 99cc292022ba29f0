//! A per-layer KV cache. Full-attention layers keep every position in a
//! preallocated buffer that doubles when full, so appending does not recopy
//! the history each step. Sliding-window layers hold only the W − 1 newest
//! positions — all the next query can still see — like transformers'
//! `DynamicSlidingWindowLayer`; their buffer is compacted only when it fills,
//! so eviction costs amortised O(1) per step.

use crate::error::Result;
use candle_core::Tensor;

pub struct KvCache {
    window: Option<usize>,
    k: Option<Tensor>, // (kv_heads, capacity, head_dim)
    v: Option<Tensor>,
    /// Rows of the buffer in use, some of which may already be out of the window.
    filled: usize,
    /// Absolute position of buffer row 0.
    base: usize,
}

impl KvCache {
    pub fn new(window: Option<usize>) -> Self {
        Self { window, k: None, v: None, filled: 0, base: 0 }
    }

    /// Positions held for future queries.
    pub fn len(&self) -> usize {
        match self.window {
            Some(w) => self.filled.min(w - 1),
            None => self.filled,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Absolute position of the oldest key held for future queries.
    pub fn start(&self) -> usize {
        self.base + self.filled - self.len()
    }

    /// Bytes of keys and values held for future queries.
    pub fn bytes(&self) -> usize {
        match &self.k {
            Some(k) => {
                let (heads, _, dim) = k.dims3().unwrap_or((0, 0, 0));
                2 * self.len() * heads * dim * k.dtype().size_in_bytes()
            }
            None => 0,
        }
    }

    pub fn reset(&mut self) {
        *self = Self::new(self.window);
    }

    /// Append new keys/values (kv_heads, t, head_dim) and return the keys and
    /// values the new queries attend over: the held ones, then the new ones.
    /// The first returned key sits at absolute position `start()` as it was
    /// before this call.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let t = k.dim(1)?;
        let held = self.len();
        let capacity = match &self.k {
            Some(buf) => buf.dim(1)?,
            None => 0,
        };
        if self.filled + t > capacity {
            let new_cap = match self.window {
                Some(w) => (held + t).max(2 * w),
                // Grow by a quarter: amortised O(1) appends, at most 25% slack.
                None => (held + t) + (held + t) / 4 + 64,
            };
            let from = self.filled - held;
            self.k = Some(regrow(self.k.as_ref(), k, from, held, new_cap)?);
            self.v = Some(regrow(self.v.as_ref(), v, from, held, new_cap)?);
            self.base += from;
            self.filled = held;
        }
        let (Some(kb), Some(vb)) = (&self.k, &self.v) else { unreachable!("buffers exist after regrow") };
        kb.slice_set(&k.contiguous()?, 1, self.filled)?;
        vb.slice_set(&v.contiguous()?, 1, self.filled)?;
        let from = self.filled - held;
        let out = (kb.narrow(1, from, held + t)?, vb.narrow(1, from, held + t)?);
        self.filled += t;
        Ok(out)
    }
}

/// A fresh buffer of `cap` rows holding rows `from..from + len` of `old`.
fn regrow(old: Option<&Tensor>, like: &Tensor, from: usize, len: usize, cap: usize) -> Result<Tensor> {
    let (heads, _, dim) = like.dims3()?;
    let buf = Tensor::zeros((heads, cap, dim), like.dtype(), like.device())?;
    if let (Some(old), true) = (old, len > 0) {
        buf.slice_set(&old.narrow(1, from, len)?.contiguous()?, 1, 0)?;
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn rows(from: usize, n: usize) -> Tensor {
        let v: Vec<f32> = (from..from + n).map(|x| x as f32).collect();
        Tensor::from_vec(v, (1, n, 1), &Device::Cpu).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn window_keeps_w_minus_one() {
        let mut c = KvCache::new(Some(4));
        let (k, _) = c.append(&rows(0, 6), &rows(0, 6)).unwrap();
        assert_eq!(k.dim(1).unwrap(), 6); // the prefill sees everything it fed
        assert_eq!((c.len(), c.start()), (3, 3));
        for step in 6..40 {
            let (k, _) = c.append(&rows(step, 1), &rows(step, 1)).unwrap();
            let want: Vec<f32> = (step - 3..=step).map(|x| x as f32).collect();
            assert_eq!(values(&k), want);
            assert_eq!((c.len(), c.start()), (3, step - 2));
        }
    }

    #[test]
    fn full_cache_grows_past_capacity() {
        let mut c = KvCache::new(None);
        c.append(&rows(0, 60), &rows(0, 60)).unwrap();
        for i in 60..70 {
            c.append(&rows(i, 1), &rows(i, 1)).unwrap();
        }
        let (k, _) = c.append(&rows(70, 1), &rows(70, 1)).unwrap();
        assert_eq!(values(&k), (0..71).map(|x| x as f32).collect::<Vec<_>>());
        assert_eq!((c.len(), c.start(), c.bytes()), (71, 0, 2 * 71 * 4));
    }
}
