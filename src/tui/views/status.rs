//! The status bar: one line with the run's state, a message (a saved file,
//! an error), what is loaded and how fast it runs, and on the right the keys
//! that matter now. On a narrow terminal items drop from the right (hints
//! but the first, then the facts) instead of wrapping.

use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use unicode_width::UnicodeWidthStr;

pub struct StatusBar<'a> {
    /// (label, value): model, device, dtype, tok/s, step, cache…
    pub left: Vec<(String, String)>,
    /// "generating", "paused", "done", "loading 3.2 s"…
    pub state: &'a str,
    /// (key, action), for the current context, most important first (the first is kept longest).
    pub hints: &'a [(String, String)],
    /// Shown after the state; drawn as an error when it starts with "error".
    pub message: Option<&'a str>,
    pub theme: &'a Theme,
}

/// Spaces between the facts and the hints when both are shown.
const GAP: usize = 2;

impl StatusBar<'_> {
    fn state_span(&self) -> Span<'static> {
        Span::styled(format!(" {} ", self.state), self.theme.selected())
    }

    fn message_style(&self, m: &str) -> Style {
        if m.trim_start().to_lowercase().starts_with("error") {
            self.theme.error()
        } else {
            self.theme.accent().add_modifier(Modifier::BOLD)
        }
    }

    /// Each fact as spans, with its separator in front.
    fn facts(&self) -> Vec<Vec<Span<'static>>> {
        self.left
            .iter()
            .map(|(label, value)| {
                let mut spans = vec![Span::styled(" │ ", self.theme.dim())];
                if !label.is_empty() {
                    spans.push(Span::styled(format!("{label} "), self.theme.dim()));
                }
                spans.push(Span::raw(value.clone()));
                spans
            })
            .collect()
    }

    fn hint_spans(&self) -> Vec<Vec<Span<'static>>> {
        self.hints
            .iter()
            .map(|(key, action)| {
                vec![
                    Span::styled(format!(" {key}"), self.theme.accent().add_modifier(Modifier::BOLD)),
                    Span::styled(format!(" {action} "), self.theme.dim()),
                ]
            })
            .collect()
    }
}

fn width(spans: &[Span]) -> usize {
    spans.iter().map(|s| s.content.width()).sum()
}

impl Widget for StatusBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 || area.width == 0 {
            return;
        }
        let total = area.width as usize;
        let mut left: Vec<Span> = vec![self.state_span()];
        if let Some(m) = self.message.filter(|m| !m.is_empty()) {
            // The message is what the user just caused: shortened, never dropped.
            let room = total.saturating_sub(width(&left) + 1);
            left.push(Span::raw(" "));
            left.push(Span::styled(ellipsize(m, room), self.message_style(m)));
        }
        // The first hint (by convention "? help") is kept longest: its room is reserved before the facts.
        let hints = self.hint_spans();
        let mut reserved = hints.first().map_or(0, |h| GAP + width(h));
        if width(&left) + reserved > total {
            reserved = 0;
        }
        for fact in self.facts() {
            if width(&left) + width(&fact) + reserved > total {
                break;
            }
            left.extend(fact);
        }
        let mut right: Vec<Span> = vec![];
        for hint in hints {
            if width(&left) + GAP + width(&right) + width(&hint) > total {
                break;
            }
            right.extend(hint);
        }
        let line = Rect { height: 1, ..area };
        Line::from(left).render(line, buf);
        let rw = width(&right) as u16;
        if rw > 0 {
            Line::from(right).render(Rect { x: line.right() - rw, width: rw, ..line }, buf);
        }
    }
}

/// `s` cut to `cols` cells, ending in '…' when shortened.
fn ellipsize(s: &str, cols: usize) -> String {
    if s.width() <= cols {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > cols {
            break;
        }
        out.push(c);
        used += w;
    }
    if cols > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::theme::{ColorMap, ColorMode};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn facts() -> Vec<(String, String)> {
        [
            ("model", "tiny-gqa"),
            ("device", "cpu"),
            ("dtype", "f32"),
            ("", "412 tok/s"),
            ("step", "37/64"),
            ("cache", "74 KB"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    fn hints() -> Vec<(String, String)> {
        [("?", "help"), ("space", "pause"), ("e", "export"), ("q", "quit")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn draw(w: u16, bar: StatusBar) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(w, 1)).unwrap();
        t.draw(|f| f.render_widget(bar, f.area())).unwrap();
        t
    }

    #[test]
    fn wide_terminal_shows_everything_on_one_line() {
        let theme = Theme::new(ColorMode::TrueColor, ColorMap::Viridis);
        let hints = hints();
        let bar = StatusBar { left: facts(), state: "generating", hints: &hints, message: None, theme: &theme };
        let t = draw(140, bar);
        insta::assert_snapshot!("status_wide", t.backend());
        let buf = t.backend().buffer();
        assert_eq!(buf.cell((1, 0)).unwrap().bg, theme.selected().bg.unwrap());
        // The last hint is " q quit ": its key is two cells before the word.
        let quit = (0..140).rev().find(|&x| buf.cell((x, 0)).unwrap().symbol() == "q").unwrap();
        assert_eq!(buf.cell((quit - 2, 0)).unwrap().symbol(), "q");
        assert_eq!(buf.cell((quit - 2, 0)).unwrap().fg, theme.accent().fg.unwrap());
        assert_eq!(buf.cell((quit, 0)).unwrap().fg, theme.dim().fg.unwrap());
    }

    #[test]
    fn narrow_terminals_drop_items_from_the_right() {
        let theme = Theme::new(ColorMode::TrueColor, ColorMap::Viridis);
        let hints = hints();
        let bar = |message| StatusBar { left: facts(), state: "paused", hints: &hints, message, theme: &theme };
        insta::assert_snapshot!("status_80", draw(80, bar(None)).backend());
        insta::assert_snapshot!("status_50", draw(50, bar(None)).backend());
        let saved = Some("saved attnviz-20250101-120000.svg");
        insta::assert_snapshot!("status_message", draw(80, bar(saved)).backend());
        let error = "error: /tmp: permission denied while writing the screenshot file";
        let t = draw(40, bar(Some(error)));
        insta::assert_snapshot!("status_error_shortened", t.backend());
        assert_eq!(t.backend().buffer().cell((10, 0)).unwrap().fg, theme.error().fg.unwrap());
    }

    #[test]
    fn tiny_areas_do_not_panic() {
        let theme = Theme::new(ColorMode::None, ColorMap::Viridis);
        let hints = hints();
        for w in [1, 2, 5, 9] {
            let bar =
                StatusBar { left: facts(), state: "loading 3.2 s", hints: &hints, message: Some("é"), theme: &theme };
            draw(w, bar);
        }
        let mut t = Terminal::new(TestBackend::new(10, 1)).unwrap();
        t.draw(|f| {
            let bar = StatusBar { left: vec![], state: "done", hints: &[], message: None, theme: &theme };
            f.render_widget(bar, Rect::new(0, 0, 10, 0));
        })
        .unwrap();
    }
}
