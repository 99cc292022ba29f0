use super::*;
use std::sync::atomic::AtomicBool;

const TEXT: &str = "It is a truth universally acknowledged, that a single man in possession of a good fortune, \
    must be in want of a wife.\n\nHowever little known the feelings or views of such a man may be on his first \
    entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families.\n\n";

/// A model initialised here and saved gives the same logits in the engine:
/// training optimises exactly the function the engine runs.
fn engine_matches_trainer(arch: Arch) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::Usage(e.to_string()))?;
    let tok = bpe::train(&TEXT.repeat(10), 300)?;
    // Perturb the ones-initialised norms and D so those paths count too.
    let mut shape = Shape::new(arch, tok.get_vocab_size(true), 64, 2, 5);
    shape.expand = 2;
    let mut p = Params::new(3, &Device::Cpu);
    let net = match arch {
        Arch::Mamba => Net::Mamba(mamba::Mamba::init(&mut p, &shape)?),
        _ => Net::Llama(llama::Llama::init(&mut p, &shape)?),
    };
    for v in p.vars() {
        if v.dims().len() == 1 {
            let t = v.as_tensor();
            v.set(&(t + t.randn_like(0.0, 0.3)?)?)?;
        }
    }
    write_folder(dir.path(), &shape, &tok)?;
    p.save(&dir.path().join("model.safetensors"))?;
    let ids: Vec<u32> = bpe::encode(&tok, TEXT)?.into_iter().take(12).collect();
    let ours = net.forward(&Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?)?;
    let ours = ours.squeeze(0)?.get(ids.len() - 1)?.to_vec1::<f32>()?;

    let dir_name = dir.path().to_string_lossy().to_string();
    let mut engine = crate::model::load(&dir_name, &Device::Cpu)?.model;
    let theirs = engine.forward(&ids, false)?.logits;
    let diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-4, "{arch:?}: trainer and engine logits differ by {diff}");
    Ok(())
}

#[test]
fn trainer_forward_equals_engine_gqa() -> Result<()> {
    engine_matches_trainer(Arch::Gqa)
}

#[test]
fn trainer_forward_equals_engine_swa() -> Result<()> {
    engine_matches_trainer(Arch::Swa)
}

#[test]
fn trainer_forward_equals_engine_mamba() -> Result<()> {
    engine_matches_trainer(Arch::Mamba)
}

/// The summary and the first step's loss.
fn run(arch: Arch, seed: u64, out: &Path, corpus: &Path) -> Result<(Summary, f32)> {
    let opts = Options {
        arch,
        corpus: corpus.to_path_buf(),
        out: out.to_path_buf(),
        steps: 12,
        seed,
        d_model: 32,
        layers: 1,
        window: 4,
        batch: 4,
        seq_len: 16,
        lr: 1e-2,
        vocab_size: 300,
        tokenizer: None,
        eval_every: 4,
        save_every: 5,
    };
    let mut first = f32::NAN;
    let s = train(&opts, &AtomicBool::new(false), |p| {
        if p.step == 1 {
            first = p.loss
        }
    })?;
    Ok((s, first))
}

#[test]
fn same_seed_same_weights_and_loss_falls() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::Usage(e.to_string()))?;
    let corpus = dir.path().join("corpus.txt");
    std::fs::write(&corpus, TEXT.repeat(40)).map_err(|e| Error::Usage(e.to_string()))?;
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    let (sa, first) = run(Arch::Mqa, 1, &a, &corpus)?;
    run(Arch::Mqa, 1, &b, &corpus)?;
    run(Arch::Mqa, 2, &c, &corpus)?;
    let bytes = |d: &Path| std::fs::read(d.join("model.safetensors")).map_err(|e| Error::Usage(e.to_string()));
    assert_eq!(bytes(&a)?, bytes(&b)?);
    assert_ne!(bytes(&a)?, bytes(&c)?);
    // ln(300) ≈ 5.7 at the start; a repeated text is learned quickly.
    assert!(first > 5.0 && sa.train_loss < first - 1.0, "loss {first} → {}", sa.train_loss);
    assert_eq!((sa.steps, sa.tokens), (12, 12 * 4 * 16));
    Ok(())
}

#[test]
fn learning_rate_warms_up_then_decays() {
    assert!(lr_at(0, 100, 1.0) < lr_at(4, 100, 1.0));
    assert!((lr_at(5, 100, 1.0) - 1.0).abs() < 1e-9);
    assert!((lr_at(100, 100, 1.0) - 0.1).abs() < 1e-9);
}
