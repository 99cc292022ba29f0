//! The whole screen for an `App`: the panels from `layout`, each drawn by
//! its view, overlays on top. Also mouse hit-testing, which uses the same
//! layout, and the room each worker should compute for.

use super::app::{nav::Room, App, Focus, Overlay, Pane, PaneStatus};
use super::keymap::{key_of, Action};
use super::layout::{self, contains, Areas};
use super::views::attention::{self, AttentionView};
use super::views::editor::{FieldView, SettingsView};
use super::views::grid::{self, GridView};
use super::views::help::{HelpOverlay, HelpRow};
use super::views::memory::{human_bytes, CompareMemory, MemoryView};
use super::views::state::{self, StateViewWidget};
use super::views::status::StatusBar;
use super::views::tokens::{self, TokensView};
use ratatui::layout::{Alignment, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

pub fn areas(app: &App, size: Rect) -> Areas {
    super::run::areas(app, size)
}

pub fn draw(f: &mut Frame, app: &App) {
    let size = f.area();
    let a = areas(app, size);
    if a.too_small {
        let (w, h) = layout::MIN_SIZE;
        let text = vec![
            Line::from(format!("terminal too small (need {w}×{h}, have {}×{})", size.width, size.height)),
            Line::from("enlarge the window, or press q to quit"),
        ];
        let y = size.height / 2;
        let r = Rect::new(0, y.saturating_sub(1), size.width, 2.min(size.height));
        f.render_widget(Paragraph::new(text).alignment(Alignment::Center).wrap(Wrap { trim: true }), r);
        return;
    }
    for (i, pa) in a.panes.iter().enumerate() {
        let pane = &app.panes[i];
        draw_tokens(f, app, pane, pa.tokens, i);
        draw_main(f, app, i, pa.main);
    }
    if let Some(g) = a.grid {
        draw_grid(f, app, g);
    }
    draw_memory(f, app, a.memory);
    let editing = app.overlay == Overlay::Prompt;
    let field = FieldView { label: "prompt", field: &app.prompt, active: editing, theme: &app.theme };
    if editing {
        if let Some(pos) = field.cursor_position(a.prompt) {
            f.set_cursor_position(pos);
        }
    }
    f.render_widget(field, a.prompt);
    draw_status(f, app, a.status);
    match &app.overlay {
        Overlay::Help { scroll } => {
            let rows: Vec<HelpRow> = super::keymap::help_rows()
                .into_iter()
                .map(|(section, keys, action, desc)| HelpRow { section, keys, action, desc })
                .collect();
            f.render_widget(HelpOverlay { rows: &rows, scroll: *scroll, theme: &app.theme }, size);
        }
        Overlay::Settings { selected } => {
            let rows = app.settings.rows();
            let r = centered(size, 56, rows.len() as u16 + 4);
            f.render_widget(SettingsView { rows: &rows, selected: *selected, editing: None, theme: &app.theme }, r);
        }
        _ => {}
    }
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let (w, h) = (w.min(area.width), h.min(area.height));
    Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h)
}

fn focused(app: &App, focus: Focus, pane: usize) -> bool {
    app.focus == focus && pane == 0 && app.overlay == Overlay::None
}

fn draw_tokens(f: &mut Frame, app: &App, pane: &Pane, area: Rect, i: usize) {
    let q = app.query_of(pane);
    let has = pane.positions() > 0;
    let weights = pane.row.as_ref().filter(|r| r.query == q).map(|r| r.weights.as_slice());
    let prompt = pane.tokens.iter().filter(|t| t.prompt).count();
    let name = if app.compare() { format!("{} · ", pane.source) } else { String::new() };
    let sel = pane.tokens.get(q).map(|t| format!(" · query {q} {:?}", t.text)).unwrap_or_default();
    let title = format!("{name}Tokens · {prompt} prompt + {} generated{sel}", pane.tokens.len() - prompt);
    let view = TokensView {
        tokens: &pane.tokens,
        selected: has.then_some(q),
        weights,
        title,
        focused: focused(app, Focus::Tokens, i),
        theme: &app.theme,
    };
    f.render_widget(view, area);
}

