//! Editing text in the terminal: `TextField`, a one-line field with a cursor
//! counted in chars (so multi-byte text never splits), `FieldView` drawing it
//! scrolled so the cursor stays visible, and `SettingsView`, the sampling
//! form (name, value rows; the selected value can be edited in place).

use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::Widget;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// A one-line text being edited. `cursor` is a char index in 0..=chars.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextField {
    pub text: String,
    pub cursor: usize,
}

impl TextField {
    /// A field holding `text`, the cursor at its end.
    pub fn new(text: &str) -> Self {
        let text = clean(text);
        Self { cursor: text.chars().count(), text }
    }

    fn len(&self) -> usize {
        self.text.chars().count()
    }

    /// Byte offset of char index `i` (the end for i ≥ len).
    fn byte(&self, i: usize) -> usize {
        self.text.char_indices().nth(i).map_or(self.text.len(), |(b, _)| b)
    }

    /// Insert `c` at the cursor; control characters are ignored.
    pub fn insert(&mut self, c: char) {
        if c.is_control() {
            return;
        }
        self.cursor = self.cursor.min(self.len());
        let b = self.byte(self.cursor);
        self.text.insert(b, c);
        self.cursor += 1;
    }

    /// Delete the char before the cursor.
    pub fn backspace(&mut self) {
        self.cursor = self.cursor.min(self.len());
        if self.cursor > 0 {
            self.cursor -= 1;
            let b = self.byte(self.cursor);
            self.text.remove(b);
        }
    }

    /// Delete the char under the cursor.
    pub fn delete(&mut self) {
        if self.cursor < self.len() {
            let b = self.byte(self.cursor);
            self.text.remove(b);
        }
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.min(self.len()).saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.len());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.len();
    }

    /// Insert pasted text at the cursor; line breaks and tabs become spaces.
    pub fn paste(&mut self, s: &str) {
        clean(s).chars().for_each(|c| self.insert(c));
    }
}

/// One line: CR LF, LF, CR and tabs become one space each; other control characters go.
fn clean(s: &str) -> String {
    s.replace("\r\n", " ")
        .chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

fn width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// `label: text`, the text scrolled so the cursor (drawn reversed when active) is visible.
pub struct FieldView<'a> {
    pub label: &'a str,
    pub field: &'a TextField,
    pub active: bool,
    pub theme: &'a Theme,
}

impl FieldView<'_> {
    /// First visible char and whether a '…' marks text hidden on the left, for `cols` text cells.
    fn scroll(&self, cols: usize) -> (usize, bool) {
        let chars: Vec<char> = self.field.text.chars().collect();
        let cursor = self.field.cursor.min(chars.len());
        let cursor_w = chars.get(cursor).map_or(1, |&c| width(c).max(1));
        // Walk back from the cursor while the text before it still fits.
        let fit = |cols: usize| {
            let mut used = cursor_w;
            let mut start = cursor;
            while start > 0 && used + width(chars[start - 1]) <= cols {
                used += width(chars[start - 1]);
                start -= 1;
            }
            start
        };
        match fit(cols) {
            0 => (0, false),
            _ => (fit(cols.saturating_sub(1)), true),
        }
    }

    /// Where the terminal cursor belongs when this field is drawn in `area`
    /// (for `Frame::set_cursor_position`); None when inactive or out of room.
    pub fn cursor_position(&self, area: Rect) -> Option<Position> {
        let text = self.text_area(area)?;
        let (start, marker) = self.scroll(text.width as usize);
        let before: usize = self.field.text.chars().take(self.field.cursor).skip(start).map(width).sum();
        let x = text.x as usize + usize::from(marker) + before;
        (self.active && x < text.right() as usize).then_some(Position::new(x as u16, text.y))
    }

    fn text_area(&self, area: Rect) -> Option<Rect> {
        let label = if self.label.is_empty() { 0 } else { self.label.width() as u16 + 2 };
        (area.height > 0 && area.width > label).then(|| Rect::new(area.x + label, area.y, area.width - label, 1))
    }
}

