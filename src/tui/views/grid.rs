//! The head grid, bertviz's "model view" in a terminal: one attention
//! thumbnail per head, layers as rows, and query heads grouped under the KV
//! head they share, so GQA and MQA sharing shows at a glance. With a pattern,
//! each head shows its score and the top three are starred; `sorted` ranks
//! all heads by that score instead. One layout function places everything,
//! used by both `render` and `head_at`, so a click lands where the eye does.

use crate::tui::data::{HeadGrid, Mixing, ModelInfo, Pattern};
use crate::tui::heatmap::{Heatmap, Scale};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};
use std::collections::BTreeMap;

pub struct GridView<'a> {
    pub grid: Option<&'a HeadGrid>,
    pub info: &'a ModelInfo,
    /// (layer, head)
    pub selected: (usize, usize),
    /// Score every head by this pattern (a tinted 2-digit score, top three starred).
    pub pattern: Option<Pattern>,
    /// With a pattern: a ranked list instead of the grid.
    pub sorted: bool,
    /// First layer shown (kept so the selected layer stays visible).
    pub scroll: usize,
    pub focused: bool,
    pub theme: &'a Theme,
}

/// Smallest and largest thumbnail, in cells.
const MIN_W: u16 = 3;
const MIN_H: u16 = 2;
const MAX_W: u16 = 16;
/// When layers must scroll, thumbnails shrink until this many layers show.
const MIN_LAYERS_SHOWN: usize = 8;
/// Columns between heads of one KV group, and between groups (" │ ").
const HEAD_GAP: u16 = 1;
const GROUP_GAP: u16 = 3;
/// Ranked list: thumbnail size; entries are this tall plus a blank row.
const LIST_W: u16 = 4;
const LIST_H: u16 = 2;
/// Ranked list text: "★1 " + label + " " + "0.71" + " ".
const RANK_W: u16 = 3;

/// Rows of layers that fit in `area` (the whole panel, border included), so
/// the app can clamp `scroll` to `layers - visible`.
pub fn visible_layers(info: &ModelInfo, area: Rect) -> usize {
    geometry(info, inner(area)).map_or(info.layers, |g| g.visible)
}

/// The (layer, head) drawn at screen cell (x, y), thumbnail or label.
pub fn head_at(view: &GridView, area: Rect, x: u16, y: u16) -> Option<(usize, usize)> {
    let cells = match place(view, area) {
        Placement::Grid(GridPlace { cells, .. }) | Placement::List { cells, .. } => cells,
        Placement::Message(..) => return None,
    };
    let p = Position::new(x, y);
    cells.iter().find(|c| c.thumb.union(c.label).contains(p)).map(|c| (c.layer, c.head))
}

/// One head on screen.
struct Cell {
    layer: usize,
    head: usize,
    thumb: Rect,
    label: Rect,
    /// 1-based place in the pattern's ranking (heads with a score only).
    rank: Option<usize>,
    score: Option<f32>,
}

/// Thumbnail size and how many layers fit, from the model shape and area alone.
struct Geometry {
    gutter: u16,
    tw: u16,
    th: u16,
    visible: usize,
    groups: Vec<(usize, Vec<usize>)>,
}

struct GridPlace {
    inner: Rect,
    geo: Geometry,
    first: usize,
    /// KV head and its header span.
    headers: Vec<(usize, Rect)>,
    separators: Vec<u16>,
    cells: Vec<Cell>,
}

