//! The lessons: all seven load, validate and fill; and each kind of error
//! validation exists for is caught, on broken lessons written to a tempdir
//! and loaded through the same loader.

use attnviz::lesson::{self, fill, find, load_dir, validate, Panel, LIVE_PLACEHOLDERS};
use std::path::Path;

#[test]
fn all_seven_lessons_validate_and_fill() {
    let lessons = lesson::all().unwrap();
    assert_eq!(lessons.iter().map(|l| l.number).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6, 7]);
    for l in &lessons {
        assert_eq!(validate(l), Vec::<String>::new(), "lesson {}", l.slug);
        assert!((3..=7).contains(&l.steps.len()), "lesson {}: {} steps", l.slug, l.steps.len());
        assert!(!l.references.is_empty());
        for (i, step) in l.steps.iter().enumerate() {
            let values = lesson::step_values(l, i).unwrap();
            let text = fill(&step.markdown, &values).unwrap();
            // Only live placeholders are left, for the screen.
            for name in lesson::markdown::placeholders(&text) {
                assert!(LIVE_PLACEHOLDERS.iter().any(|(n, _)| *n == name), "{}: {{{name}}} left", l.slug);
            }
            assert!(text.len() < 1200, "lesson {} step {}: {} bytes, keep steps short", l.slug, i + 1, text.len());
        }
    }
}

#[test]
fn the_claim_step_recomputes_the_article() {
    let l = find("kv-cache").unwrap();
    let i = l.steps.iter().position(|s| s.title == "Check the claim").unwrap();
    let v = lesson::step_values(&l, i).unwrap();
    let get = |k: &str| v[k].as_str();
    assert_eq!((get("kv_gb"), get("kv_gib"), get("kv_bytes")), ("154.6", "144", "154,618,822,656"));
    assert_eq!((get("claim"), get("claim_kv_heads"), get("claim_kv_heads_gib")), ("48", "32", "48"));
    let text = fill(&l.steps[i].markdown, &v).unwrap();
    assert!(text.contains("154.6 GB or 144") && text.contains("32,768"), "{text}");
}

#[test]
fn lessons_are_found_by_number_slug_or_folder() {
    for key in ["3", "03", "kv-cache", "03-kv-cache", "KV-Cache"] {
        assert_eq!(find(key).unwrap().number, 3, "{key}");
    }
    let e = find("nine").unwrap_err().to_string();
    assert!(e.starts_with("no lesson \"nine\"; lessons: 1 sdpa, 2 heads") && !e.contains('\n'), "{e}");
}

const GOOD_TOML: &str = r#"format = 1
title = "A test lesson"
summary = "Checks the checks."
references = ["Vaswani, Shazeer, Parmar (2017), Attention Is All You Need, arXiv:1706.03762"]

[[steps]]
title = "Masks"
text = "a.md"
panel = "mask"
kind = "sliding"
size = 8
window = 3
layers = 2
"#;

const GOOD_MD: &str = "Each query sees {window} keys; through {layers} layers it reaches {receptive_field}, \
                       `L × (W − 1)`, as {ref1} did not say.\n";

/// Write a lesson folder `01-test` into a tempdir, load it and validate it: the problems found.
fn problems(toml: &str, files: &[(&str, &str)]) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("01-test");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("lesson.toml"), toml).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    check(&dir)
}

fn check(dir: &Path) -> Vec<String> {
    match load_dir(dir) {
        Ok(l) => validate(&l),
        Err(e) => vec![e.to_string()],
    }
}

/// The good lesson with `from` replaced by `to` in lesson.toml (must occur).
fn toml_with(from: &str, to: &str) -> String {
    assert!(GOOD_TOML.contains(from), "{from}");
    GOOD_TOML.replacen(from, to, 1)
}

fn assert_caught(problems: Vec<String>, want: &str) {
    assert!(problems.iter().any(|p| p.contains(want)), "wanted {want:?} in {problems:#?}");
    assert!(problems.iter().all(|p| !p.contains('\n')), "{problems:#?}");
}

