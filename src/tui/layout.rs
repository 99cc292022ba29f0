//! Where each panel goes for a terminal size: one function used by drawing,
//! mouse hit-testing and the requests sent to workers, so all three agree.

use ratatui::layout::{Constraint, Layout, Rect};

/// Smallest terminal the UI draws in.
pub const MIN_SIZE: (u16, u16) = (80, 24);

/// The panels of one model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaneAreas {
    pub tokens: Rect,
    /// Attention map (transformer) or state (Mamba).
    pub main: Rect,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Areas {
    pub panes: Vec<PaneAreas>,
    /// Head grid (single transformer only).
    pub grid: Option<Rect>,
    /// Memory chart: beside the map for one model, across the bottom side by side.
    pub memory: Rect,
    pub prompt: Rect,
    pub status: Rect,
    /// The terminal is below `MIN_SIZE`: only a message is drawn.
    pub too_small: bool,
}

/// `state_space` tells, per pane, whether its model is a Mamba.
pub fn areas(size: Rect, state_space: &[bool]) -> Areas {
    if size.width < MIN_SIZE.0 || size.height < MIN_SIZE.1 {
        return Areas { too_small: true, ..Areas::default() };
    }
    let [body, prompt, status] =
        Layout::vertical([Constraint::Min(10), Constraint::Length(1), Constraint::Length(1)]).areas(size);
    let token_rows = (size.height / 6).clamp(4, 9);
    if state_space.len() <= 1 {
        let [tokens, middle] = Layout::vertical([Constraint::Length(token_rows), Constraint::Min(6)]).areas(body);
        let [main, side] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(middle);
        let mamba = state_space.first().copied().unwrap_or(false);
        let (grid, memory) = if mamba {
            (None, side)
        } else {
            let [g, m] = Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(side);
            (Some(g), m)
        };
        return Areas { panes: vec![PaneAreas { tokens, main }], grid, memory, prompt, status, too_small: false };
    }
    let [top, memory] =
        Layout::vertical([Constraint::Min(8), Constraint::Length((body.height / 4).max(6))]).areas(body);
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, state_space.len() as u32); state_space.len()]).split(top);
    let panes = cols
        .iter()
        .map(|c| {
            let [tokens, main] =
                Layout::vertical([Constraint::Length(token_rows.min(6)), Constraint::Min(4)]).areas(*c);
            PaneAreas { tokens, main }
        })
        .collect();
    Areas { panes, grid: None, memory, prompt, status, too_small: false }
}

/// True when (x, y) lies inside `r`.
pub fn contains(r: Rect, x: u16, y: u16) -> bool {
    x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_tile_the_screen_and_small_terminals_are_refused() {
        let a = areas(Rect::new(0, 0, 240, 70), &[false]);
        assert!(!a.too_small);
        let (p, g) = (a.panes[0], a.grid.unwrap());
        assert_eq!(p.tokens.y, 0);
        assert_eq!(p.main.x, 0);
        assert_eq!(g.x, p.main.width);
        assert_eq!(a.status.y, 69);
        assert!(areas(Rect::new(0, 0, 79, 30), &[false]).too_small);
        assert!(areas(Rect::new(0, 0, 100, 23), &[false]).too_small);
        let c = areas(Rect::new(0, 0, 200, 50), &[false, false, true, false]);
        assert_eq!(c.panes.len(), 4);
        assert!(c.grid.is_none());
        assert_eq!(c.memory.width, 200);
    }
}
