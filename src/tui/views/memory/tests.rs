use super::*;
use crate::tui::theme::{ColorMap, ColorMode};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// A zoo-shaped transformer: 4 layers, 4 query heads of 32, f32.
fn tiny(name: &str, kv_heads: usize, window: Option<usize>) -> ModelInfo {
    ModelInfo {
        source: name.into(),
        arch: if window.is_some() { "mistral" } else { "llama" }.into(),
        layers: 4,
        mixing: Mixing::Attention {
            heads: 4,
            kv_heads,
            head_dim: 32,
            kv_head_of: (0..4).map(|h| h * kv_heads / 4).collect(),
            windows: vec![window; 4],
        },
        max_positions: 2048,
        device: "cpu".into(),
        dtype: "f32".into(),
        kv_bytes_per_position: 2 * kv_heads * 32 * 4,
        state_bytes: 0,
    }
}

/// tiny-mamba: 4 layers, d_inner 256, d_state 16, d_conv 4; a 160 KiB state.
fn mamba() -> ModelInfo {
    ModelInfo {
        source: "tiny-mamba".into(),
        arch: "mamba".into(),
        mixing: Mixing::StateSpace { d_inner: 256, d_state: 16, d_conv: 4, ssm_heads: 0, conv_rows: 256 },
        kv_bytes_per_position: 0,
        state_bytes: 163_840,
        ..tiny("tiny-mamba", 1, None)
    }
}

/// mamba2-130m's shape: 24 layers, 24 heads of 64, d_state 128, one B/C group: conv over 1536 + 2 × 128 rows.
fn mamba2() -> ModelInfo {
    ModelInfo {
        source: "mamba2-130m".into(),
        arch: "mamba2".into(),
        layers: 24,
        mixing: Mixing::StateSpace { d_inner: 1536, d_state: 128, d_conv: 4, ssm_heads: 24, conv_rows: 1792 },
        state_bytes: 19_562_496,
        ..mamba()
    }
}

/// Steps as the session reports them: a prefill of `prompt` positions, then one
/// position per step; windowed layers hold min(positions, W − 1).
fn steps(info: &ModelInfo, prompt: usize, n: usize) -> Vec<StepInfo> {
    (0..n)
        .map(|index| {
            let positions = prompt + index;
            let (kv_len, kv_bytes) = match &info.mixing {
                Mixing::Attention { windows, .. } => {
                    let lens: Vec<usize> =
                        windows.iter().map(|w| w.map_or(positions, |w| positions.min(w - 1))).collect();
                    let bytes = lens.iter().sum::<usize>() * info.kv_bytes_per_position;
                    (lens, bytes)
                }
                Mixing::StateSpace { .. } => (vec![], info.state_bytes),
            };
            StepInfo { index, positions, kv_len, kv_bytes, forward_ms: if index == 0 { 3.1 } else { 0.4 } }
        })
        .collect()
}

fn theme() -> Theme {
    Theme::new(ColorMode::TrueColor, ColorMap::Viridis)
}

fn draw(w: u16, h: u16, widget: impl Widget) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| f.render_widget(widget, f.area())).unwrap();
    t
}

#[test]
fn human_bytes_uses_binary_units_and_three_digits() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(512), "512 B");
    assert_eq!(human_bytes(1023), "1023 B");
    assert_eq!(human_bytes(1024), "1.00 KiB");
    assert_eq!(human_bytes(1536), "1.50 KiB");
    assert_eq!(human_bytes(30 * 1024), "30.0 KiB");
    assert_eq!(human_bytes(163_840), "160 KiB");
    assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.50 MiB");
    assert_eq!(human_bytes(2 << 30), "2.00 GiB");
}

#[test]
fn kv_variants_of_tiny_gqa_are_exact() {
    // 2 (K and V) · 2 KV heads · 32 · 4 bytes = 512 bytes per position per layer.
    let info = tiny("tiny-gqa", 2, None);
    assert_eq!(info.kv_bytes_per_position, 512);
    let v = kv_variants(&info, 33);
    assert_eq!(v, vec![("as configured", 4 * 33 * 512), ("as MHA", 4 * 33 * 1024), ("as MQA", 4 * 33 * 256)]);
    assert_eq!(v[0].1, 67_584, "66.0 KiB, as `attnviz generate --model tiny-gqa` reports at 33 positions");
}

