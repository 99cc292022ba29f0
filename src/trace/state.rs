//! A state-space model's trace: per layer, the SSM and convolution states
//! after every forward pass, and Δ for every fed position. States cost
//! layers × d_inner × (d_state + d_conv) floats per step, so a long run keeps
//! a thinned history within a byte budget — every other step is dropped when
//! it fills — while the newest step is always kept exactly. Steps are kept
//! as the worker sent them (moved or shared, not copied), which keeps capture
//! cheap; the SSM buffers of dropped steps go back to `mamba::pool` for the
//! model's next states (fresh memory costs page faults).

use crate::model::mamba::{pool, StateCapture, StateDims};
use std::sync::Arc;

/// History budget for SSM + conv states.
const STATE_BUDGET_BYTES: usize = 512 << 20;

#[derive(Debug, Clone)]
pub struct StateTrace {
    /// The SSM state of a step read as a (d_inner, d_state) matrix.
    pub d_inner: usize,
    pub d_state: usize,
    pub d_conv: usize,
    /// One step's `ssm` shape as the trace file writes it.
    pub ssm_shape: Vec<usize>,
    /// Rows of the conv window (d_inner for Mamba, x + B + C channels for Mamba-2).
    pub conv_channels: usize,
    /// Δ values per position (d_inner for Mamba, heads for Mamba-2).
    pub dt_width: usize,
    /// The generated-token steps whose states are held (0 = after the prefill).
    pub steps: Vec<usize>,
    /// Per held step, per layer: `ssm` (ssm_shape) and `conv` (conv_channels, d_conv).
    pub states: Vec<Vec<StateCapture>>,
    /// Per layer: (positions, dt_width), Δ after softplus.
    pub dt: Vec<Vec<f32>>,
    max_steps: usize,
}

impl StateTrace {
    pub fn new(dims: &StateDims) -> Self {
        Self::with_max_steps(dims, (STATE_BUDGET_BYTES / dims.bytes.max(1)).max(2))
    }

    pub fn with_max_steps(dims: &StateDims, max_steps: usize) -> Self {
        Self {
            d_inner: dims.d_inner,
            d_state: dims.d_state,
            d_conv: dims.d_conv,
            ssm_shape: dims.ssm_shape.clone(),
            conv_channels: dims.conv_channels,
            dt_width: dims.dt_width,
            steps: vec![],
            states: vec![],
            dt: vec![vec![]; dims.layers],
            max_steps: max_steps.max(2),
        }
    }

    pub fn num_layers(&self) -> usize {
        self.dt.len()
    }

    pub fn push(&mut self, step: usize, mut layers: Vec<StateCapture>) {
        if self.steps.len() == self.max_steps {
            self.thin();
        }
        for (dt, cap) in self.dt.iter_mut().zip(layers.iter_mut()) {
            dt.append(&mut cap.dt);
        }
        self.steps.push(step);
        self.states.push(layers);
    }

    /// `layer`'s SSM states, one slice per held step.
    pub fn ssm(&self, layer: usize) -> Vec<&[f32]> {
        self.states.iter().map(|s| s[layer].ssm.as_slice()).collect()
    }

    /// `layer`'s convolution states, one slice per held step.
    pub fn conv(&self, layer: usize) -> Vec<&[f32]> {
        self.states.iter().map(|s| s[layer].conv.as_slice()).collect()
    }

    /// Keep every other held step (the oldest first), halving the history.
    fn thin(&mut self) {
        let mut i = 0;
        self.steps.retain(|_| {
            i += 1;
            i % 2 == 1
        });
        let mut i = 0;
        self.states.retain_mut(|layers| {
            i += 1;
            if i % 2 == 0 {
                recycle(layers.drain(..));
            }
            i % 2 == 1
        });
    }
}

impl Drop for StateTrace {
    fn drop(&mut self) {
        recycle(self.states.drain(..).flatten());
    }
}

/// SSM buffers no one else holds go back to the pool.
fn recycle(caps: impl Iterator<Item = StateCapture>) {
    caps.filter_map(|c| Arc::try_unwrap(c.ssm).ok()).for_each(pool::give);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> StateDims {
        crate::model::mamba::MambaConfig::from_json(
            &json!({"model_type": "mamba", "hidden_size": 4, "num_hidden_layers": 1,
            "state_size": 2, "conv_kernel": 2, "expand": 1, "time_step_rank": 1, "vocab_size": 8}),
        )
        .unwrap()
        .state_dims()
    }

    #[test]
    fn thinning_keeps_the_newest_step_exact() {
        let c = cfg();
        let mut t = StateTrace::with_max_steps(&c, 4);
        for s in 0..11 {
            let v = s as f32;
            let cap = StateCapture { ssm: Arc::new(vec![v; 8]), conv: vec![v; 8], dt: vec![v; 4] };
            t.push(s, vec![cap]);
            assert_eq!(*t.steps.last().unwrap(), s);
            assert!(t.steps.len() <= 4);
            assert_eq!(t.states.len(), t.steps.len());
            // Rows line up with their step numbers.
            for (row, &st) in t.ssm(0).iter().zip(&t.steps) {
                assert_eq!(row[0], st as f32);
            }
        }
        assert_eq!(t.dt[0].len(), 11 * 4); // Δ is kept for every position
    }
}
