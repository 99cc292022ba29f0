//! The tokens view: the sequence as wrapped chips with visible boundaries
//! (`Hello│·world`), generated tokens set apart from the prompt, the
//! selected query highlighted, and optionally every token shaded by how much
//! the selected query attends to it. Render and mouse hit-testing share one
//! layout function, so a click always lands on the chip that was drawn.

use crate::tui::data::Token;
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Widget};
use unicode_width::UnicodeWidthStr;

pub struct TokensView<'a> {
    pub tokens: &'a [Token],
    pub selected: Option<usize>,
    /// Attention of the selected query over each token (0 where masked).
    pub weights: Option<&'a [f32]>,
    pub title: String,
    pub focused: bool,
    pub theme: &'a Theme,
}

/// A token's text with its invisible characters made visible: space '·',
/// newline '↵', tab '→', other control characters '�'; "∅" when empty.
pub fn visible(text: &str) -> String {
    if text.is_empty() {
        return "∅".into();
    }
    text.chars()
        .map(|c| match c {
            ' ' => '·',
            '\n' => '↵',
            '\t' => '→',
            '\r' => '␍',
            c if c.is_control() => '�',
            c => c,
        })
        .collect()
}

/// Where one token's chip sits: `line` counts from the top of the whole
/// text, `x` from the left of the inner area.
#[derive(Debug, Clone, PartialEq)]
struct Chip {
    index: usize,
    line: usize,
    x: u16,
    width: u16,
    text: String,
}

/// Wrap the tokens into lines of `width` cells, one '│' between chips on a
/// line; a newline token ends its line, as it does in the text.
fn layout(tokens: &[Token], width: u16) -> Vec<Chip> {
    let mut chips = Vec::with_capacity(tokens.len());
    if width == 0 {
        return chips;
    }
    let (mut line, mut x) = (0usize, 0u16);
    for (index, token) in tokens.iter().enumerate() {
        let text = visible(&token.text);
        let w = (text.width().clamp(1, width as usize)) as u16;
        let start = if x == 0 { 0 } else { x + 1 };
        let (cx, line_here) = if start + w > width && x > 0 { (0, line + 1) } else { (start, line) };
        line = line_here;
        chips.push(Chip { index, line, x: cx, width: w, text });
        x = cx + w;
        if token.text.ends_with('\n') {
            line += 1;
            x = 0;
        }
    }
    chips
}

/// The first line shown. Pages of `height` lines are counted back from the
/// last line, so following the end (no selection) shows a full last page and
/// the page holding the selection stays put while the user clicks within it.
fn first_line(chips: &[Chip], selected: Option<usize>, height: u16) -> usize {
    let (Some(last), h) = (chips.last().map(|c| c.line), height as usize) else { return 0 };
    let target = selected.and_then(|s| chips.get(s)).map_or(last, |c| c.line);
    if h == 0 || last < h {
        return 0;
    }
    let page = (last - target) / h;
    (last + 1).saturating_sub(h * (page + 1))
}

fn block(view: &TokensView<'_>) -> Block<'static> {
    let style = if view.focused { view.theme.focused() } else { Style::new() };
    Block::bordered().title(view.title.clone()).border_style(style)
}

/// Which token a mouse click at (x, y) hits, for the view drawn in `area`.
pub fn token_at(tokens: &[Token], selected: Option<usize>, area: Rect, x: u16, y: u16) -> Option<usize> {
    let inner = Block::bordered().inner(area);
    if x < inner.x || y < inner.y || x >= inner.right() || y >= inner.bottom() {
        return None;
    }
    let chips = layout(tokens, inner.width);
    let line = first_line(&chips, selected, inner.height) + (y - inner.y) as usize;
    let cx = x - inner.x;
    chips.iter().find(|c| c.line == line && c.x <= cx && cx < c.x + c.width).map(|c| c.index)
}

impl TokensView<'_> {
    /// A chip's style: prompt plain, generated accent + bold, shaded by weight, selection on top.
    fn style(&self, index: usize, max_weight: f32) -> Style {
        let t = self.theme;
        if self.selected == Some(index) {
            return t.selected();
        }
        let generated = !self.tokens.get(index).is_some_and(|tok| tok.prompt);
        let base = if generated { t.accent().add_modifier(Modifier::BOLD) } else { Style::new() };
        let Some(w) = self.weights.and_then(|w| w.get(index)).copied() else { return base };
        if self.selected.is_some_and(|s| index > s) {
            return base.patch(t.dim()); // the query's future: masked, not "ignored"
        }
        let rel = if max_weight > 0.0 { (w / max_weight).clamp(0.0, 1.0) } else { 0.0 };
        if t.has_color() {
            base.bg(t.heat(rel)).fg(t.text_on(rel))
        } else if rel >= 0.5 {
            base.add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        } else if rel >= 0.2 {
            base.add_modifier(Modifier::UNDERLINED)
        } else {
            base
        }
    }
}

