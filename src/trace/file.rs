//! Reading a trace file written by `attnviz capture` (formats 1 and 2, see
//! `crate::capture` and the README) so `attnviz view` can show it without the
//! model. Format 2 may hold only queries and keys; their maps are then
//! recomputed with `trace::attention_rows`, as `Trace::attention` does. `open` reads only the header and the small tensors (tokens, cache
//! sizes); attention maps and states are read on demand with positioned
//! reads, since a long trace runs to gigabytes. One open file serves every
//! thread (`read_at` takes `&self`).

use crate::capture::FORMAT_VERSION;
use crate::error::{Error, Result};
use crate::trace::{attention_rows, LayerGeometry};
use serde_json::Value;
use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// safetensors refuses headers above 100 MB; so do we (a bigger "length" means not safetensors).
const MAX_HEADER: u64 = 100_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F16,
    F32,
    I64,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F16 => 2,
            Dtype::F32 => 4,
            Dtype::I64 => 8,
        }
    }
}

/// Where one tensor lies in the file.
#[derive(Debug, Clone)]
struct Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Absolute byte offset of its data.
    start: u64,
}

#[derive(Debug)]
pub struct TraceFile {
    path: PathBuf,
    file: File,
    tensors: HashMap<String, Tensor>,
    meta: Value,
    tokens: Vec<u32>,
    token_strings: Vec<String>,
    prompt_len: usize,
    kv_len: Vec<Vec<usize>>,
    kv_bytes: Vec<usize>,
    forward_ms: Vec<f64>,
    /// Layers whose maps (transformer) or states (Mamba) were written.
    layers_written: Vec<usize>,
    state_steps: Vec<usize>,
    /// All keys of the layer last recomputed: a viewer asks for rows one block at a time.
    keys: std::sync::Mutex<Option<(usize, std::sync::Arc<Vec<f32>>)>>,
}

