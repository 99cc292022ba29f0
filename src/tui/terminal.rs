//! Taking the terminal and always giving it back: raw mode, the alternate
//! screen, mouse capture and bracketed paste are undone on every exit path —
//! a normal return, an error (the guard's Drop) and a panic (the hook).

use ratatui::crossterm::event::{DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture};
use ratatui::crossterm::execute;
use ratatui::DefaultTerminal;
use std::io::{stdin, stdout, IsTerminal};
use std::sync::atomic::{AtomicI32, Ordering};

/// The real stderr while the UI runs (-1: not moved).
static SAVED_STDERR: AtomicI32 = AtomicI32::new(-1);

/// Libraries print to stderr now and then (download bars, loader notes);
/// on the UI's screen that would garble it, so fd 2 goes to /dev/null
/// until the terminal is given back.
fn stderr_away() {
    // SAFETY: plain descriptor calls on descriptors we own; failure leaves stderr as it was.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        if null < 0 {
            return;
        }
        let saved = libc::dup(2);
        if saved >= 0 && libc::dup2(null, 2) >= 0 {
            SAVED_STDERR.store(saved, Ordering::SeqCst);
        }
        libc::close(null);
    }
}

fn stderr_back() {
    let saved = SAVED_STDERR.swap(-1, Ordering::SeqCst);
    if saved >= 0 {
        // SAFETY: `saved` is the descriptor dup'ed in `stderr_away`.
        unsafe {
            libc::dup2(saved, 2);
            libc::close(saved);
        }
    }
}

/// Fails (rather than drawing escape codes into a file) without a terminal.
pub fn check_tty() -> anyhow::Result<()> {
    if !stdout().is_terminal() || !stdin().is_terminal() {
        anyhow::bail!(
            "the explorer needs a terminal (stdin and stdout must be a TTY); without one use \
             `attnviz capture`, `generate`, `heads`, `models` or `memory`"
        );
    }
    Ok(())
}

/// The terminal while the UI runs; dropping it restores the terminal.
pub struct Guard {
    pub terminal: DefaultTerminal,
}

impl Guard {
    pub fn enter() -> anyhow::Result<Self> {
        check_tty()?;
        // crossterm 0.29 applies NO_COLOR itself and then drops bold/reverse too;
        // the theme handles NO_COLOR, so let crossterm write what it is given.
        ratatui::crossterm::style::force_color_output(true);
        // ratatui installs a panic hook that restores raw mode and the screen;
        // ours runs first and switches mouse and paste reporting off.
        let terminal = ratatui::try_init().map_err(|e| anyhow::anyhow!("cannot set up the terminal: {e}"))?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = execute!(stdout(), DisableMouseCapture, DisableBracketedPaste);
            stderr_back();
            previous(info);
        }));
        stderr_away();
        let guard = Self { terminal };
        execute!(stdout(), EnableMouseCapture, EnableBracketedPaste)?;
        Ok(guard)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = execute!(stdout(), DisableMouseCapture, DisableBracketedPaste);
        let _ = self.terminal.show_cursor();
        let _ = ratatui::try_restore();
        stderr_back();
    }
}
