//! The attention-map view: one head's (or the layer's mean) map as a
//! half-block heatmap, query positions down the left, key positions along
//! the bottom, a colour legend on the right and one info line with the
//! ranges, the zoom and the exact value under the cursor.
//!
//! The map arrives already pooled (`pool::pool_map` on a worker) to the size
//! `map_area` reports, so drawing never touches a full n × n matrix.

use super::tokens::visible;
use crate::tui::data::{Image, MapView, Token};
use crate::tui::heatmap::{Heatmap, Scale};
use crate::tui::pool::{pixel_of, pixel_span};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};
use std::ops::Range;
use unicode_width::UnicodeWidthStr;

pub struct AttentionView<'a> {
    pub map: Option<&'a MapView>,
    pub tokens: &'a [Token],
    /// Absolute (query, key).
    pub cursor: Option<(usize, usize)>,
    /// Exact value at the cursor; NaN = masked.
    pub cursor_value: Option<f32>,
    /// The value drawn at the top of the colour map.
    pub vmax: f32,
    pub title: String,
    pub focused: bool,
    pub theme: &'a Theme,
}

/// The view's parts. They depend on the area alone, so the app can size the
/// map it asks the worker for before any map exists.
struct Parts {
    inner: Rect,
    axis: Rect,
    map: Rect,
    legend: Rect,
    keys: Rect,
    info: Rect,
}

fn parts(area: Rect) -> Parts {
    let inner = Block::bordered().inner(area);
    let h = inner.height;
    let info_h = h.min(1);
    let keys_h = u16::from(h >= 4);
    let map_h = h - info_h - keys_h;
    // Query labels "2047 ·the···" need 12 cells; narrow panes keep numbers only.
    let (axis_w, legend_w) = match (map_h, inner.width) {
        (0, _) => (0, 0),
        (_, w) if w >= 40 => (12, 8),
        (_, w) if w >= 30 => (5, 8),
        (_, w) if w >= 16 => (5, 0),
        _ => (0, 0),
    };
    let map_w = inner.width.saturating_sub(axis_w + legend_w);
    let map = Rect::new(inner.x + axis_w, inner.y, map_w, map_h);
    Parts {
        inner,
        axis: Rect::new(inner.x, inner.y, axis_w, map_h),
        map,
        legend: Rect::new(map.right(), inner.y, legend_w, map_h),
        keys: Rect::new(map.x, map.bottom(), map_w, keys_h),
        info: Rect::new(inner.x, map.bottom() + keys_h, inner.width, info_h),
    }
}

/// Where the heatmap pixels go for a view drawn in `area`: ask the worker for
/// `width` × `2 · height` pixels.
pub fn map_area(area: Rect) -> Rect {
    parts(area).map
}

/// Which (query, key) the terminal cell (x, y) shows, for the view drawn in
/// `area`; a cell holds two pixel rows and this takes the top one.
pub fn position_at(map: &MapView, area: Rect, x: u16, y: u16) -> Option<(usize, usize)> {
    let m = parts(area).map;
    if x < m.x || y < m.y || x >= m.right() || y >= m.bottom() {
        return None;
    }
    let (px, py) = ((x - m.x) as usize, 2 * (y - m.y) as usize);
    let img = &map.image;
    if px >= img.width || py >= img.height {
        return None;
    }
    let q = pixel_span(py, map.rows.len(), img.height);
    let k = pixel_span(px, map.cols.len(), img.width);
    (!q.is_empty() && !k.is_empty()).then_some((map.rows.start + q.start, map.cols.start + k.start))
}

fn digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The smallest 1-2-5 step at least `min`.
fn nice_step(min: f64) -> usize {
    let mut p = 1usize;
    for _ in 0..18 {
        if let Some(s) = [1, 2, 5].iter().map(|m| m * p).find(|&s| s as f64 >= min) {
            return s;
        }
        p *= 10;
    }
    p
}

fn fmt_value(v: f32) -> String {
    if v >= 0.1 {
        format!("{v:.2}")
    } else if v >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.0e}")
    }
}

fn range_text(r: &Range<usize>) -> String {
    if r.is_empty() {
        "–".into()
    } else {
        format!("{}–{}", r.start, r.end - 1)
    }
}