enum Placement {
    Message(Rect, &'static str),
    Grid(GridPlace),
    List { inner: Rect, start: usize, total: usize, cells: Vec<Cell> },
}

fn inner(area: Rect) -> Rect {
    Block::bordered().inner(area)
}

/// Query heads grouped by the KV head they read, in KV-head order.
fn groups(info: &ModelInfo) -> Vec<(usize, Vec<usize>)> {
    let Mixing::Attention { heads, kv_heads, kv_head_of, .. } = &info.mixing else { return vec![] };
    let mut by: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for h in 0..*heads {
        // Without a map, heads split evenly as in llama's repeat_kv.
        let kv = kv_head_of.get(h).copied().unwrap_or(h * (*kv_heads).max(1) / heads);
        by.entry(kv).or_default().push(h);
    }
    by.into_iter().collect()
}

fn geometry(info: &ModelInfo, inner: Rect) -> Option<Geometry> {
    let groups = groups(info);
    let n = groups.iter().map(|(_, hs)| hs.len()).sum::<usize>() as u16;
    if n == 0 || info.layers == 0 {
        return None;
    }
    let g = groups.len() as u16;
    let gutter = format!("L{}", info.layers - 1).len() as u16 + 1;
    let fixed = (n - g).saturating_mul(HEAD_GAP).saturating_add((g - 1).saturating_mul(GROUP_GAP));
    let fit_w = inner.width.saturating_sub(gutter).saturating_sub(fixed) / n;
    let avail_h = inner.height.saturating_sub(1) as usize;
    // Rows per layer if every layer (or enough of them) fits, less the label row.
    let fit_h = (avail_h / info.layers.min(MIN_LAYERS_SHOWN)).saturating_sub(1).min(MAX_W as usize) as u16;
    // Square-ish in pixels (a half-block pixel is about square): w cells ≈ 2·h cells.
    let tw = fit_w.min(fit_h.saturating_mul(2)).clamp(MIN_W, MAX_W);
    let th = tw.div_ceil(2).max(MIN_H);
    let visible = (avail_h / (th as usize + 1)).clamp(1, info.layers);
    Some(Geometry { gutter, tw, th, visible, groups })
}

/// First layer shown: `scroll`, moved just enough to show the selected layer.
fn first_layer(scroll: usize, selected: usize, visible: usize, layers: usize) -> usize {
    let selected = selected.min(layers.saturating_sub(1));
    let first = scroll.min(layers.saturating_sub(visible));
    if selected < first {
        selected
    } else if selected >= first + visible {
        selected + 1 - visible
    } else {
        first
    }
}

/// Heads with their score, best first; heads without a score last.
fn ranking(grid: &HeadGrid, pattern: Pattern, layers: usize, heads: usize) -> Vec<(usize, usize, Option<f32>)> {
    let mut all: Vec<_> = (0..layers)
        .flat_map(|l| (0..heads).map(move |h| (l, h)))
        .map(|(l, h)| (l, h, grid.score(l, h).and_then(|s| pattern.of(s)).filter(|v| !v.is_nan())))
        .collect();
    all.sort_by(|a, b| match (a.2, b.2) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    all
}

fn place(view: &GridView, area: Rect) -> Placement {
    let inner = inner(area);
    if view.info.is_state_space() {
        return Placement::Message(inner, "Mamba has no attention heads — see the state view");
    }
    let Some(grid) = view.grid else { return Placement::Message(inner, "computing thumbnails…") };
    let Some(geo) = geometry(view.info, inner) else { return Placement::Message(inner, "no heads") };
    let (layers, heads) = (view.info.layers, view.info.heads());
    let ranked = view.pattern.map(|p| ranking(grid, p, layers, heads)).unwrap_or_default();
    let rank_of = |l: usize, h: usize| -> (Option<usize>, Option<f32>) {
        match ranked.iter().enumerate().find(|(_, r)| (r.0, r.1) == (l, h)) {
            Some((i, r)) => (r.2.map(|_| i + 1), r.2),
            None => (None, None),
        }
    };
    if view.sorted && view.pattern.is_some() {
        return place_list(view, inner, &ranked);
    }

    let mut headers = vec![];
    let mut separators = vec![];
    let mut columns = vec![];
    let mut x = inner.x.saturating_add(geo.gutter);
    for (gi, (kv, hs)) in geo.groups.iter().enumerate() {
        if gi > 0 {
            separators.push(x.saturating_add(GROUP_GAP / 2));
            x = x.saturating_add(GROUP_GAP);
        }
        let start = x;
        for (i, &h) in hs.iter().enumerate() {
            if i > 0 {
                x = x.saturating_add(HEAD_GAP);
            }
            columns.push((h, x));
            x = x.saturating_add(geo.tw);
        }
        headers.push((*kv, Rect::new(start, inner.y, x - start, 1).intersection(inner)));
    }
    let first = first_layer(view.scroll, view.selected.0, geo.visible, layers);
    let mut cells = vec![];
    for (row, layer) in (first..(first + geo.visible).min(layers)).enumerate() {
        let y = inner.y.saturating_add(1).saturating_add(row as u16 * (geo.th + 1));
        for &(head, x) in &columns {
            let (rank, score) = rank_of(layer, head);
            cells.push(Cell {
                layer,
                head,
                thumb: Rect::new(x, y, geo.tw, geo.th).intersection(inner),
                label: Rect::new(x, y.saturating_add(geo.th), geo.tw, 1).intersection(inner),
                rank,
                score,
            });
        }
    }
    Placement::Grid(GridPlace { inner, geo, first, headers, separators, cells })
}

/// Ranked entries laid out in columns, paged so the selected head is shown.
fn place_list(view: &GridView, inner: Rect, ranked: &[(usize, usize, Option<f32>)]) -> Placement {
    let label_w = format!("L{}.H{}", view.info.layers.saturating_sub(1), view.info.heads().saturating_sub(1)).len();
    let text_w = RANK_W + 1 + label_w as u16 + 1 + 4 + 1;
    let col_w = text_w + LIST_W + 2;
    let cols = (inner.width / col_w).max(1) as usize;
    let rows = (inner.height.saturating_sub(1) / (LIST_H + 1)).max(1) as usize;
    let page = cols * rows;
    let selected = ranked.iter().position(|&(l, h, _)| (l, h) == view.selected).unwrap_or(0);
    let start = selected / page * page;
    let cells = ranked
        .iter()
        .enumerate()
        .skip(start)
        .take(page)
        .map(|(i, &(layer, head, score))| {
            let k = i - start;
            let x = inner.x.saturating_add((k / rows) as u16 * col_w);
            let y = inner.y.saturating_add(1).saturating_add((k % rows) as u16 * (LIST_H + 1));
            Cell {
                layer,
                head,
                thumb: Rect::new(x.saturating_add(text_w), y, LIST_W, LIST_H).intersection(inner),
                label: Rect::new(x, y, text_w, 1).intersection(inner),
                rank: score.map(|_| i + 1),
                score,
            }
        })
        .collect();
    Placement::List { inner, start, total: ranked.len(), cells }
}

impl Widget for GridView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        (&self).render(area, buf);
    }
}

