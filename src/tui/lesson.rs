//! The lesson screen: a `Lesson` value drives it. The step's Markdown on one
//! side, its live panel on the other; keys step through the lesson and move
//! the panel's sliders. Live panels run real models through the run loop's
//! workers (`Command::Spawn`), reusing the explorer's `App` for their state.

pub mod controls;
pub mod demo;
pub mod keys;
pub mod live;
pub mod live_values;
pub mod markdown;
pub mod panels;
pub mod screen;
pub mod state;

pub use state::LessonApp;

use super::app::Command;
use super::run::Ui;
use super::terminal::check_tty;
use super::theme::{ColorMode, Theme};
use super::worker::{self, Message, Wants};
use crate::lesson::Lesson;
use ratatui::crossterm::event::{Event, KeyEventKind};
use ratatui::layout::Rect;
use ratatui::Frame;
use std::sync::mpsc::channel;

impl Ui for LessonApp {
    fn input(&mut self, ev: Event, _size: Rect) -> Vec<Command> {
        match ev {
            Event::Key(k) if k.kind != KeyEventKind::Release => self.key(&k),
            _ => vec![],
        }
    }

    fn report(&mut self, m: Message) -> Vec<Command> {
        LessonApp::report(self, m)
    }

    fn draw(&self, f: &mut Frame) {
        screen::draw(f, self)
    }

    fn wants(&self, pane: usize, size: Rect) -> Wants {
        let Some(live) = &self.live else { return Wants::default() };
        live.local(pane).map_or(Wants::default(), |i| screen::wants(self, i, size))
    }

    fn quit(&self) -> bool {
        self.quit
    }

    fn animating(&self) -> bool {
        self.busy()
    }

    fn say(&mut self, text: String) {
        self.message = Some(text);
    }

    fn color_mode(&self) -> ColorMode {
        self.theme.mode
    }
}

/// Each step's Markdown with its `{placeholders}` filled from code; live
/// ones stay for the screen to fill while the model runs.
pub fn filled_texts(lesson: &Lesson) -> crate::Result<Vec<String>> {
    (0..lesson.steps.len())
        .map(|i| crate::lesson::fill(&lesson.steps[i].markdown, &crate::lesson::step_values(lesson, i)?))
        .collect()
}

/// Open `lesson` in the terminal (presenter mode with `present`), models on `device`.
pub fn open(lesson: Lesson, present: bool, device: &str) -> anyhow::Result<()> {
    check_tty()?;
    anyhow::ensure!(!lesson.steps.is_empty(), "lesson {} has no steps", lesson.slug);
    crate::model::source::quiet_downloads();
    let texts = filled_texts(&lesson)?;
    let (app, cmds) = LessonApp::new(lesson, texts, present, Theme::detect());
    let (tx, rx) = channel::<Message>();
    // The first step's models are panes 0..n: start them as the loop's initial workers.
    let jobs = cmds
        .into_iter()
        .filter_map(|c| match c {
            Command::Spawn(i, source) => Some((i, source)),
            _ => None,
        })
        .enumerate()
        .map(|(k, (i, source))| {
            debug_assert_eq!(k, i);
            worker::spawn_live(i, source, device.to_string(), tx.clone())
        })
        .collect();
    super::run::run(app, jobs, (tx, rx), device)
}

#[cfg(test)]
mod tests;
