//! The typed form of a lesson, as the loader produces it from
//! `lesson.toml` and the step Markdown files, and as the lesson screen and
//! the validation test consume it.

use serde::Deserialize;

/// Version of the `lesson.toml` format this build reads.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq)]
pub struct Lesson {
    /// From the folder name `NN-slug`.
    pub number: u32,
    pub slug: String,
    pub title: String,
    /// One line, for `attnviz lessons`.
    pub summary: String,
    /// Papers and code cited, one line each ("Authors (year), Title, arXiv:…").
    pub references: Vec<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub title: String,
    /// The step's Markdown, with `{placeholders}` still in it.
    pub markdown: String,
    pub panel: Panel,
}

/// The live panel a step shows, with its settings. In `lesson.toml`:
/// `panel = "mask"` and the settings beside it (`kind = "sliding"`, `window = 4`, …).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "panel", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Panel {
    /// Text only.
    None,
    /// Scaled dot-product attention of one head and one query on a live model:
    /// scores, the 1/√d scale, the causal mask, softmax, the weighted sum of values.
    Sdpa {
        model: String,
        #[serde(default)]
        layer: usize,
        #[serde(default)]
        head: usize,
        /// Show the softmax without the 1/√d scale (saturation).
        #[serde(default)]
        unscaled: bool,
    },
    /// The attention map of one head, live.
    Attention {
        model: String,
        #[serde(default)]
        layer: usize,
        #[serde(default)]
        head: usize,
    },
    /// Every head as a thumbnail, tinted by a pattern score.
    Heads {
        model: String,
        /// previous-token, sink, locality, entropy or induction.
        #[serde(default)]
        pattern: Option<String>,
        /// Prompt for this step (e.g. a repeated phrase for induction).
        #[serde(default)]
        prompt: Option<String>,
        /// Run SmolLM2-135M instead of `model` when `scripts/fetch-smollm2.sh` has put it in the cache:
        /// a trained model with real induction heads.
        #[serde(default)]
        prefer_cached: bool,
    },
    /// A mask drawn as a matrix, and how far tokens reach through stacked layers.
    Mask {
        /// causal, sliding or full.
        kind: String,
        size: usize,
        #[serde(default)]
        window: Option<usize>,
        #[serde(default = "one")]
        layers: usize,
    },
    /// The KV cache growing as a live model generates (memory view).
    Cache { model: String },
    /// The KV-cache calculator on a preset or a loaded model's config.
    Calculator {
        /// A preset name (`attnviz memory --help` lists them) or a model.
        model: String,
        context: usize,
        #[serde(default = "one")]
        batch: usize,
        #[serde(default = "f16")]
        dtype: String,
        /// A published figure to check against the computed one, in GB (lesson 3's article claim).
        #[serde(default)]
        claim_gb: Option<f64>,
    },
    /// The same prompt through several models side by side.
    Compare {
        models: Vec<String>,
        /// What each pane shows: attention, heads or memory.
        #[serde(default = "attention")]
        view: String,
        /// Prompt for this step (e.g. one longer than a window).
        #[serde(default)]
        prompt: Option<String>,
    },
    /// FlashAttention's tiles over one head's real attention, stepped.
    Tiling {
        model: String,
        #[serde(default)]
        layer: usize,
        #[serde(default)]
        head: usize,
        block_rows: usize,
        block_cols: usize,
    },
    /// Mamba's selective scan, token by token.
    Scan {
        model: String,
        #[serde(default)]
        layer: usize,
    },
}

fn one() -> usize {
    1
}

fn f16() -> String {
    "f16".into()
}

fn attention() -> String {
    "attention".into()
}

impl Panel {
    /// The models this panel runs (checked against the zoo by validation).
    pub fn models(&self) -> Vec<&str> {
        match self {
            Panel::None | Panel::Mask { .. } | Panel::Calculator { .. } => vec![],
            Panel::Sdpa { model, .. }
            | Panel::Attention { model, .. }
            | Panel::Heads { model, .. }
            | Panel::Cache { model }
            | Panel::Tiling { model, .. }
            | Panel::Scan { model, .. } => vec![model.as_str()],
            Panel::Compare { models, .. } => models.iter().map(String::as_str).collect(),
        }
    }
}

/// The SmolLM2 GGUF that `scripts/fetch-smollm2.sh` fetches, if it is there
/// (`$ATTNVIZ_CACHE`, else `~/.cache/attnviz`).
pub fn cached_smollm2() -> Option<String> {
    let dir = match std::env::var_os("ATTNVIZ_CACHE") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".cache/attnviz"),
    };
    let path = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    path.is_file().then(|| path.to_string_lossy().into_owned())
}

/// The model a heads panel runs: SmolLM2 when preferred and cached, else its own.
pub fn heads_model(model: &str, prefer_cached: bool) -> String {
    prefer_cached.then(cached_smollm2).flatten().unwrap_or_else(|| model.to_string())
}
