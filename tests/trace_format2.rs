//! Trace format 2: queries and keys rebuild every map. A `--maps none` file
//! reads back through `TraceFile` exactly as the dense maps, `--half` within
//! F16's rounding, format-1 files still read, and the README's numpy lines,
//! ported 1:1 to Rust here (numpy is not installed on CI), reproduce the maps.

mod common;
use attnviz::trace::TraceFile;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const PROMPT: &str = "The cat sat on the mat. The cat sat on the";

fn capture(case: &str, dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let model = fixtures().join(case);
    let mut args = vec!["capture", "--model", model.to_str().unwrap(), "--prompt", PROMPT, "--max-new-tokens", "4"];
    args.extend_from_slice(&["--greedy", "--ignore-eos", "--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let (code, _, err) = attnviz(&args, &[]);
    assert_eq!(code, 0, "{case}: {err}");
    out
}

fn meta(st: &StFile) -> Value {
    serde_json::from_str(&st.meta["attnviz"]).unwrap()
}

/// The README's numpy, line for line (`attn(l)`), on the tensors of `st`: [H, P, P].
fn readme_attn(st: &StFile, l: usize) -> Vec<f32> {
    let g = &meta(st)["geometry"][l];
    let ((qs, q), (_, k)) = (st.f32(&format!("q.L{l}")), st.f32(&format!("k.L{l}")));
    let (p, h, d, kvh) = (qs[0], qs[1], qs[2], g["kv_heads"].as_u64().unwrap() as usize);
    // k = k[:, g["kv_head_of"]]
    let of: Vec<usize> = g["kv_head_of"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
    let k: Vec<f32> =
        (0..p).flat_map(|j| of.iter().flat_map(move |&c| &k[(j * kvh + c) * d..][..d])).copied().collect();
    // s = np.einsum("ihd,jhd->hij", q, k) * g["scale"]
    let scale = g["scale"].as_f64().unwrap() as f32;
    let mut s = vec![0f32; h * p * p];
    for (hh, i, j) in (0..h).flat_map(|hh| (0..p).flat_map(move |i| (0..p).map(move |j| (hh, i, j)))) {
        let dot: f32 = (0..d).map(|x| q[(i * h + hh) * d + x] * k[(j * h + hh) * d + x]).sum();
        s[(hh * p + i) * p + j] = dot * scale;
    }
    // if g["softcap"]: s = g["softcap"] * np.tanh(s / g["softcap"])
    if let Some(c) = g["softcap"].as_f64() {
        s.iter_mut().for_each(|x| *x = c as f32 * (*x / c as f32).tanh());
    }
    // i, j = np.indices(s.shape[1:]); w = g["window"] or len(q)
    // s = np.where((j <= i) & (j > i - w), s, -np.inf)
    let w = g["window"].as_u64().map_or(p as i64, |w| w as i64);
    for (x, idx) in s.iter_mut().zip(0..) {
        let (i, j) = (((idx / p) % p) as i64, (idx % p) as i64);
        if !(j <= i && j > i - w) {
            *x = f32::NEG_INFINITY;
        }
    }
    // s = np.exp(s - s.max(-1, keepdims=True)); return s / s.sum(-1, keepdims=True)
    for row in s.chunks_exact_mut(p) {
        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        row.iter_mut().for_each(|x| *x = (*x - mx).exp());
        let total: f32 = row.iter().sum();
        row.iter_mut().for_each(|x| *x /= total);
    }
    s
}

#[test]
fn maps_none_reads_back_as_the_dense_maps_and_the_readme_lines_rebuild_them() {
    let tmp = tempfile::tempdir().unwrap();
    for case in ["mistral_swa", "llama_gqa", "gemma2"] {
        let dense = capture(case, tmp.path(), &format!("{case}_d.safetensors"), &["--maps", "dense"]);
        let none = capture(case, tmp.path(), &format!("{case}_n.safetensors"), &["--maps", "none"]);
        let half = capture(case, tmp.path(), &format!("{case}_h.safetensors"), &["--maps", "none", "--half"]);
        let st = StFile::read(&dense);
        assert!(!StFile::read(&none).f32s.keys().any(|n| n.starts_with("attn.")), "{case}: --maps none");
        assert!(std::fs::metadata(&half).unwrap().len() < std::fs::metadata(&none).unwrap().len());
        let (fd, fnone, fhalf) =
            (TraceFile::open(&dense).unwrap(), TraceFile::open(&none).unwrap(), TraceFile::open(&half).unwrap());
        let p = fd.positions();
        for &l in fd.attention_layers() {
            let (shape, maps) = st.f32(&format!("attn.L{l}"));
            let ours = readme_attn(&st, l);
            let d = ours.iter().zip(maps).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(d < 1e-5, "{case} L{l}: the README's lines differ from the maps by {d}");
            assert_eq!(fnone.heads(l), Some(shape[0]));
            for h in 0..shape[0] {
                let map = &maps[h * p * p..(h + 1) * p * p];
                assert_eq!(fnone.attention(l, h, 0..p).unwrap(), map, "{case} L{l} H{h}");
                assert_eq!(fnone.attention(l, h, 3..7).unwrap(), map[3 * p..7 * p], "{case} L{l} H{h} rows 3..7");
                let rough = fhalf.attention(l, h, 0..p).unwrap();
                let d = rough.iter().zip(map).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
                assert!(d < 2e-2, "{case} L{l} H{h}: F16 q/k give maps off by {d}");
            }
            assert!(fnone.attention(l, shape[0], 0..1).is_err());
            assert!(fnone.attention(l, 0, 0..p + 1).is_err());
        }
    }
}

#[test]
fn format_1_files_still_read() {
    let tmp = tempfile::tempdir().unwrap();
    let path = capture("llama_gqa", tmp.path(), "t.safetensors", &["--maps", "dense"]);
    let want = TraceFile::open(&path).unwrap();
    // What format 1 wrote: no q/k, no geometry.
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut m: Value = serde_json::from_str(header["__metadata__"]["attnviz"].as_str().unwrap()).unwrap();
    for key in ["geometry", "map_layers", "qk_dtype"] {
        m.as_object_mut().unwrap().remove(key);
    }
    m["format_version"] = 1.into();
    header["__metadata__"]["attnviz"] = m.to_string().into();
    let names: Vec<String> =
        header.as_object().unwrap().keys().filter(|k| k.starts_with(['q', 'k'])).cloned().collect();
    names.iter().filter(|k| k.contains(".L")).for_each(|k| drop(header.as_object_mut().unwrap().remove(k)));
    let mut text = header.to_string().into_bytes();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let old = tmp.path().join("v1.safetensors");
    std::fs::write(&old, [&(text.len() as u64).to_le_bytes()[..], &text, &bytes[8 + n..]].concat()).unwrap();
    let f = TraceFile::open(&old).unwrap();
    let p = f.positions();
    for &l in want.attention_layers() {
        assert_eq!(f.heads(l), want.heads(l));
        for h in 0..want.heads(l).unwrap() {
            assert_eq!(f.attention(l, h, 0..p).unwrap(), want.attention(l, h, 0..p).unwrap());
        }
    }
}
