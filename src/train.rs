//! `attnviz train`: small causal LMs trained on CPU with candle's autograd
//! and AdamW, saved as ordinary Hugging Face folders (config.json,
//! model.safetensors, tokenizer.json) that the engine, and transformers,
//! load like any other. The zoo's members differ only in their mixing
//! layer: MHA, GQA, MQA, GQA with a sliding window, or Mamba.

mod bpe;
mod data;
mod llama;
mod mamba;
mod params;
mod scan_op;

use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use data::{Batches, Corpus};
use params::Params;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// Multi-head attention: every query head has its own keys and values.
    Mha,
    /// Grouped-query attention: 2 query heads share each key/value head.
    Gqa,
    /// Multi-query attention: all query heads share one key/value head.
    Mqa,
    /// GQA with a sliding window (Mistral-style).
    Swa,
    /// Mamba (selective state space), no attention at all.
    Mamba,
}

/// Sizes of one model. The defaults put every arch within ~10% of the same parameter count.
#[derive(Clone, Debug)]
pub struct Shape {
    pub arch: Arch,
    pub vocab: usize,
    pub d_model: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub intermediate: usize,
    pub window: Option<usize>,
    pub d_state: usize,
    pub d_conv: usize,
    pub expand: usize,
    pub max_positions: usize,
}

impl Shape {
    pub fn new(arch: Arch, vocab: usize, d_model: usize, layers: usize, window: usize) -> Self {
        let heads = (d_model / 32).max(1);
        let kv_heads = match arch {
            Arch::Mha | Arch::Mamba => heads,
            Arch::Gqa | Arch::Swa => (heads / 2).max(1),
            Arch::Mqa => 1,
        };
        Self {
            arch,
            vocab,
            d_model,
            layers,
            heads,
            kv_heads,
            intermediate: d_model * 7 / 2,
            window: (arch == Arch::Swa).then_some(window),
            d_state: 16,
            d_conv: 4,
            expand: 4,
            max_positions: 2048,
        }
    }

    fn d_inner(&self) -> usize {
        self.expand * self.d_model
    }

    fn dt_rank(&self) -> usize {
        self.d_model.div_ceil(16)
    }

    /// config.json in transformers' own terms (llama, mistral or mamba).
    pub fn config_json(&self) -> Value {
        let common = json!({
            "vocab_size": self.vocab, "hidden_size": self.d_model, "num_hidden_layers": self.layers,
            "tie_word_embeddings": true, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0,
            "torch_dtype": "float32",
        });
        let mut cfg = match self.arch {
            Arch::Mamba => json!({
                "architectures": ["MambaForCausalLM"], "model_type": "mamba", "state_size": self.d_state,
                "conv_kernel": self.d_conv, "expand": self.expand, "intermediate_size": self.d_inner(),
                "time_step_rank": self.dt_rank(), "layer_norm_epsilon": llama::RMS_EPS, "use_bias": false,
                "use_conv_bias": true, "residual_in_fp32": true, "hidden_act": "silu",
            }),
            _ => json!({
                "architectures": [if self.window.is_some() { "MistralForCausalLM" } else { "LlamaForCausalLM" }],
                "model_type": if self.window.is_some() { "mistral" } else { "llama" },
                "num_attention_heads": self.heads, "num_key_value_heads": self.kv_heads,
                "head_dim": self.d_model / self.heads, "intermediate_size": self.intermediate,
                "max_position_embeddings": self.max_positions, "rms_norm_eps": llama::RMS_EPS,
                "rope_theta": llama::ROPE_THETA, "hidden_act": "silu", "attention_bias": false,
                "sliding_window": self.window,
            }),
        };
        if let (Some(c), Some(m)) = (cfg.as_object_mut(), common.as_object()) {
            c.extend(m.clone());
        }
        cfg
    }
}

enum Net {
    Llama(llama::Llama),
    Mamba(mamba::Mamba),
}

