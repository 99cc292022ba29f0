//! The lesson screen's state: which step is shown, the panel's controls,
//! the live models behind it, and the overlays. Changed only by keys and
//! worker reports; no terminal, so it is tested by feeding both.

use super::controls::Controls;
use super::keys::{self, LessonAction as A};
use super::live::Live;
use crate::lesson::{Lesson, Panel};
use crate::sim::presets;
use crate::tui::app::{Command, Pane};
use crate::tui::theme::Theme;
use crate::tui::worker::Message;

/// The prompt live panels run unless a step names its own: a repeated
/// phrase, so copying heads have something to copy.
pub const LESSON_PROMPT: &str = "The cat sat on the mat. The dog sat on the log. The cat sat on the";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LessonOverlay {
    None,
    Help,
    References,
}

pub struct LessonApp {
    pub lesson: Lesson,
    /// Each step's Markdown with its placeholders filled.
    pub texts: Vec<String>,
    pub step: usize,
    /// Presenter mode: large text, no chrome.
    pub present: bool,
    pub theme: Theme,
    pub overlay: LessonOverlay,
    pub controls: Controls,
    /// The models of the current (or last live) step.
    pub live: Option<Live>,
    pub message: Option<String>,
    pub quit: bool,
    /// Next free run-loop pane id.
    next_id: usize,
}

impl LessonApp {
    /// The lesson at its first step, and the commands that start its models
    /// (pane ids from 0, so a launcher can spawn them as its initial workers).
    /// `texts[i]` is step i's filled Markdown (missing ones fall back to the raw text).
    pub fn new(lesson: Lesson, texts: Vec<String>, present: bool, theme: Theme) -> (Self, Vec<Command>) {
        Self::new_at(lesson, texts, present, theme, 0)
    }

    /// As `new`, with run-loop pane ids from `first_id` (beside the explorer's panes).
    pub fn new_at(
        lesson: Lesson,
        texts: Vec<String>,
        present: bool,
        theme: Theme,
        first_id: usize,
    ) -> (Self, Vec<Command>) {
        let controls =
            lesson.steps.first().map_or(Controls::for_panel(&Panel::None), |s| Controls::for_panel(&s.panel));
        let mut app = Self {
            lesson,
            texts,
            step: 0,
            present,
            theme,
            overlay: LessonOverlay::None,
            controls,
            live: None,
            message: None,
            quit: false,
            next_id: first_id,
        };
        let cmds = app.enter(0);
        (app, cmds)
    }

    pub fn steps(&self) -> usize {
        self.lesson.steps.len()
    }

    pub fn panel(&self) -> &Panel {
        self.lesson.steps.get(self.step).map_or(&Panel::None, |s| &s.panel)
    }

    /// The current step's text.
    pub fn text(&self) -> &str {
        match self.texts.get(self.step) {
            Some(t) => t,
            None => self.lesson.steps.get(self.step).map_or("", |s| s.markdown.as_str()),
        }
    }

    /// The models and prompt a panel runs.
    pub fn sources_of(panel: &Panel) -> (Vec<String>, String) {
        let prompt = match panel {
            Panel::Heads { prompt: Some(p), .. } | Panel::Compare { prompt: Some(p), .. } => p.clone(),
            _ => LESSON_PROMPT.to_string(),
        };
        let models = match panel {
            Panel::Heads { model, prefer_cached, .. } => {
                vec![crate::lesson::schema::heads_model(model, *prefer_cached)]
            }
            Panel::Calculator { model, .. } if presets::find(model).is_some() => vec![],
            Panel::Calculator { model, .. } => vec![model.clone()],
            p => p.models().into_iter().map(String::from).collect(),
        };
        (models, prompt)
    }

    /// Show step `i`: reset the controls, start its models unless the running ones serve.
    fn enter(&mut self, i: usize) -> Vec<Command> {
        self.step = i.min(self.steps().saturating_sub(1));
        self.controls = Controls::for_panel(self.panel());
        self.message = None;
        let (sources, prompt) = Self::sources_of(self.panel());
        if sources.is_empty() || self.live.as_ref().is_some_and(|l| l.sources == sources && l.prompt == prompt) {
            return vec![];
        }
        let mut cmds = self.live.as_ref().map_or(vec![], Live::cancel);
        let live = Live::new(self.next_id, sources, &prompt, &self.theme);
        self.next_id += live.sources.len();
        cmds.extend(live.spawn());
        self.live = Some(live);
        cmds
    }

    /// The live pane `i` of the current step (None on a step without models).
    pub fn pane(&self, i: usize) -> Option<&Pane> {
        let (sources, _) = Self::sources_of(self.panel());
        let live = self.live.as_ref().filter(|l| !sources.is_empty() && l.sources == sources)?;
        live.app.panes.get(i)
    }

    /// Heads and layers of the first live model, positions and steps it has.
    fn bounds(&self) -> (usize, usize, usize, usize) {
        let Some(p) = self.pane(0) else { return (0, 0, 0, 0) };
        let (h, l) = p.info.as_ref().map_or((0, 0), |i| (i.heads(), i.layers));
        (h, l, p.positions(), p.steps.len())
    }

    /// Channels (d_inner) of the first live model when it is a state-space model.
    fn channels(&self) -> usize {
        match self.pane(0).and_then(|p| p.info.as_ref()).map(|i| &i.mixing) {
            Some(crate::tui::data::Mixing::StateSpace { d_inner, .. }) => *d_inner,
            _ => 0,
        }
    }

    pub fn action(&mut self, a: A) -> Vec<Command> {
        match (&self.overlay, a) {
            (_, A::Quit) => self.quit = true,
            (LessonOverlay::Help, A::Help | A::Close) | (LessonOverlay::References, A::References | A::Close) => {
                self.overlay = LessonOverlay::None
            }
            (_, A::Help) => self.overlay = LessonOverlay::Help,
            (_, A::References) => self.overlay = LessonOverlay::References,
            (_, A::Close) => {}
            (_, A::Next) if self.step + 1 < self.steps() => {
                self.overlay = LessonOverlay::None;
                return self.enter(self.step + 1);
            }
            (_, A::Prev) if self.step > 0 => {
                self.overlay = LessonOverlay::None;
                return self.enter(self.step - 1);
            }
            (_, A::Next) => self.message = Some("this is the last step (q quits)".into()),
            (_, A::Prev) => self.message = Some("this is the first step".into()),
            (_, other) => {
                let (heads, layers, positions, _) = self.bounds();
                let picks = if matches!(self.panel(), Panel::Scan { .. }) { self.channels() } else { heads };
                let panel = self.panel().clone();
                self.message = self.controls.apply(&panel, other, picks, layers, positions).map(String::from);
            }
        }
        vec![]
    }

    pub fn key(&mut self, k: &ratatui::crossterm::event::KeyEvent) -> Vec<Command> {
        keys::action_for(k).map(|a| self.action(a)).unwrap_or_default()
    }

    pub fn report(&mut self, m: Message) -> Vec<Command> {
        self.live.as_mut().map_or(vec![], |l| l.report(m))
    }

    /// Stop the models of the current step (the lesson is being closed).
    pub fn close(&self) -> Vec<Command> {
        self.live.as_ref().map_or(vec![], Live::cancel)
    }

    pub fn busy(&self) -> bool {
        self.live.as_ref().is_some_and(Live::busy)
    }
}
