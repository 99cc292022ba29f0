//! `TraceFile` reads back what `attnviz capture` wrote: for a sliding-window
//! model, a GQA model and the zoo's Mamba, every answer equals the tensors
//! read independently with the `safetensors` crate, bit for bit; maps of
//! layers left out by `--layers` and every kind of broken file fail in one line.

mod common;
use attnviz::trace::TraceFile;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const PROMPT: &str = "The cat sat on the mat. The cat sat on the";

/// Capture `model` (a fixture folder or zoo name) into `dir`; returns the file.
fn capture(model: &str, dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["capture", "--model", model, "--prompt", PROMPT, "--max-new-tokens", "4"];
    args.extend_from_slice(&["--greedy", "--ignore-eos", "--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let (code, _, err) = attnviz(&args, &[]);
    assert_eq!(code, 0, "{model}: {err}");
    out
}

fn fixture(case: &str) -> String {
    fixtures().join(case).to_str().unwrap().to_string()
}

fn meta(st: &StFile) -> Value {
    serde_json::from_str(&st.meta["attnviz"]).unwrap()
}

/// What every trace holds: tokens, strings, cache sizes, timings, logits.
fn check_common(f: &TraceFile, st: &StFile) {
    let m = meta(st);
    let tokens: Vec<u32> = st.i64("tokens").1.iter().map(|&t| t as u32).collect();
    assert_eq!(f.tokens(), tokens);
    assert_eq!(f.meta(), &m);
    assert_eq!(f.prompt_len(), m["prompt_len"].as_u64().unwrap() as usize);
    assert!(f.prompt_len() > 1 && f.prompt_len() < tokens.len());
    assert_eq!(f.positions(), tokens.len() - 1);
    let strings: Vec<String> = serde_json::from_value(m["token_strings"].clone()).unwrap();
    assert_eq!(f.token_strings(), strings);
    let ms: Vec<f64> = serde_json::from_value(m["forward_ms"].clone()).unwrap();
    assert_eq!(f.forward_ms(), ms);
    let kv_bytes: Vec<usize> = st.i64("kv_bytes").1.iter().map(|&x| x as usize).collect();
    assert_eq!(f.kv_bytes(), kv_bytes);
    let (shape, logits) = st.f32("logits");
    for s in 0..shape[0] {
        assert_eq!(f.logits(s).unwrap(), logits[s * shape[1]..(s + 1) * shape[1]]);
    }
    assert!(f.logits(shape[0]).is_err());
}

fn check_transformer(case: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let path = capture(&fixture(case), tmp.path(), "t.safetensors", &[]);
    let st = StFile::read(&path);
    let f = TraceFile::open(&path).unwrap();
    check_common(&f, &st);
    let (kv_shape, kv) = st.i64("kv_len");
    let rows: Vec<Vec<usize>> = kv.chunks(kv_shape[1]).map(|r| r.iter().map(|&x| x as usize).collect()).collect();
    assert_eq!(f.kv_len(), rows);
    let layers = meta(&st)["model"]["layers"].as_u64().unwrap() as usize;
    assert_eq!(f.attention_layers(), (0..layers).collect::<Vec<_>>());
    assert!(f.state_layers().is_empty() && f.state_steps().is_empty());
    let p = f.positions();
    for l in 0..layers {
        let (shape, all) = st.f32(&format!("attn.L{l}"));
        assert_eq!(shape, &vec![shape[0], p, p]);
        assert_eq!(f.heads(l), Some(shape[0]));
        for h in 0..shape[0] {
            let map = &all[h * p * p..(h + 1) * p * p];
            assert_eq!(f.attention(l, h, 0..p).unwrap(), map, "{case} L{l} H{h}");
            assert_eq!(f.attention(l, h, 3..7).unwrap(), map[3 * p..7 * p], "{case} L{l} H{h} rows 3..7");
            assert!(f.attention(l, h, 5..5).unwrap().is_empty());
        }
        assert!(f.attention(l, shape[0], 0..1).is_err());
        assert!(f.attention(l, 0, 0..p + 1).is_err());
    }
    assert!(f.ssm(0, 0).is_err());
}

#[test]
fn sliding_window_trace_reads_back_exactly() {
    check_transformer("mistral_swa");
    // The window (6) really masks: the last row of a read map is 0 before its window.
    let tmp = tempfile::tempdir().unwrap();
    let f = TraceFile::open(&capture(&fixture("mistral_swa"), tmp.path(), "w.safetensors", &[])).unwrap();
    let p = f.positions();
    let last = f.attention(1, 2, p - 1..p).unwrap();
    assert!(last[..p - 6].iter().all(|&x| x == 0.0), "{last:?}");
    assert!((last.iter().sum::<f32>() - 1.0).abs() < 1e-5);
}

#[test]
fn gqa_trace_reads_back_exactly() {
    check_transformer("llama_gqa");
}

#[test]
fn mamba_trace_reads_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let path = capture("tiny-mamba", tmp.path(), "m.safetensors", &[]);
    let st = StFile::read(&path);
    let f = TraceFile::open(&path).unwrap();
    check_common(&f, &st);
    assert!(f.is_state_space() && f.kv_len().is_empty() && f.attention_layers().is_empty());
    let steps: Vec<usize> = st.i64("state_steps").1.iter().map(|&x| x as usize).collect();
    assert_eq!(f.state_steps(), steps);
    assert_eq!(steps, [0, 1, 2, 3]);
    assert_eq!(f.state_layers(), (0..f.num_layers()).collect::<Vec<_>>());
    for &l in f.state_layers() {
        for name in ["ssm", "conv"] {
            let (shape, all) = st.f32(&format!("{name}.L{l}"));
            let n = shape[1] * shape[2];
            for row in 0..shape[0] {
                let got = if name == "ssm" { f.ssm(l, row) } else { f.conv(l, row) }.unwrap();
                assert_eq!(got, all[row * n..(row + 1) * n], "{name}.L{l} row {row}");
            }
            assert!(f.ssm(l, shape[0]).is_err());
        }
        let (shape, dt) = st.f32(&format!("dt.L{l}"));
        assert_eq!(shape[0], f.positions());
        assert_eq!(&f.dt(l).unwrap(), dt);
    }
    let e = f.attention(0, 0, 0..1).unwrap_err().to_string();
    assert!(e.contains("state-space trace holds no attention maps") && !e.contains('\n'), "{e}");
}

#[test]
fn readers_share_one_file_across_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let f = TraceFile::open(&capture(&fixture("llama_gqa"), tmp.path(), "t.safetensors", &[])).unwrap();
    let p = f.positions();
    let heads = f.heads(0).unwrap();
    let alone: Vec<Vec<f32>> = (0..heads).map(|h| f.attention(0, h, 0..p).unwrap()).collect();
    let together: Vec<Vec<f32>> = std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..heads).map(|h| s.spawn(move || f.attention(0, h, 0..p).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(alone, together);
}

#[test]
fn layers_left_out_by_the_layers_flag_error_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let path = capture(&fixture("llama_gqa"), tmp.path(), "l0.safetensors", &["--layers", "0"]);
    let f = TraceFile::open(&path).unwrap();
    assert_eq!(f.attention_layers(), [0]);
    assert!(f.attention(0, 0, 0..2).is_ok());
    let e = f.attention(1, 0, 0..2).unwrap_err().to_string();
    assert!(e.contains("l0.safetensors") && e.contains("layer 1's attention was not written"), "{e}");
    assert!(e.ends_with("(captured with --layers 0)") && !e.contains('\n'), "{e}");
    let e = f.attention(9, 0, 0..2).unwrap_err().to_string();
    assert!(e.contains("layer 9 does not exist"), "{e}");
}

