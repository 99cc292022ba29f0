//! The explorer end to end: the real binary in tmux (see common/tmux.rs).

mod common;

use common::tmux::{bin, status_line, Tmux};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[test]
fn explorer_generates_switches_views_resizes_exports_and_quits() {
    let t = Tmux::start("main", 160, 48);
    t.run(&format!("{} --max-new-tokens 24", bin()));
    t.wait_text("Attention · L0 H0", 30);
    t.wait_text("Tokens ·", 5);
    t.wait_for("generation to finish", Duration::from_secs(60), |s| status_line(s).contains("done ("));
    t.keys(&["]"]);
    t.wait_text("Attention · L1 H0", 10);
    t.keys(&["."]);
    t.wait_text("Attention · L1 H1", 10);
    t.keys(&["m"]);
    t.wait_text("L1 mean of 4 heads", 10);
    t.keys(&["?"]);
    t.wait_text("show or hide this help", 10);
    t.keys(&["Escape"]);
    t.wait_for("the help to close", Duration::from_secs(10), |s| !s.contains("show or hide this help"));
    t.resize(60, 20);
    t.wait_text("terminal too small (need 80×24", 10);
    t.resize(160, 48);
    t.wait_text("Attention · L1 mean", 10);
    t.keys(&["x"]);
    let s = t.wait_text("saved ", 10);
    let name = s.split("saved ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().to_string();
    let svg = std::fs::read_to_string(t.path().join(name.trim_start_matches("./"))).unwrap();
    assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"), "{}", &svg[..100.min(svg.len())]);
    assert!(svg.contains("Attention"));
    t.quit();
}

fn capture_trace(dir: &Path) -> PathBuf {
    let out = dir.join("trace.safetensors");
    let st = Command::new(bin())
        .args(["capture", "--model", "tiny-swa", "--max-new-tokens", "6", "--out"])
        .arg(&out)
        .args(["--prompt", "It is a truth universally acknowledged, that a single man in possession of a good fortune"])
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    out
}

#[test]
fn view_opens_a_captured_trace_without_the_model() {
    let t = Tmux::start("view", 140, 40);
    let trace = capture_trace(t.path());
    t.run(&format!("{} view {}", bin(), trace.display()));
    t.wait_text("recorded trace", 20);
    t.wait_text("Attention · L0 H0", 5);
    t.keys(&["]", "]"]);
    t.wait_text("Attention · L2 H0", 10);
    t.keys(&["e"]);
    t.wait_text("a recorded trace cannot generate", 10);
    t.quit();
}

#[test]
fn compare_runs_four_models_side_by_side() {
    let t = Tmux::start("compare", 200, 50);
    t.run(&format!("{} --compare tiny-mha,tiny-gqa,tiny-swa,tiny-mamba --max-new-tokens 8", bin()));
    t.wait_for("four panes to finish", Duration::from_secs(90), |s| {
        ["tiny-mha ·", "tiny-gqa ·", "tiny-swa ·"].iter().all(|n| s.contains(n)) && status_line(s).contains("done (")
    });
    t.wait_text("Δ", 10);
    t.quit();
}

#[test]
fn paused_start_single_steps_then_resumes_and_regenerates() {
    let t = Tmux::start("paused", 140, 40);
    t.run(&format!("{} --paused --max-new-tokens 6", bin()));
    t.wait_for("the prefill, then a pause", Duration::from_secs(30), |s| {
        let l = status_line(s);
        l.contains("paused") && l.contains("step 1/6")
    });
    t.keys(&["s"]);
    t.wait_for("one more token", Duration::from_secs(10), |s| status_line(s).contains("step 2/6"));
    t.keys(&["s"]);
    t.wait_for("one more token", Duration::from_secs(10), |s| status_line(s).contains("step 3/6"));
    t.keys(&["Space"]);
    t.wait_for("the run to finish", Duration::from_secs(30), |s| status_line(s).contains("done (max tokens)"));
    // Edit the prompt and generate again (the pause setting is left behind).
    t.keys(&["e", "C-u"]);
    t.tmux(&["send-keys", "-l", "Emma Woodhouse, handsome, clever"]);
    t.keys(&["Enter"]);
    t.wait_for("the new prompt's run", Duration::from_secs(30), |s| {
        s.contains("·Wood") && status_line(s).contains("done (max tokens)")
    });
    t.quit();
}

/// Every new family in the explorer through the same views: attention maps for the transformers,
/// the state view for Mamba and Mamba-2.
#[test]
fn the_explorer_runs_every_family() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let groups = [["gemma2", "qwen3", "phi3", "mamba2"], ["gpt_neox", "gemma3_text", "qwen2_bias", "mamba"]];
    for (i, cases) in groups.into_iter().enumerate() {
        let t = Tmux::start(&format!("families{i}"), 200, 50);
        // Short names in the pane titles: links in the session's folder.
        for c in cases {
            std::os::unix::fs::symlink(fixtures.join(c), t.path().join(c)).unwrap();
        }
        let list: Vec<String> = cases.iter().map(|c| format!("./{c}")).collect();
        t.run(&format!("{} --compare {} --max-new-tokens 4", bin(), list.join(",")));
        t.wait_for("every pane to finish and draw", Duration::from_secs(60), |s| {
            let maps = s.matches("· Attention · L0 H0").count() == 3 && s.matches("= 0.").count() == 3;
            status_line(s).contains("done (") && maps && s.contains("state · layer 0")
        });
        t.quit();
    }
}

#[test]
fn a_model_that_fails_to_load_is_shown_and_the_rest_runs() {
    let t = Tmux::start("broken", 160, 40);
    let broken = t.path().join("no-such-model");
    t.run(&format!("{} --compare tiny-gqa,{} --max-new-tokens 4", bin(), broken.display()));
    t.wait_text("no-such-model", 20);
    t.wait_for("the working model to finish", Duration::from_secs(30), |s| {
        s.contains("tiny-gqa · Tokens · ") && s.contains("4 generated")
    });
    t.quit();
}

#[test]
fn the_lessons_tab_opens_a_lesson_in_place_and_comes_back() {
    let t = Tmux::start("tabs", 150, 44);
    t.run(&format!("{} --max-new-tokens 8", bin()));
    t.wait_text("Attention · L0 H0", 30);
    t.keys(&["L"]);
    t.wait_text("Lessons: text beside live panels", 10);
    t.keys(&["Down", "Down", "Enter"]);
    t.wait_text("Lesson 3 · The KV cache", 10);
    t.wait_for("the lesson's live model", Duration::from_secs(30), |s| {
        s.contains("step 1/4") && s.contains("KV cache")
    });
    t.keys(&["l"]);
    t.wait_text("step 2/4", 10);
    t.keys(&["q"]);
    t.wait_text("Lessons: text beside live panels", 10);
    t.keys(&["Escape"]);
    t.wait_text("Attention · L0 H0", 10);
    t.quit();
}
