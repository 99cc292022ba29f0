//! A pane's worker thread. It loads the model (or opens a trace file), runs
//! generation through `session::Session`, owns the `Trace` the steps fill,
//! and computes what the views asked for — so the UI thread only ever
//! receives small owned results. Heavy work goes in small units (one map,
//! one layer of thumbnails) with the inbox drained between them, and is
//! throttled while the model generates so decoding keeps its speed.

use super::data::{HeadGrid, ModelInfo, StepInfo, Token};
use super::products::MapWant;
use super::source::Source;
use crate::model::tokenizer::Tokenizer;
use crate::model::{self, Model};
use crate::sample::Sampling;
use crate::session::{self, Control, Event, Options, Session, StopReason};
use crate::trace::Trace;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenRequest {
    pub prompt: String,
    pub chat: bool,
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    pub ignore_eos: bool,
    /// Forward passes allowed at the start (None: free; Some(1): prefill, then wait).
    pub allow: Option<usize>,
}

/// What the views want computed; the latest one wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wants {
    pub map: Option<MapWant>,
    /// (layer, head or mean, query) for shading tokens.
    pub row: Option<(usize, Option<usize>, usize)>,
    pub grid: bool,
    /// (layer, held step or None for the newest, pixel rows).
    pub state: Option<(usize, Option<usize>, usize)>,
    /// (layer, head): that head's queries and keys (lessons).
    pub qk: Option<(usize, usize)>,
    /// (layer, channel): Mamba's scan replayed from the weights (lessons).
    pub scan: Option<(usize, usize)>,
}

#[derive(Debug)]
pub enum Job {
    Generate(GenRequest),
    /// Let the run do forward passes 0..n (None: run freely).
    Allow(Option<usize>),
    Cancel,
    Want(Wants),
}

/// What a worker tells the app.
#[derive(Debug)]
pub enum Report {
    Loaded(ModelInfo),
    Failed(String),
    /// A new run: the prompt's tokens (the pane starts over).
    Started(Vec<Token>),
    Step(StepInfo, Token),
    Done(StopReason),
    Map(super::data::MapView, Option<f32>),
    Row(super::data::QueryRow),
    Grid(HeadGrid),
    State(Option<super::data::StateView>),
    Qk(super::data::HeadQk),
    Scan(Result<super::data::ScanView, String>),
}

#[derive(Debug)]
pub struct Message {
    pub pane: usize,
    pub report: Report,
}

mod compute;
mod scan;

use compute::Computer;

enum Inbox {
    Job(Job),
    Session(u64, Event),
    Back(Option<Model>),
}

/// Start a worker that loads `source` on `device` and then waits for jobs.
pub fn spawn_live(pane: usize, source: String, device: String, out: Sender<Message>) -> Sender<Job> {
    let (jobs, inbox_rx) = channel::<Job>();
    let (tx, rx) = channel::<Inbox>();
    forward(inbox_rx, tx.clone(), Inbox::Job);
    std::thread::spawn(move || {
        let send = |report| out.send(Message { pane, report }).is_ok();
        let loaded = model::device(&device).and_then(|d| model::load(&source, &d));
        match loaded {
            Ok(l) => {
                let info = model_info(&l.model, &l.source, &device);
                if send(Report::Loaded(info)) {
                    // Runs are started from a thread of normal priority (threads inherit it),
                    // then this one steps down for the views' computations.
                    let starter = spawn_starter();
                    lower_priority();
                    let mut w = Live::new(pane, l.model, Arc::new(l.tokenizer), tx, out.clone(), starter);
                    w.computer.scan.source = Some(source);
                    w.run(rx);
                }
            }
            Err(e) => {
                send(Report::Failed(one_line(&e.to_string())));
            }
        }
    });
    jobs
}

/// Start a worker that answers from an already-filled source (a trace file).
pub fn spawn_fixed(pane: usize, src: Box<dyn Source>, out: Sender<Message>) -> Sender<Job> {
    let (jobs, rx) = channel::<Job>();
    std::thread::spawn(move || {
        let mut c = Computer::default();
        loop {
            let busy = c.busy(src.positions(), false);
            let job = if busy { rx.try_recv().ok() } else { rx.recv().ok() };
            match job {
                Some(Job::Want(w)) => c.want(w),
                Some(_) => {}
                None if !busy => return,
                None => {}
            }
            if !c.work(pane, src.as_ref(), false, &out) {
                return;
            }
        }
    });
    jobs
}

