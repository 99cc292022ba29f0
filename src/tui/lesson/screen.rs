//! Drawing the lesson screen. Normal mode: a title bar, the step's text on
//! the left, its live panel on the right, a status line with the step
//! counter and keys. Presenter mode: large high-contrast text with margins,
//! no borders or status bar, the panel beside it where it fits.

use super::markdown::{self, MdStyle};
use super::panels::calculator::CalculatorPanel;
use super::panels::live::{columns, AttentionPanel, CachePanel, ComparePanel, HeadsPanel};
use super::panels::mask::{kind_of, MaskPanel};
use super::panels::scan::ScanPanel;
use super::panels::sdpa::SdpaPanel;
use super::panels::tiling::TilingPanel;
use super::panels::waiting;
use super::state::{LessonApp, LessonOverlay};
use crate::lesson::Panel;
use crate::sim::kv::KvShape;
use crate::sim::presets::PRESETS;
use crate::tui::data::Mixing;
use crate::tui::products::MapWant;
use crate::tui::views::attention::map_area;
use crate::tui::views::help::HelpOverlay;
use crate::tui::views::state::state_area;
use crate::tui::worker::Wants;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};
use ratatui::Frame;

/// Where things go for a terminal of `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub title: Rect,
    pub text: Rect,
    /// The panel's whole area (None: the step has no panel, or no room for it).
    pub panel: Option<Rect>,
    pub status: Rect,
}

/// Live panels draw their own borders; computed ones get a box in normal mode.
fn boxed(panel: &Panel) -> bool {
    matches!(
        panel,
        Panel::Sdpa { .. } | Panel::Mask { .. } | Panel::Calculator { .. } | Panel::Tiling { .. } | Panel::Scan { .. }
    )
}

pub fn layout(app: &LessonApp, size: Rect) -> Areas {
    let has_panel = !matches!(app.panel(), Panel::None);
    if app.present {
        let inner = Rect {
            x: size.x + 3.min(size.width / 8),
            y: size.y + 1.min(size.height / 8),
            width: size.width.saturating_sub(2 * 3.min(size.width / 8)),
            height: size.height.saturating_sub(2 * 1.min(size.height / 8)),
        };
        let [title, _, body] =
            Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
        let fits = has_panel && body.width >= 90 && body.height >= 16;
        let (text, panel) = if fits {
            let [t, _, p] =
                Layout::horizontal([Constraint::Percentage(42), Constraint::Length(2), Constraint::Fill(1)])
                    .areas(body);
            (t, Some(p))
        } else {
            (body, None)
        };
        return Areas { title, text, panel, status: Rect::default() };
    }
    let [title, body, status] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1), Constraint::Length(1)]).areas(size);
    if !has_panel {
        return Areas { title, text: body, panel: None, status };
    }
    let (text, panel) = if body.width >= 70 {
        let [t, p] = Layout::horizontal([Constraint::Percentage(38), Constraint::Fill(1)]).areas(body);
        (t, p)
    } else {
        let [t, p] = Layout::vertical([Constraint::Percentage(45), Constraint::Fill(1)]).areas(body);
        (t, p)
    };
    Areas { title, text, panel: Some(panel), status }
}

/// The area a panel's content gets inside `panel`.
fn content(app: &LessonApp, panel: Rect) -> Rect {
    if !app.present && boxed(app.panel()) {
        Block::bordered().inner(panel)
    } else {
        panel
    }
}

/// What live pane `i` of the current step should compute.
pub fn wants(app: &LessonApp, i: usize, size: Rect) -> Wants {
    let Some(pane) = app.pane(i) else { return Wants::default() };
    let Some(info) = &pane.info else { return Wants::default() };
    let Some(area) = layout(app, size).panel.map(|p| content(app, p)) else { return Wants::default() };
    let c = &app.controls;
    let (layer, head) = (c.layer.min(info.layers.saturating_sub(1)), c.head.min(info.heads().saturating_sub(1)));
    let positions = pane.positions();
    let map = |area: Rect| {
        let m = map_area(area);
        let side = (m.width as usize).min(m.height as usize * 2);
        let side = if positions > 0 && positions < side { positions * (side / positions) } else { side };
        (side > 0 && positions > 0).then_some(MapWant {
            layer,
            head: Some(head),
            rows: 0..positions,
            cols: 0..positions,
            width: side,
            height: side,
            cursor: None,
        })
    };
    match app.panel() {
        Panel::Sdpa { .. } | Panel::Tiling { .. } if !info.is_state_space() => {
            Wants { qk: Some((layer, head)), ..Wants::default() }
        }
        Panel::Attention { .. } => Wants { map: map(area), ..Wants::default() },
        Panel::Heads { .. } => Wants { grid: true, ..Wants::default() },
        Panel::Compare { models, view, .. } => match view.as_str() {
            "heads" => Wants { grid: true, ..Wants::default() },
            "memory" => Wants::default(),
            _ => Wants { map: columns(area, models.len()).get(i).and_then(|a| map(*a)), ..Wants::default() },
        },
        Panel::Scan { .. } if info.is_state_space() => {
            let (ssm, _) = state_area(Rect { height: area.height.saturating_sub(4), ..area });
            let layer = c.layer.min(info.layers.saturating_sub(1));
            let channel = match info.mixing {
                crate::tui::data::Mixing::StateSpace { d_inner, .. } => c.channel.min(d_inner.saturating_sub(1)),
                _ => 0,
            };
            // The engine holds a state at the end of each step: position prompt − 1 + step.
            let prompt = pane.tokens.iter().filter(|t| t.prompt).count();
            let held = c.token.map(|pos| (pos + 1).saturating_sub(prompt));
            Wants {
                state: Some((layer, held, (ssm.height as usize * 2).max(1))),
                scan: Some((layer, channel)),
                ..Wants::default()
            }
        }
        _ => Wants::default(),
    }
}

