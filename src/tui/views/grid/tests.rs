use super::*;
use crate::metrics::score_head;
use crate::tui::data::Image;
use crate::tui::theme::{ColorMap, ColorMode};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// Positions of the fake trace; thumbnails are its whole map.
const N: usize = 16;

/// Token ids of the fake prompt: a phrase that repeats, so induction scores exist.
fn tokens() -> Vec<u32> {
    (0..N as u32).map(|i| [5, 9, 14, 3, 7, 11, 2, 8][i as usize % 8]).collect()
}

#[derive(Clone, Copy)]
enum Kind {
    /// `s` of each row on the previous position, the rest spread evenly.
    Previous(f32),
    /// `s` of each row on position 0 (an attention sink), the rest even.
    Sink(f32),
    /// Even over every visible key.
    Uniform,
}

/// A causal attention map, rows summing to 1, zeros right of the diagonal.
fn causal(kind: Kind) -> Vec<f32> {
    let mut a = vec![0.0; N * N];
    for i in 0..N {
        let (peak, share) = match kind {
            Kind::Previous(s) if i > 0 => (Some((i - 1, s)), (1.0 - s) / i as f32),
            Kind::Sink(s) if i > 0 => (Some((0, s)), (1.0 - s) / i as f32),
            _ => (None, 1.0 / (i + 1) as f32),
        };
        for j in 0..=i {
            a[i * N + j] = match peak {
                Some((k, s)) if k == j => s,
                Some(_) => share,
                None => share,
            };
        }
    }
    a
}

/// The map as a thumbnail: masked (NaN) right of the diagonal.
fn thumb(attn: &[f32]) -> Image {
    let values = (0..N * N).map(|k| if k % N > k / N { f32::NAN } else { attn[k] }).collect();
    Image::new(N, N, values)
}

/// Heads that look like a trained model's: sinks in early layers, a few strong
/// previous-token heads, broad heads elsewhere; scores from the real metric.
pub(crate) fn head_grid(layers: usize, heads: usize) -> HeadGrid {
    let mut thumbs = vec![];
    let mut scores = vec![];
    for l in 0..layers {
        for h in 0..heads {
            let strength = 0.45 + 0.1 * ((l * 7 + h * 3) % 5) as f32;
            let kind = match (l + 2 * h) % 3 {
                0 => Kind::Sink(strength),
                1 => Kind::Previous(strength),
                _ => Kind::Uniform,
            };
            let a = causal(kind);
            thumbs.push(thumb(&a));
            scores.push(Some(score_head(&a, &tokens()).unwrap()));
        }
    }
    HeadGrid { positions: N, layers, heads, thumbs, scores }
}

fn info(layers: usize, heads: usize, kv_heads: usize) -> ModelInfo {
    ModelInfo { source: "test".into(), max_positions: 2048, ..ModelInfo::for_test("test", layers, heads, kv_heads, 32) }
}

fn theme() -> Theme {
    Theme::new(ColorMode::TrueColor, ColorMap::Viridis)
}

fn view<'a>(grid: Option<&'a HeadGrid>, info: &'a ModelInfo, theme: &'a Theme) -> GridView<'a> {
    GridView { grid, info, selected: (0, 0), pattern: None, sorted: false, scroll: 0, focused: true, theme }
}

fn draw(v: &GridView, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| f.render_widget(v, f.area())).unwrap();
    t
}

#[test]
fn mha_grid_one_head_per_kv_group() {
    let (i, g, th) = (info(4, 4, 4), head_grid(4, 4), theme());
    let v = GridView { selected: (2, 1), ..view(Some(&g), &i, &th) };
    let t = draw(&v, 60, 24);
    insta::assert_snapshot!(t.backend());
    // Every layer fits: no scroll note in the bottom border.
    assert_eq!(visible_layers(&i, Rect::new(0, 0, 60, 24)), 4);
}

