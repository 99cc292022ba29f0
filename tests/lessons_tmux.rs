//! Every lesson end to end in a real terminal (see common/tmux.rs): open it,
//! walk every step in normal and presenter mode, wait for each live panel
//! to settle, and find no error on screen; quit and get the shell back.
//! Data-driven: the lessons come from `attnviz lessons --json` once that
//! command exists, plus the built-in panel tour.

mod common;

use common::tmux::{bin, Tmux};
use std::process::Command;
use std::time::Duration;

/// What `attnviz lesson` accepts for every lesson there is.
fn lesson_names() -> Vec<String> {
    let mut names = vec!["panels".to_string()];
    let out = Command::new(bin()).args(["lessons", "--json"]).output().expect("attnviz runs");
    if out.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("lessons --json prints JSON");
        let list = v.get("lessons").unwrap_or(&v).as_array().cloned().unwrap_or_default();
        for l in list {
            let name = l["slug"].as_str().map(String::from).or_else(|| l["number"].as_u64().map(|n| n.to_string()));
            names.extend(name);
        }
        assert!(names.len() > 1, "attnviz lessons --json listed nothing:\n{}", String::from_utf8_lossy(&out.stdout));
    }
    names
}

/// Words that must never be on screen.
fn assert_clean(s: &str, what: &str) {
    let low = s.to_lowercase();
    // "rounding error" is prose; an error is "error:" or a failure word.
    for bad in ["error:", "failed", "panicked", "could not"] {
        assert!(!low.contains(bad), "{what}: {bad:?} on screen:\n{s}");
    }
}

/// "step K/N" on screen: (K, N).
fn counter(s: &str) -> Option<(usize, usize)> {
    let rest = s.split("step ").skip(1).find(|r| r.split('/').next().is_some_and(|k| k.parse::<usize>().is_ok()))?;
    let (k, n) = rest.split_once('/')?;
    let n: String = n.chars().take_while(char::is_ascii_digit).collect();
    Some((k.parse().ok()?, n.parse().ok()?))
}

/// Still loading or computing: a live panel has not drawn yet.
fn settling(s: &str) -> bool {
    ["loading ", "waiting for", "starting the model", "computing"].iter().any(|w| s.contains(w))
}

fn walk(name: &str, present: bool) {
    let (w, h) = if present { (100, 30) } else { (120, 32) };
    let t = Tmux::start(&format!("lesson-{name}-{present}"), w, h);
    let flag = if present { " --present" } else { "" };
    t.run(&format!("{} lesson {name}{flag}", bin()));
    let s = t.wait_for("the step counter", Duration::from_secs(30), |s| counter(s).is_some());
    let (first, n) = counter(&s).unwrap_or_default();
    assert_eq!(first, 1, "{name} opens at its first step:\n{s}");
    assert!(n >= 1);
    for k in 1..=n {
        let what = format!("{name} step {k}/{n}{flag}");
        t.wait_for(&what, Duration::from_secs(20), |s| counter(s) == Some((k, n)));
        let s = t.wait_for(&format!("{what} to settle"), Duration::from_secs(90), |s| {
            !settling(s) || {
                assert_clean(s, &what);
                false
            }
        });
        assert_clean(&s, &what);
        if k < n {
            t.keys(&["Right"]);
        }
    }
    // Past the last step nothing moves; back one and forward again.
    t.keys(&["Right"]);
    t.wait_text("last step", 10);
    if n > 1 {
        t.keys(&["Left"]);
        t.wait_for("the step before the last", Duration::from_secs(10), |s| counter(s) == Some((n - 1, n)));
    }
    t.keys(&["?"]);
    t.wait_text("next step", 10);
    t.keys(&["Escape"]);
    // A key sent right behind Esc would arrive as Alt+key: wait for the help to close first.
    t.wait_for("the help to close", Duration::from_secs(10), |s| !s.contains("next step"));
    t.quit();
}

#[test]
fn every_lesson_walks_end_to_end_in_normal_mode() {
    for name in lesson_names() {
        walk(&name, false);
    }
}

#[test]
fn every_lesson_walks_end_to_end_in_presenter_mode() {
    for name in lesson_names() {
        walk(&name, true);
    }
}

#[test]
fn an_unknown_lesson_is_one_line_and_no_terminal_is_taken() {
    let out = Command::new(bin()).args(["lesson", "no-such-lesson"]).output().expect("attnviz runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no lesson") && err.contains("panels"), "{err}");
}
