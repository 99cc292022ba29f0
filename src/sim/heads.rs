//! Which key/value head each query head reads: MHA (one KV head per query
//! head), GQA (groups of query heads share one) and MQA (all share one).
//! Query heads are grouped in order, as transformers' `repeat_kv` and the
//! engine do: query head h reads KV head h / (heads / kv_heads).

use crate::error::{Error, Result};
use std::ops::Range;

/// How query heads share key/value heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Multi-head: every query head has its own K/V head.
    Mha,
    /// Grouped-query: groups of query heads share one K/V head.
    Gqa,
    /// Multi-query: every query head reads the one K/V head.
    Mqa,
}

impl Sharing {
    pub fn name(self) -> &'static str {
        match self {
            Sharing::Mha => "MHA",
            Sharing::Gqa => "GQA",
            Sharing::Mqa => "MQA",
        }
    }
}

/// Query heads and the K/V heads they read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadMap {
    heads: usize,
    kv_heads: usize,
}

impl HeadMap {
    /// Fails unless both are positive and `kv_heads` divides `heads`.
    pub fn new(heads: usize, kv_heads: usize) -> Result<Self> {
        if heads == 0 || kv_heads == 0 {
            return Err(Error::Usage(format!("heads {heads}, kv heads {kv_heads}: both must be positive")));
        }
        if !heads.is_multiple_of(kv_heads) {
            return Err(Error::Usage(format!("kv heads {kv_heads} do not divide heads {heads}")));
        }
        Ok(Self { heads, kv_heads })
    }

    /// Every query head its own K/V head; `heads` must be positive.
    pub fn mha(heads: usize) -> Result<Self> {
        Self::new(heads, heads)
    }

    /// One K/V head for all; `heads` must be positive.
    pub fn mqa(heads: usize) -> Result<Self> {
        Self::new(heads, 1)
    }

    pub fn heads(&self) -> usize {
        self.heads
    }

    pub fn kv_heads(&self) -> usize {
        self.kv_heads
    }

    /// Query heads per K/V head; also the factor the KV cache shrinks by against MHA.
    pub fn group_size(&self) -> usize {
        self.heads / self.kv_heads
    }

    /// The K/V head query head `h` reads.
    pub fn kv_head_of(&self, h: usize) -> usize {
        h / self.group_size()
    }

    /// The query heads that read K/V head `kv`.
    pub fn group(&self, kv: usize) -> Range<usize> {
        let g = self.group_size();
        (kv * g).min(self.heads)..((kv + 1) * g).min(self.heads)
    }

    /// Every group, in K/V head order.
    pub fn groups(&self) -> Vec<Range<usize>> {
        (0..self.kv_heads).map(|kv| self.group(kv)).collect()
    }

    /// `kv_head_of` for every query head, in order.
    pub fn table(&self) -> Vec<usize> {
        (0..self.heads).map(|h| self.kv_head_of(h)).collect()
    }

    pub fn sharing(&self) -> Sharing {
        match (self.heads, self.kv_heads) {
            (h, k) if h == k => Sharing::Mha,
            (_, 1) => Sharing::Mqa,
            _ => Sharing::Gqa,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gqa_groups_query_heads_in_order() {
        let m = HeadMap::new(8, 2).unwrap();
        assert_eq!(m.table(), [0, 0, 0, 0, 1, 1, 1, 1]);
        assert_eq!(m.groups(), [0..4, 4..8]);
        assert_eq!((m.group_size(), m.sharing()), (4, Sharing::Gqa));
        // Llama-3-8B: 32 query heads over 8 KV heads.
        let l3 = HeadMap::new(32, 8).unwrap();
        assert_eq!((l3.kv_head_of(0), l3.kv_head_of(3), l3.kv_head_of(4), l3.kv_head_of(31)), (0, 0, 1, 7));
        assert_eq!(l3.group(7), 28..32);
    }

    #[test]
    fn mha_and_mqa_are_the_two_ends() {
        let mha = HeadMap::mha(4).unwrap();
        assert_eq!((mha.table(), mha.sharing(), mha.group_size()), (vec![0, 1, 2, 3], Sharing::Mha, 1));
        let mqa = HeadMap::mqa(4).unwrap();
        assert_eq!((mqa.table(), mqa.sharing(), mqa.group(0)), (vec![0, 0, 0, 0], Sharing::Mqa, 0..4));
        assert_eq!(mqa.groups().len(), 1);
        // One head is both; call it MHA.
        assert_eq!(HeadMap::new(1, 1).unwrap().sharing(), Sharing::Mha);
        assert_eq!(Sharing::Gqa.name(), "GQA");
    }

    #[test]
    fn bad_head_counts_are_refused() {
        assert!(HeadMap::new(0, 1).is_err());
        assert!(HeadMap::new(4, 0).is_err());
        let e = HeadMap::new(6, 4).unwrap_err().to_string();
        assert_eq!(e, "kv heads 4 do not divide heads 6");
    }
}