#[test]
fn gqa_grid_groups_heads_and_stars_the_best_by_pattern() {
    let (i, g, th) = (info(4, 4, 2), head_grid(4, 4), theme());
    let v = GridView { selected: (1, 3), pattern: Some(Pattern::PreviousToken), ..view(Some(&g), &i, &th) };
    let t = draw(&v, 60, 24);
    insta::assert_snapshot!(t.backend());
    let buf = t.backend().buffer();
    // The header names two KV groups; the selected head's group is accented.
    let header: String = (0..60).map(|x| buf[(x, 1)].symbol().to_string()).collect();
    assert!(header.contains("kv0") && header.contains("kv1"), "{header}");
    // The best previous-token head is starred ★1, and its score chip has the score's colour.
    let best = ranking(&g, Pattern::PreviousToken, 4, 4)[0];
    let cell = cells_of(&v, 60, 24).into_iter().find(|c| (c.layer, c.head) == (best.0, best.1)).unwrap();
    let (x, y) = (cell.label.x, cell.label.y);
    assert_eq!(buf[(x, y)].symbol(), "★");
    let score = best.2.unwrap();
    assert_eq!(buf[(x + 3, y)].bg, th.heat(score));
    assert_eq!(buf[(x + 3, y)].symbol(), format!("{:02}", (score * 100.0).round() as i32).get(..1).unwrap());
}

fn cells_of(v: &GridView, w: u16, h: u16) -> Vec<Cell> {
    match place(v, Rect::new(0, 0, w, h)) {
        Placement::Grid(GridPlace { cells, .. }) | Placement::List { cells, .. } => cells,
        Placement::Message(..) => vec![],
    }
}

#[test]
fn thumbnails_and_selection_have_the_right_colours() {
    let (i, g, th) = (info(4, 4, 2), head_grid(4, 4), theme());
    let v = GridView { selected: (1, 3), ..view(Some(&g), &i, &th) };
    let t = draw(&v, 60, 24);
    let buf = t.backend().buffer();
    let cells = cells_of(&v, 60, 24);
    let c = cells.iter().find(|c| (c.layer, c.head) == (1, 3)).unwrap();
    // Top-left cell of a thumbnail: pixel (0, 0) over pixel (0, 1) of the pooled map.
    let img = g.thumb(1, 3).unwrap().pooled(c.thumb.width as usize, 2 * c.thumb.height as usize);
    let cell = &buf[(c.thumb.x, c.thumb.y)];
    assert_eq!((cell.symbol(), cell.fg, cell.bg), ("▀", th.heat(img.get(0, 0)), th.heat(img.get(0, 1))));
    // The top-right cell of a causal map is masked.
    assert_eq!(buf[(c.thumb.right() - 1, c.thumb.y)].symbol(), "·");
    // The selected head's label row is highlighted across the thumbnail's width.
    assert_eq!(buf[(c.label.right() - 1, c.label.y)].bg, th.selected().bg.unwrap());
    assert_eq!(buf[(c.label.x, c.label.y)].symbol(), "H");
}

#[test]
fn smollm2_grid_scrolls_to_the_selected_layer() {
    let (i, g, th) = (info(30, 9, 3), head_grid(30, 9), theme());
    let v = GridView { selected: (12, 4), scroll: 0, ..view(Some(&g), &i, &th) };
    let t = draw(&v, 100, 40);
    insta::assert_snapshot!(t.backend());
    let area = Rect::new(0, 0, 100, 40);
    let visible = visible_layers(&i, area);
    assert!(visible < 30);
    let Placement::Grid(GridPlace { first, .. }) = place(&v, area) else { panic!("not a grid") };
    assert_eq!(first, 12 + 1 - visible, "scrolled just enough to show L12 at the bottom");
}

#[test]
fn sorted_list_ranks_heads_by_score() {
    let (i, g, th) = (info(4, 4, 2), head_grid(4, 4), theme());
    let v = GridView { pattern: Some(Pattern::FirstToken), sorted: true, ..view(Some(&g), &i, &th) };
    let t = draw(&v, 80, 20);
    insta::assert_snapshot!(t.backend());
    let ranked = ranking(&g, Pattern::FirstToken, 4, 4);
    assert!(ranked.windows(2).all(|w| w[0].2 >= w[1].2));
}

