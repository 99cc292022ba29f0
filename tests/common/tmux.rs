//! Driving the real binary in a real terminal: tmux runs a shell, keys are
//! typed with `send-keys`, the screen is read with `capture-pane`. Every wait
//! is for something to appear on screen, with a bounded timeout — never a sleep.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub const PROMPT: &str = "READY$";

pub struct Tmux {
    socket: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    /// A shell in a detached tmux session of `w` × `h` cells, in an empty folder
    /// with an empty, offline Hugging Face cache.
    pub fn start(name: &str, w: u16, h: u16) -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        let socket = format!("attnviz-{name}-{}", std::process::id());
        let hf = dir.path().join("hf");
        let t = Tmux { socket, dir };
        let shell = format!(
            "env -i PATH=/usr/bin:/bin HOME={home} TERM=xterm-256color COLORTERM=truecolor HF_HOME={hf} \
             HF_HUB_OFFLINE=1 PS1='{PROMPT} ' bash --norc --noprofile",
            home = t.dir.path().display(),
            hf = hf.display(),
        );
        t.tmux(&[
            "new-session",
            "-d",
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
            "-c",
            &t.path().display().to_string(),
            &shell,
        ]);
        t.tmux(&["set-option", "-g", "window-size", "manual"]);
        t.wait_for("the shell prompt", Duration::from_secs(10), |s| s.contains(PROMPT));
        t
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("tmux runs");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p"])
    }

    /// Type a command line into the shell.
    pub fn run(&self, line: &str) {
        self.tmux(&["send-keys", "-l", line]);
        self.tmux(&["send-keys", "Enter"]);
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    pub fn resize(&self, w: u16, h: u16) {
        self.tmux(&["resize-window", "-x", &w.to_string(), "-y", &h.to_string()]);
    }

    /// Poll the screen until `ok` holds; fail with the screen after `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
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

    pub fn wait_text(&self, text: &str, secs: u64) -> String {
        self.wait_for(&format!("{text:?}"), Duration::from_secs(secs), |s| s.contains(text))
    }

    /// `q`, then the shell prompt is back on a restored screen.
    pub fn quit(&self) {
        self.keys(&["q"]);
        let s = self.wait_for("the shell prompt after quitting", Duration::from_secs(10), |s| {
            s.lines().rfind(|l| !l.trim().is_empty()).is_some_and(|l| l.trim() == PROMPT)
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

/// The last non-blank line: the status bar.
pub fn status_line(s: &str) -> String {
    s.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default().to_string()
}

pub fn bin() -> String {
    env!("CARGO_BIN_EXE_attnviz").to_string()
}
