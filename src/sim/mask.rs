//! Attention masks as boolean matrices, and how far back a token reaches
//! through a stack of sliding-window layers.
//!
//! Window convention (HF transformers' `sliding_window_overlay`, and the
//! engine's): with window W, key j is visible to query i iff i − W < j ≤ i,
//! so a query sees W keys, itself included, and reaches W − 1 back per layer.
//! The Mistral paper counts W + 1 keys (i − W … i); say so where it matters.

/// Which keys a query may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskKind {
    /// Every key (an encoder, or a query over a finished sequence).
    Full,
    /// Keys at or before the query.
    Causal,
    /// The W keys ending at the query: i − W < j ≤ i.
    Sliding(usize),
}

impl MaskKind {
    /// Whether key position `j` is visible to query position `i`.
    pub fn visible(self, i: usize, j: usize) -> bool {
        match self {
            MaskKind::Full => true,
            MaskKind::Causal => j <= i,
            MaskKind::Sliding(w) => j <= i && j + w > i,
        }
    }
}

/// A square (query, key) boolean matrix, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    n: usize,
    cells: Vec<bool>,
}

impl Mask {
    pub fn new(kind: MaskKind, n: usize) -> Self {
        let cells = (0..n * n).map(|c| kind.visible(c / n, c % n)).collect();
        Self { n, cells }
    }

    pub fn full(n: usize) -> Self {
        Self::new(MaskKind::Full, n)
    }

    pub fn causal(n: usize) -> Self {
        Self::new(MaskKind::Causal, n)
    }

    pub fn sliding(n: usize, window: usize) -> Self {
        Self::new(MaskKind::Sliding(window), n)
    }

    /// Positions (rows and columns).
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn get(&self, i: usize, j: usize) -> bool {
        i < self.n && j < self.n && self.cells[i * self.n + j]
    }

    /// Query `i`'s row: which keys it sees (empty past the end).
    pub fn row(&self, i: usize) -> &[bool] {
        self.cells.get(i * self.n..(i + 1) * self.n).unwrap_or(&[])
    }

    /// Keys query `i` sees.
    pub fn count(&self, i: usize) -> usize {
        self.row(i).iter().filter(|&&v| v).count()
    }

    /// The earliest key query `i` sees, if any.
    pub fn first(&self, i: usize) -> Option<usize> {
        self.row(i).iter().position(|&v| v)
    }

    /// Boolean product `self · below`: query i reaches key j through one
    /// layer of `self` on top of `below` iff some k has self[i,k] and below[k,j].
    /// None when the sizes differ.
    pub fn then(&self, below: &Mask) -> Option<Mask> {
        if self.n != below.n {
            return None;
        }
        let n = self.n;
        let mut cells = vec![false; n * n];
        for i in 0..n {
            for k in (0..n).filter(|&k| self.cells[i * n + k]) {
                for j in 0..n {
                    cells[i * n + j] |= below.cells[k * n + j];
                }
            }
        }
        Some(Mask { n, cells })
    }

    /// What a token at the top of `layers` stacked copies of this mask can
    /// draw on: the mask multiplied through the layers (identity for 0).
    pub fn through(&self, layers: usize) -> Mask {
        let mut out = Mask { n: self.n, cells: (0..self.n * self.n).map(|c| c / self.n == c % self.n).collect() };
        for _ in 0..layers {
            out = self.then(&out).unwrap_or(out);
        }
        out
    }
}

/// How many positions back a token reaches through `layers` sliding-window
/// layers of window W: each layer adds W − 1, so L × (W − 1).
pub fn receptive_field(window: usize, layers: usize) -> usize {
    layers * window.saturating_sub(1)
}

/// The earliest position query `i` can draw on through `layers` windowed layers.
pub fn earliest_reached(i: usize, window: usize, layers: usize) -> usize {
    i.saturating_sub(receptive_field(window, layers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_shows_w_keys_including_itself() {
        let m = Mask::sliding(6, 3);
        let rows: Vec<Vec<bool>> = (0..6).map(|i| m.row(i).to_vec()).collect();
        let (t, f) = (true, false);
        assert_eq!(rows[0], [t, f, f, f, f, f]);
        assert_eq!(rows[1], [t, t, f, f, f, f]);
        assert_eq!(rows[2], [t, t, t, f, f, f]);
        assert_eq!(rows[5], [f, f, f, t, t, t]);
        assert_eq!((0..6).map(|i| m.count(i)).collect::<Vec<_>>(), [1, 2, 3, 3, 3, 3]);
        assert_eq!(m.first(5), Some(3));
    }

    #[test]
    fn causal_is_lower_triangle_and_full_sees_all() {
        let c = Mask::causal(4);
        assert_eq!((0..4).map(|i| c.count(i)).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert!(c.get(3, 0) && !c.get(0, 3) && !c.get(9, 0));
        assert!((0..4).all(|i| Mask::full(4).count(i) == 4));
        // A window as long as the sequence is the causal mask.
        assert_eq!(Mask::sliding(4, 4), c);
        assert_eq!(Mask::sliding(4, 100), c);
        assert_eq!(Mask::sliding(3, 1), Mask { n: 3, cells: (0..9).map(|c| c / 3 == c % 3).collect() });
    }

    #[test]
    fn receptive_field_matches_masks_multiplied_through_layers() {
        let n = 40;
        for w in [1, 2, 3, 4, 7] {
            let m = Mask::sliding(n, w);
            for layers in 0..=5 {
                let reach = m.through(layers);
                for i in 0..n {
                    let want = earliest_reached(i, w, layers);
                    assert_eq!(reach.first(i), Some(want), "W={w} L={layers} i={i}");
                    // Everything between is reachable, nothing after the query.
                    assert_eq!(reach.count(i), i - want + 1, "W={w} L={layers} i={i}");
                }
            }
        }
    }

    #[test]
    fn receptive_field_known_values() {
        assert_eq!(receptive_field(4, 3), 9);
        // Mistral 7B: 32 layers, W = 4096 under this convention (the paper counts 32 × 4096 = 131,072).
        assert_eq!(receptive_field(4096, 32), 131_040);
        assert_eq!(receptive_field(1, 32), 0);
        assert_eq!(earliest_reached(5, 4, 3), 0);
        assert_eq!(earliest_reached(20, 4, 3), 11);
    }

    #[test]
    fn causal_layers_add_no_reach() {
        let c = Mask::causal(10);
        assert_eq!(c.through(3), c);
        assert_eq!(c.then(&Mask::sliding(10, 2)), Some(c));
        assert_eq!(Mask::causal(3).then(&Mask::causal(4)), None);
    }
}
