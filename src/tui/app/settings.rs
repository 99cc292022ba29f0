//! Sampling settings, edited in an overlay: one row per setting, ←/→ change
//! the value, Enter applies and generates again, Esc closes.

use super::{App, Command, Overlay};
use crate::sample::Sampling;
use crate::tui::keymap::Action;

#[derive(Debug, Clone, PartialEq)]
pub struct GenSettings {
    pub greedy: bool,
    pub temperature: f32,
    /// 0: off.
    pub top_k: usize,
    /// 1.0: off.
    pub top_p: f32,
    pub seed: u64,
    pub max_new_tokens: usize,
    pub ignore_eos: bool,
}

impl Default for GenSettings {
    fn default() -> Self {
        Self { greedy: true, temperature: 1.0, top_k: 0, top_p: 1.0, seed: 0, max_new_tokens: 48, ignore_eos: false }
    }
}

impl GenSettings {
    pub fn from_sampling(s: &Sampling, max_new_tokens: usize, ignore_eos: bool) -> Self {
        match s {
            Sampling::Greedy => Self { max_new_tokens, ignore_eos, ..Self::default() },
            Sampling::Random { temperature, top_k, top_p, seed } => Self {
                greedy: false,
                temperature: *temperature,
                top_k: top_k.unwrap_or(0),
                top_p: top_p.unwrap_or(1.0),
                seed: *seed,
                max_new_tokens,
                ignore_eos,
            },
        }
    }

    pub fn sampling(&self) -> Sampling {
        if self.greedy {
            return Sampling::Greedy;
        }
        Sampling::Random {
            temperature: self.temperature,
            top_k: (self.top_k > 0).then_some(self.top_k),
            top_p: (self.top_p < 1.0).then_some(self.top_p),
            seed: self.seed,
        }
    }

    /// (name, value) rows as the overlay shows them.
    pub fn rows(&self) -> Vec<(String, String)> {
        let off = |on: bool, v: String| if on { v } else { "off".into() };
        vec![
            ("sampling".into(), if self.greedy { "greedy".into() } else { "random".into() }),
            ("temperature".into(), format!("{:.2}", self.temperature)),
            ("top-k".into(), off(self.top_k > 0, self.top_k.to_string())),
            ("top-p".into(), off(self.top_p < 1.0, format!("{:.2}", self.top_p))),
            ("seed".into(), self.seed.to_string()),
            ("max new tokens".into(), self.max_new_tokens.to_string()),
            ("stop at end-of-sequence".into(), if self.ignore_eos { "no".into() } else { "yes".into() }),
        ]
    }

    /// Change row `row` one notch up (`up`) or down.
    pub fn nudge(&mut self, row: usize, up: bool) {
        let s = if up { 1.0 } else { -1.0 };
        match row {
            0 => self.greedy = !self.greedy,
            1 => self.temperature = ((self.temperature + 0.1 * s) * 100.0).round().clamp(1.0, 500.0) / 100.0,
            2 => self.top_k = if up { self.top_k + 1 } else { self.top_k.saturating_sub(1) },
            3 => self.top_p = ((self.top_p + 0.05 * s) * 100.0).round().clamp(5.0, 100.0) / 100.0,
            4 => self.seed = if up { self.seed + 1 } else { self.seed.saturating_sub(1) },
            5 => {
                self.max_new_tokens =
                    if up { self.max_new_tokens + 8 } else { self.max_new_tokens.saturating_sub(8).max(1) }
            }
            _ => self.ignore_eos = !self.ignore_eos,
        }
        // Changing a sampling knob means sampling.
        if (1..=4).contains(&row) {
            self.greedy = false;
        }
    }
}

pub const ROWS: usize = 7;

impl App {
    pub(super) fn settings_action(&mut self, action: Action) -> Vec<Command> {
        let Overlay::Settings { selected } = self.overlay else { return vec![] };
        match action {
            Action::Up => self.overlay = Overlay::Settings { selected: (selected + ROWS - 1) % ROWS },
            Action::Down => self.overlay = Overlay::Settings { selected: (selected + 1) % ROWS },
            Action::Left | Action::Right => self.settings.nudge(selected, action == Action::Right),
            Action::Close | Action::Settings => self.overlay = Overlay::None,
            Action::Quit => self.quit = true,
            _ => {}
        }
        vec![]
    }

    /// Enter in the settings overlay: apply and generate again.
    pub fn settings_apply(&mut self) -> Vec<Command> {
        self.overlay = Overlay::None;
        self.generate()
    }
}
