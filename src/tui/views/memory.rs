//! The memory view: what a model holds between steps. A transformer's KV
//! cache against positions (a Braille line chart), each layer's held length
//! (sliding-window layers stop at W − 1 and evict the rest), and what the same
//! model would hold as MHA, as MQA or without its window. Mamba's state, which
//! does not grow. `CompareMemory` draws several models on one chart for the
//! side-by-side mode.

use crate::tui::data::{Mixing, ModelInfo, StepInfo};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Widget};

pub struct MemoryView<'a> {
    pub info: &'a ModelInfo,
    pub steps: &'a [StepInfo],
    pub focused: bool,
    pub theme: &'a Theme,
}

/// Several models' cache bytes on one chart: (name, info, steps) per model.
pub struct CompareMemory<'a> {
    pub series: Vec<(&'a str, &'a ModelInfo, &'a [StepInfo])>,
    pub theme: &'a Theme,
}

/// Bytes with a binary unit and three significant digits: "512 B", "1.50 KiB", "66.0 KiB", "160 MiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let u = UNITS[unit];
    if v < 10.0 {
        format!("{v:.2} {u}")
    } else if v < 100.0 {
        format!("{v:.1} {u}")
    } else {
        format!("{v:.0} {u}")
    }
}

/// Cache bytes the model would hold at `positions`: as configured, as MHA
/// (kv_heads = heads), as MQA (kv_heads = 1) and, if any layer has a window,
/// without it. A layer with window W holds min(positions, W − 1) after a
/// step, as transformers' (and our) cache does. A state-space model has one
/// row: its state, whatever `positions` is.
pub fn kv_variants(info: &ModelInfo, positions: usize) -> Vec<(&'static str, u64)> {
    let Mixing::Attention { heads, kv_heads, windows, .. } = &info.mixing else {
        return vec![("recurrent state", info.state_bytes as u64)];
    };
    let held = |layer: usize, windowed: bool| -> u64 {
        match windows.get(layer).copied().flatten() {
            Some(w) if windowed => positions.min(w.saturating_sub(1)) as u64,
            _ => positions as u64,
        }
    };
    // Bytes per position are proportional to the KV heads kept.
    let total = |kv: usize, windowed: bool| -> u64 {
        let per = info.kv_bytes_per_position as u64 * kv as u64 / (*kv_heads).max(1) as u64;
        (0..info.layers).map(|l| held(l, windowed) * per).sum()
    };
    let mut v =
        vec![("as configured", total(*kv_heads, true)), ("as MHA", total(*heads, true)), ("as MQA", total(1, true))];
    if windows.iter().any(Option::is_some) {
        v.push((WITHOUT_WINDOW, total(*kv_heads, false)));
    }
    v
}

const WITHOUT_WINDOW: &str = "without its window";

fn variant(info: &ModelInfo, positions: usize, name: &str) -> f64 {
    kv_variants(info, positions).into_iter().find(|v| v.0 == name).map_or(0.0, |v| v.1 as f64)
}

/// The chart's top: a round number of the value's binary unit, a little above it.
fn nice_ceiling(v: u64) -> f64 {
    let mut unit = 1.0;
    while v as f64 / unit >= 1024.0 {
        unit *= 1024.0;
    }
    let x = (v as f64 / unit * 1.05).max(1.0);
    let p = 10f64.powi(x.log10().floor() as i32);
    let m = [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0].into_iter().find(|m| m * p >= x).unwrap_or(10.0);
    m * p * unit
}

/// (positions, bytes) per step, from the empty cache (or the state, which exists from the start).
fn points(info: &ModelInfo, steps: &[StepInfo]) -> Vec<(f64, f64)> {
    let start = if info.is_state_space() { info.state_bytes } else { 0 };
    std::iter::once((0.0, start as f64)).chain(steps.iter().map(|s| (s.positions as f64, s.kv_bytes as f64))).collect()
}

/// A bytes-against-positions chart with labelled axes.
fn chart<'a>(datasets: Vec<Dataset<'a>>, x_max: usize, y_max: f64, theme: &Theme) -> Chart<'a> {
    let x_max = x_max.max(1);
    let x_labels = [0, x_max / 2, x_max].map(|x| x.to_string());
    let y_labels = [0.0, y_max / 2.0, y_max].map(|y| human_bytes(y as u64));
    Chart::new(datasets)
        .x_axis(Axis::default().title("positions").bounds([0.0, x_max as f64]).labels(x_labels).style(theme.dim()))
        .y_axis(Axis::default().bounds([0.0, y_max]).labels(y_labels).style(theme.dim()))
        .legend_position(None)
}

