//! The real binary in a real terminal: tmux runs a shell, keys are typed with
//! `send-keys`, the screen is read with `capture-pane`. Every wait is for
//! something to appear on screen, with a bounded timeout — never a sleep.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PROMPT: &str = "READY$";

struct Tmux {
    socket: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    /// A shell in a detached tmux session of `w` × `h` cells, in an empty folder
    /// with an empty, offline Hugging Face cache.
    fn start(name: &str, w: u16, h: u16) -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        let socket = format!("attnviz-{name}-{}", std::process::id());
        let hf = dir.path().join("hf");
        let t = Tmux { socket, dir };
        let shell = format!("env -i PATH=/usr/bin:/bin HOME={home} TERM=xterm-256color COLORTERM=truecolor HF_HOME={hf} \
             HF_HUB_OFFLINE=1 PS1='{PROMPT} ' bash --norc --noprofile",
            home = t.dir.path().display(),
            hf = hf.display(),
        );
        t.tmux(&["new-session", "-d", "-x", &w.to_string(), "-y", &h.to_string(), "-c", &t.path().display().to_string(), &shell]);
        t.tmux(&["set-option", "-g", "window-size", "manual"]);
        t.wait_for("the shell prompt", Duration::from_secs(10), |s| s.contains(PROMPT));
        t
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("tmux runs");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p"])
    }

    /// Type a command line into the shell.
    fn run(&self, line: &str) {
        self.tmux(&["send-keys", "-l", line]);
        self.tmux(&["send-keys", "Enter"]);
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    fn resize(&self, w: u16, h: u16) {
        self.tmux(&["resize-window", "-x", &w.to_string(), "-y", &h.to_string()]);
    }

    /// Poll the screen until `ok` holds; fail with the screen after `limit`.
    fn wait_for(&self, what: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if start.elapsed() > limit {
                panic!("waited {limit:?} for {what}; the screen shows:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_text(&self, text: &str, secs: u64) -> String {
        self.wait_for(&format!("{text:?}"), Duration::from_secs(secs), |s| s.contains(text))
    }

    /// `q`, then the shell prompt is back on a restored screen.
    fn quit(&self) {
        self.keys(&["q"]);
        let s = self.wait_for("the shell prompt after quitting", Duration::from_secs(10), |s| {
            s.lines().filter(|l| !l.trim().is_empty()).last().is_some_and(|l| l.trim() == PROMPT)
        });
        assert!(!s.contains("Attention ·"), "the UI is still on screen:\n{s}");
        let mode = self.tmux(&["display-message", "-p", "#{alternate_on} #{mouse_any_flag}"]);
        assert_eq!(mode.trim(), "0 0", "alternate screen / mouse reporting left on");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}

fn bin() -> String {
    env!("CARGO_BIN_EXE_attnviz").to_string()
}

fn status_line(s: &str) -> String {
    s.lines().filter(|l| !l.trim().is_empty()).last().unwrap_or_default().to_string()
}

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
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{}", &svg[..100.min(svg.len())]);
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
