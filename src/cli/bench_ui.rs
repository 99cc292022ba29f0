//! `attnviz bench --ui`: how fast the explorer draws and how little it slows
//! the model. Frames are drawn into ratatui's `TestBackend` (the same code
//! path as the terminal, minus writing the escape codes).

use attnviz::model;
use attnviz::sample::Sampling;
use attnviz::session::{Options, Session};
use attnviz::trace::Trace;
use attnviz::tui::app::{App, GenSettings};
use attnviz::tui::data::{StepInfo, Token};
use attnviz::tui::layout;
use attnviz::tui::products;
use attnviz::tui::theme::{ColorMap, ColorMode, Theme};
use attnviz::tui::worker::{self, model_info, Message, Report};
use attnviz::tui::{screen, started};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct UiBench {
    pub model: String,
    pub size: (u16, u16),
    pub positions: usize,
    pub device: String,
}

pub fn parse_size(s: &str) -> anyhow::Result<(u16, u16)> {
    let (w, h) = s.split_once('x').ok_or_else(|| anyhow::anyhow!("--size {s}: expected WxH, e.g. 240x70"))?;
    let (w, h): (u16, u16) = (w.trim().parse()?, h.trim().parse()?);
    anyhow::ensure!(w >= layout::MIN_SIZE.0 && h >= layout::MIN_SIZE.1, "--size {s}: the UI needs at least 80x24");
    Ok((w, h))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(b: UiBench) -> anyhow::Result<()> {
    first_frame(&b)?;
    draw_times(&b)?;
    decode_in_ui(&b)
}

fn theme() -> Theme {
    Theme::new(ColorMode::TrueColor, ColorMap::Viridis)
}

/// Launch as `attnviz` does (workers loading the model) and time the first frame.
fn first_frame(b: &UiBench) -> anyhow::Result<()> {
    let (tx, rx) = channel::<Message>();
    let _job = worker::spawn_live(0, b.model.clone(), b.device.clone(), tx);
    let app = App::new(std::slice::from_ref(&b.model), "It is a truth", false, GenSettings::default(), theme());
    let mut term = Terminal::new(TestBackend::new(b.size.0, b.size.1))?;
    term.draw(|f| screen::draw(f, &app))?;
    let first = started().elapsed();
    let loaded = loop {
        match rx.recv_timeout(Duration::from_secs(600)) {
            Ok(Message { report: Report::Loaded(_), .. }) => break started().elapsed(),
            Ok(Message { report: Report::Failed(e), .. }) => anyhow::bail!("{e}"),
            Ok(_) => {}
            Err(_) => anyhow::bail!("the model did not load"),
        }
    };
    println!(
        "first frame {:.0} ms after the process started; model {} loaded after {:.0} ms",
        first.as_secs_f64() * 1e3,
        b.model,
        loaded.as_secs_f64() * 1e3
    );
    Ok(())
}

/// A trace of `positions` positions: a prompt of positions − 15 tokens and 16 generated.
fn make_trace(b: &UiBench) -> anyhow::Result<(Trace, attnviz::tui::data::ModelInfo, Vec<Token>, Vec<StepInfo>)> {
    let device = model::device(&b.device)?;
    let loaded = model::load(&b.model, &device)?;
    anyhow::ensure!(b.positions > 16, "--positions must be more than 16");
    anyhow::ensure!(b.positions < loaded.model.max_positions(), "--positions exceeds the model's context");
    let base = loaded.tokenizer.encode(super::bench::TEXT, false)?;
    let prompt: Vec<u32> = base.iter().copied().cycle().take(b.positions - 15).collect();
    let tok = Arc::new(loaded.tokenizer);
    let opts = Options { max_new_tokens: 16, sampling: Sampling::Greedy, ignore_eos: true, capture: true };
    let info = model_info(&loaded.model, &b.model, &b.device);
    let model = loaded.model;
    let mut trace = Trace::for_model(&model, &prompt);
    let mut tokens: Vec<Token> =
        prompt.iter().map(|&id| Token { id, text: tok.token_text(id), prompt: true }).collect();
    let mut steps = vec![];
    let (_, _) = Session::start(model, tok.clone(), prompt, opts).follow(|s| {
        tokens.push(Token { id: s.token, text: tok.token_text(s.token), prompt: false });
        steps.push(StepInfo {
            index: s.index,
            positions: s.fed.end,
            kv_len: s.kv_len.clone(),
            kv_bytes: s.kv_bytes,
            forward_ms: s.forward_ms,
        });
        trace.push(s);
    })?;
    Ok((trace, info, tokens, steps))
}

/// Draw the full layout over a long trace, alternating two states so every frame changes.
fn draw_times(b: &UiBench) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let (trace, info, tokens, steps) = make_trace(b)?;
    let prep = t0.elapsed();
    let mut app = App::new(std::slice::from_ref(&b.model), "bench", false, GenSettings::default(), theme());
    app.report(Message { pane: 0, report: Report::Loaded(info) });
    app.report(Message { pane: 0, report: Report::Started(vec![]) });
    let pane = &mut app.panes[0];
    pane.tokens = tokens;
    pane.steps = steps;
    pane.status = attnviz::tui::app::PaneStatus::Done(attnviz::session::StopReason::MaxTokens);
    let area = Rect::new(0, 0, b.size.0, b.size.1);
    let t1 = Instant::now();
    // What the workers would send: two head selections' maps and rows, and the grid.
    let mut states = vec![];
    for head in [0, 1] {
        app.sel.head = Some(head.min(app.heads().saturating_sub(1)));
        app.sel.query = Some(trace.positions() / (head + 2));
        let want = app.wants(0, screen::room(&app, area, 0));
        let map = match &want.map {
            Some(w) => Some(products::map_view(&trace, w)?),
            None => None,
        };
        let row = match want.row {
            Some((l, h, q)) => Some(products::query_row(&trace, l, h, q)?),
            None => None,
        };
        states.push((app.sel.clone(), map, row));
    }
    let mut grid = products::empty_grid(&trace);
    for layer in 0..grid.layers {
        let (t, s) = products::grid_layer(&trace, layer, false)?;
        grid.thumbs.extend(t);
        grid.scores.extend(s);
    }
    app.panes[0].grid = Some(grid);
    let compute = t1.elapsed();
    let mut term = Terminal::new(TestBackend::new(b.size.0, b.size.1))?;
    let mut times = vec![];
    for i in 0..200 {
        let (sel, map, row) = &states[i % 2];
        app.sel = sel.clone();
        app.panes[0].map = map.as_ref().map(|m| m.0.clone());
        app.panes[0].cursor_value = map.as_ref().and_then(|m| m.1);
        app.panes[0].row = row.clone();
        let t = Instant::now();
        term.draw(|f| screen::draw(f, &app))?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let worst = times.iter().copied().fold(0.0, f64::max);
    println!(
        "frame draw at {}x{}, {} positions, {} layers x {} heads (grid shown): median {:.2} ms, worst {:.2} ms \
         over {} frames (trace made in {:.1} s; maps and {} thumbnails computed off the draw path in {:.0} ms)",
        b.size.0,
        b.size.1,
        trace.positions(),
        app.layers(),
        app.heads(),
        median(&mut times),
        worst,
        times.len(),
        prep.as_secs_f64(),
        app.panes[0].grid.as_ref().map_or(0, |g| g.thumbs.len()),
        compute.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Decode speed as `generate` sees it (no capture) and inside the UI (capture,
/// the worker computing what a 240x70 layout asks for, frames drawn at ~30/s).
fn decode_in_ui(b: &UiBench) -> anyhow::Result<()> {
    let device = model::device(&b.device)?;
    let loaded = model::load(&b.model, &device)?;
    let tok = Arc::new(loaded.tokenizer.clone());
    let prompt = loaded.tokenizer.encode(super::bench::TEXT, false)?;
    let mut model = Some(loaded.model);
    let (mut plain, mut ui) = (vec![], vec![]);
    for _ in 0..3 {
        let m = model.take().ok_or_else(|| anyhow::anyhow!("the model was lost"))?;
        let opts = Options { max_new_tokens: 65, sampling: Sampling::Greedy, ignore_eos: true, capture: false };
        let mut ms = vec![];
        let (_, back) = Session::start(m, tok.clone(), prompt.clone(), opts).follow(|s| ms.push(s.forward_ms))?;
        model = back;
        plain.push(64.0 / ms.iter().skip(1).sum::<f64>() * 1e3);
        ui.push(ui_run(b)?);
    }
    let (p, u) = (median(&mut plain), median(&mut ui));
    println!(
        "decode 64 tokens: plain session (as `generate`) {p:.1} tokens/s, inside the UI {u:.1} tokens/s ({:+.1}%)",
        (u / p - 1.0) * 100.0
    );
    Ok(())
}

/// One headless UI run: the real worker and app, frames drawn at ~30/s.
fn ui_run(b: &UiBench) -> anyhow::Result<f64> {
    let (tx, rx) = channel::<Message>();
    let job = worker::spawn_live(0, b.model.clone(), b.device.clone(), tx);
    let mut settings = GenSettings { max_new_tokens: 65, ignore_eos: true, ..GenSettings::default() };
    settings.greedy = true;
    let mut app = App::new(std::slice::from_ref(&b.model), super::bench::TEXT, false, settings, theme());
    let mut term = Terminal::new(TestBackend::new(b.size.0, b.size.1))?;
    let area = Rect::new(0, 0, b.size.0, b.size.1);
    let mut last_draw = Instant::now();
    let mut sent = None;
    loop {
        let Ok(m) = rx.recv_timeout(Duration::from_secs(600)) else { anyhow::bail!("the worker went silent") };
        let done = matches!(m.report, Report::Done(_));
        if let Report::Failed(e) = &m.report {
            anyhow::bail!("{e}");
        }
        for c in app.report(m) {
            if let attnviz::tui::app::Command::Job(_, j) = c {
                let _ = job.send(j);
            }
        }
        if done {
            break;
        }
        if last_draw.elapsed() >= Duration::from_millis(33) {
            term.draw(|f| screen::draw(f, &app))?;
            last_draw = Instant::now();
            let want = app.wants(0, screen::room(&app, area, 0));
            if sent.as_ref() != Some(&want) {
                let _ = job.send(worker::Job::Want(want.clone()));
                sent = Some(want);
            }
        }
    }
    app.main().tokens_per_s().ok_or_else(|| anyhow::anyhow!("no decode steps"))
}