fn line<'a>(data: &'a [(f64, f64)], marker: Marker, color: Color) -> Dataset<'a> {
    Dataset::default().data(data).marker(marker).graph_type(GraphType::Line).style(Style::new().fg(color))
}

fn panel(title: String, focused: bool, theme: &Theme) -> Block<'static> {
    Block::bordered().title(title).border_style(if focused { theme.focused() } else { theme.dim() })
}

impl Widget for MemoryView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        (&self).render(area, buf);
    }
}

impl Widget for &MemoryView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let block = panel(format!(" memory · {} ", self.info.source), self.focused, self.theme);
        let inner = block.inner(area);
        block.render(area, buf);
        if self.steps.is_empty() {
            Line::from(" waiting for the first step").style(self.theme.dim()).render(inner, buf);
        } else if self.info.is_state_space() {
            self.render_state(inner, buf);
        } else {
            self.render_cache(inner, buf);
        }
    }
}

impl MemoryView<'_> {
    fn render_cache(&self, inner: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let Some(last) = self.steps.last() else { return };
        let rows = layer_rows(self.info, last);
        let variants = kv_variants(self.info, last.positions);
        // Per-layer bars beside the table when wide, above it otherwise; a
        // bar's note goes on its own line when it leaves the bar no room.
        let wide = inner.width >= 70;
        let bars_w = if wide { inner.width.saturating_sub(TABLE_W + 2) } else { inner.width };
        let per_row = if bars_fit(&rows, bars_w) { 1 } else { 2 };
        let bars_h = rows.len() * per_row + 1;
        let below = if wide { bars_h.max(variants.len() + 1) } else { bars_h + variants.len() + 2 } as u16;
        let below = if inner.height >= below + 8 { below } else { 0 };
        let [top, bottom] = Layout::vertical([Constraint::Fill(1), Constraint::Length(below)]).areas(inner);

        let windowed = variants.iter().any(|v| v.0 == WITHOUT_WINDOW);
        let held = points(self.info, self.steps);
        // What the cache would hold without its window, as a dim line to compare.
        let unwindowed: Vec<(f64, f64)> = match windowed {
            true => std::iter::once((0.0, 0.0))
                .chain(self.steps.iter().map(|s| (s.positions as f64, variant(self.info, s.positions, WITHOUT_WINDOW))))
                .collect(),
            false => vec![],
        };
        let per_position = (self.info.kv_bytes_per_position * self.info.layers) as u64;
        let mut title = vec![Span::raw(format!(
            " KV cache {} at {} positions · {} per position ",
            human_bytes(last.kv_bytes as u64),
            last.positions,
            human_bytes(per_position)
        ))];
        let mut datasets = vec![];
        if windowed {
            title.extend([
                Span::styled(" ━ held ", Style::new().fg(t.series(0))),
                Span::styled("━ without its window", t.dim()),
            ]);
            datasets.push(line(&unwindowed, Marker::Braille, t.dim().fg.unwrap_or(Color::Reset)));
        }
        datasets.push(line(&held, Marker::Braille, t.series(0)));
        let y_max = nice_ceiling(held.iter().chain(&unwindowed).map(|p| p.1).fold(0.0, f64::max) as u64);
        let [head, plot] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(top);
        Line::from(title).render(head, buf);
        chart(datasets, last.positions, y_max, t).render(plot, buf);

        if bottom.height == 0 {
            return;
        }
        let [bars, table] = if wide {
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(TABLE_W)]).spacing(2).areas(bottom)
        } else {
            Layout::vertical([Constraint::Length(bars_h as u16 + 1), Constraint::Fill(1)]).areas(bottom)
        };
        self.render_layers(&rows, last.positions, per_row, bars, buf);
        self.render_variants(&variants, last.positions, table, buf);
    }

    fn render_layers(&self, rows: &[LayerRow], positions: usize, per_row: usize, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        Line::from(format!(" cache per layer at {positions} positions")).style(t.dim()).render(area, buf);
        let label_w = rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
        let note_w =
            if per_row == 1 { rows.iter().map(|r| r.note().chars().count() + 1).max().unwrap_or(0) } else { 0 };
        let bar_w = (area.width as usize).saturating_sub(label_w + note_w + 3).max(1);
        let row = |i: usize| Rect::new(area.x, area.y.saturating_add(1 + i as u16), area.width, 1).intersection(area);
        for (i, r) in rows.iter().enumerate() {
            let kept = if positions == 0 { 0 } else { (r.held * bar_w).div_ceil(positions).min(bar_w) };
            let mut spans = vec![
                Span::styled(format!(" {:>label_w$} ", r.label), t.dim()),
                Span::styled("█".repeat(kept), Style::new().fg(t.series(0))),
                Span::styled("░".repeat(bar_w - kept), t.dim()),
            ];
            let note = Span::raw(format!(" {}", r.note()));
            if per_row == 1 {
                spans.push(note);
            } else {
                Line::from(vec![Span::raw(" ".repeat(label_w + 1)), note]).render(row(2 * i + 1), buf);
            }
            Line::from(spans).render(row(per_row * i), buf);
        }
    }

    fn render_variants(&self, variants: &[(&str, u64)], positions: usize, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        Line::from(format!(" the same model at {positions} positions")).style(t.dim()).render(area, buf);
        let (heads, kv_heads) = match &self.info.mixing {
            Mixing::Attention { heads, kv_heads, .. } => (*heads, *kv_heads),
            Mixing::StateSpace { .. } => (0, 0),
        };
        let base = variants.first().map_or(0, |v| v.1).max(1) as f64;
        for (i, &(name, bytes)) in variants.iter().enumerate() {
            let detail = match name {
                "as configured" => format!("{kv_heads} KV"),
                "as MHA" => format!("{heads} KV"),
                "as MQA" => "1 KV".to_string(),
                _ => String::new(),
            };
            let ratio = format!("×{:.1}", bytes as f64 / base);
            let text = format!(" {name:<18} {detail:<5}{:>8} {ratio:>5}", human_bytes(bytes));
            let style = if i == 0 { t.accent() } else { Style::new() };
            let y = area.y.saturating_add(1 + i as u16);
            Line::from(text).style(style).render(Rect::new(area.x, y, area.width, 1).intersection(area), buf);
        }
    }

    fn render_state(&self, inner: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let state = self.steps.last().map_or(self.info.state_bytes, |s| s.kv_bytes) as u64;
        let positions = self.steps.last().map_or(0, |s| s.positions);
        let data = points(self.info, self.steps);
        let note = Constraint::Length(if inner.height >= 8 { 2 } else { 0 });
        let [head, plot, foot] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1), note]).areas(inner);
        Line::from(format!(" state {} at {positions} positions", human_bytes(state))).render(head, buf);
        chart(vec![line(&data, Marker::Braille, t.series(0))], positions, nice_ceiling(state), t).render(plot, buf);
        let detail = match self.info.mixing {
            Mixing::StateSpace { d_inner, d_state, d_conv, ssm_heads: 0, conv_rows } => {
                format!(" per layer: h of {d_inner} × {d_state}, a {conv_rows} × {d_conv} convolution window")
            }
            // Mamba-2 convolves B and C beside x: more rows than d_inner.
            Mixing::StateSpace { d_inner, d_state, d_conv, ssm_heads, conv_rows } => format!(
                " per layer: h of {ssm_heads} heads × {} × {d_state}, a {conv_rows} × {d_conv} convolution window \
                 (x, B, C)",
                d_inner / ssm_heads
            ),
            Mixing::Attention { .. } => String::new(),
        };
        let lines = [
            Line::from(" a fixed-size state: it does not grow with the sequence, unlike a KV cache").style(t.dim()),
            Line::from(detail).style(t.dim()),
        ];
        for (i, l) in lines.into_iter().enumerate() {
            l.render(Rect::new(foot.x, foot.y.saturating_add(i as u16), foot.width, 1).intersection(foot), buf);
        }
    }
}

