//! The lesson screen's keymap as data: input is translated through it and
//! the help overlay is generated from it.

use crate::tui::keymap::key_name;
use crate::tui::views::help::HelpRow;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Everything a key can ask of the lesson screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LessonAction {
    Quit,
    Help,
    Close,
    Next,
    Prev,
    References,
    /// Move the panel's slider up (window, context, block size, query).
    More,
    Less,
    /// Next / previous head (or preset, layer count, scan channel).
    PickNext,
    PickPrev,
    /// Step a tile or a token.
    Step,
    /// Back to the first tile / token.
    Reset,
    /// To the last tile / token.
    End,
    /// Toggle the 1/√d scale (sdpa).
    Scale,
    Batch,
    Dtype,
}

pub struct LessonBinding {
    pub keys: &'static [(KeyCode, KeyModifiers)],
    pub action: LessonAction,
    pub section: &'static str,
    pub desc: &'static str,
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;

const fn ch(c: char) -> (KeyCode, KeyModifiers) {
    (KeyCode::Char(c), NONE)
}

const fn bind(
    keys: &'static [(KeyCode, KeyModifiers)],
    action: LessonAction,
    section: &'static str,
    desc: &'static str,
) -> LessonBinding {
    LessonBinding { keys, action, section, desc }
}

use LessonAction as A;

pub const LESSON_KEYMAP: &[LessonBinding] = &[
    bind(&[ch('q'), (KeyCode::Char('c'), CTRL)], A::Quit, "general", "quit"),
    bind(&[ch('?')], A::Help, "general", "show or hide this help"),
    bind(&[(KeyCode::Esc, NONE)], A::Close, "general", "close the open overlay"),
    bind(&[(KeyCode::Right, NONE), ch('l'), ch('n'), (KeyCode::PageDown, NONE)], A::Next, "steps", "next step"),
    bind(&[(KeyCode::Left, NONE), ch('h'), ch('p'), (KeyCode::PageUp, NONE)], A::Prev, "steps", "previous step"),
    bind(&[ch('r')], A::References, "steps", "show or hide the references"),
    bind(&[ch('+'), ch('=')], A::More, "panel", "slider up: window, context, block size, query (scan: layer)"),
    bind(&[ch('-'), ch('_')], A::Less, "panel", "slider down"),
    bind(&[ch('.'), ch('>')], A::PickNext, "panel", "next head (preset, layer count; scan: channel)"),
    bind(&[ch(','), ch('<')], A::PickPrev, "panel", "previous head (preset, layer count; scan: channel)"),
    bind(&[ch(' '), ch('s')], A::Step, "panel", "step a tile or a token"),
    bind(&[ch('0')], A::Reset, "panel", "back to the first tile or token"),
    bind(&[ch('e'), (KeyCode::End, NONE)], A::End, "panel", "every tile at once / the newest token"),
    bind(&[ch('u')], A::Scale, "panel", "with or without the 1/√d scale"),
    bind(&[ch('b')], A::Batch, "panel", "next batch size (calculator)"),
    bind(&[ch('d')], A::Dtype, "panel", "next dtype (calculator)"),
];

/// The action bound to `key`, if any (Shift on a character is part of the character).
pub fn action_for(key: &KeyEvent) -> Option<LessonAction> {
    let mods = key.modifiers - KeyModifiers::SHIFT;
    LESSON_KEYMAP.iter().find(|b| b.keys.iter().any(|&(c, m)| c == key.code && m == mods)).map(|b| b.action)
}

/// The help overlay's rows, in keymap order.
pub fn help_rows() -> Vec<HelpRow> {
    LESSON_KEYMAP
        .iter()
        .map(|b| HelpRow {
            section: b.section.to_string(),
            keys: b.keys.iter().map(|&k| key_name(k)).collect::<Vec<_>>().join(" "),
            action: format!("{:?}", b.action),
            desc: b.desc.to_string(),
        })
        .collect()
}

/// The first key of `action`, for hints.
pub fn key_of(action: LessonAction) -> String {
    LESSON_KEYMAP
        .iter()
        .find(|b| b.action == action)
        .and_then(|b| b.keys.first())
        .map_or(String::new(), |&k| key_name(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice() {
        let mut seen = std::collections::HashMap::new();
        for b in LESSON_KEYMAP {
            for k in b.keys {
                assert!(seen.insert(*k, b.action).is_none(), "{k:?} bound twice");
            }
        }
    }

    #[test]
    fn keys_translate_and_help_lists_every_action() {
        let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
        assert_eq!(action_for(&key(KeyCode::Right)), Some(A::Next));
        assert_eq!(action_for(&key(KeyCode::PageUp)), Some(A::Prev));
        assert_eq!(action_for(&KeyEvent::new(KeyCode::Char('+'), KeyModifiers::SHIFT)), Some(A::More));
        assert_eq!(action_for(&key(KeyCode::Char('z'))), None);
        let rows = help_rows();
        assert_eq!(rows.len(), LESSON_KEYMAP.len());
        assert!(rows.iter().any(|r| r.keys == "→ l n PgDn" && r.desc == "next step"), "{rows:?}");
    }
}
