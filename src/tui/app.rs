//! All of the UI's state, changed only by `update`: actions and worker
//! reports in, commands for the workers out. No terminal, no threads, so
//! every behaviour is tested by feeding actions and reading the state.

pub mod nav;
mod settings;

use super::data::{HeadGrid, HeadQk, MapView, ModelInfo, QueryRow, ScanView, StateView, StepInfo, Token};
use super::keymap::Action;
use super::theme::{ColorMap, Theme};
use super::views::editor::TextField;
use super::worker::{GenRequest, Job, Message, Report};
use crate::metrics::Pattern;
use crate::session::StopReason;
pub use settings::GenSettings;
use std::time::Instant;

/// The panels that take keys, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Tokens,
    Map,
    Grid,
    Side,
}

impl Focus {
    const ORDER: [Focus; 4] = [Focus::Tokens, Focus::Map, Focus::Grid, Focus::Side];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help { scroll: usize },
    Settings { selected: usize },
    Prompt,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PaneStatus {
    Loading,
    Ready,
    Generating,
    Paused,
    Done(StopReason),
    Failed(String),
    /// A trace file: nothing runs.
    Recorded,
}

/// One model (one column in side-by-side mode) and what it has produced.
pub struct Pane {
    pub source: String,
    pub info: Option<ModelInfo>,
    pub status: PaneStatus,
    pub tokens: Vec<Token>,
    pub steps: Vec<StepInfo>,
    pub map: Option<MapView>,
    pub cursor_value: Option<f32>,
    pub row: Option<QueryRow>,
    pub grid: Option<HeadGrid>,
    pub state: Option<StateView>,
    /// One head's queries and keys, when a lesson asked for them.
    pub qk: Option<HeadQk>,
    /// Mamba's scan replayed from the weights (or why not), when a lesson asked for it.
    pub scan: Option<Result<ScanView, String>>,
    pub since: Instant,
}

impl Pane {
    pub fn new(source: &str) -> Self {
        Self {
            source: source.to_string(),
            info: None,
            status: PaneStatus::Loading,
            tokens: vec![],
            steps: vec![],
            map: None,
            cursor_value: None,
            row: None,
            grid: None,
            state: None,
            qk: None,
            scan: None,
            since: Instant::now(),
        }
    }

    /// Positions fed through the model (rows of the attention map).
    pub fn positions(&self) -> usize {
        self.steps.last().map_or(0, |s| s.positions)
    }

    /// Decode speed over the steps after the prefill.
    pub fn tokens_per_s(&self) -> Option<f64> {
        let ms: f64 = self.steps.iter().skip(1).map(|s| s.forward_ms).sum();
        (ms > 0.0).then(|| (self.steps.len() - 1) as f64 / ms * 1e3)
    }

    pub fn is_running(&self) -> bool {
        matches!(self.status, PaneStatus::Generating | PaneStatus::Paused)
    }
}

/// Which query/key/layer/head the views show, shared by every pane.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub layer: usize,
    /// None: the mean over the layer's heads.
    pub head: Option<usize>,
    /// Selected query position; None follows the newest.
    pub query: Option<usize>,
    /// Key column of the map cursor; None follows the query (the diagonal).
    pub key: Option<usize>,
    /// Map zoom: the visible span is positions / 2^zoom.
    pub zoom: u32,
    /// Colour scale: 0–1 (false) or 0–the visible maximum (true).
    pub normalize: bool,
    pub pattern: Option<Pattern>,
    pub sorted: bool,
    pub grid_scroll: usize,
    pub token_scroll: usize,
    /// Held Mamba step shown (None: the newest).
    pub state_step: Option<usize>,
}

/// What the runner must do for the app.
#[derive(Debug)]
pub enum Command {
    Job(usize, Job),
    Export,
    /// Start a worker for pane `.0` loading model `.1` (its reports come back like any pane's).
    Spawn(usize, String),
}

pub struct App {
    pub panes: Vec<Pane>,
    pub focus: Focus,
    pub overlay: Overlay,
    pub sel: Selection,
    pub prompt: TextField,
    /// The prompt as last generated (Esc in the editor goes back to it).
    pub last_prompt: String,
    pub chat: bool,
    pub settings: GenSettings,
    pub theme: Theme,
    /// The user paused (or single-steps).
    pub paused: bool,
    /// A one-line note for the status bar (export path, error), with when it was set.
    pub message: Option<(String, Instant)>,
    pub quit: bool,
    /// A trace file is shown: nothing can generate.
    pub recorded: bool,
    /// Terminal size, for layout-dependent requests.
    pub size: (u16, u16),
}

impl App {
    pub fn new(sources: &[String], prompt: &str, chat: bool, settings: GenSettings, theme: Theme) -> Self {
        Self {
            panes: sources.iter().map(|s| Pane::new(s)).collect(),
            focus: Focus::Map,
            overlay: Overlay::None,
            sel: Selection {
                layer: 0,
                head: Some(0),
                query: None,
                key: None,
                zoom: 0,
                normalize: false,
                pattern: None,
                sorted: false,
                grid_scroll: 0,
                token_scroll: 0,
                state_step: None,
            },
            prompt: TextField::new(prompt),
            last_prompt: prompt.to_string(),
            chat,
            settings,
            theme,
            paused: false,
            message: None,
            quit: false,
            recorded: false,
            size: (0, 0),
        }
    }