type Launch = Box<dyn FnOnce() + Send>;

/// A thread that starts each generation run on a new thread of its own priority.
fn spawn_starter() -> Sender<Launch> {
    let (tx, rx) = channel::<Launch>();
    std::thread::spawn(move || {
        for job in rx {
            std::thread::spawn(job);
        }
    });
    tx
}

/// Views are computed at a lower priority than the model's threads, so on a
/// machine with few cores they wait for a forward pass rather than slow it.
fn lower_priority() {
    // SAFETY: setpriority on the calling thread (who = 0 names it on Linux); failure changes nothing.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

fn forward<T: Send + 'static>(rx: Receiver<T>, tx: Sender<Inbox>, wrap: fn(T) -> Inbox) {
    std::thread::spawn(move || {
        for x in rx {
            if tx.send(wrap(x)).is_err() {
                return;
            }
        }
    });
}

pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn model_info(m: &Model, source: &str, device: &str) -> ModelInfo {
    info_from_summary(&m.summary(source), device)
}

/// A `ModelInfo` from the JSON summary models write (and trace files keep).
pub fn info_from_summary(s: &serde_json::Value, device: &str) -> ModelInfo {
    use super::data::Mixing;
    let n = |k: &str| s[k].as_u64().unwrap_or(0) as usize;
    let mixing = if s["family"] == "state-space" {
        // Mamba-2 summaries (and its traces) also name the heads and the conv channels.
        let conv_rows = s["conv_dim"].as_u64().map_or(n("d_inner"), |c| c as usize);
        Mixing::StateSpace {
            d_inner: n("d_inner"),
            d_state: n("d_state"),
            d_conv: n("d_conv"),
            ssm_heads: n("ssm_heads"),
            conv_rows,
        }
    } else {
        let list = |k: &str| s[k].as_array().cloned().unwrap_or_default();
        Mixing::Attention {
            heads: n("heads"),
            kv_heads: n("kv_heads"),
            head_dim: n("head_dim"),
            kv_head_of: list("kv_head_of").iter().map(|v| v.as_u64().unwrap_or(0) as usize).collect(),
            windows: list("windows").iter().map(|v| v.as_u64().map(|w| w as usize)).collect(),
        }
    };
    let layers = n("layers").max(1);
    ModelInfo {
        source: s["source"].as_str().unwrap_or("?").to_string(),
        arch: s["arch"].as_str().unwrap_or("?").to_string(),
        layers: n("layers"),
        mixing,
        max_positions: n("max_positions"),
        device: device.to_string(),
        dtype: "f32".into(),
        kv_bytes_per_position: n("kv_bytes_per_position") / layers,
        state_bytes: n("state_bytes"),
    }
}

/// A worker with a model: generation runs on a session thread, events come back through the inbox.
struct Live {
    pane: usize,
    model: Option<Model>,
    tokenizer: Arc<Tokenizer>,
    inbox: Sender<Inbox>,
    out: Sender<Message>,
    trace: Option<Trace>,
    control: Option<Arc<Control>>,
    run_id: u64,
    running: bool,
    pending: Option<GenRequest>,
    computer: Computer,
    starter: Sender<Launch>,
}

impl Live {
    fn new(
        pane: usize,
        model: Model,
        tokenizer: Arc<Tokenizer>,
        inbox: Sender<Inbox>,
        out: Sender<Message>,
        starter: Sender<Launch>,
    ) -> Self {
        Self {
            pane,
            model: Some(model),
            tokenizer,
            inbox,
            out,
            trace: None,
            control: None,
            run_id: 0,
            running: false,
            pending: None,
            computer: Computer::default(),
            starter,
        }
    }

    fn send(&self, report: Report) -> bool {
        self.out.send(Message { pane: self.pane, report }).is_ok()
    }

