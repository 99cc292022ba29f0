//! A mask drawn as a matrix (■ a query may look at a key, · it may not),
//! beside the same mask multiplied through `layers` stacked layers: what
//! the top of the stack can draw on, and the receptive field L × (W − 1).

use super::text;
use crate::sim::mask::{earliest_reached, receptive_field, Mask, MaskKind};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

pub struct MaskPanel<'a> {
    pub kind: MaskKind,
    pub size: usize,
    pub layers: usize,
    pub theme: &'a Theme,
}

/// The kind named in a lesson (`causal`, `sliding`, `full`).
pub fn kind_of(name: &str, window: Option<usize>) -> MaskKind {
    match (name, window) {
        ("full", _) => MaskKind::Full,
        ("sliding", Some(w)) => MaskKind::Sliding(w.max(1)),
        _ => MaskKind::Causal,
    }
}

/// The matrix as lines: a header of key numbers, then one row per query.
fn matrix(m: &Mask, title: String, theme: &Theme) -> Vec<Line<'static>> {
    let n = m.len();
    let mut out = vec![Line::styled(title, theme.accent().add_modifier(Modifier::BOLD))];
    let keys: String = (0..n).map(|j| format!("{:<2}", j % 10)).collect();
    out.push(Line::styled(format!("     {keys}"), theme.dim()));
    for i in 0..n {
        let mut spans = vec![Span::styled(format!(" {i:>3} "), theme.dim())];
        for j in 0..n {
            spans.push(if m.get(i, j) {
                Span::styled("■ ", theme.accent())
            } else {
                Span::styled("· ", theme.dim())
            });
        }
        out.push(Line::from(spans));
    }
    out
}

impl Widget for MaskPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let n = self.size.clamp(1, 64);
        let one = Mask::new(self.kind, n);
        let through = one.through(self.layers);
        let name = match self.kind {
            MaskKind::Full => "full".to_string(),
            MaskKind::Causal => "causal".to_string(),
            MaskKind::Sliding(w) => format!("W = {w}"),
        };
        let left = matrix(&one, format!(" 1 layer, {name}"), t);
        let right = matrix(&through, format!(" {} layers", self.layers), t);
        let last = n - 1;
        let mut notes = vec![Line::default()];
        match self.kind {
            MaskKind::Sliding(w) => {
                let reach = receptive_field(w, self.layers);
                notes.push(Line::from(format!(
                    " each query sees {} keys, itself included (i − W < j ≤ i)",
                    one.count(last)
                )));
                notes.push(Line::from(format!(
                    " through {} layers: {} × (W − 1) = {reach} positions back",
                    self.layers, self.layers
                )));
                notes.push(Line::from(format!(
                    " query {last} reaches position {} (the product of masks agrees: {})",
                    earliest_reached(last, w, self.layers),
                    through.first(last).unwrap_or(last)
                )));
                notes.push(Line::styled(" the Mistral paper counts W + 1 keys (i − W … i): one more", t.dim()));
            }
            MaskKind::Causal => notes.push(Line::from(format!(" query {last} sees all {} keys up to itself", n))),
            MaskKind::Full => notes.push(Line::from(" every query sees every key (no mask)")),
        }
        // Side by side when both fit, else one above the other, else the first only.
        let w = (5 + 2 * n) as u16;
        let h = (n + 2) as u16;
        if area.width >= 2 * w + 2 {
            text(left, Rect { width: w + 1, ..area }, buf);
            text(right, Rect { x: area.x + w + 2, width: area.width - w - 2, ..area }, buf);
            let y = (area.y + h).min(area.bottom());
            Paragraph::new(notes).wrap(Wrap { trim: false }).render(Rect { y, height: area.bottom() - y, ..area }, buf);
        } else if area.height >= 2 * h + 4 {
            let mut lines = left;
            lines.extend(right);
            lines.extend(notes);
            text(lines, area, buf);
        } else {
            let mut lines = left;
            lines.extend(notes);
            text(lines, area, buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::lesson::panels::testing::{draw, theme};

    #[test]
    fn kinds_from_names() {
        assert_eq!(kind_of("sliding", Some(4)), MaskKind::Sliding(4));
        assert_eq!(kind_of("sliding", None), MaskKind::Causal);
        assert_eq!(kind_of("full", None), MaskKind::Full);
    }

    #[test]
    fn sliding_mask_through_two_layers_snapshot() {
        let th = theme();
        let t = draw(64, 18, MaskPanel { kind: MaskKind::Sliding(3), size: 10, layers: 2, theme: &th });
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn causal_mask_narrow_snapshot() {
        let th = theme();
        let t = draw(30, 14, MaskPanel { kind: MaskKind::Causal, size: 6, layers: 1, theme: &th });
        insta::assert_snapshot!(t.backend());
        draw(3, 1, MaskPanel { kind: MaskKind::Full, size: 100, layers: 3, theme: &th });
    }
}