#[test]
fn kv_variants_of_a_sliding_window_model_cap_at_w_minus_one() {
    let info = tiny("tiny-swa", 2, Some(16));
    // Below the window everything is held; past it, 15 positions per layer.
    assert_eq!(kv_variants(&info, 6)[0].1, 6 * 4 * 512);
    assert_eq!(kv_variants(&info, 15)[0].1, 15 * 4 * 512);
    assert_eq!(kv_variants(&info, 16)[0].1, 15 * 4 * 512);
    let v = kv_variants(&info, 33);
    assert_eq!(
        v,
        vec![("as configured", 30_720), ("as MHA", 61_440), ("as MQA", 15_360), ("without its window", 67_584),]
    );
    assert_eq!(kv_variants(&mamba(), 1000), vec![("recurrent state", 163_840)]);
}

/// The real tiny-swa (window 16), run by the real session: every step's
/// kv_len and kv_bytes are what kv_variants assumes.
#[test]
fn kv_variants_match_the_real_tiny_swa() {
    use crate::sample::Sampling;
    use crate::session::{run, Options};
    let loaded = crate::model::load("tiny-swa", &candle_core::Device::Cpu).unwrap();
    let mut model = loaded.model;
    let opts = Options { max_new_tokens: 24, sampling: Sampling::Greedy, ignore_eos: true, capture: false };
    let mut seen = vec![];
    run(&mut model, &loaded.tokenizer, &[0, 412, 97, 1030, 5], &opts, &crate::session::Control::default(), |s| {
        seen.push((s.fed.end, s.kv_len, s.kv_bytes));
        true
    })
    .unwrap();
    assert_eq!(seen.len(), 24);
    let info = tiny("tiny-swa", 2, Some(16));
    for (positions, kv_len, kv_bytes) in seen {
        assert_eq!(kv_len, vec![positions.min(15); 4], "at {positions} positions");
        assert_eq!(kv_variants(&info, positions)[0].1, kv_bytes as u64, "at {positions} positions");
    }
}

#[test]
fn nice_ceiling_rounds_up_in_the_value_unit() {
    assert_eq!(nice_ceiling(67_584), 80.0 * 1024.0);
    assert_eq!(nice_ceiling(30_720), 40.0 * 1024.0);
    assert_eq!(nice_ceiling(104_448), 120.0 * 1024.0);
    assert_eq!(nice_ceiling(163_840), 200.0 * 1024.0);
    assert_eq!(nice_ceiling(0), 1.0);
}

#[test]
fn gqa_memory_view() {
    let (info, th) = (tiny("tiny-gqa", 2, None), theme());
    let s = steps(&info, 12, 40);
    let t = draw(90, 24, MemoryView { info: &info, steps: &s, focused: true, theme: &th });
    insta::assert_snapshot!(t.backend());
    // The line is drawn in the first series colour.
    let buf = t.backend().buffer();
    let braille = buf.content().iter().filter(|c| c.symbol().chars().all(|ch| ('\u{2801}'..='\u{28FF}').contains(&ch)));
    assert!(braille.clone().count() > 20);
    assert!(braille.into_iter().all(|c| c.fg == th.series(0)));
}

#[test]
fn sliding_window_memory_view_shows_the_cap_and_evictions() {
    let (info, th) = (tiny("tiny-swa", 2, Some(16)), theme());
    let s = steps(&info, 12, 40);
    assert_eq!(s.last().unwrap().kv_len, vec![15; 4]);
    let t = draw(90, 24, MemoryView { info: &info, steps: &s, focused: false, theme: &th });
    insta::assert_snapshot!(t.backend());
    let text = format!("{}", t.backend());
    assert!(text.contains("15 held (window 16: cap 15), 36 evicted"), "{text}");
    let t = draw(60, 30, MemoryView { info: &info, steps: &s, focused: false, theme: &th });
    insta::assert_snapshot!("sliding_window_narrow", t.backend());
}