#[test]
fn messages_for_missing_thumbnails_and_for_mamba() {
    let (i, th) = (info(4, 4, 2), theme());
    let t = draw(&view(None, &i, &th), 60, 5);
    insta::assert_snapshot!("computing", t.backend());
    let mamba = ModelInfo {
        mixing: Mixing::StateSpace { d_inner: 256, d_state: 16, d_conv: 4, ssm_heads: 0, conv_rows: 256 },
        kv_bytes_per_position: 0,
        state_bytes: 163_840,
        ..info(4, 4, 2)
    };
    let t = draw(&view(None, &mamba, &th), 60, 5);
    insta::assert_snapshot!("mamba", t.backend());
}

#[test]
fn head_at_finds_what_render_drew() {
    let (i, g, th) = (info(4, 4, 2), head_grid(4, 4), theme());
    let v = view(Some(&g), &i, &th);
    let area = Rect::new(0, 0, 60, 24);
    for c in cells_of(&v, 60, 24) {
        assert_eq!(head_at(&v, area, c.thumb.x, c.thumb.y), Some((c.layer, c.head)));
        assert_eq!(head_at(&v, area, c.label.right() - 1, c.label.y), Some((c.layer, c.head)));
    }
    // The border and the header row hold no head.
    assert_eq!(head_at(&v, area, 0, 0), None);
    assert_eq!(head_at(&v, area, 10, 1), None);
    let sorted = GridView { pattern: Some(Pattern::Entropy), sorted: true, ..v };
    let top = ranking(&g, Pattern::Entropy, 4, 4)[0];
    assert_eq!(head_at(&sorted, area, 2, 2), Some((top.0, top.1)));
}

#[test]
fn first_layer_keeps_the_selection_in_view() {
    assert_eq!(first_layer(0, 3, 5, 30), 0);
    assert_eq!(first_layer(0, 12, 5, 30), 8);
    assert_eq!(first_layer(20, 12, 5, 30), 12);
    assert_eq!(first_layer(40, 29, 5, 30), 25);
    assert_eq!(first_layer(0, 0, 30, 30), 0);
}

#[test]
fn tiny_areas_do_not_panic() {
    let (i, g, th) = (info(30, 9, 3), head_grid(30, 9), theme());
    let mamba = ModelInfo {
        mixing: Mixing::StateSpace { d_inner: 256, d_state: 16, d_conv: 4, ssm_heads: 0, conv_rows: 256 },
        ..info(4, 4, 2)
    };
    for (w, h) in [(0, 0), (1, 1), (2, 2), (5, 3), (12, 4), (3, 40), (200, 3)] {
        for (pattern, sorted) in [(None, false), (Some(Pattern::Induction), false), (Some(Pattern::Locality), true)] {
            let v = GridView { pattern, sorted, selected: (29, 8), scroll: 99, ..view(Some(&g), &i, &th) };
            draw(&v, w, h);
            assert_inside(&v, w, h);
            let _ = head_at(&v, Rect::new(0, 0, w, h), w / 2, h / 2);
            let _ = visible_layers(&i, Rect::new(0, 0, w, h));
        }
        draw(&view(None, &mamba, &th), w, h);
    }
}

/// Rendered at an offset into a bigger buffer, the view touches nothing outside its area.
fn assert_inside(v: &GridView, w: u16, h: u16) {
    let mut buf = Buffer::filled(Rect::new(0, 0, 220, 70), ratatui::buffer::Cell::new("x"));
    let area = Rect::new(4, 3, w, h);
    v.render(area, &mut buf);
    for p in buf.area.positions().filter(|p| !area.contains(*p)) {
        assert_eq!(buf[p].symbol(), "x", "{w}×{h} drew at {p:?}");
    }
}
