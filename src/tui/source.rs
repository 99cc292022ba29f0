//! Where a pane's numbers come from: a live `Trace` the worker fills while
//! the model generates, or a trace file written by `capture` (`attnviz
//! view`). Workers compute the views' data through this one face.

use crate::error::{Error, Result};
use crate::trace::Trace;
use std::ops::Range;

pub trait Source: Send {
    /// Positions fed through the model (rows and columns of every map).
    fn positions(&self) -> usize;
    /// Token ids at positions 0..positions (and beyond: the last generated one).
    fn tokens(&self) -> &[u32];
    /// Attention layers (0 for a state-space model).
    fn attention_layers(&self) -> usize;
    fn heads(&self) -> usize;
    fn window(&self, layer: usize) -> Option<usize>;
    /// As `Trace::attention`: rows.len() × positions values, 0 where masked.
    fn attention(&self, layer: usize, head: usize, rows: Range<usize>) -> Result<Vec<f32>>;
    /// State-space models: (d_inner, d_state, d_conv).
    fn state_dims(&self) -> Option<(usize, usize, usize)>;
    /// The generated-token steps whose states are held, oldest first.
    fn state_steps(&self) -> Vec<usize>;
    /// SSM state (d_inner × d_state) and conv state (d_inner × d_conv) of held step `held`.
    fn state(&self, layer: usize, held: usize) -> Result<(Vec<f32>, Vec<f32>)>;
    /// Δ after softplus, (positions × d_inner).
    fn dt(&self, layer: usize) -> Result<Vec<f32>>;
    /// One head's queries and keys (live traces only).
    fn head_qk(&self, layer: usize, head: usize) -> Result<crate::tui::data::HeadQk> {
        Err(Error::Usage(format!("no queries and keys for layer {layer} head {head}")))
    }
}

impl Source for Trace {
    fn positions(&self) -> usize {
        Trace::positions(self)
    }

    fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    fn attention_layers(&self) -> usize {
        if self.has_attention() {
            self.geometry.len()
        } else {
            0
        }
    }

    fn heads(&self) -> usize {
        self.geometry.first().map_or(0, |g| g.heads)
    }

    fn window(&self, layer: usize) -> Option<usize> {
        self.geometry.get(layer).and_then(|g| g.window)
    }

    fn attention(&self, layer: usize, head: usize, rows: Range<usize>) -> Result<Vec<f32>> {
        let ok = self.has_attention()
            && self.geometry.get(layer).is_some_and(|g| head < g.heads)
            && rows.end <= Trace::positions(self);
        if !ok {
            return Err(Error::Usage(format!("no attention for layer {layer} head {head} rows {rows:?}")));
        }
        Ok(Trace::attention(self, layer, head, rows))
    }

    fn state_dims(&self) -> Option<(usize, usize, usize)> {
        self.state.as_ref().map(|s| (s.d_inner, s.d_state, s.d_conv))
    }

    fn state_steps(&self) -> Vec<usize> {
        self.state.as_ref().map_or(vec![], |s| s.steps.clone())
    }

    fn state(&self, layer: usize, held: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let s = self.state.as_ref().and_then(|s| s.states.get(held)).and_then(|l| l.get(layer));
        s.map(|c| (c.ssm.to_vec(), c.conv.clone()))
            .ok_or_else(|| Error::Usage(format!("no state for layer {layer} at held step {held}")))
    }

    fn dt(&self, layer: usize) -> Result<Vec<f32>> {
        self.state
            .as_ref()
            .and_then(|s| s.dt.get(layer))
            .cloned()
            .ok_or_else(|| Error::Usage(format!("no Δ for layer {layer}")))
    }

    fn head_qk(&self, layer: usize, head: usize) -> Result<crate::tui::data::HeadQk> {
        let (q, k) = Trace::head_qk(self, layer, head)
            .ok_or_else(|| Error::Usage(format!("no queries and keys for layer {layer} head {head}")))?;
        let g = &self.geometry[layer];
        Ok(crate::tui::data::HeadQk {
            layer,
            head,
            positions: Trace::positions(self),
            head_dim: g.head_dim,
            q,
            k,
            scale: g.scale,
            window: g.window,
        })
    }
}

/// A trace file: geometry from its metadata, maps and states read on demand.
impl Source for crate::trace::TraceFile {
    fn positions(&self) -> usize {
        crate::trace::TraceFile::positions(self)
    }

    fn tokens(&self) -> &[u32] {
        crate::trace::TraceFile::tokens(self)
    }

    fn attention_layers(&self) -> usize {
        if self.is_state_space() {
            0
        } else {
            self.num_layers()
        }
    }

    fn heads(&self) -> usize {
        self.meta()["model"]["heads"].as_u64().unwrap_or(0) as usize
    }

    fn window(&self, layer: usize) -> Option<usize> {
        self.meta()["model"]["windows"].get(layer).and_then(|w| w.as_u64()).map(|w| w as usize)
    }

    fn attention(&self, layer: usize, head: usize, rows: Range<usize>) -> Result<Vec<f32>> {
        crate::trace::TraceFile::attention(self, layer, head, rows)
    }

    fn state_dims(&self) -> Option<(usize, usize, usize)> {
        let m = &self.meta()["model"];
        let n = |k: &str| m[k].as_u64().map(|v| v as usize);
        if !self.is_state_space() {
            return None;
        }
        Some((n("d_inner")?, n("d_state")?, n("d_conv")?))
    }

    fn state_steps(&self) -> Vec<usize> {
        crate::trace::TraceFile::state_steps(self).to_vec()
    }

    fn state(&self, layer: usize, held: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((self.ssm(layer, held)?, self.conv(layer, held)?))
    }

    fn dt(&self, layer: usize) -> Result<Vec<f32>> {
        crate::trace::TraceFile::dt(self, layer)
    }
}
