//! The app's behaviour, actions in and state out, with no terminal.

use super::*;
use crate::tui::data::{ModelInfo, StepInfo, Token};
use crate::tui::theme::ColorMode;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn info(source: &str) -> ModelInfo {
    ModelInfo::for_test(source, 4, 4, 2, 32)
}

fn app(models: &[&str]) -> App {
    let sources: Vec<String> = models.iter().map(|s| s.to_string()).collect();
    App::new(
        &sources,
        "It is a truth",
        false,
        GenSettings::default(),
        Theme::new(ColorMode::TrueColor, ColorMap::Viridis),
    )
}

fn msg(pane: usize, report: Report) -> Message {
    Message { pane, report }
}

fn token(id: u32, prompt: bool) -> Token {
    Token { id, text: format!("t{id}"), prompt }
}

fn step(index: usize, positions: usize) -> Report {
    let s = StepInfo { index, positions, kv_len: vec![positions; 4], kv_bytes: positions * 2048, forward_ms: 10.0 };
    Report::Step(s, token(100 + index as u32, false))
}

/// A loaded pane with a 5-token prompt and `n` steps.
fn running(a: &mut App, pane: usize, n: usize) {
    a.report(msg(pane, Report::Loaded(info("tiny-gqa"))));
    a.report(msg(pane, Report::Started((0..5).map(|i| token(i, true)).collect())));
    for s in 0..n {
        a.report(msg(pane, step(s, 5 + s)));
    }
}

