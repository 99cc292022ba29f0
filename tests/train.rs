//! `attnviz train` end to end at smoke size: a trained folder loads like
//! any other model, Ctrl-C leaves a usable checkpoint, bad input is one line.

mod common;

use common::{attnviz, error_line};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Real English text for the corpus: this project's own README and sources.
fn corpus(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(root.join("README.md")).expect("README");
    for f in ["src/train.rs", "src/model/mamba.rs", "src/model/decoder.rs"] {
        text += &std::fs::read_to_string(root.join(f)).expect("source");
    }
    let path = dir.join("corpus.txt");
    std::fs::write(&path, text).expect("write corpus");
    path
}

const SMALL: [&str; 12] =
    ["--d-model", "32", "--layers", "1", "--batch", "2", "--seq-len", "16", "--vocab-size", "300", "--eval-every", "2"];

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn a_trained_folder_runs_in_the_engine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let corpus = corpus(dir.path());
    for arch in ["swa", "mamba"] {
        let out = dir.path().join(arch);
        let mut args = vec!["train", "--arch", arch, "--corpus", s(&corpus), "--out", s(&out), "--steps", "3"];
        args.extend(SMALL);
        let (code, _, err) = attnviz(&args, &[]);
        assert_eq!(code, 0, "{arch}: {err}");
        assert!(err.contains("trained: 3 steps"), "{err}");
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("training.json")).expect("training.json"))
                .expect("JSON");
        assert_eq!((record["steps"].as_u64(), record["tokens"].as_u64()), (Some(3), Some(3 * 2 * 16)));
        assert!(record["eval_loss"].as_f64().is_some_and(f64::is_finite));
        let trace = dir.path().join(format!("{arch}.st"));
        let (code, _, err) = attnviz(
            &["capture", "--model", s(&out), "--prompt", "the model", "--max-new-tokens", "2", "--out", s(&trace)],
            &[],
        );
        assert_eq!(code, 0, "{arch}: {err}");
    }
}

#[test]
fn ctrl_c_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let corpus = corpus(dir.path());
    let out = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_attnviz"))
        .args(["train", "--arch", "gqa", "--corpus", s(&corpus), "--out", s(&out), "--steps", "100000"])
        .args(SMALL)
        .args(["--save-every", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait for the first progress line, then interrupt.
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    assert!(lines.next().is_some_and(|l| l.is_ok_and(|l| l.contains("step"))));
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(kill.success());
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped early")), "{rest:?}");
    let record = std::fs::read_to_string(out.join("training.json")).expect("training.json");
    assert!(record.contains("\"interrupted\": true"), "{record}");
    let (code, _, err) = attnviz(&["generate", "--model", s(&out), "--prompt", "the", "--max-new-tokens", "2"], &[]);
    assert_eq!(code, 0, "the checkpoint loads: {err}");
}

#[test]
fn bad_input_is_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "  \n").expect("write");
    let out = dir.path().join("o");
    for (corpus, want) in [(dir.path().join("missing.txt"), "cannot read"), (empty, "empty")] {
        let err = error_line(&["train", "--arch", "mha", "--corpus", s(&corpus), "--out", s(&out)], &[]);
        assert!(err.contains(want), "{err}");
    }
    let (code, _, err) = attnviz(&["train", "--arch", "rnn", "--corpus", "x", "--out", s(&out)], &[]);
    assert_eq!(code, 2, "clap refuses an unknown arch: {err}");
}