/// Columns of the "same model as …" table.
const TABLE_W: u16 = 39;

/// Whether each bar fits on one line with its note and at least 8 cells of bar.
fn bars_fit(rows: &[LayerRow], width: u16) -> bool {
    let label = rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
    let note = rows.iter().map(|r| r.note().chars().count() + 1).max().unwrap_or(0);
    label + note + 3 + 8 <= width as usize
}

/// Consecutive layers with the same window and held length, shown as one bar.
struct LayerRow {
    label: String,
    held: usize,
    window: Option<usize>,
    evicted: usize,
}

impl LayerRow {
    fn note(&self) -> String {
        match self.window {
            Some(w) => {
                format!("{} held (window {w}: cap {}), {} evicted", self.held, w.saturating_sub(1), self.evicted)
            }
            None => format!("{} held", self.held),
        }
    }
}

fn layer_rows(info: &ModelInfo, step: &StepInfo) -> Vec<LayerRow> {
    let windows = match &info.mixing {
        Mixing::Attention { windows, .. } => windows.as_slice(),
        Mixing::StateSpace { .. } => &[],
    };
    let mut rows: Vec<(usize, usize, LayerRow)> = vec![];
    for (l, &held) in step.kv_len.iter().enumerate() {
        let window = windows.get(l).copied().flatten();
        match rows.last_mut() {
            Some((_, last, r)) if r.held == held && r.window == window => *last = l,
            _ => rows.push((
                l,
                l,
                LayerRow { label: String::new(), held, window, evicted: step.positions.saturating_sub(held) },
            )),
        }
    }
    rows.into_iter()
        .map(|(a, b, mut r)| {
            r.label = if a == b { format!("L{a}") } else { format!("L{a}–{b}") };
            r
        })
        .collect()
}

