//! Whole screens on ratatui's TestBackend with committed snapshots, from
//! real zoo models run to the end (greedy, so the text is reproducible) and
//! the products the workers would compute, computed here in line.

use super::*;
use crate::model;
use crate::session::{self, Options, Session};
use crate::trace::Trace;
use crate::tui::app::{App, GenSettings};
use crate::tui::data::{StepInfo, Token};
use crate::tui::products;
use crate::tui::theme::{ColorMap, ColorMode, Theme};
use crate::tui::worker::{model_info, Message, Report};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::sync::Arc;

const PROMPT: &str = "It is a truth universally acknowledged, that a single man in possession of a good fortune";

/// Run `source` on `prompt` for `n` tokens and return the trace and what the app is told.
fn run(source: &str, prompt: &str, n: usize) -> (Trace, Vec<Report>) {
    let loaded = model::load(source, &candle_core::Device::Cpu).unwrap();
    let tok = Arc::new(loaded.tokenizer);
    let ids = session::prompt_ids(&tok, prompt, false, false, 4096).unwrap();
    let mut reports = vec![Report::Loaded(model_info(&loaded.model, source, "cpu"))];
    reports.push(Report::Started(ids.iter().map(|&id| Token { id, text: tok.token_text(id), prompt: true }).collect()));
    let mut trace = Trace::for_model(&loaded.model, &ids);
    let opts =
        Options { max_new_tokens: n, sampling: crate::sample::Sampling::Greedy, ignore_eos: true, capture: true };
    Session::start(loaded.model, tok.clone(), ids, opts)
        .follow(|s| {
            let info = StepInfo {
                index: s.index,
                positions: s.fed.end,
                kv_len: s.kv_len.clone(),
                kv_bytes: s.kv_bytes,
                forward_ms: 0.0,
            };
            reports.push(Report::Step(info, Token { id: s.token, text: tok.token_text(s.token), prompt: false }));
            trace.push(s);
        })
        .unwrap();
    reports.push(Report::Done(crate::session::StopReason::MaxTokens));
    (trace, reports)
}

fn theme(mode: ColorMode) -> Theme {
    Theme::new(mode, ColorMap::Viridis)
}

/// Feed the reports of each run to an app, then what its workers would compute for `size`.
fn explored(runs: &[(&str, Trace, Vec<Report>)], size: Rect, mode: ColorMode, edit: impl Fn(&mut App)) -> App {
    let sources: Vec<String> = runs.iter().map(|r| r.0.to_string()).collect();
    let mut app = App::new(&sources, PROMPT, false, GenSettings::default(), theme(mode));
    for (i, (_, _, reports)) in runs.iter().enumerate() {
        for r in reports {
            let r = match r {
                Report::Loaded(x) => Report::Loaded(x.clone()),
                Report::Started(t) => Report::Started(t.clone()),
                Report::Step(s, t) => Report::Step(s.clone(), t.clone()),
                Report::Done(d) => Report::Done(*d),
                _ => continue,
            };
            app.report(Message { pane: i, report: r });
        }
    }
    edit(&mut app);
    for (i, (_, trace, _)) in runs.iter().enumerate() {
        let want = app.wants(i, room(&app, size, i));
        let pane = &mut app.panes[i];
        if let Some(w) = &want.map {
            let (m, v) = products::map_view(trace, w).unwrap();
            pane.map = Some(m);
            pane.cursor_value = v;
        }
        if let Some((l, h, q)) = want.row {
            pane.row = Some(products::query_row(trace, l, h, q).unwrap());
        }
        if want.grid {
            let mut g = products::empty_grid(trace);
            for layer in 0..g.layers {
                let (t, s) = products::grid_layer(trace, layer, true).unwrap();
                g.thumbs.extend(t);
                g.scores.extend(s);
            }
            pane.grid = Some(g);
        }
        if let Some((layer, _, rows)) = want.state {
            let held = trace.state.as_ref().map_or(0, |s| s.steps.len() - 1);
            pane.state = products::state_view(trace, layer, held, rows).unwrap();
        }
    }
    app
}

fn draw(app: &App, size: Rect) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(size.width, size.height)).unwrap();
    t.draw(|f| super::draw(f, app)).unwrap();
    t
}

#[test]
fn explorer_on_tiny_gqa() {
    let (trace, reports) = run("tiny-gqa", PROMPT, 12);
    let size = Rect::new(0, 0, 160, 48);
    let app = explored(&[("tiny-gqa", trace, reports)], size, ColorMode::TrueColor, |a| {
        a.sel.layer = 2;
        a.sel.pattern = Some(crate::metrics::Pattern::PreviousToken);
    });
    insta::assert_snapshot!(draw(&app, size).backend());
}

#[test]
fn sliding_window_map_on_tiny_swa() {
    let prompt = format!("{PROMPT}, must be in want of a wife.");
    let (trace, reports) = run("tiny-swa", &prompt, 8);
    let size = Rect::new(0, 0, 140, 44);
    let app = explored(&[("tiny-swa", trace, reports)], size, ColorMode::TrueColor, |a| a.sel.layer = 3);
    insta::assert_snapshot!(draw(&app, size).backend());
}

#[test]
fn mamba_state_on_tiny_mamba() {
    let (trace, reports) = run("tiny-mamba", PROMPT, 8);
    let size = Rect::new(0, 0, 140, 40);
    let app = explored(&[("tiny-mamba", trace, reports)], size, ColorMode::TrueColor, |a| a.sel.layer = 1);
    insta::assert_snapshot!(draw(&app, size).backend());
}

#[test]
fn long_sequence_zoomed_out_and_in() {
    let long = vec![PROMPT; 16].join(". ");
    let (trace, reports) = run("tiny-gqa", &long, 4);
    assert!(trace.positions() > 300, "{}", trace.positions());
    let size = Rect::new(0, 0, 160, 48);
    let runs = [("tiny-gqa", trace, reports)];
    let app = explored(&runs, size, ColorMode::TrueColor, |_| {});
    insta::assert_snapshot!("long_fit", draw(&app, size).backend());
    let app = explored(&runs, size, ColorMode::TrueColor, |a| {
        a.sel.zoom = 3;
        a.sel.query = Some(200);
        a.sel.key = Some(190);
    });
    insta::assert_snapshot!("long_zoomed", draw(&app, size).backend());
}

#[test]
fn four_models_side_by_side() {
    let runs: Vec<(&str, Trace, Vec<Report>)> = ["tiny-mha", "tiny-gqa", "tiny-swa", "tiny-mamba"]
        .into_iter()
        .map(|m| {
            let (t, r) = run(m, PROMPT, 6);
            (m, t, r)
        })
        .collect();
    let size = Rect::new(0, 0, 200, 50);
    let app = explored(&runs, size, ColorMode::TrueColor, |a| a.sel.layer = 1);
    insta::assert_snapshot!(draw(&app, size).backend());
}

#[test]
fn no_color_help_and_a_tiny_terminal() {
    let (trace, reports) = run("tiny-mqa", PROMPT, 4);
    let size = Rect::new(0, 0, 120, 36);
    let runs = [("tiny-mqa", trace, reports)];
    let mut app = explored(&runs, size, ColorMode::None, |_| {});
    insta::assert_snapshot!("no_color", draw(&app, size).backend());
    app.overlay = crate::tui::app::Overlay::Help { scroll: 0 };
    insta::assert_snapshot!("help", draw(&app, size).backend());
    let tiny = Rect::new(0, 0, 60, 20);
    insta::assert_snapshot!("tiny", draw(&app, tiny).backend());
}
