//! The explorer's two tabs: Explore (the `App`) and Lessons (a list; Enter
//! opens a lesson in place, `q` in it comes back to the list). One `Ui` for
//! the run loop that hands input, reports and drawing to the tab shown.
//! Lessons' models get pane ids from `LESSON_IDS` up, so reports find their tab.

use super::app::{App, Command, Overlay};
use super::lesson::{filled_texts, LessonApp};
use super::run::{self, Ui};
use super::theme::ColorMode;
use super::worker::{Message, Wants};
use crate::lesson::Lesson;
use ratatui::crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

/// First pane id of a lesson's models (the explorer uses 0..4).
pub const LESSON_IDS: usize = 1000;

pub struct Tabs {
    pub explorer: App,
    pub lessons: Vec<Lesson>,
    /// Showing the Lessons tab.
    pub on_lessons: bool,
    pub selected: usize,
    pub open: Option<LessonApp>,
    next_id: usize,
}

impl Tabs {
    pub fn new(explorer: App, lessons: Vec<Lesson>) -> Self {
        Self { explorer, lessons, on_lessons: false, selected: 0, open: None, next_id: LESSON_IDS }
    }

    fn list_key(&mut self, code: KeyCode, ctrl: bool) -> Vec<Command> {
        let n = self.lessons.len().max(1);
        match code {
            KeyCode::Char('q') => self.explorer.quit = true,
            KeyCode::Char('c') if ctrl => self.explorer.quit = true,
            KeyCode::Esc | KeyCode::Char('L') | KeyCode::Tab => self.on_lessons = false,
            KeyCode::Up | KeyCode::Char('k') => self.selected = (self.selected + n - 1) % n,
            KeyCode::Down | KeyCode::Char('j') => self.selected = (self.selected + 1) % n,
            KeyCode::Enter => return self.open_selected(),
            _ => {}
        }
        vec![]
    }

    fn open_selected(&mut self) -> Vec<Command> {
        let Some(lesson) = self.lessons.get(self.selected).cloned() else { return vec![] };
        let texts = match filled_texts(&lesson) {
            Ok(t) => t,
            Err(e) => {
                self.explorer.say(format!("lesson {}: {e}", lesson.slug));
                return vec![];
            }
        };
        let theme = self.explorer.theme.clone();
        let (app, cmds) = LessonApp::new_at(lesson, texts, false, theme, self.next_id);
        // Each opening gets fresh ids, so late reports of a closed lesson go nowhere.
        self.next_id += 100;
        self.open = Some(app);
        cmds
    }

    fn draw_list(&self, f: &mut Frame) {
        let [body, foot] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(f.area());
        let t = &self.explorer.theme;
        let mut lines = vec![
            Line::from(""),
            Line::from(" Lessons: text beside live panels on real models.").bold(),
            Line::from(""),
        ];
        for (i, l) in self.lessons.iter().enumerate() {
            let head = format!(" {:>2}  {}", l.number, l.title);
            let style = if i == self.selected { t.selected() } else { t.accent() };
            lines.push(Line::from(Span::styled(head, style)));
            lines.push(Line::from(Span::styled(format!("     {}", l.summary), t.dim())));
        }
        let block = Block::default().borders(Borders::ALL).title(" Explore │ Lessons ").border_style(t.focused());
        f.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), body);
        let hint = " ↑↓ choose · Enter opens · in a lesson q comes back here · L or Esc: the explorer · q quits";
        f.render_widget(Paragraph::new(hint).style(t.dim()), foot);
    }
}

impl Ui for Tabs {
    fn input(&mut self, ev: Event, size: Rect) -> Vec<Command> {
        if let Some(open) = &mut self.open {
            let cmds = open.input(ev, size);
            if open.quit() {
                let mut out = open.close();
                self.open = None;
                out.extend(cmds);
                return out;
            }
            return cmds;
        }
        if self.on_lessons {
            return match ev {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    self.list_key(k.code, k.modifiers.contains(KeyModifiers::CONTROL))
                }
                _ => vec![],
            };
        }
        let switch = matches!(&ev, Event::Key(k) if k.kind != KeyEventKind::Release
            && k.code == KeyCode::Char('L') && self.explorer.overlay == Overlay::None);
        if switch {
            self.on_lessons = true;
            return vec![];
        }
        self.explorer.input(ev, size)
    }

    fn report(&mut self, m: Message) -> Vec<Command> {
        if m.pane < LESSON_IDS {
            return self.explorer.report(m);
        }
        self.open.as_mut().map_or(vec![], |o| o.report(m))
    }

    fn draw(&self, f: &mut Frame) {
        match (&self.open, self.on_lessons) {
            (Some(open), _) => open.draw(f),
            (None, true) => self.draw_list(f),
            (None, false) => self.explorer.draw(f),
        }
    }

    fn wants(&self, pane: usize, size: Rect) -> Wants {
        if pane < LESSON_IDS {
            // Off screen, the explorer's workers still keep what they have computed.
            return Ui::wants(&self.explorer, pane, size);
        }
        self.open.as_ref().map_or(Wants::default(), |o| o.wants(pane, size))
    }

    fn quit(&self) -> bool {
        self.explorer.quit
    }

    fn animating(&self) -> bool {
        self.open.as_ref().map_or(self.explorer.animating(), |o| o.animating())
    }

    fn say(&mut self, text: String) {
        match &mut self.open {
            Some(o) => o.say(text),
            None => self.explorer.say(text),
        }
    }

    fn color_mode(&self) -> ColorMode {
        self.explorer.color_mode()
    }
}

/// Run the explorer with its Lessons tab.
pub fn run(
    explorer: App,
    jobs: Vec<std::sync::mpsc::Sender<super::worker::Job>>,
    reports: (std::sync::mpsc::Sender<Message>, std::sync::mpsc::Receiver<Message>),
    device: &str,
) -> anyhow::Result<()> {
    let lessons = crate::lesson::all()?;
    run::run(Tabs::new(explorer, lessons), jobs, reports, device)
}
