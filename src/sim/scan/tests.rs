//! The stepper by hand, and against the engine: `Replay` recomputes
//! tiny-mamba in plain loops from its weights, feeding the stepper token by
//! token, and every layer's state and Δ must match what the engine captures.

use super::*;
use crate::model::engine::{Capture, Model};
use candle_core::Device;

#[test]
fn two_steps_by_hand() {
    // Δ_raw = 0 gives Δ = ln 2, so Ā = e^(−ln 2 · [1, 2]) = [1/2, 1/4].
    let ln2 = 2f32.ln();
    let mut s = Scanner::new(vec![-1.0, -2.0], vec![0.5], 2).unwrap();
    let (b, c, x) = ([1.0, 2.0], [1.0, 1.0], [2.0]);
    let one = s.step(&[0.0], &x, &b, &c).unwrap();
    assert!((one.dt[0] - ln2).abs() < 1e-7);
    assert!((one.a_bar[0] - 0.5).abs() < 1e-7 && (one.a_bar[1] - 0.25).abs() < 1e-7);
    assert!((one.bx[0] - 2.0 * ln2).abs() < 1e-6 && (one.bx[1] - 4.0 * ln2).abs() < 1e-6);
    assert!((one.y[0] - (6.0 * ln2 + 1.0)).abs() < 1e-6 && (one.ch[0] - 6.0 * ln2).abs() < 1e-6);
    let two = s.step(&[0.0], &x, &b, &c).unwrap();
    // h = Ā·h + B̄x = [ln 2 + 2 ln 2, ln 2 + 4 ln 2].
    assert!((two.h[0] - 3.0 * ln2).abs() < 1e-6 && (two.h[1] - 5.0 * ln2).abs() < 1e-6);
    assert!((two.y[0] - (8.0 * ln2 + 1.0)).abs() < 1e-6);
    assert_eq!(s.state(), two.h.as_slice());
    s.reset();
    assert_eq!(s.state(), [0.0, 0.0]);
}

#[test]
fn softplus_and_a_from_log() {
    assert!((softplus(0.0) - 2f32.ln()).abs() < 1e-7);
    assert_eq!(softplus(25.0), 25.0);
    assert!((softplus(-30.0) - (-30f32).exp()).abs() < 1e-20);
    // A_log initialised to log(1..N) gives A_n = −n.
    let a = a_from_log(&[1f32.ln(), 2f32.ln(), 3f32.ln()]);
    assert!(a.iter().zip([-1.0, -2.0, -3.0]).all(|(x, y)| (x - y).abs() < 1e-6));
}

#[test]
fn bad_shapes_are_errors() {
    assert!(Scanner::new(vec![-1.0; 3], vec![1.0], 2).is_err());
    assert!(Scanner::new(vec![], vec![], 2).is_err());
    let mut s = Scanner::new(vec![-1.0; 4], vec![1.0; 2], 2).unwrap();
    assert!(s.step(&[0.0], &[1.0, 1.0], &[1.0, 1.0], &[1.0, 1.0]).is_err());
    assert!(s.set_state(&[0.0; 3]).is_err());
    assert!(s.set_state(&[0.5; 4]).is_ok() && s.state() == [0.5; 4]);
}

#[test]
#[allow(clippy::needless_range_loop)] // `layer` also picks the layer replayed
fn replay_matches_the_engines_mamba_states() {
    let replay = Replay::load("tiny-mamba").unwrap();
    let loaded = crate::model::load("tiny-mamba", &Device::Cpu).unwrap();
    let ids = loaded.tokenizer.encode("Emma found a red ball in the park. She gave the ball to Tom.", false).unwrap();
    assert!(ids.len() > 12);
    let mut model = loaded.model;
    assert!(matches!(model, Model::Mamba(_)));
    let mut captured = vec![];
    for &id in &ids {
        let Capture::State(layers) = model.forward(&[id], true).unwrap().capture else { panic!("no state captured") };
        captured.push(layers);
    }
    let diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    let (di, n) = (replay.dims.d_inner, replay.dims.d_state);
    let (mut worst_h, mut worst_dt) = (0f32, 0f32);
    for layer in 0..replay.layers.len() {
        let mut seen = 0;
        let steps = replay
            .replay_with(&ids, layer, Channels::One(3), |f| {
                let cap = &captured[f.position][layer];
                assert_eq!(cap.ssm.len(), di * n);
                let (dh, ddt) = (diff(f.h, &cap.ssm), diff(f.dt, &cap.dt));
                assert!(
                    dh <= 1e-5 && ddt <= 1e-5,
                    "token {} layer {layer}: state differs by {dh}, Δ by {ddt}",
                    f.position
                );
                worst_h = worst_h.max(dh);
                worst_dt = worst_dt.max(ddt);
                seen += 1;
            })
            .unwrap();
        assert_eq!((seen, steps.len()), (ids.len(), ids.len()));
        // The kept channel is the engine's channel 3, and h before is the last h after.
        for (pos, s) in steps.iter().enumerate() {
            assert!(diff(&s.h, &captured[pos][layer].ssm[3 * n..4 * n]) <= 1e-5);
            let before = if pos == 0 { vec![0.0; n] } else { steps[pos - 1].h.clone() };
            assert_eq!(s.h_before, before);
            // y = C·h + D·x, with the model's D.
            let y = s.c.iter().zip(&s.h).map(|(c, h)| c * h).sum::<f32>() + replay.layers[layer].d[3] * s.x[0];
            assert!((s.y[0] - y).abs() < 1e-5);
        }
    }
    // The comparison is not vacuous: states are far from zero.
    assert!(captured.last().unwrap().iter().all(|s| s.ssm.iter().any(|v| v.abs() > 0.01)));
    // The trained A is not Mamba's initial A_n = −n.
    let a0 = &replay.layers[0].a[..n];
    assert!(a0.iter().enumerate().any(|(i, a)| (a + (i + 1) as f32).abs() > 1e-3), "{a0:?}");
    eprintln!("largest differences over {} tokens: state {worst_h:e}, Δ {worst_dt:e}", ids.len());
}

#[test]
fn replay_keeps_all_channels_and_rejects_bad_input() {
    let replay = Replay::load("tiny-mamba").unwrap();
    let (di, n) = (replay.dims.d_inner, replay.dims.d_state);
    let all = replay.replay(&[1, 2, 3], 1, Channels::All).unwrap();
    assert_eq!((all.len(), all[2].h.len(), all[2].x.len(), all[2].b.len()), (3, di * n, di, n));
    let one = replay.replay(&[1, 2, 3], 1, Channels::One(di - 1)).unwrap();
    assert_eq!(one[2].h, all[2].h[(di - 1) * n..]);
    assert!(replay.replay(&[1], 9, Channels::All).is_err());
    assert!(replay.replay(&[1], 0, Channels::One(di)).is_err());
    assert!(replay.replay(&[u32::MAX], 0, Channels::All).is_err());
    assert!(Replay::load("tiny-gqa").is_err());
    let mut bad = replay.layers.clone();
    bad[0].d.pop();
    assert!(Replay::from_weights(replay.dims, replay.embed.clone(), bad).is_err());
}
