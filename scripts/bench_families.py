"""Issue 10's speed check: random-weight models at the Qwen3-0.6B and Pythia-160m shapes, transformers'
eager attention with `output_attentions=True` (cached greedy decode) beside `attnviz bench` (capture on and
off) on the same folder, same machine, same run. Each folder is saved once per checkpoint dtype (`--dtypes`,
default f32 and bf16: Qwen3-0.6B ships in bf16) in a temporary directory, deleted afterwards. transformers
loads it with dtype=float32 as the conformance fixtures do, so both sides compute in f32 on the same weight
values; attnviz keeps bf16 / f16 matrices 16-bit in memory and widens them exactly in its kernels.
`--torch-bf16` also times transformers computing in bf16 itself (other numbers, for reference only).

    pip install torch==2.15.0 transformers==5.23.0 safetensors tokenizers numpy
    cargo build --release && python scripts/bench_families.py [qwen3|pythia ...] [--dtypes f32,bf16] [--binary PATH]
"""
import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, GPTNeoXConfig, PreTrainedTokenizerFast, Qwen3Config

ROOT = Path(__file__).resolve().parent.parent
PROMPT, NEW, REPEATS = 64, 32, 3
TEXT = "The old fisherman mended his nets by the harbour while the children ran along the wall. "


def qwen3_06b():
    # Qwen/Qwen3-0.6B's config.json
    return "qwen3", Qwen3Config(
        vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
        num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=151643,
        eos_token_id=151645,
    )


def pythia_160m():
    # EleutherAI/pythia-160m's config.json
    return "gpt_neox", GPTNeoXConfig(
        vocab_size=50304, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, rotary_pct=0.25, rotary_emb_base=10000, max_position_embeddings=2048,
        use_parallel_residual=True, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
    )


SHAPES = {"qwen3": qwen3_06b, "pythia": pythia_160m}


@torch.no_grad()
def torch_run(model, ids):
    t0 = time.perf_counter()
    out = model(input_ids=torch.tensor([ids]), use_cache=True, output_attentions=True)
    prefill = time.perf_counter() - t0
    cache, nxt = out.past_key_values, int(out.logits[0, -1].argmax())
    t0 = time.perf_counter()
    for _ in range(NEW):
        out = model(input_ids=torch.tensor([[nxt]]), past_key_values=cache, use_cache=True, output_attentions=True)
        cache, nxt = out.past_key_values, int(out.logits[0, -1].argmax())
    return prefill * 1e3, NEW / (time.perf_counter() - t0)


DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def bench(name, dtype, binary, torch_bf16):
    fixture, cfg = SHAPES[name]()
    cfg._attn_implementation = "eager"
    out = Path(tempfile.mkdtemp(prefix=f"{name}-{dtype}-random-"))
    try:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").to(DTYPES[dtype]).eval()
        model.save_pretrained(out)
        del model
        # the fixture's tokenizer: the bench only needs prompt ids and token strings
        for f in ("tokenizer.json", "tokenizer_config.json"):
            if (ROOT / "tests/fixtures" / fixture / f).exists():
                shutil.copy(ROOT / "tests/fixtures" / fixture / f, out / f)
        tok = PreTrainedTokenizerFast(tokenizer_file=str(out / "tokenizer.json"))
        base = tok(TEXT)["input_ids"]
        ids = (base * (PROMPT // len(base) + 1))[:PROMPT]
        for compute in [torch.float32] + ([torch.bfloat16] if torch_bf16 else []):
            model = AutoModelForCausalLM.from_pretrained(out, dtype=compute, attn_implementation="eager").eval()
            torch_run(model, ids)  # warm-up
            runs = [torch_run(model, ids) for _ in range(REPEATS)]
            pre, tps = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            print(f"{name}, {dtype} checkpoint: transformers {transformers.__version__} eager + output_attentions, "
                  f"computing in {str(compute).removeprefix('torch.')}, {torch.get_num_threads()} threads: "
                  f"prefill {PROMPT} tokens {pre:.0f} ms, decode {tps:.2f} tokens/s", flush=True)
            del model
        cmd = [binary, "bench", "--model", str(out), "--prompt-tokens", str(PROMPT), "--new-tokens", str(NEW),
               "--repeats", str(REPEATS)]
        print(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout, end="", flush=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shapes", nargs="*", default=list(SHAPES))
    ap.add_argument("--dtypes", default="f32,bf16", help="checkpoint dtypes, comma-separated: f32, bf16, f16")
    ap.add_argument("--torch-bf16", action="store_true", help="also time transformers computing in bf16")
    ap.add_argument("--binary", default=str(ROOT / "target/release/attnviz"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    for s in a.shapes:
        for d in a.dtypes.split(","):
            bench(s, d, a.binary, a.torch_bf16)


if __name__ == "__main__":
    main()