impl TraceFile {
    /// Open `path` and check it is a complete attnviz trace of a known format.
    pub fn open(path: &Path) -> Result<TraceFile> {
        let bad = |msg: String| Error::bad_file(path, msg);
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound { path: path.into() },
            _ => Error::io(path, e),
        })?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if size < 8 {
            return Err(bad(format!("not a safetensors file ({size} bytes, too short for a header)")));
        }
        let mut len = [0u8; 8];
        file.read_exact_at(&mut len, 0).map_err(|e| Error::io(path, e))?;
        let len = u64::from_le_bytes(len);
        if len > MAX_HEADER {
            return Err(bad("not a safetensors file (its first 8 bytes are not a plausible header length)".into()));
        }
        if 8 + len > size {
            return Err(bad(format!("header of {len} bytes runs past the end of the file ({size} bytes): truncated")));
        }
        let mut text = vec![0u8; len as usize];
        file.read_exact_at(&mut text, 8).map_err(|e| Error::io(path, e))?;
        let header: Value = serde_json::from_slice(&text)
            .map_err(|e| bad(format!("not a safetensors file (header is not JSON: {e})")))?;
        let Value::Object(header) = header else {
            return Err(bad("not a safetensors file (header is not a JSON object)".into()));
        };
        let meta =
            header.get("__metadata__").and_then(|m| m.get("attnviz")).and_then(Value::as_str).ok_or_else(|| {
                bad("not an attnviz trace (no `attnviz` metadata; was it written by `attnviz capture`?)".into())
            })?;
        let meta: Value =
            serde_json::from_str(meta).map_err(|e| bad(format!("the `attnviz` metadata is not JSON: {e}")))?;
        match meta.get("format_version").and_then(Value::as_u64) {
            Some(v) if (1..=u64::from(FORMAT_VERSION)).contains(&v) => {}
            Some(v) => {
                return Err(bad(format!(
                    "trace format_version {v} is not supported (this attnviz reads 1 to {FORMAT_VERSION})"
                )))
            }
            None => return Err(bad("the `attnviz` metadata has no format_version".into())),
        }

        let data_start = 8 + len;
        let mut tensors = HashMap::new();
        for (name, t) in header.iter().filter(|(k, _)| k.as_str() != "__metadata__") {
            let t = tensor(name, t, data_start).map_err(&bad)?;
            let end = t.start.saturating_add(bytes(&t) as u64);
            if end > size {
                return Err(bad(format!(
                    "tensor {name} runs past the end of the file ({end} > {size} bytes): truncated"
                )));
            }
            tensors.insert(name.clone(), t);
        }

        let mut f = TraceFile {
            path: path.into(),
            file,
            tensors,
            tokens: vec![],
            token_strings: strings(&meta, "token_strings"),
            prompt_len: meta.get("prompt_len").and_then(Value::as_u64).unwrap_or(0) as usize,
            kv_len: vec![],
            kv_bytes: vec![],
            forward_ms: meta
                .get("forward_ms")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default(),
            layers_written: vec![],
            state_steps: vec![],
            keys: std::sync::Mutex::new(None),
            meta,
        };
        f.tokens = f.whole_i64("tokens")?.into_iter().map(|t| t as u32).collect();
        f.kv_bytes = f.whole_i64("kv_bytes")?.into_iter().map(|x| x as usize).collect();
        if f.is_state_space() {
            f.state_steps = f.whole_i64("state_steps")?.into_iter().map(|x| x as usize).collect();
        } else {
            let layers = f.tensors.get("kv_len").map_or(0, |t| t.shape.get(1).copied().unwrap_or(0));
            let flat: Vec<usize> = f.whole_i64("kv_len")?.into_iter().map(|x| x as usize).collect();
            f.kv_len = flat.chunks(layers.max(1)).map(<[usize]>::to_vec).collect();
        }
        let key = if f.is_state_space() { "state_layers" } else { "attention_layers" };
        f.layers_written = f
            .meta
            .get(key)
            .and_then(Value::as_array)
            .map_or(vec![], |a| a.iter().filter_map(Value::as_u64).map(|x| x as usize).collect());
        if f.prompt_len > f.tokens.len() {
            return Err(bad(format!("prompt_len {} exceeds the {} tokens", f.prompt_len, f.tokens.len())));
        }
        Ok(f)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed `attnviz` metadata: `model` summary, `prompt`, `settings`, `stop_reason`…
    pub fn meta(&self) -> &Value {
        &self.meta
    }

    /// Prompt ids, then generated ids.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Each token's text, as the tokenizer shows it.
    pub fn token_strings(&self) -> &[String] {
        &self.token_strings
    }

    pub fn prompt_len(&self) -> usize {
        self.prompt_len
    }

    /// Row s: positions each layer's KV cache held after the forward that chose token s (empty for Mamba).
    pub fn kv_len(&self) -> &[Vec<usize>] {
        &self.kv_len
    }

    /// Row s: cache bytes (KV cache or recurrent state) after that forward.
    pub fn kv_bytes(&self) -> &[usize] {
        &self.kv_bytes
    }

    /// Wall time of each forward pass, milliseconds.
    pub fn forward_ms(&self) -> &[f64] {
        &self.forward_ms
    }

    /// Positions fed through the model (P = T + N − 1).
    pub fn positions(&self) -> usize {
        self.tokens.len().saturating_sub(1)
    }

    /// Layers in the model (from the metadata).
    pub fn num_layers(&self) -> usize {
        self.meta["model"]["layers"].as_u64().unwrap_or(0) as usize
    }

    pub fn is_state_space(&self) -> bool {
        self.meta["model"]["family"] == "state-space" || self.tensors.contains_key("state_steps")
    }

    /// Layers whose attention maps were written (all unless `--layers`; empty for Mamba).
    pub fn attention_layers(&self) -> &[usize] {
        if self.is_state_space() {
            &[]
        } else {
            &self.layers_written
        }
    }

    /// Layers whose states were written (Mamba; empty for a transformer).
    pub fn state_layers(&self) -> &[usize] {
        if self.is_state_space() {
            &self.layers_written
        } else {
            &[]
        }
    }

    /// Which generated-token step each state row holds (Mamba; see the README on thinning).
    pub fn state_steps(&self) -> &[usize] {
        &self.state_steps
    }

    /// Query heads of `layer`'s attention, if its map was written.
    pub fn heads(&self, layer: usize) -> Option<usize> {
        match self.tensors.get(&format!("attn.L{layer}")) {
            Some(t) => t.shape.first().copied(),
            None => self.tensors.get(&format!("q.L{layer}")).and_then(|t| t.shape.get(1).copied()),
        }
    }

    /// Attention probabilities of `head` in `layer` for query rows `rows`,
    /// each over key positions 0..positions(); exactly 0 where masked.
    /// Returns rows.len() × positions() values, row-major (as `Trace::attention`).
    pub fn attention(&self, layer: usize, head: usize, rows: Range<usize>) -> Result<Vec<f32>> {
        if !self.tensors.contains_key(&format!("attn.L{layer}")) {
            if let (Some(q), Some(k)) =
                (self.tensors.get(&format!("q.L{layer}")), self.tensors.get(&format!("k.L{layer}")))
            {
                return self.recompute(layer, q, k, head, rows);
            }
        }
        let t = self.layer_tensor("attn", "attention", layer)?;
        let (heads, p) = (t.shape[0], t.shape[1]);
        if t.shape[2] != p || p != self.positions() {
            let n = self.positions();
            return Err(self.bad(format!("attn.L{layer} has shape {:?}; expected [heads, {n}, {n}]", t.shape)));
        }
        if head >= heads {
            return Err(self.bad(format!("layer {layer} has {heads} heads; there is no head {head}")));
        }
        self.check_rows(&rows, p)?;
        self.read_f32(t, (head * p + rows.start) * p, rows.len() * p)
    }

    /// Rows of a map rebuilt from `q.L{layer}` and `k.L{layer}` with the metadata's geometry.
    fn recompute(&self, layer: usize, q: &Tensor, k: &Tensor, head: usize, rows: Range<usize>) -> Result<Vec<f32>> {
        let g = self.geometry(layer)?;
        let p = self.positions();
        let (d, h, kvh) = (g.head_dim, g.heads, g.kv_heads);
        let float = |t: &Tensor| t.dtype != Dtype::I64;
        if !(float(q) && float(k) && q.shape == [p, h, d] && k.shape == [p, kvh, d]) {
            let (qs, ks) = (&q.shape, &k.shape);
            return Err(self.bad(format!("q.L{layer} {qs:?} / k.L{layer} {ks:?} do not match the geometry {g:?}")));
        }
        if head >= h {
            return Err(self.bad(format!("layer {layer} has {h} heads; there is no head {head}")));
        }
        self.check_rows(&rows, p)?;
        let qs = self.read_float(q, rows.start * h * d, rows.len() * h * d)?;
        let ks = self.layer_keys(layer, k)?;
        Ok(attention_rows(&g, &qs, &ks, head, rows, p))
    }

    fn layer_keys(&self, layer: usize, k: &Tensor) -> Result<std::sync::Arc<Vec<f32>>> {
        if let Ok(held) = self.keys.lock() {
            if let Some((_, ks)) = held.as_ref().filter(|(l, _)| *l == layer) {
                return Ok(ks.clone());
            }
        }
        let ks = std::sync::Arc::new(self.read_float(k, 0, k.shape.iter().product())?);
        if let Ok(mut held) = self.keys.lock() {
            *held = Some((layer, ks.clone()));
        }
        Ok(ks)
    }

    /// Layer `layer`'s entry of the metadata's `geometry` (format 2).
    fn geometry(&self, layer: usize) -> Result<LayerGeometry> {
        let g = &self.meta["geometry"][layer];
        let n = |k: &str| g[k].as_u64().map(|x| x as usize);
        let (Some(heads), Some(kv_heads), Some(head_dim), Some(scale)) =
            (n("heads"), n("kv_heads"), n("head_dim"), g["scale"].as_f64())
        else {
            return Err(self.bad(format!("the metadata has no geometry for layer {layer}")));
        };
        if kv_heads == 0 || heads % kv_heads != 0 {
            return Err(self.bad(format!("layer {layer}: {heads} heads do not split over {kv_heads} KV heads")));
        }
        let softcap = g["softcap"].as_f64().map(|c| c as f32);
        Ok(LayerGeometry { heads, kv_heads, head_dim, scale: scale as f32, softcap, window: n("window") })
    }

    /// The SSM state h of `layer` in state row `row` (see `state_steps`): d_inner × d_state values
    /// (Mamba-2: heads × head_dim × d_state, the same count).
    pub fn ssm(&self, layer: usize, row: usize) -> Result<Vec<f32>> {
        self.state_row("ssm", layer, row)
    }

    /// The convolution state of `layer` in state row `row`: channels × d_conv values, newest last
    /// (channels = d_inner, or Mamba-2's x, B and C channels).
    pub fn conv(&self, layer: usize, row: usize) -> Result<Vec<f32>> {
        self.state_row("conv", layer, row)
    }

    /// Δ after softplus of `layer` for every position fed: positions × d_inner values (Mamba-2: × heads).
    pub fn dt(&self, layer: usize) -> Result<Vec<f32>> {
        let t = self.layer_tensor("dt", "state", layer)?;
        self.read_f32(t, 0, t.shape.iter().product())
    }

    /// Row `step` of the logits: those that chose generated token `step` (vocabulary values).
    pub fn logits(&self, step: usize) -> Result<Vec<f32>> {
        let t = match self.tensors.get("logits") {
            Some(t) if t.dtype == Dtype::F32 && t.shape.len() == 2 => t,
            _ => return Err(self.bad("no F32 [steps, vocab] logits tensor".into())),
        };
        let (n, v) = (t.shape[0], t.shape[1]);
        if step >= n {
            return Err(self.bad(format!("no logits for step {step} (the trace has {n})")));
        }
        self.read_f32(t, step * v, v)
    }

    fn state_row(&self, name: &str, layer: usize, row: usize) -> Result<Vec<f32>> {
        let t = self.layer_tensor(name, "state", layer)?;
        let k = t.shape[0];
        if row >= k {
            return Err(self.bad(format!("layer {layer} holds {k} states; there is no state row {row}")));
        }
        let n: usize = t.shape[1..].iter().product();
        self.read_f32(t, row * n, n)
    }

    /// `{prefix}.L{layer}`, or a one-line error saying why it is not there.
    fn layer_tensor(&self, prefix: &str, what: &str, layer: usize) -> Result<&Tensor> {
        // Mamba-2's ssm has a fourth axis: [steps, heads, head_dim, d_state].
        let dims: &[usize] = match prefix {
            "dt" => &[2],
            "ssm" => &[3, 4],
            _ => &[3],
        };
        if let Some(t) = self.tensors.get(&format!("{prefix}.L{layer}")) {
            if t.dtype == Dtype::F32 && dims.contains(&t.shape.len()) {
                return Ok(t);
            }
            return Err(self.bad(format!("tensor {prefix}.L{layer} has dtype {:?} shape {:?}", t.dtype, t.shape)));
        }
        let n = self.num_layers();
        Err(self.bad(if (prefix == "attn") == self.is_state_space() {
            let (family, lacks) =
                if self.is_state_space() { ("state-space", "attention maps") } else { ("transformer", "states") };
            format!("a {family} trace holds no {lacks}")
        } else if layer >= n {
            format!("layer {layer} does not exist (the model has {n})")
        } else {
            let written: Vec<String> = self.layers_written.iter().map(usize::to_string).collect();
            format!("layer {layer}'s {what} was not written (captured with --layers {})", written.join(","))
        }))
    }

    fn check_rows(&self, rows: &Range<usize>, p: usize) -> Result<()> {
        if rows.start > rows.end || rows.end > p {
            return Err(self.bad(format!("rows {}..{} are outside the {p} positions", rows.start, rows.end)));
        }
        Ok(())
    }

    /// `count` values of an F32 or F16 tensor from element `first`, as f32.
    fn read_float(&self, t: &Tensor, first: usize, count: usize) -> Result<Vec<f32>> {
        if t.dtype != Dtype::F16 {
            return self.read_f32(t, first, count);
        }
        let mut raw = vec![0u8; count * 2];
        self.file.read_exact_at(&mut raw, t.start + first as u64 * 2).map_err(|e| Error::io(&self.path, e))?;
        Ok(raw.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect())
    }

    /// `count` f32 values of `t` from element `first`.
    fn read_f32(&self, t: &Tensor, first: usize, count: usize) -> Result<Vec<f32>> {
        let mut raw = vec![0u8; count * 4];
        self.file.read_exact_at(&mut raw, t.start + first as u64 * 4).map_err(|e| Error::io(&self.path, e))?;
        Ok(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    fn whole_i64(&self, name: &str) -> Result<Vec<i64>> {
        let t = self.tensors.get(name).ok_or_else(|| self.bad(format!("tensor {name} is missing")))?;
        if t.dtype != Dtype::I64 {
            return Err(self.bad(format!("tensor {name} is {:?}, expected I64", t.dtype)));
        }
        let mut raw = vec![0u8; bytes(t)];
        self.file.read_exact_at(&mut raw, t.start).map_err(|e| Error::io(&self.path, e))?;
        Ok(raw.chunks_exact(8).map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect())
    }

    fn bad(&self, msg: String) -> Error {
        Error::bad_file(&self.path, msg)
    }
}

/// Size of `t`'s data; `tensor` has checked it does not overflow.
fn bytes(t: &Tensor) -> usize {
    checked_bytes(t).unwrap_or(usize::MAX)
}

fn checked_bytes(t: &Tensor) -> Option<usize> {
    let size = t.dtype.size();
    t.shape.iter().try_fold(size, |acc: usize, &d| acc.checked_mul(d))
}

/// One header entry, checked: a known dtype and offsets that match its shape.
fn tensor(name: &str, v: &Value, data_start: u64) -> std::result::Result<Tensor, String> {
    let dtype = match v.get("dtype").and_then(Value::as_str) {
        Some("F16") => Dtype::F16,
        Some("F32") => Dtype::F32,
        Some("I64") => Dtype::I64,
        other => return Err(format!("tensor {name} has dtype {other:?}, expected F16, F32 or I64")),
    };
    let list = |k: &str| -> Option<Vec<usize>> {
        v.get(k)?.as_array()?.iter().map(|x| x.as_u64().map(|x| x as usize)).collect()
    };
    let (Some(shape), Some(offsets)) = (list("shape"), list("data_offsets")) else {
        return Err(format!("tensor {name} has no valid shape or data_offsets"));
    };
    let t = Tensor { dtype, shape, start: data_start.saturating_add(offsets.first().copied().unwrap_or(0) as u64) };
    match offsets[..] {
        [a, b] if b >= a && Some(b - a) == checked_bytes(&t) => Ok(t),
        _ => Err(format!("tensor {name}: data_offsets {offsets:?} do not match shape {:?}", t.shape)),
    }
}

fn strings(meta: &Value, key: &str) -> Vec<String> {
    meta.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|s| s.as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<TraceFile>();
    }
}
