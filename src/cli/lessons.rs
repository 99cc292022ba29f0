//! `attnviz lessons`: the lessons built into this binary (number, slug,
//! title, summary), as a table or JSON.

use clap::Args;
use serde_json::json;
use std::io::Write;

#[derive(Args)]
pub struct LessonsArgs {
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(a: LessonsArgs) -> anyhow::Result<()> {
    let lessons = attnviz::lesson::all()?;
    // Write errors (a closed pipe) end the command instead of panicking.
    let mut out = std::io::stdout().lock();
    if a.json {
        let list: Vec<_> = lessons
            .iter()
            .map(|l| {
                json!({
                    "number": l.number, "slug": l.slug, "title": l.title, "summary": l.summary,
                    "steps": l.steps.len(), "references": l.references,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    let slug = lessons.iter().map(|l| l.slug.len()).max().unwrap_or(0);
    let title = lessons.iter().map(|l| l.title.chars().count()).max().unwrap_or(0);
    for l in &lessons {
        writeln!(out, "{:>2}  {:<slug$}  {:<title$}  {}", l.number, l.slug, l.title, l.summary)?;
    }
    Ok(())
}
