//! `attnviz train`: train a zoo model, with a progress line and Ctrl-C that
//! stops after the current step and keeps the last checkpoint.

use attnviz::train::{self, Arch, Options, Progress};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Args)]
pub struct TrainArgs {
    #[arg(long, value_enum)]
    arch: Arch,
    /// Plain UTF-8 text to train on.
    #[arg(long)]
    corpus: PathBuf,
    /// Folder to write (config.json, model.safetensors, tokenizer.json, training.json).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 128)]
    d_model: usize,
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// Attention window of --arch swa, in tokens.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Sequences per step.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Peak learning rate (AdamW, warm-up then cosine decay).
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Size of the BPE vocabulary trained on the corpus.
    #[arg(long, default_value_t = 2048)]
    vocab_size: usize,
    /// Reuse this tokenizer.json instead of training one.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Held-out evaluation every N steps.
    #[arg(long, default_value_t = 100)]
    eval_every: usize,
    /// Checkpoint every N steps (and at the end, and on Ctrl-C).
    #[arg(long, default_value_t = 100)]
    save_every: usize,
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // A second Ctrl-C while the last save runs is ignored; the save is short.
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))?;
    let opts = Options {
        arch: a.arch,
        corpus: a.corpus,
        out: a.out,
        steps: a.steps,
        seed: a.seed,
        d_model: a.d_model,
        layers: a.layers,
        window: a.window,
        batch: a.batch,
        seq_len: a.seq_len,
        lr: a.lr,
        vocab_size: a.vocab_size,
        tokenizer: a.tokenizer,
        eval_every: a.eval_every,
        save_every: a.save_every,
    };
    let mut bar = Bar::new();
    let s = train::train(&opts, &stop, |p| bar.show(p))?;
    bar.done();
    let verb = if s.interrupted { "stopped early" } else { "trained" };
    eprintln!(
        "{verb}: {} steps, {} tokens in {:.0}s; {} parameters; loss {:.3}, held-out {:.3} → {}",
        s.steps,
        s.tokens,
        s.seconds,
        s.parameters,
        s.train_loss,
        s.eval_loss,
        opts.out.display()
    );
    if s.interrupted {
        std::process::exit(130);
    }
    Ok(())
}

/// One redrawn line on a terminal; a plain line every ~10 s otherwise (logs, CI).
struct Bar {
    tty: bool,
    last: Option<Instant>,
    eval: Option<f32>,
}

impl Bar {
    fn new() -> Self {
        Self { tty: std::io::stderr().is_terminal(), last: None, eval: None }
    }

    fn show(&mut self, p: &Progress) {
        self.eval = p.eval_loss.or(self.eval);
        let due = self.last.is_none_or(|t| t.elapsed().as_secs_f64() > if self.tty { 0.2 } else { 10.0 });
        if !due && p.step < p.steps {
            return;
        }
        self.last = Some(Instant::now());
        let width = 24;
        let filled = width * p.step / p.steps.max(1);
        let eta = p.elapsed_s / p.step.max(1) as f64 * (p.steps - p.step) as f64;
        let line = format!(
            "[{}{}] step {}/{} loss {:.3} held-out {} {:.0} tok/s ETA {}",
            "#".repeat(filled),
            "-".repeat(width - filled),
            p.step,
            p.steps,
            p.loss,
            self.eval.map_or("-".into(), |e| format!("{e:.3}")),
            p.tokens_per_s,
            clock(eta)
        );
        let mut err = std::io::stderr();
        // Progress output is best-effort: a closed stderr must not stop training.
        let _ = if self.tty { write!(err, "\r\x1b[2K{line}") } else { writeln!(err, "{line}") };
        let _ = err.flush();
    }

    fn done(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

fn clock(s: f64) -> String {
    let s = s.max(0.0) as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
