//! Pausing, single-stepping and cancelling a run through `session::Control`,
//! on the embedded tiny-gqa model. Deterministic: a held run can never pass
//! its allowance, so counting the steps that arrive proves the gate.

use attnviz::model;
use attnviz::sample::Sampling;
use attnviz::session::{self, Control, Event, Options, Session, StopReason};
use std::sync::Arc;

fn start(control: Arc<Control>) -> Session {
    let loaded = model::load("tiny-gqa", &candle_core::Device::Cpu).unwrap();
    let prompt = session::prompt_ids(&loaded.tokenizer, "It is a truth", false, false, 512).unwrap();
    let opts = Options { max_new_tokens: 10, sampling: Sampling::Greedy, ignore_eos: true, capture: true };
    Session::start_with(loaded.model, Arc::new(loaded.tokenizer), prompt, opts, control)
}

#[test]
fn a_held_run_does_exactly_the_forward_passes_it_is_allowed() {
    let control = Arc::new(Control::default());
    control.allow(1);
    let run = start(control.clone());
    let mut seen = vec![];
    for event in run.events().iter() {
        match event {
            Event::Step(s) => {
                seen.push(s.index);
                match s.index {
                    0 => control.allow(3), // single-steps past the prefill
                    2 => control.cancel(), // pass 3 is never allowed
                    _ => {}
                }
            }
            Event::Done(reason) => {
                assert_eq!(reason, StopReason::Cancelled);
                break;
            }
            Event::Failed(e) => panic!("{e}"),
        }
    }
    assert_eq!(seen, vec![0, 1, 2]);
    assert!(run.finish().is_some(), "the model comes back after a cancel");
}

#[test]
fn an_open_run_goes_to_the_end() {
    let control = Arc::new(Control::default());
    control.allow(0);
    let run = start(control.clone());
    control.run_freely();
    let (reason, model) = run.follow(|_| {}).unwrap();
    assert_eq!(reason, StopReason::MaxTokens);
    assert!(model.is_some());
}
