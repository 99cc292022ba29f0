//! The help popup: the keymap as a table grouped by section (keys, action,
//! description), scrollable. Rows come from the app's keymap table, so help
//! can never drift from the real bindings.

use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

/// One binding as help shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpRow {
    /// e.g. "Navigation"; rows of a section are shown together, sections in order of first appearance.
    pub section: String,
    /// e.g. "j / ↓".
    pub keys: String,
    /// e.g. "next head".
    pub action: String,
    pub desc: String,
}

pub struct HelpOverlay<'a> {
    pub rows: &'a [HelpRow],
    /// Lines scrolled past; clamped to the content.
    pub scroll: usize,
    pub theme: &'a Theme,
}

const FOOTER: &str = " ? or Esc closes ";

impl HelpOverlay<'_> {
    /// Sections in order of first appearance, each with its rows.
    fn sections(&self) -> Vec<(&str, Vec<&HelpRow>)> {
        let mut out: Vec<(&str, Vec<&HelpRow>)> = vec![];
        for r in self.rows {
            match out.iter_mut().find(|(s, _)| *s == r.section) {
                Some((_, rows)) => rows.push(r),
                None => out.push((&r.section, vec![r])),
            }
        }
        out
    }

    /// The table as lines: a heading per section, a blank line between sections.
    fn lines(&self) -> Vec<Line<'static>> {
        let keys_w = self.rows.iter().map(|r| r.keys.width()).max().unwrap_or(0);
        let action_w = self.rows.iter().map(|r| r.action.width()).max().unwrap_or(0);
        let heading = self.theme.accent().add_modifier(Modifier::BOLD);
        let mut lines = vec![];
        for (i, (section, rows)) in self.sections().into_iter().enumerate() {
            if i > 0 {
                lines.push(Line::default());
            }
            lines.push(Line::styled(section.to_string(), heading));
            for r in rows {
                lines.push(Line::from(vec![
                    Span::styled(format!("  {}", pad(&r.keys, keys_w)), self.theme.accent()),
                    Span::raw(format!("  {}", pad(&r.action, action_w))),
                    Span::styled(format!("  {}", r.desc), self.theme.dim()),
                ]));
            }
        }
        lines
    }

    /// The largest useful `scroll` for a popup drawn in `area` (the app clamps its state with it).
    pub fn max_scroll(&self, area: Rect) -> usize {
        let (lines, popup) = (self.lines(), self.popup(area));
        lines.len().saturating_sub(popup.height.saturating_sub(2) as usize)
    }

    /// The popup: as wide as the widest line (plus borders and margins), centred, inside `area`.
    fn popup(&self, area: Rect) -> Rect {
        let lines = self.lines();
        let content_w = lines.iter().map(Line::width).max().unwrap_or(0).max(FOOTER.width());
        let w = (content_w as u16).saturating_add(4).min(area.width.saturating_sub(2).max(area.width.min(20)));
        let h = (lines.len() as u16).saturating_add(2).min(area.height.saturating_sub(2).max(area.height.min(5)));
        let (w, h) = (w.min(area.width), h.min(area.height));
        Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h)
    }
}

fn pad(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(s.width())))
}

