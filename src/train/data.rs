//! The corpus as one token stream, split into a training part and a
//! held-out tail, and the seeded batches drawn from it.

use crate::error::{Error, Result};
use crate::sample::SplitMix64;
use candle_core::{Device, Tensor};

/// Fraction of the stream kept back for evaluation: its last tokens, so no
/// training window ever overlaps it.
const HELD_OUT: f64 = 0.05;

pub struct Corpus {
    pub train: Vec<u32>,
    pub held_out: Vec<u32>,
}

impl Corpus {
    /// Split `ids` for windows of `seq_len + 1` tokens (inputs and next-token targets).
    pub fn split(ids: Vec<u32>, seq_len: usize) -> Result<Self> {
        let cut = ((ids.len() as f64) * (1.0 - HELD_OUT)) as usize;
        let (train, held_out) = ids.split_at(cut);
        if held_out.len() <= seq_len || train.len() <= seq_len {
            return Err(Error::Usage(format!(
                "the corpus has {} tokens: too few for windows of {seq_len} plus a 5% held-out part",
                ids.len()
            )));
        }
        Ok(Self { train: train.to_vec(), held_out: held_out.to_vec() })
    }
}

/// Draws random training windows; the same seed gives the same batches.
pub struct Batches {
    rng: SplitMix64,
    pub batch: usize,
    pub seq_len: usize,
}

impl Batches {
    pub fn new(seed: u64, batch: usize, seq_len: usize) -> Self {
        Self { rng: SplitMix64(seed ^ 0xBA7C_4E5D), batch, seq_len }
    }

    /// (inputs, targets), each (batch, seq_len).
    pub fn next(&mut self, ids: &[u32], dev: &Device) -> Result<(Tensor, Tensor)> {
        let starts: Vec<usize> =
            (0..self.batch).map(|_| (self.rng.next_u64() % (ids.len() - self.seq_len) as u64) as usize).collect();
        windows(ids, &starts, self.seq_len, dev)
    }
}

/// `count` windows evenly spread over `ids`: the fixed evaluation set.
pub fn spread(ids: &[u32], count: usize, seq_len: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    let room = ids.len() - seq_len - 1;
    let starts: Vec<usize> = (0..count).map(|i| i * room / count.max(1)).collect();
    windows(ids, &starts, seq_len, dev)
}

fn windows(ids: &[u32], starts: &[usize], seq_len: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    let mut x = Vec::with_capacity(starts.len() * seq_len);
    let mut y = Vec::with_capacity(starts.len() * seq_len);
    for &s in starts {
        x.extend_from_slice(&ids[s..s + seq_len]);
        y.extend_from_slice(&ids[s + 1..s + seq_len + 1]);
    }
    let shape = (starts.len(), seq_len);
    Ok((Tensor::from_vec(x, shape, dev)?, Tensor::from_vec(y, shape, dev)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_is_the_tail_and_batches_repeat_with_the_seed() -> Result<()> {
        let c = Corpus::split((0..1000).collect(), 8)?;
        assert_eq!((c.train.len(), c.held_out[0]), (950, 950));
        let draw = |seed| -> Result<Vec<u32>> {
            let (x, y) = Batches::new(seed, 3, 8).next(&c.train, &Device::Cpu)?;
            let (x, y) = (x.flatten_all()?.to_vec1::<u32>()?, y.flatten_all()?.to_vec1::<u32>()?);
            // Targets are the inputs shifted by one.
            assert!(x.iter().zip(&y).all(|(a, b)| a + 1 == *b));
            Ok(x)
        };
        assert_eq!(draw(7)?, draw(7)?);
        assert_ne!(draw(7)?, draw(8)?);
        assert!(Corpus::split((0..100).collect(), 8).is_err());
        Ok(())
    }
}
