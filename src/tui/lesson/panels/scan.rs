//! Mamba's selective scan, token by token, on the live `tiny-mamba`: the
//! layer's scan replayed from the model's weights (`sim::scan::Replay`) for
//! the token under the cursor and one channel — x, Δ, the trained A, Ā, B̄x,
//! B, C, h before and after, y = C·h + D·x — checked against the state the
//! engine captured; below, the engine's whole state h, and its fixed size
//! against a KV cache that grows.

use super::text;
use crate::tui::data::{ModelInfo, ScanRow, ScanView, StateView, Token};
use crate::tui::theme::Theme;
use crate::tui::views::memory::human_bytes;
use crate::tui::views::state::StateViewWidget;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

pub struct ScanPanel<'a> {
    pub info: Option<&'a ModelInfo>,
    pub state: Option<&'a StateView>,
    /// The replayed scan, or why there is none.
    pub scan: Option<&'a Result<ScanView, String>>,
    pub tokens: &'a [Token],
    /// Positions fed so far.
    pub positions: usize,
    /// The position shown (None: the newest).
    pub selected: Option<usize>,
    pub theme: &'a Theme,
}

/// The table rows of one position: per state index n, A, Ā, B, B̄x, h before, h after, C.
pub fn table(view: &ScanView, row: &ScanRow, limit: usize) -> Vec<String> {
    let mut out = vec![format!(
        " {:>3} {:>8} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8}",
        "n", "A", "Ā", "B", "B̄x", "h before", "h after", "C"
    )];
    let shown = view.d_state.min(limit.saturating_sub(1));
    for k in 0..shown {
        let v = |x: &[f32]| x.get(k).copied().unwrap_or(f32::NAN);
        out.push(format!(
            " {k:>3} {:>8.3} {:>7.4} {:>8.3} {:>9.4} {:>9.4} {:>9.4} {:>8.3}",
            v(&view.a),
            v(&row.a_bar),
            v(&row.b),
            v(&row.bx),
            v(&row.h_before),
            v(&row.h),
            v(&row.c)
        ));
    }
    if shown < view.d_state {
        if let Some(last) = out.last_mut() {
            *last = format!(" … {} more state values", view.d_state - shown + 1);
        }
    }
    out
}

