//! `attnviz models`: the zoo built into this binary and the models in the
//! local Hugging Face cache, with the sizes that matter for attention, then
//! the architectures it loads from config.json and from GGUF.

use attnviz::model::catalog::{self, Entry};
use attnviz::model::config::SUPPORTED;
use attnviz::model::gguf;
use attnviz::model::source;
use clap::Args;

#[derive(Args)]
pub struct ModelsArgs {
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(a: ModelsArgs) -> anyhow::Result<()> {
    let mut all = catalog::zoo_entries()?;
    all.extend(catalog::cache_entries());
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    let header =
        ["MODEL", "FROM", "ARCH", "MIXING", "PARAMS", "LAYERS", "HEADS/KV", "WINDOW", "KV B/TOKEN", "HELD-OUT LOSS"];
    let rows: Vec<[String; 10]> = all.iter().map(row).collect();
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(&width).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header.map(String::from));
    rows.iter().for_each(|r| line(r));
    if !all.iter().any(|e| e.origin == "hf-cache") {
        println!("(no models in the Hugging Face cache at {})", source::cache_root().display());
    }
    println!("\nloads config.json model_type: {}", SUPPORTED.join(", "));
    println!("loads GGUF general.architecture: {}", gguf::ARCHS.join(", "));
    Ok(())
}

fn row(e: &Entry) -> [String; 10] {
    let dash = || "-".to_string();
    let kv = match e.state_bytes {
        Some(s) => format!("0 (state {} KB)", s / 1024),
        None => e.kv_bytes_per_token.to_string(),
    };
    let loss = e.training.as_ref().and_then(|t| t.get("eval_loss")?.as_f64());
    [
        e.name.clone(),
        e.origin.into(),
        e.arch.clone(),
        e.mixing.clone(),
        e.parameters.map_or_else(dash, |p| format!("{:.2}M", p as f64 / 1e6)),
        e.layers.to_string(),
        e.heads.map_or_else(dash, |(h, kv)| format!("{h}/{kv}")),
        e.window.map_or_else(dash, |w| w.to_string()),
        kv,
        loss.map_or_else(dash, |l| format!("{l:.3}")),
    ]
}