impl Net {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Net::Llama(m) => m.forward(ids),
            Net::Mamba(m) => m.forward(ids),
        }
    }

    /// Mean next-token cross-entropy over (b, t) windows.
    fn loss(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let logits = self.forward(x)?;
        let v = logits.dim(2)?;
        Ok(candle_nn::loss::cross_entropy(&logits.reshape(((), v))?, &y.flatten_all()?)?)
    }
}

pub struct Options {
    pub arch: Arch,
    pub corpus: PathBuf,
    pub out: PathBuf,
    pub steps: usize,
    pub seed: u64,
    pub d_model: usize,
    pub layers: usize,
    pub window: usize,
    pub batch: usize,
    pub seq_len: usize,
    pub lr: f64,
    pub vocab_size: usize,
    /// Reuse this tokenizer.json instead of training one (the zoo shares one).
    pub tokenizer: Option<PathBuf>,
    pub eval_every: usize,
    pub save_every: usize,
}

/// What the progress display shows after each step.
pub struct Progress {
    pub step: usize,
    pub steps: usize,
    pub loss: f32,
    pub eval_loss: Option<f32>,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
}

/// Written to `training.json` beside the weights.
#[derive(serde::Serialize, Clone, Debug)]
pub struct Summary {
    pub arch: String,
    pub parameters: usize,
    pub steps: usize,
    pub tokens: usize,
    pub seconds: f64,
    pub train_loss: f32,
    pub eval_loss: f32,
    pub corpus_tokens: usize,
    pub seed: u64,
    pub interrupted: bool,
    pub command: String,
}

/// Held-out windows per evaluation.
const EVAL_WINDOWS: usize = 16;