impl Widget for FieldView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 || area.width == 0 {
            return;
        }
        let label_style = if self.active { self.theme.focused() } else { self.theme.dim() };
        if !self.label.is_empty() {
            buf.set_stringn(area.x, area.y, format!("{}: ", self.label), area.width as usize, label_style);
        }
        let Some(text) = self.text_area(area) else { return };
        let (start, marker) = self.scroll(text.width as usize);
        let mut x = text.x;
        if marker {
            buf.set_string(x, text.y, "…", self.theme.dim());
            x += 1;
        }
        let cursor = self.field.cursor.min(self.field.text.chars().count());
        let under = Style::new().add_modifier(Modifier::UNDERLINED);
        for (i, c) in self.field.text.chars().enumerate().skip(start) {
            let w = width(c) as u16;
            if x + w > text.right() {
                break;
            }
            let style = if self.active && i == cursor { Style::new().add_modifier(Modifier::REVERSED) } else { under };
            buf.set_string(x, text.y, c.to_string(), style);
            x += w;
        }
        // The rest of the field: an underline shows where typing goes; the cursor may sit past the end.
        let mut first = true;
        while x < text.right() {
            let style = if self.active && first && cursor == self.field.text.chars().count() {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                under
            };
            buf.set_string(x, text.y, " ", style);
            first = false;
            x += 1;
        }
    }
}

/// The sampling settings form: one row per setting, the selected one highlighted.
/// With `editing`, the selected value is drawn as that text field.
pub struct SettingsView<'a> {
    /// (name, value), e.g. ("temperature", "0.8").
    pub rows: &'a [(String, String)],
    pub selected: usize,
    pub editing: Option<&'a TextField>,
    pub theme: &'a Theme,
}

