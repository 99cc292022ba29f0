//! The explorer's command line without a terminal: every failure is one
//! line and a non-zero exit, and nothing is drawn into a pipe.

mod common;

use common::{attnviz, error_line};

#[test]
fn without_a_terminal_the_explorer_says_so_and_names_the_headless_commands() {
    for args in [&[][..], &["--model", "tiny-mamba"][..], &["--compare", "tiny-mha,tiny-gqa"][..]] {
        let (_, out, _) = attnviz(args, &[]);
        assert!(out.is_empty(), "escape codes went to a pipe: {out:?}");
        let line = error_line(args, &[]);
        assert!(line.contains("needs a terminal") && line.contains("attnviz capture"), "{line}");
    }
}

#[test]
fn view_refuses_bad_files_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.safetensors");
    assert!(error_line(&["view", missing.to_str().unwrap()], &[]).contains("nope.safetensors"));
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"definitely not a trace").unwrap();
    assert!(error_line(&["view", junk.to_str().unwrap()], &[]).contains("junk.safetensors"));
}

#[test]
fn bad_options_fail_before_the_terminal_is_touched() {
    let cases: [(&[&str], &str); 4] = [
        (&["--compare", "tiny-gqa"], "2 to 4"),
        (&["--compare", "tiny-mha,tiny-gqa,tiny-mqa,tiny-swa,tiny-mamba"], "2 to 4"),
        (&["--prompt", "  "], "prompt is empty"),
        (&["--device", "tpu"], "--device tpu"),
    ];
    for (args, want) in cases {
        let line = error_line(args, &[]);
        assert!(line.contains(want), "{args:?}: {line}");
    }
}