#[test]
fn a_good_lesson_loads_from_a_folder() {
    assert_eq!(problems(GOOD_TOML, &[("a.md", GOOD_MD)]), Vec::<String>::new());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("01-test");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("lesson.toml"), GOOD_TOML).unwrap();
    std::fs::write(dir.join("a.md"), GOOD_MD).unwrap();
    let l = load_dir(&dir).unwrap();
    assert_eq!((l.number, l.slug.as_str(), l.steps.len()), (1, "test", 1));
    assert_eq!(l.steps[0].panel, Panel::Mask { kind: "sliding".into(), size: 8, window: Some(3), layers: 2 });
    let text = fill(&l.steps[0].markdown, &lesson::step_values(&l, 0).unwrap()).unwrap();
    assert!(text.starts_with("Each query sees 3 keys; through 2 layers it reaches 4,"), "{text}");
    assert!(text.contains("as Vaswani et al. (2017) did not say"), "{text}");
}

#[test]
fn unknown_panels_and_settings_are_caught() {
    let md = [("a.md", GOOD_MD)];
    assert_caught(problems(&toml_with("panel = \"mask\"", "panel = \"maks\""), &md), "unknown variant `maks`");
    assert_caught(problems(&toml_with("window = 3", "windw = 3"), &md), "unknown field `windw`");
    assert_caught(problems(&toml_with("size = 8", "size = \"eight\""), &md), "step 1");
    assert_caught(problems(&toml_with("format = 1", "format = 2"), &md), "format 2");
    assert_caught(problems(&toml_with("title = \"A test lesson\"", "titel = \"x\""), &md), "unknown field `titel`");
    assert_caught(problems(&toml_with("summary = \"Checks the checks.\"", "summary = \"open"), &md), "lesson.toml");
    let none = toml_with("panel = \"mask\"\nkind = \"sliding\"", "panel = \"none\"\nkind = \"sliding\"");
    assert_caught(problems(&none, &md), "unknown field `kind`");
}

#[test]
fn out_of_range_settings_are_caught() {
    let md = [("a.md", "Text.\n")];
    assert_caught(problems(&toml_with("window = 3", "window = 0"), &md), "window 0");
    assert_caught(problems(&toml_with("kind = \"sliding\"", "kind = \"diagonal\""), &md), "mask kind \"diagonal\"");
    let tiling = |rows: usize, layer: usize| {
        toml_with(
            "panel = \"mask\"\nkind = \"sliding\"\nsize = 8\nwindow = 3\nlayers = 2",
            &format!("panel = \"tiling\"\nmodel = \"tiny-gqa\"\nlayer = {layer}\nblock_rows = {rows}\nblock_cols = 4"),
        )
    };
    assert_eq!(problems(&tiling(4, 3), &md), Vec::<String>::new());
    assert_caught(problems(&tiling(0, 0), &md), "block sizes 0 × 4");
    assert_caught(problems(&tiling(4, 4), &md), "layer 4, head 0: the model has 4 layers");
    let calc = |model: &str, dtype: &str| {
        toml_with(
            "panel = \"mask\"\nkind = \"sliding\"\nsize = 8\nwindow = 3\nlayers = 2",
            &format!("panel = \"calculator\"\nmodel = \"{model}\"\ncontext = 100\ndtype = \"{dtype}\""),
        )
    };
    assert_eq!(problems(&calc("llama-2-70b", "bf16"), &md), Vec::<String>::new());
    assert_caught(problems(&calc("llama-2-70b", "int3"), &md), "dtype \"int3\"");
    assert_caught(problems(&calc("tiny-mamba", "f16"), &md), "no KV cache");
}