    fn run(&mut self, rx: Receiver<Inbox>) {
        loop {
            let busy = self.trace.as_ref().is_some_and(|t| self.computer.busy(t.positions(), self.running));
            let msg = if busy {
                rx.try_recv().ok()
            } else {
                // Wake now and then so throttled work resumes after its pause.
                match rx.recv_timeout(Duration::from_millis(250)) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            if let Some(m) = msg {
                if !self.handle(m) {
                    return;
                }
                continue;
            }
            if let Some(t) = &self.trace {
                if !self.computer.work(self.pane, t, self.running, &self.out) {
                    return;
                }
            }
        }
    }

    fn handle(&mut self, msg: Inbox) -> bool {
        match msg {
            Inbox::Job(Job::Generate(req)) => {
                self.pending = Some(req);
                if let Some(c) = &self.control {
                    c.cancel();
                }
                self.start_pending()
            }
            Inbox::Job(Job::Allow(n)) => {
                if let Some(c) = &self.control {
                    match n {
                        Some(n) => c.allow(n),
                        None => c.run_freely(),
                    }
                }
                true
            }
            Inbox::Job(Job::Cancel) => {
                if let Some(c) = &self.control {
                    c.cancel();
                }
                true
            }
            Inbox::Job(Job::Want(w)) => {
                self.computer.want(w);
                true
            }
            Inbox::Session(id, _) if id != self.run_id => true,
            Inbox::Session(_, Event::Step(step)) => {
                let s = *step;
                let info = StepInfo {
                    index: s.index,
                    positions: s.fed.end,
                    kv_len: s.kv_len.clone(),
                    kv_bytes: s.kv_bytes,
                    forward_ms: s.forward_ms,
                };
                let token = Token { id: s.token, text: self.tokenizer.token_text(s.token), prompt: false };
                if let Some(t) = &mut self.trace {
                    t.push(s);
                }
                self.send(Report::Step(info, token))
            }
            Inbox::Session(_, Event::Done(r)) => {
                self.running = false;
                self.send(Report::Done(r))
            }
            Inbox::Session(_, Event::Failed(e)) => {
                self.running = false;
                self.send(Report::Failed(one_line(&e)))
            }
            Inbox::Back(m) => {
                self.model = m;
                if self.model.is_none() {
                    return self.send(Report::Failed("the model was lost when generation failed".into()));
                }
                self.start_pending()
            }
        }
    }

    /// Start the pending request once the model is back from the last run.
    fn start_pending(&mut self) -> bool {
        let Some(model) = self.model.take() else { return true };
        let Some(req) = self.pending.take() else {
            self.model = Some(model);
            return true;
        };
        let prompt = match session::prompt_ids(&self.tokenizer, &req.prompt, req.chat, false, model.max_positions()) {
            Ok(p) => p,
            Err(e) => {
                self.model = Some(model);
                return self.send(Report::Failed(one_line(&e.to_string())));
            }
        };
        let tokens = prompt.iter().map(|&id| Token { id, text: self.tokenizer.token_text(id), prompt: true }).collect();
        if !self.send(Report::Started(tokens)) {
            return false;
        }
        self.trace = Some(Trace::for_model(&model, &prompt));
        self.computer.reset();
        let control = Arc::new(Control::default());
        if let Some(n) = req.allow {
            control.allow(n);
        }
        let opts = Options {
            max_new_tokens: req.max_new_tokens.max(1),
            sampling: req.sampling,
            ignore_eos: req.ignore_eos,
            capture: true,
        };
        self.control = Some(control.clone());
        self.run_id += 1;
        self.running = true;
        let (id, tx, tokenizer) = (self.run_id, self.inbox.clone(), self.tokenizer.clone());
        let run: Launch = Box::new(move || {
            let session = Session::start_with(model, tokenizer, prompt, opts, control);
            for ev in session.events().iter() {
                if tx.send(Inbox::Session(id, ev)).is_err() {
                    session.cancel();
                }
            }
            let _ = tx.send(Inbox::Back(session.finish()));
        });
        if self.starter.send(run).is_err() {
            self.running = false;
            return self.send(Report::Failed("the generation thread could not be started".into()));
        }
        true
    }
}