/// Train until `opts.steps` or until `stop` is set; the folder is usable after every save.
pub fn train(opts: &Options, stop: &AtomicBool, mut on_progress: impl FnMut(&Progress)) -> Result<Summary> {
    let dev = Device::Cpu;
    let text = std::fs::read_to_string(&opts.corpus)
        .map_err(|e| Error::bad_file(&opts.corpus, format!("cannot read the corpus ({e})")))?;
    if text.trim().is_empty() {
        return Err(Error::bad_file(&opts.corpus, "the corpus is empty"));
    }
    if opts.steps == 0 || opts.batch == 0 || opts.seq_len < 2 || opts.d_model < 32 || opts.layers == 0 {
        return Err(Error::Usage("need --steps ≥ 1, --batch ≥ 1, --seq-len ≥ 2, --d-model ≥ 32, --layers ≥ 1".into()));
    }
    let tok = match &opts.tokenizer {
        Some(p) => bpe::load(p)?,
        None => bpe::train(&text, opts.vocab_size)?,
    };
    let corpus = Corpus::split(bpe::encode(&tok, &text)?, opts.seq_len)?;
    let shape = Shape::new(opts.arch, tok.get_vocab_size(true), opts.d_model, opts.layers, opts.window);
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::bad_file(&opts.out, format!("cannot create ({e})")))?;
    write_folder(&opts.out, &shape, &tok)?;

    let mut params = Params::new(opts.seed, &dev);
    let net = match opts.arch {
        Arch::Mamba => Net::Mamba(mamba::Mamba::init(&mut params, &shape)?),
        _ => Net::Llama(llama::Llama::init(&mut params, &shape)?),
    };
    let adam = ParamsAdamW { lr: opts.lr, weight_decay: 0.1, ..Default::default() };
    let mut opt = AdamW::new(params.vars(), adam)?;
    let mut batches = Batches::new(opts.seed, opts.batch, opts.seq_len);
    let (ex, ey) = data::spread(&corpus.held_out, EVAL_WINDOWS, opts.seq_len, &dev)?;
    let weights = opts.out.join("model.safetensors");

    let start = Instant::now();
    let (mut step, mut loss, mut eval_loss) = (0, f32::NAN, f32::NAN);
    while step < opts.steps && !stop.load(Ordering::Relaxed) {
        opt.set_learning_rate(lr_at(step, opts.steps, opts.lr));
        let (x, y) = batches.next(&corpus.train, &dev)?;
        let l = net.loss(&x, &y)?;
        let mut grads = l.backward()?;
        clip(&mut grads, &params.vars(), 1.0)?;
        opt.step(&grads)?;
        loss = l.to_scalar::<f32>()?;
        if !loss.is_finite() {
            return Err(Error::Usage(format!("training diverged at step {step} (loss {loss}); try a lower --lr")));
        }
        step += 1;
        let last = step == opts.steps || stop.load(Ordering::Relaxed);
        let evaluated = step % opts.eval_every.max(1) == 0 || last;
        if evaluated {
            eval_loss = net.loss(&ex, &ey)?.to_scalar::<f32>()?;
        }
        if step % opts.save_every.max(1) == 0 || last {
            params.save(&weights)?;
        }
        let elapsed_s = start.elapsed().as_secs_f64();
        on_progress(&Progress {
            step,
            steps: opts.steps,
            loss,
            eval_loss: evaluated.then_some(eval_loss),
            tokens_per_s: (step * opts.batch * opts.seq_len) as f64 / elapsed_s,
            elapsed_s,
        });
    }
    if step == 0 {
        return Err(Error::Usage("interrupted before the first step; nothing was saved".into()));
    }
    let summary = Summary {
        arch: format!("{:?}", opts.arch).to_lowercase(),
        parameters: params.count(),
        steps: step,
        tokens: step * opts.batch * opts.seq_len,
        seconds: start.elapsed().as_secs_f64(),
        train_loss: loss,
        eval_loss,
        corpus_tokens: corpus.train.len() + corpus.held_out.len(),
        seed: opts.seed,
        interrupted: step < opts.steps,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let path = opts.out.join("training.json");
    let text = serde_json::to_string_pretty(&summary).map_err(|e| Error::Usage(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| Error::bad_file(&path, format!("cannot write ({e})")))?;
    Ok(summary)
}

/// Linear warm-up over the first 5% of steps, then cosine decay to 10%.
fn lr_at(step: usize, steps: usize, peak: f64) -> f64 {
    let warm = (steps / 20).max(1);
    if step < warm {
        return peak * (step + 1) as f64 / warm as f64;
    }
    let p = (step - warm) as f64 / (steps - warm).max(1) as f64;
    peak * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
}

/// Scale all gradients down together so their global L2 norm is at most `max`.
fn clip(grads: &mut candle_core::backprop::GradStore, vars: &[candle_core::Var], max: f64) -> Result<()> {
    let mut sq = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = sq.sqrt();
    if norm > max {
        for v in vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                let scaled = (g * (max / norm))?;
                grads.insert(v.as_tensor(), scaled);
            }
        }
    }
    Ok(())
}

/// Everything but the weights: config, tokenizer, generation defaults. The
/// config goes through the engine's own parser first, so a folder the engine
/// would refuse is never written.
fn write_folder(out: &Path, shape: &Shape, tok: &tokenizers::Tokenizer) -> Result<()> {
    let cfg = shape.config_json();
    match shape.arch {
        Arch::Mamba => drop(crate::model::mamba::MambaConfig::from_json(&cfg)?),
        _ => drop(crate::model::config::Config::from_json(&cfg)?),
    }
    let write = |name: &str, v: &Value| -> Result<()> {
        let path = out.join(name);
        let text = serde_json::to_string_pretty(v).map_err(|e| Error::Usage(e.to_string()))?;
        std::fs::write(&path, text + "\n").map_err(|e| Error::bad_file(&path, format!("cannot write ({e})")))
    };
    write("config.json", &cfg)?;
    write("generation_config.json", &json!({"bos_token_id": 0, "eos_token_id": 0}))?;
    write(
        "tokenizer_config.json",
        &json!({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bpe::END_OF_TEXT,
                "eos_token": bpe::END_OF_TEXT, "unk_token": null, "model_max_length": shape.max_positions}),
    )?;
    bpe::save(tok, &out.join("tokenizer.json"))
}

#[cfg(test)]
mod tests;