/// The coarser axis's zoom: "17 positions/px", "1 position/px", "2.5 px/position".
fn zoom_text(map: &MapView) -> String {
    let per = |n: usize, px: usize| if px == 0 { 0.0 } else { n as f64 / px as f64 };
    let z = per(map.rows.len(), map.image.height).max(per(map.cols.len(), map.image.width));
    let num = |v: f64| if v >= 10.0 || v.fract() < 0.05 { format!("{v:.0}") } else { format!("{v:.1}") };
    if z == 0.0 {
        String::new()
    } else if z >= 1.0 {
        let n = num(z);
        if n == "1" {
            "1 position/px".into()
        } else {
            format!("{n} positions/px")
        }
    } else {
        format!("{} px/position", num(1.0 / z))
    }
}

impl AttentionView<'_> {
    fn token(&self, i: usize) -> Option<&Token> {
        self.tokens.get(i)
    }

    fn token_style(&self, i: usize) -> Style {
        match self.token(i) {
            Some(t) if !t.prompt => self.theme.accent(),
            _ => Style::new(),
        }
    }

    /// The text as in the source, quoted, with only line breaks and tabs made visible.
    fn quoted(&self, i: usize) -> String {
        self.token(i).map(|t| format!(" '{}'", t.text.replace('\n', "↵").replace('\t', "→"))).unwrap_or_default()
    }

    /// The cursor's pixel (x, y) in the map image, if it is in view.
    fn cursor_pixel(&self, map: &MapView) -> Option<(usize, usize)> {
        let (q, k) = self.cursor?;
        let y = pixel_of(q.checked_sub(map.rows.start)?, map.rows.len(), map.image.height)?;
        let x = pixel_of(k.checked_sub(map.cols.start)?, map.cols.len(), map.image.width)?;
        Some((x, y))
    }

    fn query_axis(&self, map: &MapView, area: Rect, cursor_row: Option<u16>, buf: &mut Buffer) {
        if area.width < 2 {
            return;
        }
        let w = (area.width - 1) as usize; // one blank column before the map
        let (img, n) = (&map.image, map.rows.len());
        let cells = (img.height.div_ceil(2) as u16).min(area.height);
        let d = digits(map.rows.end.saturating_sub(1));
        // Two pixel rows or more per position: every position gets its own labelled row.
        let one_per_row = n <= cells as usize;
        let step = nice_step(4.0 * n as f64 / cells.max(1) as f64);
        let mut last = None;
        for cy in 0..cells {
            let (top, bottom) = (2 * cy as usize, (2 * cy as usize + 1).min(img.height.saturating_sub(1)));
            let span = pixel_span(top, n, img.height).start..pixel_span(bottom, n, img.height).end;
            let (y, x) = (area.y + cy, area.x);
            if one_per_row {
                let q = map.rows.start + span.start;
                if last == Some(q) {
                    continue;
                }
                last = Some(q);
                let (nx, _) = buf.set_stringn(x, y, format!("{q:>d$} "), w, self.theme.dim());
                let text = self.token(q).map(|t| visible(&t.text)).unwrap_or_default();
                buf.set_stringn(nx, y, text, w.saturating_sub((nx - x) as usize), self.token_style(q));
            } else {
                let first = map.rows.start + span.start;
                let m = first.div_ceil(step) * step;
                if m < map.rows.start + span.end {
                    buf.set_stringn(x, y, format!("{m:>d$}"), w, self.theme.dim());
                }
            }
        }
        if let (Some(cy), Some((q, _))) = (cursor_row, self.cursor) {
            let y = area.y + cy;
            let sel = self.theme.selected();
            let text = self.token(q).map(|t| visible(&t.text)).unwrap_or_default();
            buf.set_stringn(area.x, y, " ".repeat(w), w, sel);
            buf.set_stringn(area.x, y, format!("{q:>d$} {text}"), w, sel);
        }
    }

    fn key_axis(&self, map: &MapView, area: Rect, cursor_x: Option<u16>, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let (img, n) = (&map.image, map.cols.len());
        let width = (img.width as u16).min(area.width);
        // Four cells or more per position: room for three characters of its token text.
        let tokens = n > 0 && img.width >= 4 * n;
        let label = |k: usize| {
            if tokens {
                self.token(k).map(|t| visible(&t.text)).unwrap_or_default()
            } else {
                k.to_string()
            }
        };
        // The cursor's label goes first; others keep a blank cell around it.
        let cursor = cursor_x.zip(self.cursor).map(|(x, (_, k))| {
            let text = label(k);
            let len = (text.width() as u16).min(width);
            (x.min(width - len), text, len)
        });
        let free = |x: u16, len: u16| cursor.as_ref().is_none_or(|(cx, _, cl)| x + len < *cx || x > cx + cl);
        if tokens {
            for k in map.cols.clone() {
                let Some(x) = pixel_of(k - map.cols.start, n, img.width) else { continue };
                let x = x as u16;
                let end = pixel_of(k + 1 - map.cols.start, n, img.width).map_or(width, |e| e as u16).min(width);
                let room = end.saturating_sub(x + 1).max(1);
                if x < width && free(x, room) {
                    buf.set_stringn(area.x + x, area.y, label(k), room as usize, self.token_style(k));
                }
            }
        } else {
            let step = nice_step(n as f64 / img.width.max(1) as f64 * (digits(map.cols.end) + 2) as f64);
            let mut next_free = 0;
            let mut m = map.cols.start.div_ceil(step) * step;
            while m < map.cols.end {
                let text = m.to_string();
                let len = text.len() as u16;
                if let Some(x) = pixel_of(m - map.cols.start, n, img.width).map(|x| x as u16) {
                    if x >= next_free && x + len <= width && free(x, len) {
                        buf.set_stringn(area.x + x, area.y, text, len as usize, self.theme.dim());
                        next_free = x + len + 1;
                    }
                }
                m += step;
            }
        }
        if let Some((x, text, len)) = cursor {
            buf.set_stringn(area.x + x, area.y, text, len as usize, self.theme.selected());
        }
    }

    /// A vertical gradient bar from vmax (top) to 0 (bottom), labelled at both ends.
    fn legend(&self, vmax: f32, area: Rect, buf: &mut Buffer) {
        if area.width < 4 || area.height == 0 {
            return;
        }
        let px = 2 * area.height as usize;
        let ramp = Image::new(1, px, (0..px).map(|i| 1.0 - i as f32 / (px - 1) as f32).collect());
        let bar = Rect::new(area.x + 1, area.y, 1, area.height);
        Heatmap { image: &ramp, theme: self.theme, scale: Scale::Unit }.render(bar, buf);
        let w = (area.width - 3) as usize;
        buf.set_stringn(area.x + 3, area.y, fmt_value(vmax), w, self.theme.dim());
        if area.height > 1 {
            buf.set_stringn(area.x + 3, area.bottom() - 1, "0", w, self.theme.dim());
        }
    }

    fn info(&self, map: &MapView, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let head = match map.head {
            Some(h) => format!("L{} H{}", map.layer, h),
            None => format!("L{} mean", map.layer),
        };
        let cursor = self.cursor.map(|(q, k)| {
            let value = match self.cursor_value {
                Some(v) if v.is_nan() => " masked".to_string(),
                Some(v) => format!(" = {v:.4}"),
                None => String::new(),
            };
            format!("q {q}{} → k {k}{}{value}", self.quoted(q), self.quoted(k))
        });
        // When the line is too long, the ranges go first, then the zoom: the cursor's value matters most.
        let line = |ranges: bool, zoom: bool| {
            let sep = || Span::styled(" · ", self.theme.dim());
            let mut spans = vec![Span::styled(head.clone(), Style::new().add_modifier(Modifier::BOLD))];
            if ranges {
                spans.extend([sep(), Span::raw(format!("rows {}", range_text(&map.rows)))]);
                spans.extend([sep(), Span::raw(format!("cols {}", range_text(&map.cols)))]);
            }
            if zoom {
                spans.extend([sep(), Span::raw(zoom_text(map))]);
            }
            if let Some(c) = &cursor {
                spans.extend([sep(), Span::styled(c.clone(), self.theme.accent())]);
            }
            Line::from(spans)
        };
        let fits = |l: &Line| l.width() <= area.width as usize;
        let line = [line(true, true), line(false, true)].into_iter().find(fits).unwrap_or_else(|| line(false, false));
        buf.set_line(area.x, area.y, &line, area.width);
    }
}