#[test]
fn mamba_memory_view_is_flat() {
    let (info, th) = (mamba(), theme());
    let s = steps(&info, 12, 40);
    let t = draw(80, 18, MemoryView { info: &info, steps: &s, focused: false, theme: &th });
    insta::assert_snapshot!(t.backend());
}

/// Mamba-2's state: h per head, and a convolution window over x, B and C (more rows than d_inner).
#[test]
fn mamba2_memory_view_names_heads_and_conv_rows() {
    let (info, th) = (mamba2(), theme());
    let s = steps(&info, 12, 40);
    let t = draw(80, 18, MemoryView { info: &info, steps: &s, focused: false, theme: &th });
    insta::assert_snapshot!(t.backend());
}

/// The real Mamba-2 fixture's summary gives the UI its heads and conv rows.
#[test]
fn mamba2_fixture_summary_gives_heads_and_conv_rows() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mamba2");
    let loaded = crate::model::load(dir.to_str().unwrap(), &candle_core::Device::Cpu).unwrap();
    let info = crate::tui::worker::model_info(&loaded.model, "mamba2", "cpu");
    let want = Mixing::StateSpace { d_inner: 128, d_state: 8, d_conv: 4, ssm_heads: 8, conv_rows: 160 };
    assert_eq!(info.mixing, want);
    assert_eq!(info.state_bytes, 2 * (8 * 16 * 8 + 160 * 4) * 4);
    assert_eq!(
        mamba().mixing,
        Mixing::StateSpace { d_inner: 256, d_state: 16, d_conv: 4, ssm_heads: 0, conv_rows: 256 }
    );
}

#[test]
fn compare_chart_draws_one_line_per_model() {
    let th = theme();
    let infos = [tiny("tiny-mha", 4, None), tiny("tiny-gqa", 2, None), tiny("tiny-swa", 2, Some(16)), mamba()];
    let all: Vec<Vec<StepInfo>> = infos.iter().map(|i| steps(i, 12, 60)).collect();
    let series = infos.iter().zip(&all).map(|(i, s)| (i.source.as_str(), i, s.as_slice())).collect();
    let t = draw(80, 22, CompareMemory { series, theme: &th });
    insta::assert_snapshot!(t.backend());
    // Each legend entry's mark has its series colour.
    let buf = t.backend().buffer();
    let cells = (1..3).flat_map(|y| (0..80).map(move |x| (x, y)));
    let marks: Vec<_> = cells.filter(|&p| buf[p].symbol() == "━").map(|p| buf[p].fg).collect();
    assert_eq!(marks, (0..4).map(|i| th.series(i)).collect::<Vec<_>>());
}

#[test]
fn no_steps_and_tiny_areas() {
    let th = theme();
    let (gqa, swa, m) = (tiny("tiny-gqa", 2, None), tiny("tiny-swa", 2, Some(16)), mamba());
    let t = draw(50, 4, MemoryView { info: &gqa, steps: &[], focused: false, theme: &th });
    insta::assert_snapshot!("waiting", t.backend());
    let none = Theme::new(ColorMode::None, ColorMap::Viridis);
    for (w, h) in [(0, 0), (1, 1), (3, 2), (8, 4), (20, 6), (200, 5), (4, 60)] {
        for info in [&gqa, &swa, &m] {
            let s = steps(info, 3, 5);
            let v = MemoryView { info, steps: &s, focused: true, theme: &th };
            assert_inside(w, h, &v);
            draw(w, h, v);
            let c = CompareMemory { series: vec![("a", info, &s), ("b", &m, &[])], theme: &none };
            assert_inside(w, h, &c);
            draw(w, h, c);
        }
    }
}

/// Rendered at an offset into a bigger buffer, the view touches nothing outside its area.
fn assert_inside(w: u16, h: u16, widget: impl Widget) {
    let mut buf = Buffer::filled(Rect::new(0, 0, 220, 70), ratatui::buffer::Cell::new("x"));
    let area = Rect::new(4, 3, w, h);
    widget.render(area, &mut buf);
    for p in buf.area.positions().filter(|p| !area.contains(*p)) {
        assert_eq!(buf[p].symbol(), "x", "{w}×{h} drew at {p:?}");
    }
}
