//! The KV-cache calculator: bytes = 2 × layers × kv_heads × head_dim ×
//! positions × batch × bytes per value (`sim::kv`), for a published preset
//! or a loaded model, with context, batch and dtype adjustable, and the same
//! model as MHA, GQA, MQA and without its window.

use super::{bar, text};
use crate::sim::kv::group_digits;
use crate::sim::kv::{gb, gib, Dtype, KvShape};
use crate::tui::theme::Theme;
use crate::tui::views::memory::human_bytes;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

pub struct CalculatorPanel<'a> {
    /// "Llama-2-7B" and where its numbers come from.
    pub title: &'a str,
    pub source: &'a str,
    pub shape: &'a KvShape,
    pub context: usize,
    pub batch: usize,
    pub dtype: Dtype,
    pub theme: &'a Theme,
}

/// The variants a lesson compares: (label, KV heads, shape).
pub fn variants(shape: &KvShape) -> Vec<(String, usize, KvShape)> {
    let h = shape.heads;
    let mut out = vec![(format!("MHA ({h} KV heads)"), h, shape.as_mha())];
    // GQA: the configured grouping, or 8 KV heads (Llama-2-70B's choice) for an MHA model.
    let g = if shape.kv_heads > 1 && shape.kv_heads < h {
        Some(shape.kv_heads)
    } else {
        [8, 4, 2].into_iter().find(|&k| k < h && h.is_multiple_of(k))
    };
    if let Some(k) = g {
        out.push((format!("GQA ({k} KV heads)"), k, KvShape { kv_heads: k, ..shape.clone() }));
    }
    out.push(("MQA (1 KV head)".into(), 1, shape.as_mqa()));
    if shape.window().is_some() {
        out.push(("no window".into(), shape.kv_heads, shape.without_window()));
    }
    out
}

impl Widget for CalculatorPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let s = self.shape;
        let (n, b, dt) = (self.context, self.batch, self.dtype);
        let bold = t.accent().add_modifier(Modifier::BOLD);
        let window = match s.window() {
            Some(w) if s.windows.iter().all(|x| *x == Some(w)) => format!("window {w}"),
            Some(w) => format!("window {w} on {} of {} layers", s.windows.iter().flatten().count(), s.layers),
            None => "no window".into(),
        };
        let mut lines = vec![
            Line::from(vec![
                Span::styled(format!(" {}", self.title), bold),
                Span::styled(format!("  ({})", self.source), t.dim()),
            ]),
            // Two short lines: the panel clips, and a cut "window 4096" would read as "window 4".
            Line::from(format!(" {} layers · {} heads · {} KV heads", s.layers, s.heads, s.kv_heads)),
            Line::from(format!(" head_dim {} · {window}", s.head_dim)),
            Line::from(vec![
                Span::styled(format!(" context {}", group_digits(n as u64)), bold),
                Span::raw(" · "),
                Span::styled(format!("batch {b}"), bold),
                Span::raw(" · "),
                Span::styled(dt.name().to_string(), bold),
            ]),
            Line::default(),
        ];
        let bytes = match s.report(n, b, dt) {
            Ok(r) => r,
            Err(e) => {
                lines.push(Line::styled(format!(" {e}"), t.dim()));
                return text(lines, area, buf);
            }
        };
        let per = match dt {
            Dtype::Q8_0 => "34/32".to_string(),
            _ => format!("{}", dt.bytes_per_value()),
        };
        if s.window().is_none() {
            lines.push(Line::from(format!(
                " 2 × {} × {} × {} × {} × {b} × {per} B",
                s.layers,
                s.kv_heads,
                s.head_dim,
                group_digits(n as u64)
            )));
        } else {
            lines.push(Line::from(" windowed layers hold min(N, W − 1) positions"));
        }
        lines.push(Line::from(vec![
            Span::raw(" = "),
            Span::styled(format!("{} B", group_digits(bytes.kv_bytes)), bold),
            Span::raw(format!(" = {:.2} GB = {:.2} GiB", gb(bytes.kv_bytes), gib(bytes.kv_bytes))),
        ]));
        lines.push(Line::styled(
            format!(
                " per position, one sequence, no window: {} B ({})",
                group_digits(bytes.bytes_per_token),
                human_bytes(bytes.bytes_per_token)
            ),
            t.dim(),
        ));
        lines.push(Line::default());
        let rows: Vec<(String, u64)> =
            variants(s).into_iter().filter_map(|(label, _, v)| v.bytes(n, b, dt).ok().map(|x| (label, x))).collect();
        let max = rows.iter().map(|r| r.1).chain([bytes.kv_bytes]).max().unwrap_or(1).max(1);
        let bar_w = (area.width as usize).saturating_sub(36).clamp(1, 30);
        let mut table = vec![(format!("as configured ({} KV)", s.kv_heads), bytes.kv_bytes)];
        table.extend(rows);
        for (i, (label, x)) in table.iter().enumerate() {
            let style = if i == 0 { bold } else { t.accent() };
            lines.push(Line::from(vec![
                Span::raw(format!(" {label:<22} {:>10} ", human_bytes(*x))),
                Span::styled(bar(*x as f64 / max as f64, bar_w), style),
            ]));
        }
        if s.kv_heads < s.heads {
            lines.push(Line::styled(
                format!(" MHA / this = heads / kv_heads = {} / {} = {}×", s.heads, s.kv_heads, s.heads / s.kv_heads),
                t.dim(),
            ));
        }
        text(lines, area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::presets;
    use crate::tui::lesson::panels::testing::{draw, theme};

    #[test]
    fn commas_and_variants() {
        assert_eq!(group_digits(154_618_822_656), "154,618,822,656");
        assert_eq!(group_digits(999), "999");
        let shape = KvShape::uniform(96, 96, 96, 128, None).unwrap();
        let v = variants(&shape);
        assert_eq!(v.iter().map(|x| x.1).collect::<Vec<_>>(), [96, 8, 1]);
        // the article's claim, recomputed: 154.6 GB in fp16 at 32,768 positions
        assert_eq!(shape.bytes(32_768, 1, Dtype::F16).unwrap(), 154_618_822_656);
    }

    #[test]
    fn gpt3_claim_snapshot() {
        let th = theme();
        let shape = KvShape::uniform(96, 96, 96, 128, None).unwrap();
        let p = CalculatorPanel {
            title: "96 layers, 96 heads",
            source: "the article's model",
            shape: &shape,
            context: 32_768,
            batch: 1,
            dtype: Dtype::F16,
            theme: &th,
        };
        insta::assert_snapshot!(draw(72, 16, p).backend());
    }

    #[test]
    fn mistral_window_snapshot() {
        let th = theme();
        let m = presets::find("mistral-7b").unwrap();
        let shape = m.shape().unwrap();
        let p = CalculatorPanel {
            title: m.title,
            source: m.source,
            shape: &shape,
            context: 32_768,
            batch: 4,
            dtype: Dtype::Bf16,
            theme: &th,
        };
        insta::assert_snapshot!(draw(72, 16, p).backend());
    }
}