#[test]
fn unknown_models_are_caught() {
    let md = [("a.md", "Text.\n")];
    let panel = |p: &str| toml_with("panel = \"mask\"\nkind = \"sliding\"\nsize = 8\nwindow = 3\nlayers = 2", p);
    assert_caught(problems(&panel("panel = \"cache\"\nmodel = \"tiny-xl\""), &md), "no model \"tiny-xl\"");
    assert_caught(problems(&panel("panel = \"calculator\"\nmodel = \"llama-9\"\ncontext = 8"), &md), "llama-9");
    let compare = panel("panel = \"compare\"\nmodels = [\"tiny-gqa\", \"gpt-5\"]");
    assert_caught(problems(&compare, &md), "no model \"gpt-5\"");
    assert_caught(problems(&panel("panel = \"scan\"\nmodel = \"tiny-gqa\""), &md), "needs a Mamba model");
}

#[test]
fn broken_markdown_is_caught() {
    for (md, want) in [
        ("An `unclosed code span.\n", "unclosed code span"),
        ("Some **strong text.\n", "unclosed **"),
        ("Some *emphasis.\n", "unclosed *"),
        ("A [link without target.\n", "unclosed ["),
        ("A [link] alone.\n", "without its (target)"),
        ("A (bracket.\n", "unclosed ("),
        ("A bracket).\n", "closes no ("),
        ("A {brace.\n", "starts no {placeholder}"),
    ] {
        assert_caught(problems(GOOD_TOML, &[("a.md", md)]), want);
    }
}

#[test]
fn placeholders_must_be_known_and_filled() {
    let p = problems(GOOD_TOML, &[("a.md", "We hold {kv_bytes} bytes.\n")]);
    assert_caught(p, "unknown placeholder {kv_bytes}");
    // Live placeholders need a panel that runs a model.
    assert_caught(problems(GOOD_TOML, &[("a.md", "Now {positions}.\n")]), "live placeholder {positions}");
    let cache = toml_with(
        "panel = \"mask\"\nkind = \"sliding\"\nsize = 8\nwindow = 3\nlayers = 2",
        "panel = \"cache\"\nmodel = \"tiny-swa\"",
    );
    assert_eq!(problems(&cache, &[("a.md", "Now {positions}, held {held}.\n")]), Vec::<String>::new());
    assert_caught(problems(&cache, &[("a.md", "{ref2}\n")]), "unknown placeholder {ref2}");
}

#[test]
fn numbers_in_prose_are_caught() {
    for md in [
        "It takes 48 GB.\n",
        "A window of four, `4`.\n",
        "See [the paper](https://arxiv.org/abs/2205.14135).\n",
        "Quadratic: N².\n",
        "**GPT-3** is large.\n",
    ] {
        assert_caught(problems(GOOD_TOML, &[("a.md", md)]), "a number in");
    }
    assert_caught(problems(&toml_with("title = \"Masks\"", "title = \"Masks 2\""), &[("a.md", GOOD_MD)]), "step title");
    assert_caught(problems(&toml_with("Checks the checks.", "Checks 7 checks."), &[("a.md", GOOD_MD)]), "summary");
}

#[test]
fn missing_files_and_bad_references_are_caught() {
    assert_caught(problems(GOOD_TOML, &[]), "text a.md: file not found");
    assert_caught(problems(&toml_with("text = \"a.md\"", "text = \"../a.md\""), &[("a.md", GOOD_MD)]), "beside");
    let bad_ref = toml_with("Vaswani, Shazeer, Parmar (2017), ", "Vaswani and others, ");
    assert_caught(problems(&bad_ref, &[("a.md", "Text.\n")]), "reference");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("test");
    std::fs::create_dir(&dir).unwrap();
    assert_caught(check(&dir), "named NN-slug");
    let dir = tmp.path().join("02-empty");
    std::fs::create_dir(&dir).unwrap();
    assert_caught(check(&dir), "lesson.toml: missing");
}

/// `cargo test --test lessons -- --ignored --nocapture`: every step as the screen would fill it.
#[test]
#[ignore]
fn show_filled_lessons() {
    for l in lesson::all().unwrap() {
        println!("=== {:02}-{} {}: {}", l.number, l.slug, l.title, l.summary);
        for (i, s) in l.steps.iter().enumerate() {
            let text = fill(&s.markdown, &lesson::step_values(&l, i).unwrap()).unwrap();
            println!("--- {} ({:?})\n{text}", s.title, s.panel);
        }
    }
}
