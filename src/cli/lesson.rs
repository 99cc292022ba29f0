//! `attnviz lesson NAME|NUMBER [--present] [--device cpu]`: open a lesson in
//! the terminal UI.

use attnviz::lesson::Lesson;
use attnviz::tui::lesson as screen;
use clap::Args;

#[derive(Args)]
pub struct LessonArgs {
    /// The lesson's number (`3`), slug (`kv-cache`) or folder name (`03-kv-cache`); `panels` tours every
    /// panel kind. `attnviz lessons` lists them.
    pub name: String,
    /// Presenter mode for classrooms: large high-contrast text, no borders or status bar, one step per screen.
    #[arg(long)]
    pub present: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Every lesson this build can open: the built-in panel tour, then the lessons.
fn catalog() -> anyhow::Result<Vec<Lesson>> {
    let mut all = vec![screen::demo::panels()];
    all.extend(attnviz::lesson::all()?);
    Ok(all)
}

/// The lesson `name` names: by number, slug, `NN-slug`, or a unique slug prefix.
fn find(mut all: Vec<Lesson>, name: &str) -> anyhow::Result<Lesson> {
    let name = name.trim().to_ascii_lowercase();
    let exact = |l: &Lesson| {
        name.parse::<u32>().is_ok_and(|n| n == l.number)
            || l.slug == name
            || format!("{:02}-{}", l.number, l.slug) == name
    };
    if let Some(i) = all.iter().position(exact) {
        return Ok(all.swap_remove(i));
    }
    let mut prefixed: Vec<Lesson> = all.iter().filter(|l| l.slug.starts_with(&name)).cloned().collect();
    if prefixed.len() == 1 {
        return Ok(prefixed.remove(0));
    }
    let names: Vec<String> = all.iter().map(|l| format!("{} ({})", l.number, l.slug)).collect();
    anyhow::bail!("no lesson {name:?}; there are: {}", names.join(", "))
}

pub fn run(a: LessonArgs) -> anyhow::Result<()> {
    let lesson = find(catalog()?, &a.name)?;
    screen::open(lesson, a.present, &a.device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lessons_are_found_by_number_slug_and_prefix() {
        let all = || catalog().unwrap();
        assert_eq!(find(all(), "0").unwrap().slug, "panels");
        assert_eq!(find(all(), "00-panels").unwrap().slug, "panels");
        assert_eq!(find(all(), "Pan").unwrap().slug, "panels");
        assert_eq!(find(all(), "3").unwrap().number, 3);
        assert_eq!(find(all(), "03-kv-cache").unwrap().number, 3);
        let e = find(all(), "nope").unwrap_err().to_string();
        assert!(e.contains("0 (panels)") && e.contains("7 (mamba-scan)"), "{e}");
    }
}
