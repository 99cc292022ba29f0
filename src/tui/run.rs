//! The event loop: terminal input and worker reports arrive on one channel,
//! become actions for the app, and the screen is redrawn when something
//! changed — at most ~30 times a second, however fast tokens arrive.

use super::app::{App, Command, Overlay};
use super::keymap;
use super::layout;
use super::screen;
use super::terminal::Guard;
use super::worker::{Job, Message, Wants};
use ratatui::crossterm::event::{self, Event, KeyEventKind, MouseButton, MouseEventKind};
use ratatui::layout::Rect;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

enum Incoming {
    Input(Event),
    Worker(Message),
}

/// Drive `app` until it quits. `jobs[i]` reaches pane i's worker, whose
/// reports come in on `reports`.
pub fn run(mut app: App, jobs: Vec<Sender<Job>>, reports: std::sync::mpsc::Receiver<Message>) -> anyhow::Result<()> {
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
    let mut sent: Vec<Option<Wants>> = vec![None; jobs.len()];
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    let mut export = false;
    let frame = Duration::from_millis(33);
    loop {
        let animate = app.panes.iter().any(|p| p.is_running() || p.info.is_none());
        let wait = match last_draw {
            Some(t) if dirty => frame.saturating_sub(t.elapsed()),
            _ if animate => Duration::from_millis(100),
            _ => Duration::from_millis(1000),
        };
        let handle = |inc: Incoming, app: &mut App| -> Vec<Command> {
            match inc {
                Incoming::Worker(m) => app.report(m),
                Incoming::Input(ev) => input_event(app, ev),
            }
        };
        let mut commands = vec![];
        match rx.recv_timeout(wait) {
            Ok(inc) => {
                commands.extend(handle(inc, &mut app));
                dirty = true;
                // Take everything already waiting, then draw once.
                for inc in rx.try_iter().take(1000) {
                    commands.extend(handle(inc, &mut app));
                }
            }
            Err(RecvTimeoutError::Timeout) => dirty |= animate,
            Err(RecvTimeoutError::Disconnected) => break,
        }
        for c in commands {
            match c {
                Command::Job(i, job) => {
                    if let Some(j) = jobs.get(i) {
                        let _ = j.send(job);
                    }
                }
                Command::Export => export = true,
            }
        }
        if app.quit {
            break;
        }
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= frame) {
            let size = guard.terminal.size()?;
            app.size = (size.width, size.height);
            let drawn = guard.terminal.draw(|f| screen::draw(f, &app))?;
            if export {
                export = false;
                match super::export::write_svg(drawn.buffer, app.theme.mode, std::path::Path::new(".")) {
                    Ok(path) => app.say(format!("saved {}", path.display())),
                    Err(e) => app.say(format!("could not save the SVG: {e}")),
                }
                dirty = true;
            } else {
                dirty = false;
            }
            last_draw = Some(Instant::now());
            // Ask the workers for what the new frame has room for.
            let area = Rect::new(0, 0, size.width, size.height);
            for (i, job) in jobs.iter().enumerate() {
                let want = app.wants(i, screen::room(&app, area, i));
                if sent[i].as_ref() != Some(&want) {
                    let _ = job.send(Job::Want(want.clone()));
                    sent[i] = Some(want);
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