fn allows(cmds: &[Command]) -> Vec<(usize, Option<usize>)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Job(i, Job::Allow(n)) => Some((*i, *n)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_loaded_model_starts_generating_the_prompt() {
    let mut a = app(&["tiny-gqa"]);
    let cmds = a.report(msg(0, Report::Loaded(info("tiny-gqa"))));
    match cmds.as_slice() {
        [Command::Job(0, Job::Generate(r))] => {
            assert_eq!(r.prompt, "It is a truth");
            assert_eq!(r.allow, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.main().status, PaneStatus::Generating);
}

#[test]
fn steps_grow_tokens_and_the_selection_follows_the_newest_row() {
    let mut a = app(&["tiny-gqa"]);
    running(&mut a, 0, 3);
    assert_eq!(a.main().tokens.len(), 8);
    assert_eq!(a.main().positions(), 7);
    assert_eq!(a.query_of(a.main()), 6);
    a.focus = Focus::Tokens;
    a.update(Action::Left);
    assert_eq!(a.sel.query, Some(5));
    a.update(Action::Follow);
    a.report(msg(0, step(3, 8)));
    assert_eq!(a.query_of(a.main()), 7);
    // Moving past the end clamps to the last fed position.
    a.update(Action::Right);
    a.update(Action::Right);
    assert_eq!(a.sel.query, Some(7));
}

#[test]
fn layer_and_head_keys_clamp_and_mean_toggles() {
    let mut a = app(&["tiny-gqa"]);
    running(&mut a, 0, 1);
    for _ in 0..10 {
        a.update(Action::LayerNext);
        a.update(Action::HeadNext);
    }
    assert_eq!((a.sel.layer, a.sel.head), (3, Some(3)));
    a.update(Action::MeanHeads);
    assert_eq!(a.sel.head, None);
    a.update(Action::LayerPrev);
    assert_eq!(a.sel.layer, 2);
    let w = a.wants(0, nav::Room { map: Some((80, 80)), grid: true, state_rows: None });
    let m = w.map.unwrap();
    assert_eq!((m.layer, m.head, m.rows.clone(), m.width), (2, None, 0..5, 80));
    assert_eq!(w.row, Some((2, None, 4)));
    assert!(w.grid);
}

#[test]
fn pause_step_and_resume_drive_the_gate() {
    let mut a = app(&["tiny-gqa"]);
    running(&mut a, 0, 2);
    assert_eq!(allows(&a.update(Action::PauseResume)), vec![(0, Some(2))]);
    assert_eq!(a.main().status, PaneStatus::Paused);
    assert_eq!(allows(&a.update(Action::Step)), vec![(0, Some(3))]);
    assert_eq!(allows(&a.update(Action::PauseResume)), vec![(0, None)]);
    assert_eq!(a.main().status, PaneStatus::Generating);
    a.report(msg(0, Report::Done(StopReason::MaxTokens)));
    assert!(a.update(Action::PauseResume).is_empty(), "nothing to pause after the run");
}

#[test]
fn side_by_side_models_step_in_lockstep() {
    let mut a = app(&["tiny-mha", "tiny-gqa"]);
    for p in 0..2 {
        match a.report(msg(p, Report::Loaded(info("m"))))[..] {
            [Command::Job(_, Job::Generate(ref r))] => assert_eq!(r.allow, Some(1)),
            ref other => panic!("{other:?}"),
        }
        a.report(msg(p, Report::Started(vec![token(1, true)])));
    }
    assert!(allows(&a.report(msg(0, step(0, 1)))).is_empty(), "pane 1 has not done its prefill yet");
    assert_eq!(allows(&a.report(msg(1, step(0, 1)))), vec![(0, Some(2)), (1, Some(2))]);
    // One model stops early; the other goes on alone.
    a.report(msg(0, Report::Done(StopReason::Eos)));
    assert!(allows(&a.report(msg(1, step(1, 2)))) == vec![(1, Some(3))]);
}

#[test]
fn editing_the_prompt_regenerates_and_escape_reverts() {
    let mut a = app(&["tiny-gqa"]);
    running(&mut a, 0, 1);
    a.update(Action::EditPrompt);
    assert_eq!(a.overlay, Overlay::Prompt);
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    for c in " universally".chars() {
        a.prompt_key(key(KeyCode::Char(c)));
    }
    let cmds = a.prompt_key(key(KeyCode::Enter));
    match cmds.as_slice() {
        [Command::Job(0, Job::Generate(r))] => assert_eq!(r.prompt, "It is a truth universally"),
        other => panic!("{other:?}"),
    }
    a.update(Action::EditPrompt);
    a.prompt_key(key(KeyCode::Backspace));
    a.prompt_key(key(KeyCode::Esc));
    assert_eq!(a.prompt.text, "It is a truth universally");
    assert_eq!(a.overlay, Overlay::None);
}

#[test]
fn settings_change_sampling_and_apply_regenerates() {
    let mut a = app(&["tiny-gqa"]);
    running(&mut a, 0, 1);
    a.update(Action::Settings);
    a.update(Action::Down); // temperature
    a.update(Action::Left);
    assert!(!a.settings.greedy);
    assert!((a.settings.temperature - 0.9).abs() < 1e-6);
    let cmds = a.settings_apply();
    match cmds.as_slice() {
        [Command::Job(0, Job::Generate(r))] => {
            assert!(
                matches!(r.sampling, crate::sample::Sampling::Random { temperature, .. } if (temperature - 0.9).abs() < 1e-6)
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn help_opens_scrolls_and_closes_and_focus_cycles() {
    let mut a = app(&["tiny-gqa"]);
    a.update(Action::Help);
    a.update(Action::Down);
    assert_eq!(a.overlay, Overlay::Help { scroll: 1 });
    a.update(Action::Close);
    assert_eq!(a.overlay, Overlay::None);
    let start = a.focus;
    for _ in 0..4 {
        a.update(Action::FocusNext);
    }
    assert_eq!(a.focus, start);
    a.update(Action::FocusPrev);
    assert_eq!(a.focus, Focus::Tokens);
    a.update(Action::Quit);
    assert!(a.quit);
}

#[test]
fn a_failed_load_is_shown_and_the_rest_stays_usable() {
    let mut a = app(&["broken", "tiny-gqa"]);
    a.report(msg(0, Report::Failed("weights: missing file".into())));
    assert_eq!(a.panes[0].status, PaneStatus::Failed("weights: missing file".into()));
    a.report(msg(1, Report::Loaded(info("tiny-gqa"))));
    assert_eq!(a.panes[1].status, PaneStatus::Generating);
}
