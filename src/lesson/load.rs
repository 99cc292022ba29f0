//! Reading lessons: from the copies embedded at build time (`all`, `find`)
//! or from a folder on disk (`load_dir`), through one parser.

use super::schema::{Lesson, Panel, Step, FORMAT};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/lessons.rs"));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    format: u32,
    title: String,
    summary: String,
    #[serde(default)]
    references: Vec<String>,
    #[serde(default)]
    steps: Vec<toml::Table>,
}

/// Every embedded lesson, by number.
pub fn all() -> Result<Vec<Lesson>> {
    let mut dirs: Vec<&str> = embedded::FILES.iter().filter_map(|(p, _)| p.split_once('/').map(|d| d.0)).collect();
    dirs.dedup();
    let mut out = dirs
        .into_iter()
        .map(|dir| {
            parse(dir, |file| {
                let want = format!("{dir}/{file}");
                embedded::FILES.iter().find(|(p, _)| *p == want).map(|(_, t)| t.to_string())
            })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|l| l.number);
    Ok(out)
}

/// A lesson by number ("3", "03"), slug ("kv-cache") or folder name ("03-kv-cache").
pub fn find(name_or_number: &str) -> Result<Lesson> {
    let key = name_or_number.trim().to_ascii_lowercase();
    let lessons = all()?;
    let names: Vec<String> = lessons.iter().map(|l| format!("{} {}", l.number, l.slug)).collect();
    lessons
        .into_iter()
        .find(|l| key.parse::<u32>().ok() == Some(l.number) || key == l.slug || key == folder(l))
        .ok_or_else(|| Error::Usage(format!("no lesson {name_or_number:?}; lessons: {}", names.join(", "))))
}

/// The folder name `NN-slug`.
fn folder(l: &Lesson) -> String {
    format!("{:02}-{}", l.number, l.slug)
}

/// A lesson from a folder `NN-slug` holding `lesson.toml` and its step files.
pub fn load_dir(dir: &Path) -> Result<Lesson> {
    let name = dir.file_name().and_then(|n| n.to_str()).ok_or_else(|| Error::bad_file(dir, "not a lesson folder"))?;
    let lesson = parse(name, |file| std::fs::read_to_string(dir.join(file)).ok());
    // Name the folder on disk in errors, not just its name.
    lesson.map_err(|e| match e {
        Error::BadFile { path, msg } => {
            Error::BadFile { path: dir.join(path.strip_prefix(name).unwrap_or(&path)), msg }
        }
        e => e,
    })
}

/// Parse lesson `dir` (its folder name), reading files through `read`.
fn parse(dir: &str, read: impl Fn(&str) -> Option<String>) -> Result<Lesson> {
    let at = |file: &str| PathBuf::from(dir).join(file);
    let (number, slug) = dir
        .split_once('-')
        .and_then(|(n, s)| Some((n.parse::<u32>().ok().filter(|_| n.len() == 2)?, s)))
        .filter(|(_, s)| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        .ok_or_else(|| Error::bad_file(dir, "a lesson folder is named NN-slug (two digits, lower-case kebab slug)"))?;
    let toml_path = at("lesson.toml");
    let text = read("lesson.toml").ok_or_else(|| Error::bad_file(&toml_path, "missing"))?;
    let raw: Raw = toml::from_str(&text).map_err(|e| Error::bad_file(&toml_path, one_line(&e.to_string())))?;
    if raw.format != FORMAT {
        return Err(Error::bad_file(&toml_path, format!("format {}: this build reads format {FORMAT}", raw.format)));
    }
    let steps = raw
        .steps
        .into_iter()
        .enumerate()
        .map(|(i, table)| {
            step(table, &read).map_err(|msg| Error::bad_file(&toml_path, format!("step {}: {msg}", i + 1)))
        })
        .collect::<Result<Vec<_>>>()?;
    if steps.is_empty() {
        return Err(Error::bad_file(&toml_path, "no [[steps]]"));
    }
    Ok(Lesson { number, slug: slug.into(), title: raw.title, summary: raw.summary, references: raw.references, steps })
}

/// One `[[steps]]` table: `title`, `text` (a Markdown file beside it) and the panel.
fn step(mut table: toml::Table, read: &impl Fn(&str) -> Option<String>) -> std::result::Result<Step, String> {
    let mut take = |key: &str| match table.remove(key) {
        Some(toml::Value::String(s)) => Ok(s),
        Some(_) => Err(format!("{key} must be a string")),
        None => Err(format!("missing {key}")),
    };
    let title = take("title")?;
    let file = take("text")?;
    if !file.ends_with(".md") || file.contains(['/', '\\']) {
        return Err(format!("text {file:?}: name a .md file beside lesson.toml"));
    }
    let markdown = read(&file).ok_or_else(|| format!("text {file}: file not found"))?;
    table.entry("panel").or_insert_with(|| toml::Value::String("none".into()));
    // serde ignores extra keys beside a unit variant; a text-only step takes none.
    if table.get("panel").and_then(toml::Value::as_str) == Some("none") {
        if let Some(key) = table.keys().find(|k| *k != "panel") {
            return Err(format!("({title}) unknown field `{key}`: panel none takes no settings"));
        }
    }
    let panel =
        Panel::deserialize(toml::Value::Table(table)).map_err(|e| format!("({title}) {}", one_line(&e.to_string())))?;
    Ok(Step { title, markdown, panel })
}

/// toml's messages span lines (with a source excerpt); keep them on one.
fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.contains(" | "))
        .collect::<Vec<_>>()
        .join("; ")
}