impl Widget for &GridView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let (sl, sh) = self.selected;
        let mut title = format!(" heads · L{sl}.H{sh} ");
        if let Some(p) = self.pattern {
            title += &format!("· {} {}", p.name(), if self.sorted { "ranked " } else { "" });
        }
        let mut block =
            Block::bordered().title(Line::from(title)).border_style(if self.focused { t.focused() } else { t.dim() });
        let placement = place(self, area);
        match &placement {
            Placement::Grid(GridPlace { first, geo, .. }) if geo.visible < self.info.layers => {
                let last = first + geo.visible - 1;
                block = block
                    .title_bottom(Line::from(format!(" L{first}–L{last} of {} ", self.info.layers)).right_aligned());
            }
            Placement::List { start, cells, total, .. } if cells.len() < *total => {
                let shown = format!(" {}–{} of {total} ", start + 1, start + cells.len());
                block = block.title_bottom(Line::from(shown).right_aligned());
            }
            _ => {}
        }
        block.render(area, buf);
        match placement {
            Placement::Message(inner, msg) => Line::from(format!(" {msg}")).style(t.dim()).render(inner, buf),
            Placement::Grid(g) => self.draw_grid(buf, &g),
            Placement::List { inner, cells, .. } => self.draw_list(buf, inner, &cells),
        }
    }
}