/// A panel that says what a pane is doing instead of showing data.
fn placeholder(f: &mut Frame, app: &App, pane: &Pane, area: Rect) -> bool {
    let text = match &pane.status {
        PaneStatus::Loading => {
            let spin = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let t = pane.since.elapsed().as_secs_f64();
            let c = spin[(t * 10.0) as usize % spin.len()];
            Some((format!("{c} loading {} … {t:.1} s", pane.source), app.theme.accent()))
        }
        PaneStatus::Failed(e) if pane.steps.is_empty() => Some((format!("{}: {e}", pane.source), app.theme.error())),
        _ if pane.info.is_some() && pane.steps.is_empty() => {
            Some((format!("{}: running the prompt through the model …", pane.source), app.theme.dim()))
        }
        _ => None,
    };
    let Some((text, style)) = text else { return false };
    let block = Block::default().borders(Borders::ALL).title(pane.source.clone());
    let inner = block.inner(area);
    f.render_widget(block, area);
    let y = inner.y + inner.height / 2;
    let r = Rect::new(inner.x, y.min(inner.y + inner.height.saturating_sub(1)), inner.width, 2.min(inner.height));
    f.render_widget(Paragraph::new(text).style(style).alignment(Alignment::Center).wrap(Wrap { trim: true }), r);
    true
}

fn draw_main(f: &mut Frame, app: &App, i: usize, area: Rect) {
    let pane = &app.panes[i];
    if placeholder(f, app, pane, area) {
        return;
    }
    let Some(info) = &pane.info else { return };
    let q = app.query_of(pane);
    if info.is_state_space() {
        let view = StateViewWidget {
            state: pane.state.as_ref(),
            tokens: &pane.tokens,
            selected: Some(q),
            focused: focused(app, Focus::Map, i) || focused(app, Focus::Side, i),
            theme: &app.theme,
        };
        f.render_widget(view, area);
        return;
    }
    let (layer, head) = app.layer_head_of(pane);
    let kv = head.and_then(|h| match &info.mixing {
        super::data::Mixing::Attention { kv_head_of, .. } => kv_head_of.get(h).copied(),
        _ => None,
    });
    let what = match (head, kv) {
        (Some(h), Some(k)) => format!("L{layer} H{h} (KV head {k})"),
        (Some(h), None) => format!("L{layer} H{h}"),
        (None, _) => format!("L{layer} mean of {} heads", info.heads()),
    };
    let prefix = if app.compare() { format!("{} · ", pane.source) } else { String::new() };
    let map = pane.map.as_ref();
    let vmax = if app.sel.normalize {
        map.map(|m| m.image.values.iter().copied().filter(|v| !v.is_nan()).fold(1e-6f32, f32::max)).unwrap_or(1.0)
    } else {
        1.0
    };
    let view = AttentionView {
        map,
        tokens: &pane.tokens,
        cursor: Some((q, app.key_of(pane))),
        cursor_value: pane.cursor_value,
        vmax,
        title: format!("{prefix}Attention · {what}"),
        focused: focused(app, Focus::Map, i),
        theme: &app.theme,
    };
    f.render_widget(view, area);
}

fn grid_view<'a>(app: &'a App, area: Rect) -> Option<GridView<'a>> {
    let pane = app.main();
    let info = pane.info.as_ref()?;
    let vis = grid::visible_layers(info, area).max(1);
    let layer = app.sel.layer;
    Some(GridView {
        grid: pane.grid.as_ref(),
        info,
        selected: (layer, app.sel.head.unwrap_or(0)),
        pattern: app.sel.pattern,
        sorted: app.sel.sorted,
        scroll: if layer < vis { 0 } else { layer + 1 - vis },
        focused: focused(app, Focus::Grid, 0),
        theme: &app.theme,
    })
}

fn draw_grid(f: &mut Frame, app: &App, area: Rect) {
    if placeholder(f, app, app.main(), area) {
        return;
    }
    if let Some(v) = grid_view(app, area) {
        f.render_widget(v, area);
    }
}

