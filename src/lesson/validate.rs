//! Everything that can be wrong with a lesson that loaded: bad panel
//! settings, unknown models, broken Markdown, unknown placeholders, and
//! numbers in the prose that no code computed.

use super::markdown;
use super::schema::Lesson;
use super::text::{fill, has_digit, is_live, prose_digits};
use super::values::{citation, values};

/// Every problem found, each one line naming the lesson and step; empty when the lesson is sound.
pub fn validate(lesson: &Lesson) -> Vec<String> {
    let name = format!("lesson {:02}-{}", lesson.number, lesson.slug);
    let mut out = vec![];
    for (what, text) in [("title", &lesson.title), ("summary", &lesson.summary)] {
        if text.trim().is_empty() {
            out.push(format!("{name}: empty {what}"));
        }
        if has_digit(text) {
            out.push(format!("{name}: a number in the {what} {text:?}"));
        }
    }
    if lesson.references.is_empty() {
        out.push(format!("{name}: no references"));
    }
    for r in &lesson.references {
        if citation(r).is_none() {
            out.push(format!("{name}: reference {r:?} is not \"Authors (year), Title, arXiv:…\""));
        }
    }
    for (i, step) in lesson.steps.iter().enumerate() {
        let at = format!("{name}, step {} ({})", i + 1, step.title);
        if step.title.trim().is_empty() || has_digit(&step.title) {
            out.push(format!("{at}: a step title must be non-empty and hold no number"));
        }
        for m in step.panel.models() {
            let known = crate::model::zoo::get(m).is_some() || crate::sim::presets::find(m).is_some();
            if !known {
                out.push(format!(
                    "{at}: no model {m:?} (zoo: {}; presets: {})",
                    crate::model::zoo::names(),
                    crate::sim::presets::names()
                ));
            }
        }
        let vals = match values(&step.panel, &lesson.references) {
            Ok(v) => Some(v),
            Err(e) => {
                out.push(format!("{at}: panel: {e}"));
                None
            }
        };
        if let Err(e) = markdown::parse(&step.markdown) {
            out.push(format!("{at}: Markdown: {e}"));
            continue;
        }
        out.extend(prose_digits(&step.markdown).into_iter().map(|p| format!("{at}: {p}")));
        let runs_model = !step.panel.models().is_empty();
        for p in markdown::placeholders(&step.markdown) {
            let filled = vals.as_ref().is_some_and(|v| v.contains_key(&p));
            if is_live(&p) && !filled && !runs_model {
                out.push(format!("{at}: live placeholder {{{p}}} on a panel that runs no model"));
            } else if !filled && !is_live(&p) && vals.is_some() {
                out.push(format!("{at}: unknown placeholder {{{p}}} for panel {:?}", panel_name(&step.panel)));
            }
        }
        if let Some(v) = &vals {
            if let Ok(text) = fill(&step.markdown, v) {
                if let Err(e) = markdown::parse(&text) {
                    out.push(format!("{at}: filled Markdown: {e}"));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn panel_name(p: &super::Panel) -> String {
    format!("{p:?}").split([' ', '{']).next().unwrap_or("").to_lowercase()
}
