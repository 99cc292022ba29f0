use super::*;
use crate::tui::theme::{ColorMap, ColorMode};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// tiny-mamba's shape: d_inner 256, d_state 16, d_conv 4.
const D_INNER: usize = 256;
const D_STATE: usize = 16;

fn tokens() -> Vec<Token> {
    let words = ["It", " is", " a", " truth", " universally", " acknowledged", ",", " that", " a", " single", " man"];
    words.iter().enumerate().map(|(i, w)| Token { id: 100 + i as u32, text: w.to_string(), prompt: i < 6 }).collect()
}

/// A state like a trained layer's after a few tokens: per channel, values of
/// either sign fading along d_state (the faster-decaying modes hold less);
/// one row per `per_row` channels. Δ peaks at punctuation and content words.
fn state(rows: usize) -> StateView {
    let per_row = D_INNER.div_ceil(rows);
    let mut ssm = vec![];
    let mut conv = vec![];
    for r in 0..rows {
        let c = (r * per_row) as f32;
        for n in 0..D_STATE {
            ssm.push(
                (c * 0.37 + n as f32 * 0.9).sin() * (-(n as f32) / 6.0).exp() * (0.4 + 0.6 * (c * 0.05).cos().abs()),
            );
        }
        for k in 0..4 {
            conv.push((c * 0.21 + k as f32 * 1.3).cos() * 0.5 * (k as f32 + 1.0) / 4.0);
        }
    }
    let dt = vec![0.05, 0.04, 0.03, 0.21, 0.09, 0.12, 0.31, 0.04, 0.03, 0.08, 0.11];
    StateView {
        layer: 2,
        step: 5,
        ssm: Image::new(D_STATE, rows, ssm),
        conv: Image::new(4, rows, conv),
        channels_per_row: per_row,
        dt,
    }
}

fn theme() -> Theme {
    Theme::new(ColorMode::TrueColor, ColorMap::Viridis)
}

fn draw(w: u16, h: u16, v: &StateViewWidget) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| f.render_widget(v, f.area())).unwrap();
    t
}

#[test]
fn state_view_with_selected_token() {
    let area = Rect::new(0, 0, 70, 20);
    let (ssm_area, conv_area) = state_area(area);
    assert_eq!((ssm_area, conv_area), (Rect::new(1, 3, 58, 14), Rect::new(61, 3, 8, 14)));
    // The app asks the worker for two channel rows per cell row.
    let (s, toks, th) = (state(2 * ssm_area.height as usize), tokens(), theme());
    let v = StateViewWidget { state: Some(&s), tokens: &toks, selected: Some(6), focused: true, theme: &th };
    let t = draw(70, 20, &v);
    insta::assert_snapshot!(t.backend());
    let buf = t.backend().buffer();
    // Signed values on the diverging map, scaled by the largest |h|.
    let (lo, hi) = range(&s.ssm);
    let max = lo.abs().max(hi.abs());
    let c = &buf[(ssm_area.x, ssm_area.y)];
    assert_eq!((c.fg, c.bg), (th.diverging(s.ssm.get(0, 0) / max), th.diverging(s.ssm.get(0, 1) / max)));
    // Each of the 16 state columns fills 3 cells (58 / 16).
    assert_eq!(buf[(ssm_area.x + 2, ssm_area.y)].fg, c.fg);
    assert_ne!(buf[(ssm_area.x + 3, ssm_area.y)].fg, c.fg);
    // Δ bars: the tallest at the comma (position 6), selected; prompt bars dim, generated accented.
    let bars = 20 - 2;
    assert_eq!(buf[(2 + 6, bars)].symbol(), "█");
    assert_eq!(buf[(2 + 6, bars)].bg, th.selected().bg.unwrap());
    assert_eq!(buf[(2, bars)].fg, th.dim().fg.unwrap());
    assert_eq!(buf[(2 + 7, bars)].fg, th.accent().fg.unwrap());
    let text = format!("{}", t.backend());
    assert!(text.contains(r#"position 6 ",": Δ 0.310"#), "{text}");
}

#[test]
fn dt_strip_scrolls_to_keep_the_focus_visible() {
    assert_eq!(first_shown(10, 9, 20), 0);
    assert_eq!(first_shown(200, 199, 50), 150);
    assert_eq!(first_shown(200, 160, 50), 150);
    assert_eq!(first_shown(200, 10, 50), 0);
    assert_eq!(first_shown(200, 100, 50), 75);
    let mut s = state(8);
    s.dt = (0..200).map(|p| 0.02 + 0.001 * (p % 37) as f32).collect();
    s.dt[100] = 0.5;
    let th = theme();
    let v = StateViewWidget { state: Some(&s), tokens: &[], selected: Some(100), focused: false, theme: &th };
    let t = draw(40, 10, &v);
    insta::assert_snapshot!(t.backend());
    // 37 bar cells; position 100 centred: first shown 82, so at column 2 + 18.
    assert_eq!(t.backend().buffer()[(2 + 18, 8)].symbol(), "█");
}

#[test]
fn waiting_and_tiny_areas() {
    let th = theme();
    let v = StateViewWidget { state: None, tokens: &[], selected: None, focused: false, theme: &th };
    insta::assert_snapshot!("waiting", draw(40, 3, &v).backend());
    let (s, toks) = (state(12), tokens());
    let none = Theme::new(ColorMode::None, ColorMap::Viridis);
    for (w, h) in [(0, 0), (1, 1), (2, 5), (6, 3), (11, 6), (200, 4), (9, 60)] {
        for (theme, selected) in [(&th, None), (&none, Some(3)), (&th, Some(99))] {
            let v = StateViewWidget { state: Some(&s), tokens: &toks, selected, focused: true, theme };
            draw(w, h, &v);
            // Nothing lands outside the panel.
            let mut buf = Buffer::filled(Rect::new(0, 0, 220, 70), ratatui::buffer::Cell::new("x"));
            let area = Rect::new(4, 3, w, h);
            (&v).render(area, &mut buf);
            for p in buf.area.positions().filter(|p| !area.contains(*p)) {
                assert_eq!(buf[p].symbol(), "x", "{w}×{h} drew at {p:?}");
            }
        }
    }
}
