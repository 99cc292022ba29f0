//! Feeding a prompt whole, in pieces or token by token gives the same state
//! and logits (up to rounding of the f32 projections), on the fixture weights.

use super::*;
use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mamba2")
}

fn load() -> Mamba2 {
    let dir = fixture();
    let j = crate::model::json::read_json(&dir.join("config.json")).unwrap();
    let w = Weights::from_safetensors(&[dir.join("model.safetensors")], &Device::Cpu, DType::F32).unwrap();
    Mamba2::load(Mamba2Config::from_json(&j).unwrap(), &w).unwrap()
}

fn diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn pieces_equal_whole() {
    let ids: Vec<u32> = (0..21).map(|i| (i * 37 % 400) as u32).collect();
    let mut whole = load();
    let w = whole.forward(&ids, true).unwrap();
    for split in [vec![1usize; 21], vec![5, 9, 7], vec![20, 1]] {
        let mut m = load();
        let mut at = 0;
        let mut last = None;
        let mut dts = vec![vec![]; 2];
        for n in split {
            let f = m.forward(&ids[at..at + n], true).unwrap();
            for (d, l) in dts.iter_mut().zip(&f.layers) {
                d.extend_from_slice(&l.dt);
            }
            last = Some(f);
            at += n;
        }
        let p = last.unwrap();
        assert_eq!(m.position(), 21);
        let dl = diff(&p.logits, &w.logits);
        assert!(dl < 1e-5, "logits {dl}");
        for (l, (a, b)) in p.layers.iter().zip(&w.layers).enumerate() {
            let (ds, dc) = (diff(&a.ssm, &b.ssm), diff(&a.conv, &b.conv));
            assert!(ds < 1e-5 && dc < 1e-5, "layer {l}: ssm {ds} conv {dc}");
            assert_eq!(dts[l].len(), 21 * 8);
            let dd = diff(&dts[l], &b.dt);
            assert!(dd < 1e-5, "dt {dd}");
        }
    }
    whole.reset();
    assert_eq!(whole.forward(&ids, false).unwrap().logits, w.logits);
}

#[test]
fn bad_ids_are_one_line() {
    let mut m = load();
    assert_eq!(m.forward(&[400], false).err().unwrap().to_string().lines().count(), 1);
    assert!(m.forward(&[], false).is_err());
}

#[test]
fn shared_states_are_never_written_and_change_nothing() {
    // Holding captures makes the model write each next state into a recycled
    // (here: NaN-filled) buffer; dropping them lets it write in place. Both
    // must give the same bits, and a held capture must keep its values.
    let ids: Vec<u32> = (0..9).map(|i| (i * 53 % 400) as u32).collect();
    let (mut held, mut dropped) = (load(), load());
    let len = held.cfg.d_inner * held.cfg.d_state;
    let mut kept = vec![];
    for (i, id) in ids.iter().enumerate() {
        (0..4).for_each(|_| pool::give(vec![f32::NAN; len]));
        let a = held.forward(&[*id], true).unwrap();
        let b = dropped.forward(&[*id], i % 3 == 0).unwrap();
        assert_eq!(a.logits, b.logits);
        for (cap, s) in a.layers.iter().zip(&held.states) {
            assert!(Arc::ptr_eq(&cap.ssm, &s.ssm) && cap.conv == s.conv);
        }
        for (cap, s) in b.layers.iter().zip(&dropped.states) {
            assert_eq!(cap.ssm, s.ssm);
        }
        let copy: Vec<Vec<f32>> = a.layers.iter().map(|l| l.ssm.to_vec()).collect();
        kept.push((a, copy));
    }
    for (f, copy) in &kept {
        assert!(f.layers.iter().zip(copy).all(|(l, c)| *l.ssm == *c));
    }
}
