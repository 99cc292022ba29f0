//! Command-line arguments and the subcommands behind them.

mod bench;
mod bench_ui;
mod capture;
mod generate;
mod heads;
mod lesson;
mod lessons;
mod memory;
mod models;
mod train;
mod ui;

use attnviz::sample::Sampling;
use clap::{Args as ClapArgs, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "attnviz",
    version,
    about = "Watch a language model's attention, KV cache and state while it generates",
    long_about = "Watch a language model's attention, KV cache and state while it generates.\n\n\
        With no command, attnviz opens the explorer: a terminal UI that loads the model, generates from the prompt \
        and shows every head's attention, the head grid, the KV cache (or Mamba's state) live. Press ? in it for \
        the keys."
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    ui: ui::UiArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Open a trace file written by `capture` in the explorer, without the model.
    View(ui::ViewArgs),
    /// Generate from a prompt and write every head's attention, the logits and KV-cache sizes to a safetensors trace.
    Capture(capture::CaptureArgs),
    /// Generate from a prompt and stream the text, with per-step timings and cache sizes.
    Generate(GenArgs),
    /// Measure prefill and decode speed with capture on and off.
    Bench(bench::BenchArgs),
    /// Score every attention head on standard patterns (previous-token, sink, locality, entropy, induction).
    Heads(heads::HeadsArgs),
    /// Train a small model of the zoo (MHA, GQA, MQA, sliding window or Mamba) on a text corpus.
    Train(train::TrainArgs),
    /// List the models built into attnviz and those in the local Hugging Face cache, and the architectures it loads.
    Models(models::ModelsArgs),
    /// The KV cache a model holds at N positions (and as MHA, MQA, without its window); a Mamba's fixed state.
    Memory(memory::MemoryArgs),
    /// Open a lesson (by number or name) in the terminal UI: text beside live panels; --present for classrooms.
    Lesson(lesson::LessonArgs),
    /// List the lessons: interactive explanations of attention, the KV cache, GQA, windows, tiling and Mamba.
    Lessons(lessons::LessonsArgs),
}

/// Options shared by every command that generates.
#[derive(ClapArgs, Clone)]
pub struct GenArgs {
    /// A zoo model (tiny-mha, tiny-gqa, tiny-mqa, tiny-swa, tiny-mamba; see `attnviz models`), a Hugging Face
    /// model folder, a Hub id (org/name[@revision]) or a .gguf file.
    #[arg(long, default_value = attnviz::model::zoo::DEFAULT)]
    pub model: String,
    /// The prompt text.
    #[arg(long)]
    pub prompt: String,
    #[arg(long, default_value_t = 32)]
    pub max_new_tokens: usize,
    /// Always take the most likely token (the default unless --temperature is given).
    #[arg(long, conflicts_with_all = ["temperature", "top_k", "top_p"])]
    pub greedy: bool,
    /// Sample with this temperature.
    #[arg(long)]
    pub temperature: Option<f32>,
    #[arg(long)]
    pub top_k: Option<usize>,
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Seed for sampling; the same seed repeats a run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep generating past end-of-sequence tokens.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Wrap the prompt in the model's chat template.
    #[arg(long, conflicts_with = "raw")]
    pub chat: bool,
    /// Add no special tokens (no BOS).
    #[arg(long)]
    pub raw: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl GenArgs {
    pub fn sampling(&self) -> anyhow::Result<Sampling> {
        if let Some(p) = self.top_p.filter(|p| !(0.0..=1.0).contains(p) || *p == 0.0) {
            anyhow::bail!("--top-p {p}: must be in (0, 1]");
        }
        Ok(match self.temperature {
            None if self.top_k.is_none() && self.top_p.is_none() => Sampling::Greedy,
            t => Sampling::Random {
                temperature: t.unwrap_or(1.0),
                top_k: self.top_k,
                top_p: self.top_p,
                seed: self.seed,
            },
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let Some(command) = args.command else { return ui::run(args.ui) };
    match command {
        Command::View(a) => ui::view(a),
        Command::Capture(a) => capture::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Heads(a) => heads::run(a),
        Command::Train(a) => train::run(a),
        Command::Models(a) => models::run(a),
        Command::Memory(a) => memory::run(a),
        Command::Lesson(a) => lesson::run(a),
        Command::Lessons(a) => lessons::run(a),
    }
}