impl GridView<'_> {
    fn draw_grid(&self, buf: &mut Buffer, g: &GridPlace) {
        let (t, inner, geo, first) = (self.theme, g.inner, &g.geo, g.first);
        let selected_kv = geo.groups.iter().find(|(_, hs)| hs.contains(&self.selected.1)).map(|(kv, _)| *kv);
        for &(kv, r) in &g.headers {
            let style = if Some(kv) == selected_kv { t.accent() } else { t.dim() };
            Line::from(format!("kv{kv}")).style(style).render(r, buf);
        }
        let shown = (self.info.layers - first).min(geo.visible) as u16;
        let bottom = inner.y.saturating_add(1 + shown * (geo.th + 1)).min(inner.bottom());
        for &x in &g.separators {
            for y in inner.y..bottom {
                Line::from("│").style(t.dim()).render(Rect::new(x, y, 1, 1).intersection(inner), buf);
            }
        }
        for row in 0..shown {
            let layer = first + row as usize;
            let y = inner.y + 1 + row * (geo.th + 1);
            let style = if layer == self.selected.0 { t.accent() } else { t.dim() };
            let r = Rect::new(inner.x, y, geo.gutter - 1, 1).intersection(inner);
            Line::from(format!("L{layer}")).style(style).right_aligned().render(r, buf);
        }
        for c in &g.cells {
            self.draw_thumb(buf, c, c.thumb);
            self.label(c, false).render(c.label, buf);
            if (c.layer, c.head) == self.selected {
                buf.set_style(c.label, t.selected());
            }
        }
    }

    fn draw_list(&self, buf: &mut Buffer, inner: Rect, cells: &[Cell]) {
        let t = self.theme;
        let name = self.pattern.map_or("", Pattern::name);
        Line::from(format!(" heads by {name} score, highest first")).style(t.dim()).render(inner, buf);
        for c in cells {
            self.label(c, true).render(c.label, buf);
            if (c.layer, c.head) == self.selected {
                buf.set_style(c.label, t.selected());
            }
            self.draw_thumb(buf, c, c.thumb);
        }
    }

    fn draw_thumb(&self, buf: &mut Buffer, c: &Cell, r: Rect) {
        let Some(thumb) = self.grid.and_then(|g| g.thumb(c.layer, c.head)) else { return };
        let image = thumb.pooled(r.width as usize, 2 * r.height as usize);
        Heatmap { image: &image, theme: self.theme, scale: Scale::Unit }.render(r, buf);
    }

    /// Grid: "H2", or with a pattern "★1 71" (71 = 0.71) on the score's colour.
    /// List: "★1 L3.H2  0.71 ".
    fn label(&self, c: &Cell, list: bool) -> Line<'static> {
        let t = self.theme;
        let chip = |v: f32| Style::new().fg(t.text_on(v)).bg(t.heat(v));
        let star = match c.rank {
            Some(r) if r <= 3 => Span::styled(format!("★{r}"), t.accent()),
            Some(r) if list => Span::styled(format!("{r}."), t.dim()),
            _ => Span::raw(""),
        };
        if list {
            let width =
                format!("L{}.H{}", self.info.layers.saturating_sub(1), self.info.heads().saturating_sub(1)).len();
            let score = match c.score {
                Some(v) => Span::styled(format!("{v:.2}"), chip(v)),
                None => Span::styled("  — ", t.dim()),
            };
            let name = format!("{:<width$}", format!("L{}.H{}", c.layer, c.head));
            return Line::from(vec![
                Span::raw(" ".repeat((RANK_W as usize).saturating_sub(star.width()))),
                star,
                Span::raw(" "),
                Span::raw(name),
                Span::raw(" "),
                score,
            ]);
        }
        let Some(_) = self.pattern else { return Line::from(Span::styled(format!("H{}", c.head), t.dim())) };
        let score = match c.score {
            Some(v) => Span::styled(format!("{:02}", ((v * 100.0).round() as i32).clamp(0, 99)), chip(v)),
            None => Span::styled("--", t.dim()),
        };
        if star.width() > 0 {
            Line::from(vec![star, Span::raw(" "), score])
        } else {
            Line::from(score)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
