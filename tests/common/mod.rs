//! Helpers shared by the integration tests: reading safetensors files with
//! their metadata, running the real `attnviz` binary, and comparing tensors.
#![allow(dead_code)]

use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A safetensors file held in memory: f32 / i64 tensors with shapes, plus metadata.
pub struct StFile {
    pub f32s: HashMap<String, (Vec<usize>, Vec<f32>)>,
    pub i64s: HashMap<String, (Vec<usize>, Vec<i64>)>,
    pub meta: HashMap<String, String>,
}

impl StFile {
    pub fn read(path: &Path) -> StFile {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut out =
            StFile { f32s: HashMap::new(), i64s: HashMap::new(), meta: header.metadata().clone().unwrap_or_default() };
        for (name, view) in st.tensors() {
            let shape = view.shape().to_vec();
            let data = view.data();
            match view.dtype() {
                Dtype::F32 => {
                    let v = data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
                    out.f32s.insert(name, (shape, v));
                }
                Dtype::F16 => {
                    let v = data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect();
                    out.f32s.insert(name, (shape, v));
                }
                Dtype::I64 => {
                    let v = data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
                    out.i64s.insert(name, (shape, v));
                }
                other => panic!("{name}: unexpected dtype {other:?}"),
            }
        }
        out
    }

    pub fn f32(&self, name: &str) -> &(Vec<usize>, Vec<f32>) {
        self.f32s.get(name).unwrap_or_else(|| panic!("tensor {name} missing"))
    }

    pub fn i64(&self, name: &str) -> &(Vec<usize>, Vec<i64>) {
        self.i64s.get(name).unwrap_or_else(|| panic!("tensor {name} missing"))
    }

    /// Row `i` of a tensor whose first axis is the step, with the row's shape.
    pub fn step_row(&self, name: &str, i: usize) -> (Vec<usize>, &[f32]) {
        let (shape, data) = self.f32(name);
        let len: usize = shape[1..].iter().product();
        (shape[1..].to_vec(), &data[i * len..(i + 1) * len])
    }

    pub fn meta_usize(&self, key: &str) -> usize {
        self.meta[key].parse().unwrap()
    }
}

/// Run the attnviz binary; returns (exit code, stdout, stderr).
pub fn attnviz(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_attnviz"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run attnviz");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Largest absolute difference, after checking the shapes agree.
pub fn max_diff(what: &str, a: &(Vec<usize>, Vec<f32>), b: &(Vec<usize>, Vec<f32>)) -> f32 {
    assert_eq!(a.0, b.0, "{what}: shapes differ");
    a.1.iter().zip(&b.1).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Copy fixture folder `case` into `to` (tests that edit or break files work on the copy).
pub fn copy_fixture(case: &str, to: &Path) -> PathBuf {
    let dst = to.join(case);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(fixtures().join(case)).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
    dst
}

/// Run attnviz where it must fail; check it exits 1 with one `attnviz: error:` line and no panic,
/// and return that line.
pub fn error_line(args: &[&str], env: &[(&str, &str)]) -> String {
    let (code, out, err) = attnviz(args, env);
    assert_eq!(code, 1, "expected failure, got {code}: {out}{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line: {err}");
    assert!(lines[0].starts_with("attnviz: error: "), "{err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
    lines[0].to_string()
}
pub mod tmux;

/// max |a − b| over equal-length slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Index of the largest value (the first, on ties): the greedy token.
pub fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &x)| if x > best.1 { (i, x) } else { best }).0
}