impl Widget for TokensView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let b = block(&self);
        let inner = b.inner(area);
        b.render(area, buf);
        if inner.is_empty() {
            return;
        }
        let chips = layout(self.tokens, inner.width);
        let top = first_line(&chips, self.selected, inner.height);
        let max_weight = self.weights.map_or(0.0, |w| w.iter().copied().filter(|v| v.is_finite()).fold(0.0, f32::max));
        let sep = self.theme.dim();
        for c in chips.iter().filter(|c| c.line >= top && c.line < top + inner.height as usize) {
            let y = inner.y + (c.line - top) as u16;
            if c.x > 0 {
                buf.set_string(inner.x + c.x - 1, y, "│", sep);
            }
            buf.set_stringn(inner.x + c.x, y, &c.text, c.width as usize, self.style(c.index, max_weight));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::theme::{ColorMap, ColorMode};
    use ratatui::{backend::TestBackend, style::Color, Terminal};

    fn toks(prompt: &[&str], generated: &[&str]) -> Vec<Token> {
        let p = prompt.iter().map(|t| (t, true));
        let g = generated.iter().map(|t| (t, false));
        p.chain(g).enumerate().map(|(i, (t, prompt))| Token { id: i as u32, text: t.to_string(), prompt }).collect()
    }

    fn sentence() -> Vec<Token> {
        toks(
            &["<s>", "The", " cat", " sat", " on", " the", " mat", ".", " The", " cat", " sat", " on"],
            &[" the", " mat", ".", "\n", "It", "\twas"],
        )
    }

    /// Query 9 (" cat", second time): sink on <s>, previous token " The",
    /// and an induction hit on " sat" (what followed " cat" before); sums to 1.
    fn weights_of_query_9() -> Vec<f32> {
        let mut w = vec![0.0; 18];
        w[0] = 0.30;
        w[8] = 0.22;
        w[3] = 0.33;
        for (j, v) in w.iter_mut().enumerate().take(10) {
            if ![0, 3, 8].contains(&j) {
                *v = 0.15 / 7.0;
            }
        }
        w
    }

    fn draw(view: TokensView<'_>, w: u16, h: u16) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| f.render_widget(view, f.area())).unwrap();
        t
    }

    #[test]
    fn visible_marks_spaces_newlines_and_tabs() {
        assert_eq!(visible(" world"), "·world");
        assert_eq!(visible("a\n\tb"), "a↵→b");
        assert_eq!(visible(""), "∅");
    }

    #[test]
    fn chips_wrap_with_separators_and_a_newline_ends_the_line() {
        let tokens = toks(&["Hello", " world", "!\n", "Hi"], &[]);
        let chips = layout(&tokens, 12);
        let at: Vec<(usize, u16)> = chips.iter().map(|c| (c.line, c.x)).collect();
        // "Hello│·world" fills 12 cells; "!↵" wraps; "Hi" starts a new line after the newline.
        assert_eq!(at, vec![(0, 0), (0, 6), (1, 0), (2, 0)]);
    }

    #[test]
    fn hello_world_reads_with_a_boundary() {
        let theme = Theme::new(ColorMode::TrueColor, ColorMap::Viridis);
        let tokens = toks(&["Hello", " world"], &[]);
        let view = TokensView {
            tokens: &tokens,
            selected: None,
            weights: None,
            title: "t".into(),
            focused: false,
            theme: &theme,
        };
        let t = draw(view, 16, 3);
        let line: String = (1..13).map(|x| t.backend().buffer()[(x, 1)].symbol().to_string()).collect();
        assert_eq!(line, "Hello│·world");
    }

    #[test]
    fn selection_and_weights_snapshot_and_colours() {
        let theme = Theme::new(ColorMode::TrueColor, ColorMap::Viridis);
        let tokens = sentence();
        let weights = weights_of_query_9();
        let view = TokensView {
            tokens: &tokens,
            selected: Some(9),
            weights: Some(&weights),
            title: " tokens · q 9 ".into(),
            focused: true,
            theme: &theme,
        };
        let t = draw(view, 30, 7);
        insta::assert_snapshot!(t.backend());
        let buf = t.backend().buffer();
        let chip = |i: usize| {
            let c = layout(&tokens, 28).into_iter().find(|c| c.index == i).unwrap();
            buf[(1 + c.x, 1 + c.line as u16)].clone()
        };
        // " sat" holds the largest weight: the top of the map, dark text on it.
        assert_eq!(chip(3).bg, theme.heat(1.0));
        assert_eq!(chip(3).fg, Color::Black);
        assert_eq!(chip(9).bg, theme.selected().bg.unwrap());
        // A token in the query's future is dim, not shaded as "ignored".
        assert_eq!(chip(12).bg, Color::Reset);
        assert!(chip(12).modifier.contains(Modifier::BOLD)); // generated
        assert_eq!(chip(5).bg, theme.heat(weights[5] / 0.33));
    }

    #[test]
    fn no_color_marks_strong_weights_with_bold_and_underline() {
        let theme = Theme::new(ColorMode::None, ColorMap::Viridis);
        let tokens = sentence();
        let weights = weights_of_query_9();
        let view = TokensView {
            tokens: &tokens,
            selected: Some(9),
            weights: Some(&weights),
            title: String::new(),
            focused: false,
            theme: &theme,
        };
        let t = draw(view, 30, 7);
        let buf = t.backend().buffer();
        let chip = |i: usize| {
            let c = layout(&tokens, 28).into_iter().find(|c| c.index == i).unwrap();
            buf[(1 + c.x, 1 + c.line as u16)].clone()
        };
        assert!(chip(3).modifier.contains(Modifier::BOLD | Modifier::UNDERLINED));
        assert!(!chip(5).modifier.contains(Modifier::UNDERLINED));
        assert!(chip(9).modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn scrolls_by_pages_to_the_selection_or_the_end_and_clicks_match_the_drawing() {
        let theme = Theme::new(ColorMode::TrueColor, ColorMap::Viridis);
        let words = [" the", " cat", " sat", " on", " mat", "."];
        let tokens: Vec<Token> =
            (0..120).map(|i| Token { id: i, text: words[i as usize % 6].into(), prompt: i < 100 }).collect();
        let area = Rect::new(0, 0, 24, 5);
        // No selection: the page with the last token.
        let view = TokensView {
            tokens: &tokens,
            selected: None,
            weights: None,
            title: String::new(),
            focused: false,
            theme: &theme,
        };
        let t = draw(view, 24, 5);
        insta::assert_snapshot!(t.backend());
        let chips = layout(&tokens, 22);
        let last = chips.last().unwrap();
        let top = first_line(&chips, None, 3);
        assert_eq!(top, last.line - 2); // a full last page
        let (x, y) = (1 + last.x, 1 + (last.line - top) as u16);
        assert_eq!(token_at(&tokens, None, area, x, y), Some(119));
        // Selection on the first page: that page, and a click on token 2 finds it.
        let c2 = &chips[2];
        assert_eq!(token_at(&tokens, Some(0), area, 1 + c2.x + 1, 1 + c2.line as u16), Some(2));
        assert_eq!(token_at(&tokens, Some(0), area, 0, 1), None); // the border
        assert_eq!(token_at(&tokens, Some(0), area, 1 + c2.x - 1, 1), None); // a separator
    }

    #[test]
    fn tiny_areas_do_not_panic() {
        let theme = Theme::new(ColorMode::TrueColor, ColorMap::Viridis);
        let tokens = sentence();
        for (w, h) in [(1, 1), (2, 2), (3, 3), (5, 4)] {
            let view = TokensView {
                tokens: &tokens,
                selected: Some(17),
                weights: None,
                title: "tokens".into(),
                focused: true,
                theme: &theme,
            };
            draw(view, w, h);
        }
        assert_eq!(token_at(&tokens, None, Rect::new(0, 0, 2, 2), 1, 1), None);
    }
}