fn draw_memory(f: &mut Frame, app: &App, area: Rect) {
    if app.compare() {
        let series = app
            .panes
            .iter()
            .filter_map(|p| p.info.as_ref().map(|i| (p.source.as_str(), i, p.steps.as_slice())))
            .collect();
        f.render_widget(CompareMemory { series, theme: &app.theme }, area);
        return;
    }
    let pane = app.main();
    if let Some(info) = &pane.info {
        let view = MemoryView { info, steps: &pane.steps, focused: focused(app, Focus::Side, 0), theme: &app.theme };
        f.render_widget(view, area);
    } else {
        placeholder(f, app, pane, area);
    }
}

/// A model path as its file or folder name; zoo names and Hub ids as they are.
fn short_name(source: &str) -> String {
    let path = std::path::Path::new(source);
    if path.exists() {
        if let Some(name) = path.file_name() {
            return name.to_string_lossy().into_owned();
        }
    }
    source.to_string()
}

fn status_word(app: &App) -> String {
    let p = app.main();
    match &p.status {
        PaneStatus::Loading => format!("loading {:.1} s", p.since.elapsed().as_secs_f64()),
        PaneStatus::Ready => "ready".into(),
        PaneStatus::Generating => "generating".into(),
        PaneStatus::Paused => "paused".into(),
        PaneStatus::Done(r) => format!("done ({})", stop_word(*r)),
        PaneStatus::Failed(_) => "failed".into(),
        PaneStatus::Recorded => "recorded trace".into(),
    }
}

fn stop_word(r: crate::session::StopReason) -> &'static str {
    use crate::session::StopReason::*;
    match r {
        Eos => "end of sequence",
        MaxTokens => "max tokens",
        ContextFull => "context full",
        Cancelled => "stopped",
    }
}

fn draw_status(f: &mut Frame, app: &App, area: Rect) {
    let p = app.main();
    let mut left = vec![("model".to_string(), short_name(&p.source))];
    if app.compare() {
        left[0].1 = format!("{} models", app.panes.len());
    }
    if let Some(info) = &p.info {
        left.push(("device".into(), info.device.clone()));
        left.push(("dtype".into(), info.dtype.clone()));
    }
    if let Some(tps) = p.tokens_per_s() {
        left.push(("tok/s".into(), format!("{tps:.1}")));
    }
    let generated = p.tokens.iter().filter(|t| !t.prompt).count();
    left.push(("step".into(), format!("{generated}/{}", app.settings.max_new_tokens)));
    if let Some(s) = p.steps.last() {
        let label = if p.info.as_ref().is_some_and(|i| i.is_state_space()) { "state" } else { "KV" };
        left.push((label.into(), human_bytes(s.kv_bytes as u64)));
    }
    let hint = |a: Action, what: &str| (key_of(a), what.to_string());
    let mamba = !app.compare() && p.info.as_ref().is_some_and(|i| i.is_state_space());
    let mut hints = match (&app.overlay, app.focus) {
        (Overlay::Prompt, _) => vec![("Enter".into(), "generate".into()), ("Esc".into(), "cancel".into())],
        (Overlay::Settings { .. }, _) => vec![
            ("↑↓".into(), "choose".into()),
            ("←→".into(), "change".into()),
            ("Enter".into(), "apply".into()),
            ("Esc".into(), "close".into()),
        ],
        (Overlay::Help { .. }, _) => vec![("Esc".into(), "close".into())],
        (_, Focus::Tokens) => vec![("←→".into(), "token".into())],
        (_, Focus::Map | Focus::Side) if mamba => vec![("↑↓".into(), "layer".into()), ("←→".into(), "step".into())],
        (_, Focus::Map) => {
            vec![("↑↓".into(), "query".into()), ("←→".into(), "key".into()), hint(Action::ZoomIn, "zoom")]
        }
        (_, Focus::Grid) => {
            vec![("←→↑↓".into(), "head".into()), hint(Action::Pattern, "tint"), hint(Action::SortGrid, "rank")]
        }
        (_, Focus::Side) => vec![("↑↓".into(), "layer".into())],
    };
    if app.overlay == Overlay::None {
        hints.push(hint(Action::LayerNext, "layer"));
        if !mamba {
            hints.push(hint(Action::HeadNext, "head"));
        }
        hints.extend([
            hint(Action::PauseResume, "pause"),
            hint(Action::EditPrompt, "prompt"),
            hint(Action::Lessons, "lessons"),
            hint(Action::Help, "help"),
            hint(Action::Quit, "quit"),
        ]);
    }
    let message = app.message.as_ref().filter(|(_, t)| t.elapsed().as_secs() < 8).map(|(m, _)| m.as_str());
    let failed = app.panes.iter().find_map(|p| match &p.status {
        PaneStatus::Failed(e) if !p.steps.is_empty() => Some(e.as_str()),
        _ => None,
    });
    let state = status_word(app);
    let bar = StatusBar { left, state: &state, hints: &hints, message: message.or(failed), theme: &app.theme };
    f.render_widget(bar, area);
}

