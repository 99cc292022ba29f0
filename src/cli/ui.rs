//! `attnviz` (no command): the explorer; `attnviz view TRACE`.

use attnviz::sample::Sampling;
use attnviz::tui::app::GenSettings;
use attnviz::tui::launch::{self, Launch, DEFAULT_PROMPT};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct UiArgs {
    /// A zoo model (tiny-mha, tiny-gqa, tiny-mqa, tiny-swa, tiny-mamba; see `attnviz models`), a Hugging Face
    /// model folder, a Hub id (org/name[@revision]) or a .gguf file.
    #[arg(long, default_value = attnviz::model::zoo::DEFAULT, conflicts_with = "compare")]
    model: String,
    /// 2 to 4 models side by side on the same prompt, in lockstep (comma separated), e.g.
    /// tiny-mha,tiny-gqa,tiny-swa,tiny-mamba.
    #[arg(long, value_delimiter = ',')]
    compare: Option<Vec<String>>,
    /// The prompt to start with (editable in the UI).
    #[arg(long, default_value = DEFAULT_PROMPT)]
    prompt: String,
    /// Wrap the prompt in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, default_value_t = 48)]
    max_new_tokens: usize,
    /// Sample with this temperature (greedy otherwise; all of these are editable in the UI).
    #[arg(long)]
    temperature: Option<f32>,
    #[arg(long)]
    top_k: Option<usize>,
    #[arg(long)]
    top_p: Option<f32>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep generating past end-of-sequence tokens.
    #[arg(long)]
    ignore_eos: bool,
    /// Start paused after the prompt: step token by token with `s`, resume with Space.
    #[arg(long)]
    paused: bool,
}

#[derive(Args)]
pub struct ViewArgs {
    /// A trace file written by `attnviz capture`.
    pub trace: PathBuf,
}

pub fn run(a: UiArgs) -> anyhow::Result<()> {
    if let Some(p) = a.top_p.filter(|p| !(0.0..=1.0).contains(p) || *p == 0.0) {
        anyhow::bail!("--top-p {p}: must be in (0, 1]");
    }
    let sampling = match a.temperature {
        None if a.top_k.is_none() && a.top_p.is_none() => Sampling::Greedy,
        t => Sampling::Random { temperature: t.unwrap_or(1.0), top_k: a.top_k, top_p: a.top_p, seed: a.seed },
    };
    let sources = match a.compare {
        Some(list) => {
            let list: Vec<String> = list.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
            anyhow::ensure!((2..=4).contains(&list.len()), "--compare takes 2 to 4 models, got {}", list.len());
            list
        }
        None => vec![a.model],
    };
    launch::explore(Launch {
        sources,
        device: a.device,
        prompt: a.prompt,
        chat: a.chat,
        settings: GenSettings::from_sampling(&sampling, a.max_new_tokens.max(1), a.ignore_eos),
        paused: a.paused,
    })
}

pub fn view(a: ViewArgs) -> anyhow::Result<()> {
    launch::view(&a.trace)
}
