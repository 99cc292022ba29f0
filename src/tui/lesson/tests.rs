//! The lesson screen driven by keys and fake worker reports, and drawn
//! into a TestBackend in normal and presenter mode.

use super::keys::LessonAction as A;
use super::*;
use crate::lesson::{Panel, Step};
use crate::tui::data::ModelInfo;
use crate::tui::theme::ColorMap;
use crate::tui::worker::{Job, Report};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

fn step(title: &str, md: &str, panel: Panel) -> Step {
    Step { title: title.into(), markdown: md.into(), panel }
}

fn lesson() -> Lesson {
    Lesson {
        number: 5,
        slug: "sliding-window".into(),
        title: "Sliding-window attention".into(),
        summary: "The band mask and the receptive field.".into(),
        references: vec!["Beltagy, Peters, Cohan (2020), Longformer, arXiv:2004.05150".into()],
        steps: vec![
            step("Why a window", "# Why\n\nA query sees the **W** most recent keys, *itself included*.", Panel::None),
            step(
                "The band",
                "The mask with `W = 3`:\n\n- ■ may look\n- · may not",
                Panel::Mask { kind: "sliding".into(), size: 8, window: Some(3), layers: 2 },
            ),
            step("One query", "Scores.", Panel::Sdpa { model: "tiny-gqa".into(), layer: 0, head: 0, unscaled: false }),
            step("One head", "The map.", Panel::Attention { model: "tiny-gqa".into(), layer: 0, head: 0 }),
            step(
                "Two models",
                "Side by side.",
                Panel::Compare {
                    models: vec!["tiny-swa".into(), "tiny-gqa".into()],
                    view: "attention".into(),
                    prompt: None,
                },
            ),
            step(
                "Memory",
                "The calculator.",
                Panel::Calculator {
                    model: "mistral-7b".into(),
                    context: 32_768,
                    batch: 1,
                    dtype: "f16".into(),
                    claim_gb: None,
                },
            ),
        ],
    }
}

fn app(present: bool) -> (LessonApp, Vec<Command>) {
    let l = lesson();
    let texts = filled_texts(&l).unwrap();
    LessonApp::new(l, texts, present, Theme::new(ColorMode::TrueColor, ColorMap::Viridis))
}

fn info(source: &str) -> ModelInfo {
    ModelInfo::for_test(source, 2, 4, 2, 8)
}

fn screen(a: &LessonApp, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| Ui::draw(a, f)).unwrap();
    format!("{}", t.backend())
}

#[test]
fn stepping_spawns_reuses_and_replaces_models() {
    let (mut a, cmds) = app(false);
    assert!(cmds.is_empty(), "a text step starts no model");
    assert!(a.action(A::Next).is_empty(), "a mask needs no model");
    let cmds = a.action(A::Next);
    assert!(matches!(&cmds[..], [Command::Spawn(0, s)] if s == "tiny-gqa"), "{cmds:?}");
    // The same model on the next step: kept.
    assert!(a.action(A::Next).is_empty());
    // Two others: the old one is cancelled, fresh ids.
    let cmds = a.action(A::Next);
    assert!(
        matches!(&cmds[..], [Command::Job(0, Job::Cancel), Command::Spawn(1, _), Command::Spawn(2, _)]),
        "{cmds:?}"
    );
    // A late report of the old pane is dropped; the new ones start generating.
    assert!(a.report(Message { pane: 0, report: Report::Loaded(info("tiny-gqa")) }).is_empty());
    let cmds = a.report(Message { pane: 2, report: Report::Loaded(info("tiny-gqa")) });
    assert!(matches!(cmds[..], [Command::Job(2, Job::Generate(_))]), "{cmds:?}");
    // Back again: tiny-gqa alone is a new set.
    let cmds = a.action(A::Prev);
    assert!(matches!(&cmds[..], [Command::Job(1, Job::Cancel), Command::Job(2, Job::Cancel), Command::Spawn(3, _)]));
}

#[test]
fn keys_step_quit_and_toggle_overlays() {
    let (mut a, _) = app(false);
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    a.key(&key(KeyCode::PageDown));
    assert_eq!(a.step, 1);
    a.key(&key(KeyCode::Char('h')));
    a.key(&key(KeyCode::Left));
    assert_eq!(a.step, 0);
    assert!(a.message.as_deref().is_some_and(|m| m.contains("first step")));
    a.key(&key(KeyCode::Char('?')));
    assert_eq!(a.overlay, state::LessonOverlay::Help);
    a.key(&key(KeyCode::Esc));
    a.key(&key(KeyCode::Char('r')));
    assert_eq!(a.overlay, state::LessonOverlay::References);
    a.key(&key(KeyCode::Char('r')));
    assert_eq!(a.overlay, state::LessonOverlay::None);
    a.key(&key(KeyCode::Char('n')));
    a.key(&key(KeyCode::Char('+')));
    a.key(&key(KeyCode::Char('.')));
    assert_eq!((a.controls.window, a.controls.layers), (Some(4), 3));
    a.key(&key(KeyCode::Char('q')));
    assert!(Ui::quit(&a));
}

#[test]
fn live_steps_ask_their_workers_for_what_the_panel_draws() {
    let (mut a, _) = app(false);
    a.action(A::Next);
    a.action(A::Next);
    let size = Rect::new(0, 0, 120, 32);
    assert_eq!(Ui::wants(&a, 0, size), Wants::default(), "nothing before the model is loaded");
    a.report(Message { pane: 0, report: Report::Loaded(info("tiny-gqa")) });
    a.action(A::PickNext);
    assert_eq!(Ui::wants(&a, 0, size).qk, Some((0, 1)));
    assert_eq!(Ui::wants(&a, 7, size), Wants::default(), "not one of ours");
    assert!(Ui::animating(&a));
}

#[test]
fn normal_mode_snapshots() {
    let (mut a, _) = app(false);
    insta::assert_snapshot!("normal_text_step", screen(&a, 100, 24));
    a.action(A::Next);
    insta::assert_snapshot!("normal_mask_step", screen(&a, 100, 24));
    for _ in 0..4 {
        a.action(A::Next);
    }
    let s = screen(&a, 100, 24);
    assert!(s.contains("step 6/6") && s.contains("Longformer"), "references on the last step:\n{s}");
    insta::assert_snapshot!("normal_last_step", s);
    a.action(A::Help);
    assert!(screen(&a, 100, 30).contains("next step"));
    // Narrow and tiny terminals do not panic.
    screen(&a, 40, 12);
    screen(&a, 5, 2);
}

#[test]
fn presenter_mode_snapshots() {
    let (mut a, _) = app(true);
    let s = screen(&a, 100, 30);
    assert!(s.contains("step 1/6") && !s.contains('┌'), "no chrome:\n{s}");
    insta::assert_snapshot!("present_text_step", s);
    a.action(A::Next);
    let s = screen(&a, 100, 30);
    assert!(s.contains("step 2/6") && s.contains("■"), "the panel fits at 100 × 30:\n{s}");
    insta::assert_snapshot!("present_mask_step", s);
    screen(&a, 60, 20);
    screen(&a, 3, 3);
}

#[test]
fn the_panel_tour_has_every_panel_kind() {
    let l = demo::panels();
    let kinds: std::collections::HashSet<_> = l.steps.iter().map(|s| std::mem::discriminant(&s.panel)).collect();
    assert_eq!(kinds.len(), 10);
}