fn text_style(app: &LessonApp) -> MdStyle {
    let t = &app.theme;
    if app.present {
        let base =
            if t.has_color() { Style::new().fg(Color::White) } else { Style::new() }.add_modifier(Modifier::BOLD);
        let code = if t.has_color() { base.fg(Color::Yellow) } else { base.add_modifier(Modifier::REVERSED) };
        MdStyle { text: base, heading: base.add_modifier(Modifier::UNDERLINED), code, quote: base }
    } else {
        MdStyle {
            text: Style::new(),
            heading: t.accent().add_modifier(Modifier::BOLD),
            code: t.accent(),
            quote: t.dim().add_modifier(Modifier::ITALIC),
        }
    }
}

fn references(app: &LessonApp, st: &MdStyle) -> Vec<Line<'static>> {
    let mut out = vec![Line::default(), Line::styled("References", st.heading)];
    out.extend(app.lesson.references.iter().map(|r| Line::styled(format!("  • {r}"), st.text)));
    out
}

fn counter(app: &LessonApp) -> String {
    format!("step {}/{}", app.step + 1, app.steps().max(1))
}

pub fn draw(f: &mut Frame, app: &LessonApp) {
    let size = f.area();
    let a = layout(app, size);
    let buf = f.buffer_mut();
    let t = &app.theme;
    let st = text_style(app);
    let step_title = app.lesson.steps.get(app.step).map_or("", |s| s.title.as_str());
    // Title bar.
    let head = format!(" Lesson {} · {} ", app.lesson.number, app.lesson.title);
    let right = format!(" {} ", counter(app));
    let title_style = if app.present { st.text } else { t.accent().add_modifier(Modifier::BOLD) };
    Line::from(vec![Span::styled(head, title_style), Span::styled(format!("— {step_title}"), st.text)])
        .render(a.title, buf);
    let rw = right.chars().count() as u16;
    if a.title.width > rw {
        Line::styled(right, title_style).render(Rect { x: a.title.right() - rw, width: rw, ..a.title }, buf);
    }
    // The text, with the references after the last step's.
    let mut text_area = a.text;
    if !app.present {
        let block = Block::bordered().title(format!(" {step_title} ")).border_style(t.dim());
        text_area = block.inner(a.text);
        block.render(a.text, buf);
    }
    let mut lines = markdown::render(&app.shown_text(), text_area.width.saturating_sub(1), &st);
    if app.step + 1 == app.steps() && !app.lesson.references.is_empty() {
        lines.extend(references(app, &st));
    }
    Paragraph::new(lines).wrap(Wrap { trim: false }).render(text_area, buf);
    // The panel.
    if let Some(p) = a.panel {
        let inner = content(app, p);
        if inner != p {
            Block::bordered().title(format!(" {} ", panel_name(app.panel()))).border_style(t.dim()).render(p, buf);
        }
        draw_panel(app, inner, buf);
    }
    // Status line.
    if !app.present && a.status.height > 0 {
        let mut spans = vec![
            Span::styled(format!(" {} ", counter(app)), t.accent().add_modifier(Modifier::BOLD)),
            Span::styled(" ← → steps · r references · ? keys · q quit", t.dim()),
        ];
        if let Some(m) = &app.message {
            spans.push(Span::raw(format!(" · {m}")));
        }
        Line::from(spans).render(a.status, buf);
    } else if let Some(m) = &app.message {
        let y = size.bottom().saturating_sub(1);
        Line::styled(format!(" {m}"), st.text).render(Rect { y, height: 1, ..size }, buf);
    }
    match app.overlay {
        LessonOverlay::None => {}
        LessonOverlay::Help => {
            let rows = super::keys::help_rows();
            f.render_widget(HelpOverlay { rows: &rows, scroll: 0, theme: t }, size);
        }
        LessonOverlay::References => {
            let mut lines = references(app, &st);
            lines.remove(0);
            let w = size.width.saturating_sub(8).min(100);
            let h = (lines.len() as u16 + 2).min(size.height);
            let area =
                Rect { x: size.x + (size.width - w) / 2, y: size.y + (size.height - h) / 2, width: w, height: h };
            let buf = f.buffer_mut();
            Clear.render(area, buf);
            let block = Block::bordered().title(" r or Esc closes ").border_style(t.accent());
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(block).render(area, buf);
        }
    }
}

