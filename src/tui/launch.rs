//! Starting the UI: one worker per model (or one over a trace file), then
//! the event loop. Everything that can fail before the terminal is taken
//! (no TTY, an unreadable trace) fails here, as one line.

use super::app::{App, GenSettings, PaneStatus};
use super::data::{StepInfo, Token};
use super::run;
use super::terminal::check_tty;
use super::theme::Theme;
use super::worker::{self, info_from_summary, Message, Report};
use crate::trace::file::TraceFile;
use std::path::Path;
use std::sync::mpsc::channel;

/// The prompt `attnviz` starts with when none is given.
pub const DEFAULT_PROMPT: &str = "It is a truth universally acknowledged, that a single man in possession of a good \
fortune, must be in want of a wife.";

pub struct Launch {
    /// One model, or 2 to 4 side by side.
    pub sources: Vec<String>,
    pub device: String,
    pub prompt: String,
    pub chat: bool,
    pub settings: GenSettings,
    /// Stop after the prompt's forward pass and wait for keys (step with `s`, resume with Space).
    pub paused: bool,
}

/// `attnviz [--model SRC | --compare A,B,…]`: load, generate and explore live.
pub fn explore(l: Launch) -> anyhow::Result<()> {
    if l.prompt.trim().is_empty() {
        anyhow::bail!("the prompt is empty");
    }
    if !(1..=4).contains(&l.sources.len()) {
        anyhow::bail!("--compare takes 2 to 4 models, got {}", l.sources.len());
    }
    crate::model::device(&l.device)?;
    check_tty()?;
    crate::model::source::quiet_downloads();
    let (tx, rx) = channel::<Message>();
    let jobs = l
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| worker::spawn_live(i, s.clone(), l.device.clone(), tx.clone()))
        .collect();
    let mut app = App::new(&l.sources, &l.prompt, l.chat, l.settings, Theme::detect());
    app.paused = l.paused;
    super::tabs::run(app, jobs, (tx, rx), &l.device)
}

/// `attnviz view TRACE`: the same UI over a trace file, without the model.
pub fn view(path: &Path) -> anyhow::Result<()> {
    let file = TraceFile::open(path)?;
    check_tty()?;
    let meta = file.meta().clone();
    let info = info_from_summary(&meta["model"], meta["settings"]["device"].as_str().unwrap_or("cpu"));
    let strings = file.token_strings();
    let prompt_len = file.prompt_len();
    let tokens: Vec<Token> = file
        .tokens()
        .iter()
        .enumerate()
        .map(|(i, &id)| Token { id, text: strings.get(i).cloned().unwrap_or_default(), prompt: i < prompt_len })
        .collect();
    let steps = recorded_steps(&file, prompt_len);
    let source = meta["model"]["source"].as_str().unwrap_or("trace").to_string();
    let prompt = meta["prompt"].as_str().unwrap_or_default().to_string();
    let mut app = App::new(&[source], &prompt, false, GenSettings::default(), Theme::detect());
    app.recorded = true;
    if let Some(n) = meta["settings"]["max_new_tokens"].as_u64() {
        app.settings.max_new_tokens = n as usize;
    }
    let (tx, rx) = channel::<Message>();
    let jobs = vec![worker::spawn_fixed(0, Box::new(file), tx.clone())];
    app.report(Message { pane: 0, report: Report::Loaded(info) });
    let pane = &mut app.panes[0];
    pane.tokens = tokens;
    pane.steps = steps;
    pane.status = PaneStatus::Recorded;
    app.say(format!("viewing {}", path.display()));
    run::run(app, jobs, (tx, rx), "cpu")
}

fn recorded_steps(file: &TraceFile, prompt_len: usize) -> Vec<StepInfo> {
    let (kv_len, kv_bytes, ms) = (file.kv_len(), file.kv_bytes(), file.forward_ms());
    (0..kv_bytes.len())
        .map(|s| StepInfo {
            index: s,
            positions: prompt_len + s,
            kv_len: kv_len.get(s).cloned().unwrap_or_default(),
            kv_bytes: kv_bytes[s],
            forward_ms: ms.get(s).copied().unwrap_or(0.0),
        })
        .collect()
}
