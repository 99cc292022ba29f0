//! The event loop: terminal input and worker reports arrive on one channel,
//! become actions for the app, and the screen is redrawn when something
//! changed — at most ~30 times a second, however fast tokens arrive.

use super::app::{App, Command, Overlay};
use super::keymap;
use super::layout;
use super::screen;
use super::terminal::Guard;
use super::theme::ColorMode;
use super::worker::{self, Job, Message, Wants};
use ratatui::crossterm::event::{self, Event, KeyEventKind, MouseButton, MouseEventKind};
use ratatui::layout::Rect;
use ratatui::Frame;
use std::collections::HashMap;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// A screen the loop can drive: the explorer (`App`), a lesson.
pub trait Ui {
    /// A terminal event (key, paste, mouse, resize); `size` is the terminal's.
    fn input(&mut self, ev: Event, size: Rect) -> Vec<Command>;
    /// A worker's report.
    fn report(&mut self, m: Message) -> Vec<Command>;
    fn draw(&self, f: &mut Frame);
    /// What pane `pane`'s worker should compute for a terminal of `size`.
    fn wants(&self, pane: usize, size: Rect) -> Wants;
    fn quit(&self) -> bool;
    /// Something moves on its own (a spinner, generation): redraw on a timer.
    fn animating(&self) -> bool;
    /// A one-line note for the user (e.g. where an export went).
    fn say(&mut self, text: String);
    fn color_mode(&self) -> ColorMode;
}

impl Ui for App {
    fn input(&mut self, ev: Event, size: Rect) -> Vec<Command> {
        self.size = (size.width, size.height);
        input_event(self, ev)
    }

    fn report(&mut self, m: Message) -> Vec<Command> {
        App::report(self, m)
    }

    fn draw(&self, f: &mut Frame) {
        screen::draw(f, self)
    }

    fn wants(&self, pane: usize, size: Rect) -> Wants {
        App::wants(self, pane, screen::room(self, size, pane))
    }

    fn quit(&self) -> bool {
        self.quit
    }

    fn animating(&self) -> bool {
        self.panes.iter().any(|p| p.is_running() || p.info.is_none())
    }

    fn say(&mut self, text: String) {
        App::say(self, text)
    }

    fn color_mode(&self) -> ColorMode {
        self.theme.mode
    }
}

enum Incoming {
    Input(Event),
    Worker(Message),
}

/// Drive `ui` until it quits. `jobs[i]` reaches pane i's worker; every
/// worker, and those started later by `Command::Spawn`, reports on `reports`
/// through `report_tx`. `device` is where spawned models run.
pub fn run(
    mut ui: impl Ui,
    jobs: Vec<Sender<Job>>,
    reports: (Sender<Message>, std::sync::mpsc::Receiver<Message>),
    device: &str,
) -> anyhow::Result<()> {
    let (report_tx, reports) = reports;
    let mut jobs: HashMap<usize, Sender<Job>> = jobs.into_iter().enumerate().collect();
    let mut guard = Guard::enter()?;
    let (tx, rx) = channel::<Incoming>();
    let input = tx.clone();
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            // Mode 1003 reports every mouse move; nothing here uses them.
            if matches!(&ev, Event::Mouse(m) if matches!(m.kind, MouseEventKind::Moved | MouseEventKind::Drag(_))) {
                continue;
            }
            if input.send(Incoming::Input(ev)).is_err() {
                return;
            }
        }
    });
    std::thread::spawn(move || {
        for m in reports {
            if tx.send(Incoming::Worker(m)).is_err() {
                return;
            }
        }
    });
    let mut sent: HashMap<usize, Wants> = HashMap::new();
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    let mut export = false;
    let frame = Duration::from_millis(33);
    loop {
        let animate = ui.animating();
        let size = guard.terminal.size()?;
        let area = Rect::new(0, 0, size.width, size.height);
        let wait = match last_draw {
            Some(t) if dirty => frame.saturating_sub(t.elapsed()),
            _ if animate => Duration::from_millis(100),
            _ => Duration::from_millis(1000),
        };
        let handle = |inc: Incoming, ui: &mut dyn Ui| -> Vec<Command> {
            match inc {
                Incoming::Worker(m) => ui.report(m),
                Incoming::Input(ev) => ui.input(ev, area),
            }
        };
        let mut commands = vec![];
        match rx.recv_timeout(wait) {
            Ok(inc) => {
                commands.extend(handle(inc, &mut ui));
                dirty = true;
                // Take everything already waiting, then draw once.
                for inc in rx.try_iter().take(1000) {
                    commands.extend(handle(inc, &mut ui));
                }
            }
            Err(RecvTimeoutError::Timeout) => dirty |= animate,
            Err(RecvTimeoutError::Disconnected) => break,
        }
        for c in commands {
            match c {
                Command::Job(i, job) => {
                    if let Some(j) = jobs.get(&i) {
                        let _ = j.send(job);
                    }
                }
                Command::Export => export = true,
                Command::Spawn(i, source) => {
                    jobs.insert(i, worker::spawn_live(i, source, device.to_string(), report_tx.clone()));
                    sent.remove(&i);
                }
            }
        }
        if ui.quit() {
            break;
        }
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= frame) {
            let drawn = guard.terminal.draw(|f| ui.draw(f))?;
            if export {
                export = false;
                match super::export::write_svg(drawn.buffer, ui.color_mode(), std::path::Path::new(".")) {
                    Ok(path) => ui.say(format!("saved {}", path.display())),
                    Err(e) => ui.say(format!("could not save the SVG: {e}")),
                }
                dirty = true;
            } else {
                dirty = false;
            }
            last_draw = Some(Instant::now());
            // Ask the workers for what the new frame has room for.
            for (&i, job) in &jobs {
                let want = ui.wants(i, area);
                if sent.get(&i) != Some(&want) {
                    let _ = job.send(Job::Want(want.clone()));
                    sent.insert(i, want);
                }
            }
        }
    }
    drop(guard);
    Ok(())
}

fn input_event(app: &mut App, ev: Event) -> Vec<Command> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => {
            if app.overlay == Overlay::Prompt {
                return app.prompt_key(k);
            }
            if matches!(app.overlay, Overlay::Settings { .. }) && k.code == event::KeyCode::Enter {
                return app.settings_apply();
            }
            keymap::action_for(&k).map(|a| app.update(a)).unwrap_or_default()
        }
        Event::Paste(text) => {
            app.paste(&text);
            vec![]
        }
        Event::Mouse(m) => {
            let size = Rect::new(0, 0, app.size.0, app.size.1);
            match m.kind {
                MouseEventKind::Down(MouseButton::Left) => screen::click(app, size, m.column, m.row),
                MouseEventKind::ScrollUp => screen::scroll(app, size, m.column, m.row, true),
                MouseEventKind::ScrollDown => screen::scroll(app, size, m.column, m.row, false),
                _ => {}
            }
            vec![]
        }
        _ => vec![],
    }
}

/// The pane areas for the current models.
pub fn areas(app: &App, size: Rect) -> layout::Areas {
    let ss: Vec<bool> = app.panes.iter().map(|p| p.info.as_ref().is_some_and(|i| i.is_state_space())).collect();
    layout::areas(size, &ss)
}
