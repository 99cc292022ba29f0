//! Snapshots and exact checks of the attention-map view.
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
        "<s>", "The", " cat", " sat", " on", " the", " mat", ".", " The", " cat", " sat", " on", " the", " mat", ".",
        "\n", "It", " was",
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