impl Widget for CompareMemory<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        (&self).render(area, buf);
    }
}

impl Widget for &CompareMemory<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let block = panel(" memory · side by side ".into(), false, t);
        let inner = block.inner(area);
        block.render(area, buf);
        // Without colour, lines differ by marker instead.
        let markers = [(Marker::Braille, "━"), (Marker::Dot, "•"), (Marker::Block, "█"), (Marker::Bar, "▄")];
        let style = |i: usize| {
            if t.has_color() {
                (Marker::Braille, "━", t.series(i))
            } else {
                let (m, s) = markers[i % markers.len()];
                (m, s, Color::Reset)
            }
        };
        let data: Vec<Vec<(f64, f64)>> = self.series.iter().map(|(_, info, steps)| points(info, steps)).collect();
        let legend: Vec<Vec<Span>> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, (name, _, steps))| {
                let (_, sym, color) = style(i);
                let last = steps.last().map_or(String::new(), |s| format!(" {}", human_bytes(s.kv_bytes as u64)));
                vec![Span::styled(format!("{sym} "), Style::new().fg(color)), Span::raw(format!("{name}{last}   "))]
            })
            .collect();
        let legend = wrap(legend, inner.width.saturating_sub(1) as usize);
        let [head, plot] =
            Layout::vertical([Constraint::Length(legend.len() as u16), Constraint::Fill(1)]).areas(inner);
        for (i, l) in legend.into_iter().enumerate() {
            let r = Rect::new(head.x + 1, head.y.saturating_add(i as u16), head.width.saturating_sub(1), 1);
            l.render(r.intersection(head), buf);
        }
        let datasets = data
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let (m, _, color) = style(i);
                line(d, m, color)
            })
            .collect();
        let x_max = data.iter().flatten().map(|p| p.0 as usize).max().unwrap_or(0);
        let y_max = nice_ceiling(data.iter().flatten().map(|p| p.1).fold(0.0, f64::max) as u64);
        chart(datasets, x_max, y_max, t).render(plot, buf);
    }
}

/// Legend entries packed into lines of at most `width` columns.
fn wrap(entries: Vec<Vec<Span<'static>>>, width: usize) -> Vec<Line<'static>> {
    let mut lines: Vec<Vec<Span>> = vec![];
    let mut used = 0;
    for e in entries {
        let w: usize = e.iter().map(Span::width).sum();
        match lines.last_mut() {
            Some(l) if used + w <= width => {
                l.extend(e);
                used += w;
            }
            _ => {
                lines.push(e);
                used = w;
            }
        }
    }
    lines.into_iter().map(Line::from).collect()
}

#[cfg(test)]
mod tests;
