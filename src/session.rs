//! A generation run on a worker thread: prefill the prompt in one pass, then
//! decode token by token, streaming one `Event::Step` per forward pass over a
//! channel. The consumer (the `capture` command, later the TUI) owns what it
//! keeps — usually a `Trace` — so the worker never shares memory with it.

use crate::model::tokenizer::{TextStream, Tokenizer};
use crate::model::{Capture, Model};
use crate::sample::{Sampler, Sampling};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Options {
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Keep going past end-of-sequence tokens.
    pub ignore_eos: bool,
    /// Record queries, keys and logits at every step.
    pub capture: bool,
}

/// One forward pass and the token it chose.
#[derive(Debug, Clone)]
pub struct Step {
    /// Which generated token this is (0 = chosen by the prefill).
    pub index: usize,
    /// Absolute positions fed in this forward pass.
    pub fed: Range<usize>,
    pub token: u32,
    /// New text this token completes (may be empty mid-character).
    pub text: String,
    pub forward_ms: f64,
    /// Positions each layer's KV cache holds afterwards.
    pub kv_len: Vec<usize>,
    pub kv_bytes: usize,
    /// The logits that chose `token`, when capturing.
    pub logits: Option<Vec<f32>>,
    /// Per-layer queries and keys (or states) of the fed positions, when capturing.
    pub capture: Capture,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Eos,
    MaxTokens,
    /// The model's context (max_position_embeddings) is full.
    ContextFull,
    Cancelled,
}

#[derive(Debug)]
pub enum Event {
    Step(Box<Step>),
    Done(StopReason),
    Failed(String),
}

pub struct Session {
    events: Receiver<Event>,
    control: Arc<Control>,
    worker: Option<JoinHandle<Model>>,
}

/// How the consumer steers a run between forward passes: cancel it, or
/// hold it (pause, single-step, several models in lockstep) by saying how
/// many forward passes it may have run.
#[derive(Debug, Default)]
pub struct Control {
    cancelled: AtomicBool,
    /// None: no limit; Some(n): forward pass n (0 = prefill) waits until allowed.
    allowed: Mutex<Option<usize>>,
    changed: Condvar,
}

impl Control {
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
        self.set(None);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Let the run go on without stopping.
    pub fn run_freely(&self) {
        self.set(None);
    }

    /// Let the run do forward passes 0..n and then wait.
    pub fn allow(&self, n: usize) {
        self.set(Some(n));
    }

    fn set(&self, allowed: Option<usize>) {
        if let Ok(mut a) = self.allowed.lock() {
            *a = allowed;
        }
        self.changed.notify_all();
    }

    /// Block until forward pass `index` may run; false when cancelled.
    fn wait_for(&self, index: usize) -> bool {
        let Ok(mut a) = self.allowed.lock() else { return false };
        while !self.is_cancelled() && a.is_some_and(|n| index >= n) {
            match self.changed.wait(a) {
                Ok(g) => a = g,
                Err(_) => return false,
            }
        }
        !self.is_cancelled()
    }
}

impl Session {
    /// Start generating from `prompt` (already tokenized). The model is
    /// reset first and handed back by `finish`.
    pub fn start(model: Model, tokenizer: Arc<Tokenizer>, prompt: Vec<u32>, opts: Options) -> Self {
        Self::start_with(model, tokenizer, prompt, opts, Arc::new(Control::default()))
    }

    /// Start under a `Control` made beforehand (e.g. already holding the run before its prefill).
    pub fn start_with(
        mut model: Model,
        tokenizer: Arc<Tokenizer>,
        prompt: Vec<u32>,
        opts: Options,
        control: Arc<Control>,
    ) -> Self {
        let (tx, events) = channel();
        let ctl = control.clone();
        let worker = std::thread::spawn(move || {
            model.reset();
            let end = match run(&mut model, &tokenizer, &prompt, &opts, &ctl, |s| {
                tx.send(Event::Step(Box::new(s))).is_ok()
            }) {
                Ok(reason) => Event::Done(reason),
                Err(e) => Event::Failed(e.to_string()),
            };
            let _ = tx.send(end);
            model
        });
        Self { events, control, worker: Some(worker) }
    }