impl Widget for ScanPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let Some(info) = self.info else { return super::waiting("loading the model…", t, area, buf) };
        if !info.is_state_space() {
            return super::waiting(&format!("{} is not a state-space model", info.source), t, area, buf);
        }
        let bold = t.accent().add_modifier(Modifier::BOLD);
        let last = self.positions.saturating_sub(1);
        let pos = self.selected.unwrap_or(last).min(last);
        let prompt = self.tokens.iter().filter(|x| x.prompt).count();
        let tok = self.tokens.get(pos).map_or(String::new(), |x| super::token_cell(&x.text, 12));
        let view = match self.scan {
            Some(Ok(v)) => Some(v),
            _ => None,
        };
        let (layer, channel) = view.map_or((0, 0), |v| (v.layer, v.channel));
        let mut lines = vec![Line::from(vec![Span::styled(
            format!(" {} · layer {layer} · channel {channel} · position {pos} of 0–{last} {tok}", info.source),
            bold,
        )])];
        lines.push(Line::from(" h ← Ā⊙h + B̄x,  y = C·h + D·x,  Ā = exp(ΔA),  B̄x = Δ·B·x (the code)"));
        match (self.scan, view.and_then(|v| v.rows.get(pos).map(|r| (v, r)))) {
            (_, Some((v, r))) => {
                lines.push(Line::from(format!(
                    " x = {:.4} (conv, SiLU)  Δ = {:.4}  A = −exp(A_log), trained  D = {:.3}",
                    r.x, r.dt, v.d
                )));
                let room = (area.height as usize).saturating_sub(lines.len() + 4).max(2);
                lines.extend(table(v, r, room).into_iter().map(|s| Line::styled(s, t.dim())));
                lines.push(Line::from(format!(" y = C·h + D·x = {:.4} + {:.3}·{:.4} = {:.4}", r.ch, v.d, r.x, r.y)));
                let dt = r.dt_diff.map_or(String::new(), |d| format!(", Δ within {d:.1e}"));
                lines.push(match r.h_diff {
                    Some((s, d)) => Line::from(format!(
                        " check: h = the engine's h after step {s} within {d:.1e} (all {}×{}){dt}",
                        v.d_inner, v.d_state
                    )),
                    None => Line::styled(format!(" check: no engine h mid-prompt (one per step){dt}"), t.dim()),
                });
            }
            (Some(Err(e)), _) => lines.push(Line::styled(format!(" scan: {e}"), t.dim())),
            _ => lines.push(Line::styled(" scan: replaying the model…", t.dim())),
        }
        lines.push(Line::from(format!(
            " state: {} at position {pos} and at any other; a KV cache grows (prompt: {prompt} tokens)",
            human_bytes(info.state_bytes as u64),
        )));
        let head = lines.len() as u16;
        text(lines, area, buf);
        let rest = Rect { y: area.y + head.min(area.height), height: area.height.saturating_sub(head), ..area };
        if rest.height >= 4 {
            let w = StateViewWidget {
                state: self.state,
                tokens: self.tokens,
                selected: Some(pos.max(prompt.saturating_sub(1))),
                focused: false,
                theme: t,
            };
            w.render(rest, buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::data::{Image, Mixing};
    use crate::tui::lesson::panels::testing::{draw, theme, tokens};

    fn info() -> ModelInfo {
        ModelInfo {
            source: "tiny-mamba".into(),
            arch: "mamba".into(),
            layers: 2,
            mixing: Mixing::StateSpace { d_inner: 8, d_state: 4, d_conv: 4, ssm_heads: 0, conv_rows: 8 },
            max_positions: 512,
            device: "cpu".into(),
            dtype: "f32".into(),
            kv_bytes_per_position: 0,
            state_bytes: 2 * 8 * 8 * 4,
        }
    }

    fn state() -> StateView {
        let ssm = Image::new(4, 8, (0..32).map(|x| ((x as f32) * 0.7).sin()).collect());
        let conv = Image::new(4, 8, (0..32).map(|x| ((x as f32) * 0.3).cos()).collect());
        StateView {
            layer: 0,
            step: 2,
            ssm,
            conv,
            channels_per_row: 1,
            dt: (0..8).map(|i| 0.1 + i as f32 * 0.05).collect(),
        }
    }

    /// One channel's selective scan over 8 positions, every number from the formulas the panel
    /// shows (Ā = exp(ΔA), B̄x = Δ·B·x, h ← Ā⊙h + B̄x, y = C·h + D·x), so the snapshot reads true.
    fn scan() -> ScanView {
        let (a, d) = (vec![-0.5f32, -1.0, -2.0, -3.5], 1.0f32);
        let v = |k: usize, s: f32| (0..4).map(|i| ((i + k) as f32 * s).sin()).collect::<Vec<f32>>();
        let mut h = vec![0f32; 4];
        let rows = (0..8)
            .map(|p| {
                let (x, dt, b, c) = (0.1 * p as f32, 0.1 + 0.05 * p as f32, v(p, 0.5), v(p, 0.9));
                let a_bar: Vec<f32> = a.iter().map(|a| (dt * a).exp()).collect();
                let bx: Vec<f32> = b.iter().map(|b| dt * b * x).collect();
                let h_before = h.clone();
                h = (0..4).map(|n| a_bar[n] * h_before[n] + bx[n]).collect();
                let ch: f32 = c.iter().zip(&h).map(|(c, h)| c * h).sum();
                ScanRow {
                    x,
                    dt,
                    ch,
                    y: ch + d * x,
                    b,
                    c,
                    a_bar,
                    bx,
                    h_before,
                    h: h.clone(),
                    dt_diff: Some(1e-8),
                    h_diff: (p >= 5).then(|| (p - 5, 2.5e-7)),
                }
            })
            .collect();
        ScanView { layer: 1, channel: 3, d_inner: 8, d_state: 4, a, d, rows }
    }

    #[test]
    fn table_lists_every_state_value_or_says_how_many_are_left() {
        let s = scan();
        assert_eq!(table(&s, &s.rows[0], 10).len(), 5);
        let short = table(&s, &s.rows[0], 3);
        assert_eq!(short.len(), 3);
        assert!(short[2].contains("3 more"), "{short:?}");
    }

    #[test]
    fn scan_panel_snapshot() {
        let (i, s, toks, th) = (info(), state(), tokens(8), theme());
        let sc = Ok(scan());
        let p = ScanPanel {
            info: Some(&i),
            state: Some(&s),
            scan: Some(&sc),
            tokens: &toks,
            positions: 8,
            selected: Some(6),
            theme: &th,
        };
        insta::assert_snapshot!(draw(100, 24, p).backend());
        // Mid-prompt: no engine state to compare with.
        let p = ScanPanel {
            info: Some(&i),
            state: Some(&s),
            scan: Some(&sc),
            tokens: &toks,
            positions: 8,
            selected: Some(2),
            theme: &th,
        };
        insta::assert_snapshot!("scan_panel_mid_prompt", draw(100, 12, p).backend());
        let err = Err("no weights".to_string());
        let p = ScanPanel {
            info: Some(&i),
            state: None,
            scan: Some(&err),
            tokens: &toks,
            positions: 8,
            selected: None,
            theme: &th,
        };
        insta::assert_snapshot!("scan_panel_error", draw(100, 6, p).backend());
        let p =
            ScanPanel { info: None, state: None, scan: None, tokens: &[], positions: 0, selected: None, theme: &th };
        draw(4, 1, p);
    }
}