/// What pane `i`'s worker should compute to fill this layout.
pub fn room(app: &App, size: Rect, i: usize) -> Room {
    let a = areas(app, size);
    let Some(pa) = a.panes.get(i) else { return Room::default() };
    let ss = app.panes[i].info.as_ref().is_some_and(|x| x.is_state_space());
    if ss {
        let (ssm, _) = state::state_area(pa.main);
        return Room { state_rows: Some((ssm.height as usize * 2).max(1)), ..Room::default() };
    }
    let m = attention::map_area(pa.main);
    Room { map: Some((m.width as usize, m.height as usize * 2)), grid: i == 0 && a.grid.is_some(), state_rows: None }
}

/// A left click: select what is under it and focus its panel.
pub fn click(app: &mut App, size: Rect, x: u16, y: u16) {
    let a = areas(app, size);
    if a.too_small {
        return;
    }
    if contains(a.prompt, x, y) && !app.recorded {
        app.overlay = Overlay::Prompt;
        return;
    }
    if let Some(g) = a.grid.filter(|g| contains(*g, x, y)) {
        app.focus = Focus::Grid;
        if let Some((l, h)) = grid_view(app, g).and_then(|v| grid::head_at(&v, g, x, y)) {
            app.sel.layer = l;
            app.sel.head = Some(h);
        }
        return;
    }
    if contains(a.memory, x, y) {
        app.focus = Focus::Side;
        return;
    }
    for (i, pa) in a.panes.iter().enumerate() {
        let pane = &app.panes[i];
        if contains(pa.tokens, x, y) {
            app.focus = Focus::Tokens;
            let sel = Some(app.query_of(pane));
            if let Some(t) = tokens::token_at(&pane.tokens, sel, pa.tokens, x, y) {
                app.sel.query = Some(t.min(pane.positions().saturating_sub(1)));
            }
            return;
        }
        if contains(pa.main, x, y) {
            app.focus = Focus::Map;
            if let Some((q, k)) = pane.map.as_ref().and_then(|m| attention::position_at(m, pa.main, x, y)) {
                app.sel.query = Some(q);
                app.sel.key = Some(k);
            }
            return;
        }
    }
}

/// The wheel scrolls what is under the pointer.
pub fn scroll(app: &mut App, size: Rect, x: u16, y: u16, up: bool) {
    let a = areas(app, size);
    let under = |r: Rect| contains(r, x, y);
    let action = if a.grid.is_some_and(under) {
        if up {
            Action::LayerPrev
        } else {
            Action::LayerNext
        }
    } else if a.panes.iter().any(|p| under(p.tokens)) {
        app.focus = Focus::Tokens;
        if up {
            Action::Up
        } else {
            Action::Down
        }
    } else if a.panes.iter().any(|p| under(p.main)) {
        app.focus = Focus::Map;
        if up {
            Action::Up
        } else {
            Action::Down
        }
    } else {
        return;
    };
    app.update(action);
}

#[cfg(test)]
mod tests;