    /// The handle that pauses, steps and cancels this run from any thread.
    pub fn control(&self) -> Arc<Control> {
        self.control.clone()
    }

    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Ask the worker to stop after the current forward pass.
    pub fn cancel(&self) {
        self.control.cancel();
    }

    /// Wait for the worker and take the model back (None if it panicked).
    pub fn finish(mut self) -> Option<Model> {
        self.worker.take().and_then(|w| w.join().ok())
    }

    /// Handle every step until the run ends; give back why it stopped and the model.
    pub fn follow(self, mut on_step: impl FnMut(Step)) -> crate::Result<(StopReason, Option<Model>)> {
        let mut reason = None;
        for event in self.events.iter() {
            match event {
                Event::Step(s) => on_step(*s),
                Event::Done(r) => {
                    reason = Some(r);
                    break;
                }
                Event::Failed(msg) => {
                    self.finish();
                    return Err(crate::Error::Usage(msg));
                }
            }
        }
        let model = self.finish();
        match reason {
            Some(r) => Ok((r, model)),
            None => Err(crate::Error::Usage("the generation worker stopped unexpectedly".into())),
        }
    }
}

/// The generation loop itself; `emit` returns false when nobody listens.
pub fn run(
    model: &mut Model,
    tokenizer: &Tokenizer,
    prompt: &[u32],
    opts: &Options,
    control: &Control,
    mut emit: impl FnMut(Step) -> bool,
) -> crate::Result<StopReason> {
    let eos: Vec<u32> = model.eos_token_ids().to_vec();
    let mut sampler = Sampler::new(opts.sampling.clone());
    let mut text = TextStream::new();
    let mut feed: Vec<u32> = prompt.to_vec();
    for index in 0..opts.max_new_tokens {
        if !control.wait_for(index) {
            return Ok(StopReason::Cancelled);
        }
        let start = model.position();
        if start + feed.len() > model.max_positions() {
            return Ok(StopReason::ContextFull);
        }
        let t0 = Instant::now();
        let out = model.forward(&feed, opts.capture)?;
        let forward_ms = t0.elapsed().as_secs_f64() * 1e3;
        let token = sampler.sample(&out.logits);
        let step = Step {
            index,
            fed: start..model.position(),
            token,
            text: text.push(tokenizer, token)?,
            forward_ms,
            kv_len: model.cache_lens(),
            kv_bytes: model.cache_bytes(),
            logits: opts.capture.then_some(out.logits),
            capture: out.capture,
        };
        if !emit(step) {
            return Ok(StopReason::Cancelled);
        }
        if !opts.ignore_eos && eos.contains(&token) {
            return Ok(StopReason::Eos);
        }
        feed = vec![token];
    }
    Ok(StopReason::MaxTokens)
}

/// Turn the user's prompt text into ids: checked, optionally wrapped in the
/// model's chat template, with special tokens as transformers adds them.
pub fn prompt_ids(
    tokenizer: &Tokenizer,
    text: &str,
    chat: bool,
    raw: bool,
    max_positions: usize,
) -> crate::Result<Vec<u32>> {
    use crate::Error;
    if text.trim().is_empty() {
        return Err(Error::Prompt("the prompt is empty".into()));
    }
    let ids = if chat {
        // transformers' apply_chat_template(tokenize=True) adds no special tokens
        // beyond those the template writes.
        tokenizer.encode(&tokenizer.apply_chat(text)?, false)?
    } else {
        tokenizer.encode(text, !raw)?
    };
    if ids.is_empty() {
        return Err(Error::Prompt("the prompt has no tokens".into()));
    }
    if ids.len() > max_positions {
        return Err(Error::Prompt(format!(
            "{} tokens exceed the model's context of {} (max_position_embeddings)",
            ids.len(),
            max_positions
        )));
    }
    Ok(ids)
}
