"""Mamba-2 at the mamba2-130m shape with random weights: transformers' pure-PyTorch path
(Mamba2ForCausalLM, cached greedy decode) beside `attnviz bench` on the same folder, same machine,
same run. Writes the folder (f32 safetensors, ~0.5 GB) and deletes it afterwards unless --keep.

    pip install torch==2.15.0 transformers==5.23.0 safetensors tokenizers numpy
    cargo build --release && python scripts/bench_mamba2.py [--keep] [ATTNVIZ_BINARY]
"""
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers
from transformers import Mamba2Config, Mamba2ForCausalLM, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parent.parent
PROMPT, NEW, REPEATS = 64, 64, 3
TEXT = "The old fisherman mended his nets by the harbour while the children ran along the wall. "


def build(out: Path):
    # mamba2-130m's config.json (state-spaces/mamba2-130m as transformers reads it)
    cfg = Mamba2Config(
        vocab_size=50288, hidden_size=768, num_hidden_layers=24, num_heads=24, head_dim=64, expand=2, n_groups=1,
        state_size=128, conv_kernel=4, chunk_size=256, tie_word_embeddings=True, bos_token_id=0, eos_token_id=0,
        pad_token_id=0, use_bias=False, use_conv_bias=True, residual_in_fp32=True,
    )
    torch.manual_seed(0)
    model = Mamba2ForCausalLM(cfg).to(torch.float32).eval()
    model.save_pretrained(out)
    # the fixture's byte-level tokenizer: the bench only needs prompt ids and token strings
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(ROOT / "tests/fixtures/mamba2" / f, out / f)
    return model


@torch.no_grad()
def torch_run(model, ids):
    t0 = time.perf_counter()
    out = model(input_ids=torch.tensor([ids]), use_cache=True)
    prefill = time.perf_counter() - t0
    cache, nxt = out.cache_params, int(out.logits[0, -1].argmax())
    t0 = time.perf_counter()
    for _ in range(NEW):
        out = model(input_ids=torch.tensor([[nxt]]), cache_params=cache, use_cache=True)
        nxt = int(out.logits[0, -1].argmax())
    return prefill * 1e3, NEW / (time.perf_counter() - t0)


def main():
    keep = "--keep" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--keep"]
    binary = args[0] if args else str(ROOT / "target/release/attnviz")
    out = Path(tempfile.mkdtemp(prefix="mamba2-130m-random-"))
    try:
        model = build(out)
        tok = PreTrainedTokenizerFast(tokenizer_file=str(out / "tokenizer.json"))
        base = tok(TEXT)["input_ids"]
        ids = (base * (PROMPT // len(base) + 1))[:PROMPT]
        torch_run(model, ids)  # warm-up
        runs = [torch_run(model, ids) for _ in range(REPEATS)]
        pre, tps = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"transformers {transformers.__version__} (torch {torch.__version__}) torch path, "
              f"{torch.get_num_threads()} threads: "
              f"prefill {PROMPT} tokens {pre:.0f} ms, decode {tps:.1f} tokens/s (all runs: {runs})")
        del model
        cmd = [binary, "bench", "--model", str(out), "--prompt-tokens", str(PROMPT), "--new-tokens", str(NEW),
               "--repeats", str(REPEATS)]
        print(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout, end="")
    finally:
        if keep:
            print(f"kept {out}")
        else:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
