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
mod tests;
