//! Choosing the next token: greedy argmax, or sampling with temperature,
//! top-k and top-p (applied in that order, as transformers' `generate` does)
//! from a seeded generator so runs repeat exactly.

#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    Greedy,
    Random { temperature: f32, top_k: Option<usize>, top_p: Option<f32>, seed: u64 },
}

pub struct Sampler {
    mode: Sampling,
    rng: SplitMix64,
}

impl Sampler {
    pub fn new(mode: Sampling) -> Self {
        let seed = match &mode {
            Sampling::Random { seed, .. } => *seed,
            Sampling::Greedy => 0,
        };
        Self { mode, rng: SplitMix64(seed) }
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        match &self.mode {
            Sampling::Greedy => argmax(logits),
            Sampling::Random { temperature, top_k, top_p, .. } => {
                if *temperature <= 0.0 {
                    return argmax(logits);
                }
                let probs = filtered_probs(logits, *temperature, *top_k, *top_p);
                let u = self.rng.next_f64() as f32;
                let mut acc = 0.0;
                for &(id, p) in &probs {
                    acc += p;
                    if u < acc {
                        return id;
                    }
                }
                probs.last().map_or(0, |&(id, _)| id)
            }
        }
    }
}

/// Index of the largest logit; the first one on ties, like `torch.argmax`.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// (token, probability) pairs that survive top-k and top-p, most likely first,
/// renormalised to sum to 1.
fn filtered_probs(logits: &[f32], temperature: f32, top_k: Option<usize>, top_p: Option<f32>) -> Vec<(u32, f32)> {
    let mut scored: Vec<(u32, f32)> =
        logits.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, &v)| (i as u32, v / temperature)).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if let Some(k) = top_k.filter(|&k| k > 0) {
        scored.truncate(k);
    }
    let max = scored.first().map_or(0.0, |s| s.1);
    let mut total = 0.0;
    for s in scored.iter_mut() {
        s.1 = (s.1 - max).exp();
        total += s.1;
    }
    scored.iter_mut().for_each(|s| s.1 /= total);
    if let Some(p) = top_p.filter(|&p| p < 1.0) {
        // Keep the smallest prefix whose mass reaches p (at least one token).
        let mut acc = 0.0;
        let keep = scored
            .iter()
            .position(|s| {
                acc += s.1;
                acc >= p
            })
            .map_or(scored.len(), |i| i + 1);
        scored.truncate(keep);
        let total: f32 = scored.iter().map(|s| s.1).sum();
        scored.iter_mut().for_each(|s| s.1 /= total);
    }
    scored
}

/// A tiny, well-mixed, dependency-free generator (Steele et al. 2014).
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
    }

    #[test]
    fn top_k_one_is_greedy() {
        let mut s = Sampler::new(Sampling::Random { temperature: 0.7, top_k: Some(1), top_p: None, seed: 3 });
        for _ in 0..20 {
            assert_eq!(s.sample(&[0.1, 2.0, 1.9]), 1);
        }
    }

    #[test]
    fn top_p_keeps_the_smallest_sufficient_prefix() {
        let logits = [2f32.ln(), 1f32.ln(), 1f32.ln()]; // probabilities 0.5, 0.25, 0.25
        let kept = filtered_probs(&logits, 1.0, None, Some(0.6));
        assert_eq!(kept.len(), 2);
        assert!((kept[0].1 - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn same_seed_same_tokens() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |seed| {
            let mut s = Sampler::new(Sampling::Random { temperature: 1.0, top_k: None, top_p: Some(0.9), seed });
            (0..30).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
