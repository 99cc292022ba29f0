//! The keymap as data: every binding with its action, section and
//! description. Input is translated through it and the help overlay is
//! drawn from it, so the two cannot drift apart.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Help,
    Close,
    FocusNext,
    FocusPrev,
    Left,
    Right,
    Up,
    Down,
    PageUp,
    PageDown,
    First,
    Last,
    LayerPrev,
    LayerNext,
    HeadPrev,
    HeadNext,
    MeanHeads,
    ZoomIn,
    ZoomOut,
    ZoomFit,
    Follow,
    PauseResume,
    Step,
    Cancel,
    Restart,
    EditPrompt,
    Settings,
    Pattern,
    SortGrid,
    Normalize,
    ColorMap,
    Export,
    Lessons,
}

pub struct Binding {
    pub keys: &'static [(KeyCode, KeyModifiers)],
    pub action: Action,
    pub section: &'static str,
    pub desc: &'static str,
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;

const fn ch(c: char) -> (KeyCode, KeyModifiers) {
    (KeyCode::Char(c), NONE)
}

pub const KEYMAP: &[Binding] = &[
    Binding { keys: &[ch('q'), (KeyCode::Char('c'), CTRL)], action: Action::Quit, section: "general", desc: "quit" },
    Binding { keys: &[ch('?')], action: Action::Help, section: "general", desc: "show or hide this help" },
    Binding {
        keys: &[(KeyCode::Esc, NONE)],
        action: Action::Close,
        section: "general",
        desc: "close the open overlay",
    },
    Binding {
        keys: &[(KeyCode::Tab, NONE)],
        action: Action::FocusNext,
        section: "general",
        desc: "focus the next panel",
    },
    Binding {
        keys: &[(KeyCode::BackTab, SHIFT), (KeyCode::BackTab, NONE)],
        action: Action::FocusPrev,
        section: "general",
        desc: "focus the previous panel",
    },
    Binding { keys: &[ch('x')], action: Action::Export, section: "general", desc: "save the screen as an SVG file" },
    Binding {
        keys: &[ch('L')],
        action: Action::Lessons,
        section: "general",
        desc: "the Lessons tab (Enter opens one, q in it comes back, Esc returns here)",
    },
    Binding {
        keys: &[ch('C')],
        action: Action::ColorMap,
        section: "general",
        desc: "next colour map (viridis, magma, cividis)",
    },
    Binding {
        keys: &[ch('h'), (KeyCode::Left, NONE)],
        action: Action::Left,
        section: "move",
        desc: "previous token / key column / head",
    },
    Binding {
        keys: &[ch('l'), (KeyCode::Right, NONE)],
        action: Action::Right,
        section: "move",
        desc: "next token / key column / head",
    },
    Binding {
        keys: &[ch('k'), (KeyCode::Up, NONE)],
        action: Action::Up,
        section: "move",
        desc: "line up / query row up / layer up",
    },
    Binding {
        keys: &[ch('j'), (KeyCode::Down, NONE)],
        action: Action::Down,
        section: "move",
        desc: "line down / query row down / layer down",
    },
    Binding { keys: &[(KeyCode::PageUp, NONE)], action: Action::PageUp, section: "move", desc: "a page up" },
    Binding { keys: &[(KeyCode::PageDown, NONE)], action: Action::PageDown, section: "move", desc: "a page down" },
    Binding {
        keys: &[ch('g'), (KeyCode::Home, NONE)],
        action: Action::First,
        section: "move",
        desc: "first token / row",
    },
    Binding { keys: &[ch('G'), (KeyCode::End, NONE)], action: Action::Last, section: "move", desc: "last token / row" },
    Binding { keys: &[ch('f')], action: Action::Follow, section: "move", desc: "follow the newest token again" },
    Binding { keys: &[ch('[')], action: Action::LayerPrev, section: "layer and head", desc: "previous layer" },
    Binding { keys: &[ch(']')], action: Action::LayerNext, section: "layer and head", desc: "next layer" },
    Binding { keys: &[ch(',')], action: Action::HeadPrev, section: "layer and head", desc: "previous head" },
    Binding { keys: &[ch('.')], action: Action::HeadNext, section: "layer and head", desc: "next head" },
    Binding {
        keys: &[ch('m')],
        action: Action::MeanHeads,
        section: "layer and head",
        desc: "one head / the mean over the layer's heads",
    },
    Binding {
        keys: &[ch('+'), ch('=')],
        action: Action::ZoomIn,
        section: "attention map",
        desc: "zoom in around the cursor",
    },
    Binding { keys: &[ch('-')], action: Action::ZoomOut, section: "attention map", desc: "zoom out" },
    Binding { keys: &[ch('0')], action: Action::ZoomFit, section: "attention map", desc: "show the whole map" },
    Binding {
        keys: &[ch('n')],
        action: Action::Normalize,
        section: "attention map",
        desc: "colour scale 0–1 / 0–visible maximum",
    },
    Binding {
        keys: &[ch('p')],
        action: Action::Pattern,
        section: "head grid",
        desc: "tint heads by the next pattern score",
    },
    Binding {
        keys: &[ch('o')],
        action: Action::SortGrid,
        section: "head grid",
        desc: "grid / heads ranked by the score",
    },
    Binding {
        keys: &[(KeyCode::Char(' '), NONE)],
        action: Action::PauseResume,
        section: "generation",
        desc: "pause or resume",
    },
    Binding { keys: &[ch('s')], action: Action::Step, section: "generation", desc: "one token (pauses)" },
    Binding { keys: &[ch('c')], action: Action::Cancel, section: "generation", desc: "stop generating" },
    Binding { keys: &[ch('r')], action: Action::Restart, section: "generation", desc: "generate again" },
    Binding {
        keys: &[ch('e'), ch('/')],
        action: Action::EditPrompt,
        section: "generation",
        desc: "edit the prompt (Enter generates, Esc cancels)",
    },
    Binding {
        keys: &[ch('S')],
        action: Action::Settings,
        section: "generation",
        desc: "sampling settings (greedy, temperature, top-k, top-p, seed)",
    },
];

/// The action bound to `key`, if any.
pub fn action_for(key: &KeyEvent) -> Option<Action> {
    // Terminals differ on whether Shift comes with an upper-case letter.
    let mods = match key.code {
        KeyCode::Char(_) => key.modifiers - KeyModifiers::SHIFT,
        _ => key.modifiers,
    };
    KEYMAP
        .iter()
        .find(|b| b.keys.iter().any(|&(c, m)| c == key.code && (m - SHIFT) == (mods - SHIFT)))
        .map(|b| b.action)
}

/// How a key is written in help and hints.
pub fn key_name((code, mods): (KeyCode, KeyModifiers)) -> String {
    let base = match code {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::BackTab => "Shift-Tab".into(),
        other => other.to_string(),
    };
    if mods.contains(CTRL) {
        format!("Ctrl-{base}")
    } else {
        base
    }
}

/// The first key of `action`, for hints.
pub fn key_of(action: Action) -> String {
    KEYMAP.iter().find(|b| b.action == action).and_then(|b| b.keys.first()).map_or(String::new(), |&k| key_name(k))
}

/// (section, keys, action, description) rows for the help overlay, in keymap order.
pub fn help_rows() -> Vec<(String, String, String, String)> {
    let mut seen = std::collections::HashSet::new();
    KEYMAP
        .iter()
        .filter(|b| seen.insert(b.action))
        .map(|b| {
            let keys: Vec<String> = b.keys.iter().map(|&k| key_name(k)).collect();
            let mut k = keys;
            k.dedup();
            (b.section.to_string(), k.join(" "), format!("{:?}", b.action), b.desc.to_string())
        })
        .collect()
}

/// The keymap as the Markdown table the README shows (a test keeps them equal).
pub fn markdown_table() -> String {
    let mut out = String::from("| keys | does | section |\n| --- | --- | --- |\n");
    for b in KEYMAP {
        let mut keys: Vec<String> = b.keys.iter().map(|&k| format!("`{}`", key_name(k))).collect();
        keys.dedup();
        out.push_str(&format!("| {} | {} | {} |\n", keys.join(" "), b.desc, b.section));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_shows_this_keymap() {
        let readme = include_str!("../../README.md");
        assert!(readme.contains(&markdown_table()), "update the README's key table to:\n{}", markdown_table());
    }

    #[test]
    fn no_key_is_bound_twice_and_every_binding_has_a_key() {
        let mut seen = std::collections::HashMap::new();
        for b in KEYMAP {
            assert!(!b.keys.is_empty(), "{:?} has no key", b.action);
            for k in b.keys {
                if let Some(prev) = seen.insert(*k, b.action) {
                    assert_eq!(prev, b.action, "{k:?} bound to {prev:?} and {:?}", b.action);
                }
            }
        }
    }

    #[test]
    fn keys_translate_to_their_actions() {
        let key = |c, m| KeyEvent::new(c, m);
        assert_eq!(action_for(&key(KeyCode::Char('q'), KeyModifiers::NONE)), Some(Action::Quit));
        assert_eq!(action_for(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(Action::Quit));
        assert_eq!(action_for(&key(KeyCode::Char('c'), KeyModifiers::NONE)), Some(Action::Cancel));
        assert_eq!(action_for(&key(KeyCode::Char('G'), KeyModifiers::SHIFT)), Some(Action::Last));
        assert_eq!(action_for(&key(KeyCode::BackTab, KeyModifiers::SHIFT)), Some(Action::FocusPrev));
        assert_eq!(action_for(&key(KeyCode::Char('z'), KeyModifiers::NONE)), None);
    }

    #[test]
    fn help_lists_every_action_once() {
        let rows = help_rows();
        assert_eq!(rows.len(), KEYMAP.len());
        assert!(rows.iter().any(|r| r.1 == "q Ctrl-c" && r.3 == "quit"));
    }
}