fn panel_name(p: &Panel) -> &'static str {
    match p {
        Panel::None => "",
        Panel::Sdpa { .. } => "scaled dot-product attention",
        Panel::Attention { .. } => "attention",
        Panel::Heads { .. } => "heads",
        Panel::Mask { .. } => "mask",
        Panel::Cache { .. } => "KV cache",
        Panel::Calculator { .. } => "KV-cache calculator",
        Panel::Compare { .. } => "side by side",
        Panel::Tiling { .. } => "FlashAttention tiling",
        Panel::Scan { .. } => "selective scan",
    }
}

/// A loaded model's attention shape for the calculator.
fn shape_of(app: &LessonApp) -> Option<(String, KvShape)> {
    let info = app.pane(0)?.info.as_ref()?;
    match &info.mixing {
        Mixing::Attention { heads, kv_heads, head_dim, windows, .. } => {
            let w = if windows.len() == info.layers { windows.clone() } else { vec![None; info.layers] };
            KvShape::new(info.layers, *heads, *kv_heads, *head_dim, w).ok().map(|s| (info.source.clone(), s))
        }
        Mixing::StateSpace { .. } => None,
    }
}

fn draw_panel(app: &LessonApp, area: Rect, buf: &mut Buffer) {
    let (t, c) = (&app.theme, &app.controls);
    let pane = app.pane(0);
    let need = |buf: &mut Buffer| match pane {
        Some(p) => {
            waiting(&super::panels::live::not_ready(p).unwrap_or_else(|| "waiting for the model…".into()), t, area, buf)
        }
        None => waiting("starting the model…", t, area, buf),
    };
    match app.panel() {
        Panel::None => {}
        Panel::Mask { kind, .. } => {
            MaskPanel { kind: kind_of(kind, c.window), size: c.size, layers: c.layers, theme: t }.render(area, buf)
        }
        Panel::Calculator { .. } => {
            let owned;
            let (title, source, shape) = match c.preset.and_then(|i| PRESETS.get(i)) {
                Some(p) => match p.shape() {
                    Ok(s) => {
                        owned = s;
                        (p.title.to_string(), p.source.to_string(), &owned)
                    }
                    Err(_) => return,
                },
                None => match shape_of(app) {
                    Some((name, s)) => {
                        owned = s;
                        (name, "the loaded model's config".to_string(), &owned)
                    }
                    None => return need(buf),
                },
            };
            CalculatorPanel {
                title: &title,
                source: &source,
                shape,
                context: c.context,
                batch: c.batch,
                dtype: c.dtype,
                theme: t,
            }
            .render(area, buf)
        }
        Panel::Sdpa { .. } => match pane {
            Some(p) if p.qk.is_some() => {
                SdpaPanel { qk: p.qk.as_ref(), tokens: &p.tokens, query: c.query, unscaled: c.unscaled, theme: t }
                    .render(area, buf)
            }
            _ => need(buf),
        },
        Panel::Tiling { .. } => match pane {
            Some(p) if p.qk.is_some() => TilingPanel {
                qk: p.qk.as_ref(),
                block_rows: c.block_rows,
                block_cols: c.block_cols,
                steps: c.tiles,
                theme: t,
            }
            .render(area, buf),
            _ => need(buf),
        },
        Panel::Attention { .. } => match pane {
            Some(p) => {
                let heads = p.info.as_ref().map_or(1, |i| i.heads().max(1));
                let layers = p.info.as_ref().map_or(1, |i| i.layers.max(1));
                AttentionPanel { pane: p, layer: c.layer.min(layers - 1), head: c.head.min(heads - 1), theme: t }
                    .render(area, buf)
            }
            None => need(buf),
        },
        Panel::Heads { .. } => match pane {
            Some(p) => HeadsPanel { pane: p, pattern: c.pattern, theme: t }.render(area, buf),
            None => need(buf),
        },
        Panel::Cache { .. } => match pane {
            Some(p) => CachePanel { pane: p, theme: t }.render(area, buf),
            None => need(buf),
        },
        Panel::Compare { view, .. } => match &app.live {
            Some(l) if pane.is_some() => {
                ComparePanel { panes: &l.app.panes, view, layer: c.layer, head: c.head, theme: t }.render(area, buf)
            }
            _ => need(buf),
        },
        Panel::Scan { .. } => match pane {
            Some(p) => ScanPanel {
                info: p.info.as_ref(),
                state: p.state.as_ref(),
                scan: p.scan.as_ref(),
                tokens: &p.tokens,
                positions: p.positions(),
                selected: c.token,
                theme: t,
            }
            .render(area, buf),
            None => need(buf),
        },
    }
}
