//! Mamba's state view: one layer's SSM state h as a heatmap (channels down,
//! d_state across, signed values on the diverging map), its convolution
//! window beside it (newest column last), and a strip of the step size Δ per
//! position: a large Δ lets that token overwrite the state, a small one lets
//! the state carry on past it.

use crate::tui::data::{Image, StateView, Token};
use crate::tui::heatmap::{Heatmap, Scale};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};

pub struct StateViewWidget<'a> {
    pub state: Option<&'a StateView>,
    /// Tokens by position, for the selected position's text.
    pub tokens: &'a [Token],
    /// Selected position (None: follow the newest).
    pub selected: Option<usize>,
    pub focused: bool,
    pub theme: &'a Theme,
}

/// Cells given to the convolution state (d_conv is 4 in every Mamba so far; columns repeat to fill).
const CONV_W: u16 = 8;
/// Rows above the heatmaps (labels, column titles) and below them (Δ label, Δ bars).
const ABOVE: u16 = 2;
const BELOW: u16 = 2;
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Where the SSM and convolution heatmaps go inside the panel `area`; each
/// cell row shows two pixel rows, so the app asks for 2 × height channel rows.
pub fn state_area(area: Rect) -> (Rect, Rect) {
    let inner = Block::bordered().inner(area);
    let height = inner.height.saturating_sub(ABOVE + BELOW);
    let y = inner.y.saturating_add(ABOVE);
    let ssm_w = inner.width.saturating_sub(CONV_W + 2);
    let ssm = Rect::new(inner.x, y, ssm_w, height);
    let conv = Rect::new(inner.x.saturating_add(ssm_w + 2), y, CONV_W, height).intersection(inner);
    (ssm, conv)
}

/// Smallest and largest non-NaN value (0, 0 when there is none).
fn range(img: &Image) -> (f32, f32) {
    let mut vals = img.values.iter().copied().filter(|v| !v.is_nan()).peekable();
    if vals.peek().is_none() {
        return (0.0, 0.0);
    }
    vals.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// The image stretched to as many whole copies of each column as fit in `width` cells.
fn stretched(img: &Image, width: u16) -> Image {
    let k = (width as usize / img.width.max(1)).max(1);
    img.pooled(img.width * k, img.height)
}

/// A token's text with line breaks and control characters made visible.
fn visible(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => '↵',
            '\t' => '⇥',
            c if c.is_control() => '·',
            c => c,
        })
        .collect()
}

/// First position shown in a strip `width` wide: the newest end, unless the
/// focused position lies before it, which is then centred.
fn first_shown(len: usize, focus: usize, width: usize) -> usize {
    let start = len.saturating_sub(width);
    if focus < start {
        focus.saturating_sub(width / 2)
    } else {
        start
    }
}

impl Widget for StateViewWidget<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        (&self).render(area, buf);
    }
}

impl Widget for &StateViewWidget<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let title = match self.state {
            Some(s) => format!(" state · layer {} · step {} ", s.layer, s.step),
            None => " state ".to_string(),
        };
        let block = Block::bordered().title(title).border_style(if self.focused { t.focused() } else { t.dim() });
        let inner = block.inner(area);
        block.render(area, buf);
        let Some(s) = self.state else {
            Line::from(" waiting for the state…").style(t.dim()).render(inner, buf);
            return;
        };
        let row = |dy: u16| Rect::new(inner.x, inner.y.saturating_add(dy), inner.width, 1).intersection(inner);
        let (lo, hi) = range(&s.ssm);
        let (clo, chi) = range(&s.conv);
        Line::from(format!(
            " channels per row: {} · h ∈ [{lo:+.2}, {hi:+.2}] · conv ∈ [{clo:+.2}, {chi:+.2}]",
            s.channels_per_row
        ))
        .render(row(0), buf);

        let (ssm, conv) = state_area(area);
        let titles = row(1);
        Line::from(" h: channels ↓, d_state →")
            .style(t.dim())
            .render(Rect { x: ssm.x, width: ssm.width, ..titles }, buf);
        Line::from("conv").style(t.dim()).render(Rect { x: conv.x, width: conv.width, ..titles }, buf);
        let max = lo.abs().max(hi.abs());
        let image = stretched(&s.ssm, ssm.width);
        Heatmap { image: &image, theme: t, scale: Scale::Signed { max } }.render(ssm, buf);
        let image = stretched(&s.conv, conv.width);
        Heatmap { image: &image, theme: t, scale: Scale::Signed { max: clo.abs().max(chi.abs()) } }.render(conv, buf);

        let bottom = inner.height.saturating_sub(BELOW);
        self.render_dt(s, row(bottom), row(bottom + 1), buf);
    }
}

impl StateViewWidget<'_> {
    /// Δ per position as bar glyphs (prompt dim, generated accented, the selected one highlighted).
    fn render_dt(&self, s: &StateView, label: Rect, bars: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let len = s.dt.len();
        let mut text = " Δ per position (mean over channels)".to_string();
        if let Some(p) = self.selected.filter(|&p| p < len) {
            let tok = self.tokens.get(p).map_or(String::new(), |k| format!(" \"{}\"", visible(&k.text)));
            text += &format!(" · position {p}{tok}: Δ {:.3}", s.dt[p]);
        }
        Line::from(text).style(t.dim()).render(label, buf);
        if len == 0 || bars.width < 2 {
            return;
        }
        let width = bars.width as usize - 1;
        let focus = self.selected.unwrap_or(len - 1).min(len - 1);
        let start = first_shown(len, focus, width);
        let top = s.dt.iter().copied().filter(|v| v.is_finite()).fold(0.0f32, f32::max);
        let spans: Vec<Span> = (start..len.min(start + width))
            .map(|p| {
                let v = if top > 0.0 { s.dt[p].max(0.0) / top } else { 0.0 };
                let glyph = BARS[((v * 7.0).round() as usize).min(7)];
                let prompt = self.tokens.get(p).is_some_and(|k| k.prompt);
                let style = match () {
                    _ if Some(p) == self.selected => t.selected(),
                    _ if prompt => t.dim(),
                    _ => t.accent(),
                };
                Span::styled(glyph.to_string(), style)
            })
            .collect();
        Line::from(std::iter::once(Span::raw(" ")).chain(spans).collect::<Vec<_>>()).render(bars, buf);
    }
}

#[cfg(test)]
mod tests;