/// A safetensors file with `header` (padded) and `data`.
fn write_st(path: &Path, header: &Value, data: &[u8]) {
    let mut text = header.to_string().into_bytes();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&text);
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

/// The header and data of a real trace, to break one thing at a time.
fn read_st(path: &Path) -> (Value, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + n]).unwrap(), bytes[8 + n..].to_vec())
}

/// Open must fail with one line naming the file and containing `want`.
fn fails(path: &Path, want: &str) {
    let e = TraceFile::open(path).unwrap_err().to_string();
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(e.contains(name) && e.contains(want) && !e.contains('\n'), "want {want:?}, got: {e}");
}

#[test]
fn broken_files_each_fail_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let good = capture(&fixture("llama_gqa"), dir, "good.safetensors", &[]);
    let (header, data) = read_st(&good);

    fails(&dir.join("missing.safetensors"), "not found");

    let text = dir.join("notes.safetensors");
    std::fs::write(&text, "hello, this is not a trace at all\n").unwrap();
    fails(&text, "not a safetensors file");
    let tiny = dir.join("tiny.safetensors");
    std::fs::write(&tiny, [1u8, 2, 3]).unwrap();
    fails(&tiny, "not a safetensors file");
    let not_json = dir.join("notjson.safetensors");
    std::fs::write(&not_json, [&8u64.to_le_bytes()[..], b"not json"].concat()).unwrap();
    fails(&not_json, "header is not JSON");

    let short = dir.join("short.safetensors");
    std::fs::write(&short, [&4096u64.to_le_bytes()[..], b"{\"a\":1}"].concat()).unwrap();
    fails(&short, "header of 4096 bytes runs past the end of the file");

    let plain = dir.join("plain.safetensors");
    let t = serde_json::json!({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}});
    write_st(&plain, &t, &[0; 8]);
    fails(&plain, "not an attnviz trace");

    let future = dir.join("future.safetensors");
    let mut h = header.clone();
    let mut m: Value = serde_json::from_str(h["__metadata__"]["attnviz"].as_str().unwrap()).unwrap();
    m["format_version"] = 3.into();
    h["__metadata__"]["attnviz"] = m.to_string().into();
    write_st(&future, &h, &data);
    fails(&future, "format_version 3 is not supported (this attnviz reads 1 to 2)");

    let cut = dir.join("cut.safetensors");
    let full = std::fs::read(&good).unwrap();
    std::fs::write(&cut, &full[..full.len() - 100]).unwrap();
    fails(&cut, "runs past the end of the file");
    fails(&cut, "truncated");

    // The untouched copy still opens (the breakage above is what failed).
    let same = dir.join("same.safetensors");
    write_st(&same, &header, &data);
    assert!(TraceFile::open(&same).is_ok());
}
