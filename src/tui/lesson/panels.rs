//! One widget per panel kind a lesson step can show. The computed panels
//! (sdpa, mask, calculator, tiling, scan) take plain data and draw text and
//! heat; the live ones (attention, heads, cache, compare) wrap the
//! explorer's widgets around an inner `App`'s panes.

pub mod calculator;
pub mod live;
pub mod mask;
pub mod scan;
pub mod sdpa;
pub mod tiling;

use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};

/// Lines clipped to `area` (no wrapping: tables keep their columns).
pub fn text(lines: Vec<Line<'static>>, area: Rect, buf: &mut Buffer) {
    Paragraph::new(lines).render(area, buf);
}

/// A horizontal bar of `w` cells for a value in [0, 1], eighths included.
pub fn bar(v: f64, w: usize) -> String {
    const PARTS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];
    if !v.is_finite() || v <= 0.0 || w == 0 {
        return String::new();
    }
    let eighths = (v.min(1.0) * (w * 8) as f64).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(PARTS[eighths % 8 - 1]);
    }
    if s.is_empty() {
        s.push('▏');
    }
    s
}

/// A token's text for a table cell: quoted, control characters visible, cut to `w`.
pub fn token_cell(text: &str, w: usize) -> String {
    let t: String = crate::tui::views::tokens::visible(text).chars().take(w.saturating_sub(2)).collect();
    format!("\"{t}\"")
}

/// "waiting for …" in the dim style.
pub fn waiting(what: &str, theme: &Theme, area: Rect, buf: &mut Buffer) {
    text(vec![Line::styled(format!(" {what}"), theme.dim())], area, buf);
}

#[cfg(test)]
pub mod testing {
    //! Drawing a widget into a TestBackend for snapshots.
    use crate::tui::theme::{ColorMap, ColorMode, Theme};
    use ratatui::backend::TestBackend;
    use ratatui::widgets::Widget;
    use ratatui::Terminal;

    pub fn theme() -> Theme {
        Theme::new(ColorMode::TrueColor, ColorMap::Viridis)
    }

    pub fn draw(w: u16, h: u16, widget: impl Widget) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| f.render_widget(widget, f.area())).unwrap();
        t
    }

    /// A fake head: position i's query and key are smooth in i, key 0 strong (a sink).
    pub fn head_qk(n: usize, d: usize) -> crate::tui::data::HeadQk {
        let f = |i: usize, c: usize, a: f32, b: f32| (i as f32 * a + c as f32 * b).sin() * 1.5;
        let q = (0..n * d).map(|x| f(x / d, x % d, 0.37, 1.3)).collect();
        let mut k: Vec<f32> = (0..n * d).map(|x| f(x / d, x % d, 0.91, 0.7)).collect();
        k[..d].iter_mut().for_each(|v| *v = 3.0);
        crate::tui::data::HeadQk {
            layer: 0,
            head: 1,
            positions: n,
            head_dim: d,
            q,
            k,
            scale: 1.0 / (d as f32).sqrt(),
            window: None,
        }
    }

    pub fn tokens(n: usize) -> Vec<crate::tui::data::Token> {
        let words = ["The", " cat", " sat", " on", " the", " mat", ".", "\n"];
        (0..n)
            .map(|i| crate::tui::data::Token { id: i as u32, text: words[i % words.len()].into(), prompt: i < n - 2 })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bars_have_eighths() {
        assert_eq!(super::bar(1.0, 2), "██");
        assert_eq!(super::bar(0.5, 1), "▌");
        assert_eq!(super::bar(0.0, 4), "");
        assert_eq!(super::bar(1e-9, 4), "▏");
    }
}
