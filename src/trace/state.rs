//! A state-space model's trace: per layer, the SSM and convolution states
//! after every forward pass, and Δ for every fed position. States cost
//! layers × d_inner × (d_state + d_conv) floats per step, so a long run keeps
//! a thinned history within a byte budget — every other step is dropped when
//! it fills — while the newest step is always kept exactly.

use crate::model::mamba::{MambaConfig, StateCapture};

/// History budget for SSM + conv states.
const STATE_BUDGET_BYTES: usize = 512 << 20;

#[derive(Debug, Clone)]
pub struct StateTrace {
    pub d_inner: usize,
    pub d_state: usize,
    pub d_conv: usize,
    /// The generated-token steps whose states are held (0 = after the prefill).
    pub steps: Vec<usize>,
    /// Per layer: (steps, d_inner, d_state).
    pub ssm: Vec<Vec<f32>>,
    /// Per layer: (steps, d_inner, d_conv).
    pub conv: Vec<Vec<f32>>,
    /// Per layer: (positions, d_inner), Δ after softplus.
    pub dt: Vec<Vec<f32>>,
    max_steps: usize,
}

impl StateTrace {
    pub fn new(cfg: &MambaConfig) -> Self {
        let per_step = cfg.state_bytes().max(1);
        Self::with_max_steps(cfg, (STATE_BUDGET_BYTES / per_step).max(2))
    }

    pub fn with_max_steps(cfg: &MambaConfig, max_steps: usize) -> Self {
        let n = cfg.n_layer;
        Self {
            d_inner: cfg.d_inner,
            d_state: cfg.d_state,
            d_conv: cfg.d_conv,
            steps: vec![],
            ssm: vec![vec![]; n],
            conv: vec![vec![]; n],
            dt: vec![vec![]; n],
            max_steps: max_steps.max(2),
        }
    }

    pub fn push(&mut self, step: usize, layers: &[StateCapture]) {
        if self.steps.len() == self.max_steps {
            self.thin();
        }
        self.steps.push(step);
        for (l, cap) in layers.iter().enumerate() {
            self.ssm[l].extend_from_slice(&cap.ssm);
            self.conv[l].extend_from_slice(&cap.conv);
            self.dt[l].extend_from_slice(&cap.dt);
        }
    }

    /// Keep every other held step (the oldest first), halving the history.
    fn thin(&mut self) {
        let keep: Vec<bool> = (0..self.steps.len()).map(|i| i % 2 == 0).collect();
        let mut i = 0;
        self.steps.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        let ssm_row = self.d_inner * self.d_state;
        let conv_row = self.d_inner * self.d_conv;
        for rows in self.ssm.iter_mut() {
            *rows = every_other(rows, ssm_row);
        }
        for rows in self.conv.iter_mut() {
            *rows = every_other(rows, conv_row);
        }
    }
}

fn every_other(rows: &[f32], row: usize) -> Vec<f32> {
    rows.chunks(row).step_by(2).flatten().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> MambaConfig {
        MambaConfig::from_json(&json!({"model_type": "mamba", "hidden_size": 4, "num_hidden_layers": 1,
            "state_size": 2, "conv_kernel": 2, "expand": 1, "time_step_rank": 1, "vocab_size": 8}))
        .unwrap()
    }

    #[test]
    fn thinning_keeps_the_newest_step_exact() {
        let c = cfg();
        let mut t = StateTrace::with_max_steps(&c, 4);
        for s in 0..11 {
            let v = s as f32;
            let cap = StateCapture { ssm: vec![v; 8], conv: vec![v; 8], dt: vec![v; 4] };
            t.push(s, &[cap]);
            assert_eq!(*t.steps.last().unwrap(), s);
            assert!(t.steps.len() <= 4);
            assert_eq!(t.ssm[0].len(), t.steps.len() * 8);
            // Rows line up with their step numbers.
            for (i, &st) in t.steps.iter().enumerate() {
                assert_eq!(t.ssm[0][i * 8], st as f32);
            }
        }
        assert_eq!(t.dt[0].len(), 11 * 4); // Δ is kept for every position
    }
}