impl Widget for AttentionView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let style = if self.focused { self.theme.focused() } else { Style::new() };
        Block::bordered().title(self.title.clone()).border_style(style).render(area, buf);
        let p = parts(area);
        let Some(map) = self.map else {
            let text = "computing…";
            if !p.inner.is_empty() {
                let x = p.inner.x + p.inner.width.saturating_sub(text.width() as u16) / 2;
                let y = p.inner.y + p.inner.height / 2;
                buf.set_stringn(x, y, text, p.inner.width as usize, self.theme.dim());
            }
            return;
        };
        let vmax = if self.vmax.is_finite() && self.vmax > 0.0 { self.vmax } else { 1.0 };
        let img = &map.image;
        let scaled = Image::new(img.width, img.height, img.values.iter().map(|v| v / vmax).collect());
        Heatmap { image: &scaled, theme: self.theme, scale: Scale::Unit }.render(p.map, buf);
        let cursor = self
            .cursor_pixel(map)
            .map(|(x, y)| (x as u16, (y / 2) as u16))
            .filter(|&(x, y)| x < p.map.width && y < p.map.height);
        if let Some((x, y)) = cursor {
            buf.set_string(p.map.x + x, p.map.y + y, "◆", self.theme.selected());
        }
        self.query_axis(map, p.axis, cursor.map(|c| c.1), buf);
        self.key_axis(map, p.keys, cursor.map(|c| c.0), buf);
        self.legend(vmax, p.legend, buf);
        self.info(map, p.info, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::pool::{is_masked, pool_map};
    use crate::tui::theme::{ColorMap, ColorMode};
    use ratatui::{backend::TestBackend, style::Color, Terminal};

    fn theme() -> Theme {
        Theme::new(ColorMode::TrueColor, ColorMap::Viridis)
    }

    fn toks(words: &[&str], prompt: usize) -> Vec<Token> {
        words.iter().enumerate().map(|(i, w)| Token { id: i as u32, text: w.to_string(), prompt: i < prompt }).collect()
    }

    /// A 12-token prompt that repeats itself, and 6 generated tokens.
    fn short() -> Vec<Token> {
        let words = [
            "<s>", "The", " cat", " sat", " on", " the", " mat", ".", " The", " cat", " sat", " on", " the", " mat",
            ".", "\n", "It", " was",
        ];
        toks(&words, 12)
    }

    /// 2,048 tokens of varied text (a fixed pseudo-random walk over a small vocabulary).
    fn long() -> Vec<Token> {
        let vocab = [
            " the",
            " of",
            " and",
            " to",
            " a",
            " in",
            " is",
            " that",
            " model",
            " attention",
            " head",
            " token",
            " layer",
            " key",
            " query",
            " value",
            ",",
            ".",
            " it",
            " we",
            " this",
            " cache",
            " sequence",
            " position",
        ];
        let mut s = 12345u64;
        let words: Vec<&str> = (0..2048)
            .map(|i| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if i == 0 {
                    "<s>"
                } else {
                    vocab[(s >> 33) as usize % vocab.len()]
                }
            })
            .collect();
        toks(&words, 2000)
    }

    /// A plausible causal head over `tokens` (n × n, row-major, like `Trace::attention`):
    /// a sink on key 0, a previous-token diagonal, induction (the key after an earlier copy
    /// of the query's token) and a little spread; each row sums to 1 over its visible keys.
    fn head(tokens: &[Token], window: Option<usize>) -> Vec<f32> {
        let n = tokens.len();
        let mut out = vec![0f32; n * n];
        for i in 0..n {
            let row = &mut out[i * n..(i + 1) * n];
            let visible: Vec<usize> = (0..=i).filter(|&j| !is_masked(window, i, j)).collect();
            for &j in &visible {
                row[j] = 0.1 / visible.len() as f32;
            }
            if !is_masked(window, i, 0) {
                row[0] += 0.35;
            }
            if i > 0 {
                row[i - 1] += 0.3;
            }
            let hits: Vec<usize> =
                visible.iter().copied().filter(|&j| j > 0 && j < i && tokens[j - 1].text == tokens[i].text).collect();
            for &j in &hits {
                row[j] += 0.25 / hits.len() as f32;
            }
            let total: f32 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= total);
        }
        out
    }

    /// The map a worker would send for `area`: rows × cols of `data`, pooled to `map_area`.
    fn map_for(
        area: Rect,
        data: &[f32],
        n: usize,
        rows: Range<usize>,
        cols: Range<usize>,
        window: Option<usize>,
    ) -> MapView {
        let m = map_area(area);
        let slice = &data[rows.start * n..rows.end * n];
        let image = pool_map(slice, n, rows.clone(), cols.clone(), m.width as usize, 2 * m.height as usize, |i, j| {
            is_masked(window, i, j)
        });
        MapView { layer: 1, head: Some(3), rows, cols, image, positions: n }
    }

    fn vmax(map: &MapView) -> f32 {
        map.image.values.iter().copied().filter(|v| !v.is_nan()).fold(0.0, f32::max)
    }

    fn draw(view: AttentionView<'_>, w: u16, h: u16) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| f.render_widget(view, f.area())).unwrap();
        t
    }

    fn view<'a>(
        map: Option<&'a MapView>,
        tokens: &'a [Token],
        theme: &'a Theme,
        cursor: Option<(usize, usize)>,
        value: Option<f32>,
    ) -> AttentionView<'a> {
        AttentionView {
            map,
            tokens,
            cursor,
            cursor_value: value,
            vmax: map.map_or(1.0, vmax),
            title: " attention · L1 H3 ".into(),
            focused: true,
            theme,
        }
    }

    #[test]
    fn short_sequence_snapshot_and_colours() {
        let (tokens, theme) = (short(), theme());
        let n = tokens.len();
        let data = head(&tokens, None);
        let area = Rect::new(0, 0, 80, 24);
        let map = map_for(area, &data, n, 0..n, 0..n, None);
        // Query 9 (" cat", second time) → key 3 (" sat"): the induction hit.
        let v = data[9 * n + 3];
        let t = draw(view(Some(&map), &tokens, &theme, Some((9, 3)), Some(v)), 80, 24);
        insta::assert_snapshot!(t.backend());
        let buf = t.backend().buffer();
        let m = map_area(area);
        // The strongest pixel is drawn at the top of the colour map.
        let values = &map.image.values;
        let best = (0..values.len()).filter(|&i| !values[i].is_nan()).max_by(|&a, &b| values[a].total_cmp(&values[b]));
        let best = best.unwrap();
        let (bx, by) = (best % map.image.width, best / map.image.width);
        let cell = &buf[(m.x + bx as u16, m.y + (by / 2) as u16)];
        assert_eq!(if by % 2 == 0 { cell.fg } else { cell.bg }, theme.heat(1.0));
        // Top-right: the future of query 0, masked: a faint dot, not a colour.
        let masked = &buf[(m.right() - 1, m.y)];
        assert_eq!((masked.symbol(), masked.fg), ("·", Color::DarkGray));
        // Last row, a key in the middle: a small but real value, coloured as such.
        let (px, py) = (pixel_of(5, n, map.image.width).unwrap(), pixel_of(17, n, map.image.height).unwrap());
        let small = &buf[(m.x + px as u16, m.y + (py / 2) as u16)];
        let small_v = map.image.get(px, py);
        assert!(small_v > 0.0 && small_v < 0.1 * vmax(&map));
        assert_eq!(if py % 2 == 0 { small.fg } else { small.bg }, theme.heat(small_v / vmax(&map)));
        assert_ne!(small.symbol(), "·");
        // The cursor marker sits on query 9 × key 3.
        let (cx, cy) = (pixel_of(3, n, map.image.width).unwrap(), pixel_of(9, n, map.image.height).unwrap());
        assert_eq!(buf[(m.x + cx as u16, m.y + (cy / 2) as u16)].symbol(), "◆");
    }

    #[test]
    fn without_colour_heat_is_density_and_the_cursor_is_reversed() {
        let tokens = short();
        let theme = Theme::new(ColorMode::None, ColorMap::Viridis);
        let n = tokens.len();
        let data = head(&tokens, None);
        let area = Rect::new(0, 0, 80, 24);
        let map = map_for(area, &data, n, 0..n, 0..n, None);
        let t = draw(view(Some(&map), &tokens, &theme, Some((9, 3)), Some(data[9 * n + 3])), 80, 24);
        let (buf, m) = (t.backend().buffer(), map_area(area));
        assert_eq!(buf[(m.x, m.y)].symbol(), "█"); // query 0 → key 0: all its attention
        assert_eq!(buf[(m.right() - 1, m.y)].symbol(), "·");
        let (cx, cy) = (pixel_of(3, n, map.image.width).unwrap(), pixel_of(9, n, map.image.height).unwrap());
        assert!(buf[(m.x + cx as u16, m.y + (cy / 2) as u16)].modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn zoomed_in_map_labels_keys_with_tokens() {
        let (tokens, theme) = (short(), theme());
        let n = tokens.len();
        let data = head(&tokens, None);
        let map = map_for(Rect::new(0, 0, 80, 20), &data, n, 8..18, 0..10, None);
        let t = draw(view(Some(&map), &tokens, &theme, Some((16, 7)), Some(data[16 * n + 7])), 80, 20);
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn long_sequence_zoomed_out_snapshot() {
        let (tokens, theme) = (long(), theme());
        let n = tokens.len();
        let data = head(&tokens, None);
        let map = map_for(Rect::new(0, 0, 100, 32), &data, n, 0..n, 0..n, None);
        let t = draw(view(Some(&map), &tokens, &theme, Some((1500, 700)), Some(data[1500 * n + 700])), 100, 32);
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn sliding_window_shows_the_masked_band() {
        let (tokens, theme) = (long(), theme());
        let tokens = &tokens[..64];
        let data = head(tokens, Some(8));
        let area = Rect::new(0, 0, 64, 22);
        let map = map_for(area, &data, 64, 0..64, 0..64, Some(8));
        let t = draw(view(Some(&map), tokens, &theme, Some((40, 2)), Some(f32::NAN)), 64, 22);
        insta::assert_snapshot!(t.backend());
        // Bottom-left (query 63, key 0) is outside the window: masked, not small.
        let m = map_area(area);
        assert_eq!(t.backend().buffer()[(m.x, m.bottom() - 1)].symbol(), "·");
    }

    #[test]
    fn tiny_areas_do_not_panic() {
        let (tokens, theme) = (short(), theme());
        let n = tokens.len();
        let data = head(&tokens, None);
        for (w, h) in [(1, 1), (2, 2), (3, 3), (5, 4), (10, 5), (15, 6), (20, 3), (29, 8), (39, 10)] {
            let map = map_for(Rect::new(0, 0, w, h), &data, n, 0..n, 0..n, None);
            draw(view(Some(&map), &tokens, &theme, Some((17, 16)), Some(0.3)), w, h);
            draw(view(None, &tokens, &theme, None, None), w, h);
        }
        // A stale map bigger than the area is clipped, not a panic.
        let big = map_for(Rect::new(0, 0, 80, 24), &data, n, 0..n, 0..n, None);
        draw(view(Some(&big), &tokens, &theme, Some((17, 16)), Some(0.3)), 12, 5);
        let map = map_for(Rect::new(0, 0, 24, 7), &data, n, 0..n, 0..n, None);
        let t = draw(view(Some(&map), &tokens, &theme, Some((17, 16)), Some(0.3)), 24, 7);
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn computing_is_centred_until_a_map_arrives() {
        let (tokens, theme) = (short(), theme());
        let t = draw(view(None, &tokens, &theme, None, None), 40, 7);
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn clicks_find_the_cell_drawn_there() {
        let (tokens, theme) = (short(), theme());
        let n = tokens.len();
        let data = head(&tokens, None);
        let area = Rect::new(2, 1, 80, 24);
        let map = map_for(area, &data, n, 0..n, 0..n, None);
        let m = map_area(area);
        assert_eq!(position_at(&map, area, m.x, m.y), Some((0, 0)));
        assert_eq!(position_at(&map, area, m.right() - 1, m.bottom() - 1), Some((n - 1, n - 1)));
        assert_eq!(position_at(&map, area, m.x - 1, m.y), None); // the query axis
        assert_eq!(position_at(&map, area, m.x, m.bottom()), None); // the key axis
                                                                    // Where the cursor marker is drawn, a click reads back the same key and a query in that cell.
        let (cx, cy) = (pixel_of(3, n, map.image.width).unwrap(), pixel_of(9, n, map.image.height).unwrap());
        let (q, k) = position_at(&map, area, m.x + cx as u16, m.y + (cy / 2) as u16).unwrap();
        assert_eq!(k, 3);
        assert!(q == 9 || q + 1 == 9, "{q}");
        let _ = theme;
    }

    #[test]
    fn labels_and_zoom_text() {
        assert_eq!(nice_step(0.3), 1);
        assert_eq!(nice_step(137.0), 200);
        assert_eq!(digits(0), 1);
        assert_eq!(digits(2047), 4);
        assert_eq!(fmt_value(0.4137), "0.41");
        assert_eq!(fmt_value(0.05), "0.050");
        let map = |n: usize, w: usize, h: usize| MapView {
            layer: 0,
            head: None,
            rows: 0..n,
            cols: 0..n,
            image: Image::new(w, h, vec![0.0; w * h]),
            positions: n,
        };
        assert_eq!(zoom_text(&map(2048, 200, 120)), "17 positions/px");
        assert_eq!(zoom_text(&map(18, 18, 36)), "1 position/px");
        assert_eq!(zoom_text(&map(10, 58, 36)), "3.6 px/position");
    }
}