impl Widget for SettingsView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 || area.width < 3 || self.rows.is_empty() {
            return;
        }
        let selected = self.selected.min(self.rows.len() - 1);
        // Scroll so the selected row is on screen.
        let first = (selected + 1).saturating_sub(area.height as usize);
        let name_w = self.rows.iter().map(|(n, _)| n.width()).max().unwrap_or(0) as u16;
        for (i, (name, value)) in self.rows.iter().enumerate().skip(first).take(area.height as usize) {
            let y = area.y + (i - first) as u16;
            let is_sel = i == selected;
            let row = Rect::new(area.x, y, area.width, 1);
            let style = if is_sel && self.editing.is_none() { self.theme.selected() } else { Style::new() };
            buf.set_style(row, style);
            let marker = if is_sel { "› " } else { "  " };
            buf.set_stringn(area.x, y, marker, area.width as usize, style);
            let name_x = area.x + 2;
            let room = area.right().saturating_sub(name_x) as usize;
            let name_style = if is_sel { style.add_modifier(Modifier::BOLD) } else { self.theme.dim() };
            buf.set_stringn(name_x, y, name, room, name_style);
            let value_x = (name_x + name_w + 2).min(area.right());
            let value_area = Rect::new(value_x, y, area.right() - value_x, 1);
            match self.editing.filter(|_| is_sel) {
                Some(field) => FieldView { label: "", field, active: true, theme: self.theme }.render(value_area, buf),
                None => {
                    buf.set_stringn(value_x, y, value, value_area.width as usize, style);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::theme::{ColorMap, ColorMode};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn theme() -> Theme {
        Theme::new(ColorMode::TrueColor, ColorMap::Viridis)
    }

    fn draw(w: u16, h: u16, widget: impl Widget) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| f.render_widget(widget, f.area())).unwrap();
        t
    }

    #[test]
    fn editing_is_utf8_safe() {
        let mut f = TextField::new("né");
        assert_eq!(f.cursor, 2);
        f.insert('→');
        f.left();
        f.left();
        f.insert('漢');
        assert_eq!((f.text.as_str(), f.cursor), ("n漢é→", 2));
        f.backspace();
        f.delete();
        assert_eq!((f.text.as_str(), f.cursor), ("n→", 1));
        f.home();
        f.backspace();
        f.left();
        assert_eq!((f.text.as_str(), f.cursor), ("n→", 0));
        f.delete();
        f.end();
        f.right();
        f.delete();
        assert_eq!((f.text.as_str(), f.cursor), ("→", 1));
        f.insert('\u{7}');
        assert_eq!(f.text, "→");
    }

    #[test]
    fn paste_turns_line_breaks_into_spaces() {
        let mut f = TextField::new("ab");
        f.left();
        f.paste("x\r\ny\nz\té\u{1b}");
        assert_eq!((f.text.as_str(), f.cursor), ("ax y z éb", 8));
        assert_eq!(TextField::new("1\n2").text, "1 2");
    }

    #[test]
    fn a_cursor_out_of_range_is_clamped() {
        let mut f = TextField { text: "ab".into(), cursor: 9 };
        f.insert('c');
        assert_eq!((f.text.as_str(), f.cursor), ("abc", 3));
        f.cursor = 9;
        f.backspace();
        f.cursor = 9;
        f.left();
        assert_eq!((f.text.as_str(), f.cursor), ("ab", 1));
    }

    #[test]
    fn field_snapshots() {
        let theme = theme();
        let field = TextField::new("It is a truth universally acknowledged");
        let t = draw(30, 1, FieldView { label: "prompt", field: &field, active: true, theme: &theme });
        insta::assert_snapshot!("field_scrolled_to_the_end", t.backend());
        let start = TextField { cursor: 0, ..field.clone() };
        let t = draw(30, 1, FieldView { label: "prompt", field: &start, active: false, theme: &theme });
        insta::assert_snapshot!("field_at_the_start", t.backend());
        let wide = TextField { text: "東京の天気は晴れです".into(), cursor: 7 };
        let t = draw(14, 1, FieldView { label: "", field: &wide, active: true, theme: &theme });
        insta::assert_snapshot!("field_wide_chars", t.backend());
    }

    #[test]
    fn cursor_cell_is_reversed_and_terminal_cursor_follows() {
        let theme = theme();
        let field = TextField { text: "abcdefghij".into(), cursor: 8 };
        let view = FieldView { label: "x", field: &field, active: true, theme: &theme };
        // 3 label cells, 5 text cells: '…' then "fgh" then the cursor on 'i'.
        let t = draw(8, 1, FieldView { ..view });
        let buf = t.backend().buffer();
        assert_eq!(buf.cell((7, 0)).unwrap().symbol(), "i");
        assert!(buf.cell((7, 0)).unwrap().modifier.contains(Modifier::REVERSED));
        assert_eq!(buf.cell((3, 0)).unwrap().symbol(), "…");
        assert_eq!(view.cursor_position(Rect::new(0, 0, 8, 1)), Some(Position::new(7, 0)));
        let end = TextField::new("ab");
        let v = FieldView { label: "x", field: &end, active: true, theme: &theme };
        assert_eq!(v.cursor_position(Rect::new(0, 0, 8, 1)), Some(Position::new(5, 0)));
        let v = FieldView { active: false, ..v };
        assert_eq!(v.cursor_position(Rect::new(0, 0, 8, 1)), None);
    }

    fn settings() -> Vec<(String, String)> {
        [
            ("greedy", "off"),
            ("temperature", "0.8"),
            ("top-k", "40"),
            ("top-p", "0.95"),
            ("seed", "299792458"),
            ("max new tokens", "64"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    #[test]
    fn settings_snapshots() {
        let theme = theme();
        let rows = settings();
        let t = draw(32, 6, SettingsView { rows: &rows, selected: 1, editing: None, theme: &theme });
        insta::assert_snapshot!("settings", t.backend());
        assert_eq!(t.backend().buffer().cell((2, 1)).unwrap().bg, theme.selected().bg.unwrap());
        let field = TextField::new("0.7");
        let t = draw(32, 3, SettingsView { rows: &rows, selected: 4, editing: Some(&field), theme: &theme });
        insta::assert_snapshot!("settings_scrolled_editing", t.backend());
    }

    #[test]
    fn tiny_areas_do_not_panic() {
        let theme = theme();
        let rows = settings();
        let field = TextField::new("東京");
        for (w, h) in [(1, 1), (2, 1), (5, 1), (3, 0), (0, 3)] {
            draw(w, h, FieldView { label: "prompt", field: &field, active: true, theme: &theme });
            draw(w, h, FieldView { label: "", field: &field, active: true, theme: &theme });
            draw(w, h, SettingsView { rows: &rows, selected: 9, editing: Some(&field), theme: &theme });
        }
    }
}