    pub fn compare(&self) -> bool {
        self.panes.len() > 1
    }

    /// The first pane with a model, for single-model views.
    pub fn main(&self) -> &Pane {
        &self.panes[0]
    }

    pub fn say(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), Instant::now()));
    }

    /// The request every pane's worker gets for a new run.
    fn gen_request(&self) -> GenRequest {
        GenRequest {
            prompt: self.prompt.text.clone(),
            chat: self.chat,
            max_new_tokens: self.settings.max_new_tokens,
            sampling: self.settings.sampling(),
            ignore_eos: self.settings.ignore_eos,
            // Side by side, models step in lockstep: each may do the prefill, then waits.
            allow: if self.compare() || self.paused { Some(1) } else { None },
        }
    }

    /// Generate with the current prompt on every pane with a model.
    pub fn generate(&mut self) -> Vec<Command> {
        if self.recorded {
            self.say("a recorded trace cannot generate");
            return vec![];
        }
        let req = self.gen_request();
        self.last_prompt = req.prompt.clone();
        self.sel.query = None;
        self.sel.key = None;
        self.sel.state_step = None;
        let mut out = vec![];
        for (i, p) in self.panes.iter_mut().enumerate() {
            if p.info.is_some() {
                p.status = PaneStatus::Generating;
                out.push(Command::Job(i, Job::Generate(req.clone())));
            }
        }
        out
    }

    /// A report from pane `m.pane`'s worker.
    pub fn report(&mut self, m: Message) -> Vec<Command> {
        // Only a load needs the run request; building it per step would clone the prompt per token.
        let req = matches!(m.report, Report::Loaded(_)).then(|| self.gen_request());
        let recorded = self.recorded;
        let Some(pane) = self.panes.get_mut(m.pane) else { return vec![] };
        match m.report {
            Report::Loaded(info) => {
                pane.info = Some(info);
                pane.status = PaneStatus::Ready;
                pane.since = Instant::now();
                let Some(req) = req.filter(|_| !recorded) else { return vec![] };
                // Start this pane (others may still be loading; lockstep waits for them).
                pane.status = PaneStatus::Generating;
                return vec![Command::Job(m.pane, Job::Generate(req))];
            }
            Report::Failed(e) => pane.status = PaneStatus::Failed(e),
            Report::Started(tokens) => {
                pane.tokens = tokens;
                pane.steps.clear();
                pane.map = None;
                pane.row = None;
                pane.grid = None;
                pane.state = None;
                pane.qk = None;
                pane.scan = None;
                pane.cursor_value = None;
                pane.since = Instant::now();
                pane.status = if self.paused { PaneStatus::Paused } else { PaneStatus::Generating };
            }
            Report::Step(step, token) => {
                pane.steps.push(step);
                pane.tokens.push(token);
                return self.lockstep();
            }
            Report::Done(reason) => {
                pane.status = PaneStatus::Done(reason);
                return self.lockstep();
            }
            Report::Map(map, value) => {
                pane.map = Some(map);
                pane.cursor_value = value;
            }
            Report::Row(row) => pane.row = Some(row),
            Report::Grid(grid) => pane.grid = Some(grid),
            Report::State(state) => pane.state = state,
            Report::Qk(qk) => pane.qk = Some(qk),
            Report::Scan(scan) => pane.scan = Some(scan),
        }
        vec![]
    }

    /// Side by side, let every running pane take its next forward pass once
    /// all of them have finished the current one.
    fn lockstep(&mut self) -> Vec<Command> {
        if !self.compare() || self.paused {
            return vec![];
        }
        let live: Vec<usize> =
            (0..self.panes.len()).filter(|&i| self.panes[i].status == PaneStatus::Generating).collect();
        let Some(min) = live.iter().map(|&i| self.panes[i].steps.len()).min() else { return vec![] };
        let max = live.iter().map(|&i| self.panes[i].steps.len()).max().unwrap_or(min);
        if min == 0 || min != max {
            return vec![];
        }
        live.into_iter().map(|i| Command::Job(i, Job::Allow(Some(min + 1)))).collect()
    }

    /// Turn an action into state changes and commands.
    pub fn update(&mut self, action: Action) -> Vec<Command> {
        match &self.overlay {
            Overlay::Help { .. } if matches!(action, Action::Help | Action::Close) => {
                self.overlay = Overlay::None;
                return vec![];
            }
            Overlay::Help { scroll } => {
                let scroll = *scroll;
                let s = match action {
                    Action::Down => scroll + 1,
                    Action::Up => scroll.saturating_sub(1),
                    Action::PageDown => scroll + 10,
                    Action::PageUp => scroll.saturating_sub(10),
                    Action::Quit => {
                        self.quit = true;
                        scroll
                    }
                    _ => scroll,
                };
                self.overlay = Overlay::Help { scroll: s };
                return vec![];
            }
            Overlay::Settings { .. } => return self.settings_action(action),
            _ => {}
        }
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.overlay = Overlay::Help { scroll: 0 },
            Action::Close => self.overlay = Overlay::None,
            Action::FocusNext | Action::FocusPrev => {
                // Side by side, or for a Mamba, there is no head grid to focus.
                let no_grid = self.compare() || self.main().info.as_ref().is_some_and(|i| i.is_state_space());
                let order: Vec<Focus> = Focus::ORDER.into_iter().filter(|f| !(no_grid && *f == Focus::Grid)).collect();
                let i = order.iter().position(|f| *f == self.focus).unwrap_or(0);
                let n = order.len();
                let j = if action == Action::FocusNext { (i + 1) % n } else { (i + n - 1) % n };
                self.focus = order[j];
            }
            Action::Export => return vec![Command::Export],
            Action::ColorMap => {
                let i = ColorMap::ALL.iter().position(|m| *m == self.theme.map).unwrap_or(0);
                self.theme = self.theme.with_map(ColorMap::ALL[(i + 1) % ColorMap::ALL.len()]);
                self.say(format!("colour map: {}", self.theme.map.name()));
            }
            Action::PauseResume => return self.pause_resume(),
            Action::Step => return self.single_step(),
            Action::Cancel => {
                return (0..self.panes.len())
                    .filter(|&i| self.panes[i].is_running())
                    .map(|i| Command::Job(i, Job::Cancel))
                    .collect();
            }
            Action::Restart => return self.generate(),
            Action::EditPrompt => {
                if self.recorded {
                    self.say("a recorded trace cannot generate");
                } else {
                    self.overlay = Overlay::Prompt;
                    self.prompt.end();
                }
            }
            Action::Settings => {
                if self.recorded {
                    self.say("a recorded trace cannot generate");
                } else {
                    self.overlay = Overlay::Settings { selected: 0 };
                }
            }
            other => self.navigate(other),
        }
        vec![]
    }

    fn pause_resume(&mut self) -> Vec<Command> {
        if !self.panes.iter().any(Pane::is_running) {
            return vec![];
        }
        self.paused = !self.paused;
        let mut out = vec![];
        for (i, p) in self.panes.iter_mut().enumerate() {
            if p.is_running() {
                p.status = if self.paused { PaneStatus::Paused } else { PaneStatus::Generating };
                let allow = if self.paused { Some(p.steps.len()) } else { None };
                out.push(Command::Job(i, Job::Allow(allow)));
            }
        }
        if !self.paused && self.compare() {
            out.retain(|_| false);
            out.extend(self.lockstep_resume());
        }
        out
    }

    /// Resuming side by side: let the panes catch up to the furthest, then go on in lockstep.
    fn lockstep_resume(&mut self) -> Vec<Command> {
        let live: Vec<usize> = (0..self.panes.len()).filter(|&i| self.panes[i].is_running()).collect();
        let max = live.iter().map(|&i| self.panes[i].steps.len()).max().unwrap_or(0);
        let min = live.iter().map(|&i| self.panes[i].steps.len()).min().unwrap_or(0);
        let next = if min == max { max + 1 } else { max };
        live.into_iter().map(|i| Command::Job(i, Job::Allow(Some(next)))).collect()
    }

    fn single_step(&mut self) -> Vec<Command> {
        if !self.panes.iter().any(Pane::is_running) {
            return vec![];
        }
        self.paused = true;
        let mut out = vec![];
        for (i, p) in self.panes.iter_mut().enumerate() {
            if p.is_running() {
                p.status = PaneStatus::Paused;
                out.push(Command::Job(i, Job::Allow(Some(p.steps.len() + 1))));
            }
        }
        out
    }

    /// A key while the prompt editor is open.
    pub fn prompt_key(&mut self, key: ratatui::crossterm::event::KeyEvent) -> Vec<Command> {
        use ratatui::crossterm::event::{KeyCode, KeyModifiers};
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Enter => {
                self.overlay = Overlay::None;
                if self.prompt.text.trim().is_empty() {
                    self.say("the prompt is empty");
                    return vec![];
                }
                return self.generate();
            }
            KeyCode::Esc => {
                self.prompt = TextField::new(&self.last_prompt);
                self.overlay = Overlay::None;
            }
            KeyCode::Char('c') if ctrl => self.quit = true,
            KeyCode::Char('u') if ctrl => self.prompt = TextField::new(""),
            KeyCode::Char(c) if !ctrl => self.prompt.insert(c),
            KeyCode::Backspace => self.prompt.backspace(),
            KeyCode::Delete => self.prompt.delete(),
            KeyCode::Left => self.prompt.left(),
            KeyCode::Right => self.prompt.right(),
            KeyCode::Home => self.prompt.home(),
            KeyCode::End => self.prompt.end(),
            _ => {}
        }
        vec![]
    }

    pub fn paste(&mut self, text: &str) {
        if self.overlay == Overlay::Prompt {
            self.prompt.paste(text);
        }
    }
}

#[cfg(test)]
mod tests;
