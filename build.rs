//! Embeds the model zoo (`assets/models/<name>/`) and the lessons
//! (`lessons/NN-slug/`) into the binary, so an installed attnviz opens
//! `--model tiny-gqa` and every lesson from any folder, offline.

use std::fmt::Write;
use std::path::Path;

/// Listing order: the attention variants from most to least KV, then Mamba.
const ORDER: [&str; 5] = ["tiny-mha", "tiny-gqa", "tiny-mqa", "tiny-swa", "tiny-mamba"];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("model.safetensors").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort_by_key(|n| (ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()), n.clone()));
    let mut out = String::from("pub static EMBEDDED: &[Embedded] = &[\n");
    for name in &names {
        let dir = root.join(name);
        let file = |f: &str, bytes: bool| {
            let p = dir.join(f);
            println!("cargo:rerun-if-changed={}", p.display());
            let mac = if bytes { "include_bytes" } else { "include_str" };
            if p.is_file() {
                format!("Some({mac}!({:?}))", p.display().to_string())
            } else {
                "None".into()
            }
        };
        let _ = writeln!(
            out,
            "    Embedded {{ name: {name:?}, config: {}, weights: {}, tokenizer: {}, tokenizer_config: {}, \
             generation_config: {}, training: {} }},",
            file("config.json", false),
            file("model.safetensors", true),
            file("tokenizer.json", false),
            file("tokenizer_config.json", false),
            file("generation_config.json", false),
            file("training.json", false),
        );
    }
    out.push_str("];\n");
    write("zoo.rs", &out);
    write("lessons.rs", &lessons());
}

fn write(name: &str, text: &str) {
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join(name);
    if let Err(e) = std::fs::write(&dest, text) {
        println!("cargo:warning=cannot write {}: {e}", dest.display());
    }
}

/// `(path under lessons/, text)` for every `lessons/NN-slug/*.{toml,md}`, sorted.
fn lessons() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = vec![];
    for dir in std::fs::read_dir(&root).into_iter().flatten().flatten().filter(|e| e.path().is_dir()) {
        println!("cargo:rerun-if-changed={}", dir.path().display());
        for f in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
            let p = f.path();
            if p.is_file() && p.extension().is_some_and(|x| x == "toml" || x == "md") {
                println!("cargo:rerun-if-changed={}", p.display());
                let rel = format!("{}/{}", dir.file_name().to_string_lossy(), f.file_name().to_string_lossy());
                files.push((rel, p.display().to_string()));
            }
        }
    }
    files.sort();
    let mut out = String::from("pub static FILES: &[(&str, &str)] = &[\n");
    for (rel, abs) in files {
        let _ = writeln!(out, "    ({rel:?}, include_str!({abs:?})),");
    }
    out.push_str("];\n");
    out
}