impl Widget for HelpOverlay<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let popup = self.popup(area);
        if popup.width < 2 || popup.height < 2 {
            return;
        }
        Clear.render(popup, buf);
        let lines = self.lines();
        let visible = popup.height.saturating_sub(2) as usize;
        let scroll = self.scroll.min(lines.len().saturating_sub(visible));
        let more = scroll + visible < lines.len();
        let title = match (scroll > 0, more) {
            (false, false) => " Keys ".to_string(),
            _ => format!(" Keys {}–{} of {} ", scroll + 1, (scroll + visible).min(lines.len()), lines.len()),
        };
        let block = Block::bordered()
            .border_type(BorderType::Rounded)
            .border_style(self.theme.focused())
            .title(Line::styled(title, self.theme.focused()))
            .title_bottom(Line::styled(FOOTER, self.theme.dim()).right_aligned());
        let inner = block.inner(popup);
        block.render(popup, buf);
        let body: Vec<Line> = lines.into_iter().skip(scroll).take(visible).collect();
        Paragraph::new(body)
            .style(Style::new())
            .render(Rect { x: inner.x + 1, width: inner.width.saturating_sub(1), ..inner }, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::theme::{ColorMap, ColorMode};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    /// Shaped like the app's keymap table (section, keys, action, description).
    fn rows() -> Vec<HelpRow> {
        [
            ("Views", "1", "attention map", "one head's map, query rows × key columns"),
            ("Views", "2", "head grid", "every head's thumbnail with its pattern scores"),
            ("Views", "3", "KV cache", "what each layer keeps, and its bytes"),
            ("Navigation", "h j k l", "move", "move the selection"),
            ("Navigation", "[ ]", "layer", "previous / next layer"),
            ("Generation", "space", "pause", "pause or resume generation"),
            ("Generation", "s", "step", "generate one token while paused"),
            ("Views", "Tab", "next view", "cycle views"),
            ("App", "e", "export", "save the screen as an SVG file"),
            ("App", "?", "help", "show this help"),
            ("App", "q", "quit", "leave attnviz"),
        ]
        .iter()
        .map(|&(s, k, a, d)| HelpRow { section: s.into(), keys: k.into(), action: a.into(), desc: d.into() })
        .collect()
    }

    fn draw(w: u16, h: u16, o: HelpOverlay) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| {
            // Something underneath, to see that the popup clears it.
            f.render_widget(Paragraph::new(vec![Line::raw("x".repeat(w as usize)); h as usize]), f.area());
            f.render_widget(o, f.area());
        })
        .unwrap();
        t
    }

    #[test]
    fn grouped_by_section_in_a_centred_popup() {
        let theme = Theme::new(ColorMode::TrueColor, ColorMap::Viridis);
        let rows = rows();
        let t = draw(80, 24, HelpOverlay { rows: &rows, scroll: 0, theme: &theme });
        insta::assert_snapshot!("help_full", t.backend());
        let buf = t.backend().buffer();
        // The heading of the first section is in the accent colour.
        let heading = (0..80).find(|&x| buf.cell((x, 3)).unwrap().symbol() == "V").unwrap(); // popup rows 2..22
        assert_eq!(buf.cell((heading, 3)).unwrap().fg, theme.accent().fg.unwrap());
    }

    #[test]
    fn scrolls_when_short_and_clamps() {
        let theme = Theme::new(ColorMode::TrueColor, ColorMap::Viridis);
        let rows = rows();
        let o = HelpOverlay { rows: &rows, scroll: 4, theme: &theme };
        let area = Rect::new(0, 0, 70, 10);
        assert_eq!(o.max_scroll(area), 18 - 6);
        let t = draw(70, 10, o);
        insta::assert_snapshot!("help_scrolled", t.backend());
        let far = draw(70, 10, HelpOverlay { rows: &rows, scroll: 999, theme: &theme });
        insta::assert_snapshot!("help_scrolled_to_the_end", far.backend());
    }

    #[test]
    fn tiny_areas_and_no_rows_do_not_panic() {
        let theme = Theme::new(ColorMode::None, ColorMap::Viridis);
        let rows = rows();
        for (w, h) in [(0, 0), (1, 1), (3, 2), (12, 4), (30, 3)] {
            draw(w, h, HelpOverlay { rows: &rows, scroll: 3, theme: &theme });
            draw(w, h, HelpOverlay { rows: &[], scroll: 0, theme: &theme });
        }
        let t = draw(30, 6, HelpOverlay { rows: &rows, scroll: 0, theme: &theme });
        insta::assert_snapshot!("help_narrow", t.backend());
    }
}
