"""Issue 11's comparison in one run: transformers' sdpa prefill of a 4,096-token prompt (no attentions,
logits of the last position only) beside `attnviz bench --prompt-tokens 4096` on the same SmolLM2 GGUF.

    pip install torch==2.15.0 transformers==5.23.0 gguf numpy
    python3 scripts/bench_long.py [--attnviz target/release/attnviz] [--tokens 4096]
"""

import argparse
import os
import subprocess
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

GGUF = os.path.expanduser(
    os.path.join(os.environ.get("ATTNVIZ_CACHE", "~/.cache/attnviz"), "SmolLM2-135M-Instruct.Q4_1.gguf")
)
TEXT = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want "
    "of a wife. However little known the feelings or views of such a man may be on his first entering a "
    "neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is considered "
    "the rightful property of some one or other of their daughters."
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--attnviz", default="target/release/attnviz")
    ap.add_argument("--tokens", type=int, default=4096)
    a = ap.parse_args()
    torch.set_num_threads(2)
    folder, name = os.path.split(GGUF)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, torch_dtype=torch.float32, attn_implementation="sdpa"
    ).eval()
    base = tok(TEXT, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([(base * (a.tokens // len(base) + 1))[: a.tokens]])
    times = []
    with torch.inference_mode():
        for _ in range(2):
            t0 = time.perf_counter()
            model(ids, logits_to_keep=1, use_cache=True)
            times.append(time.perf_counter() - t0)
    print(f"transformers {__import__('transformers').__version__} sdpa prefill {a.tokens} tokens: "
          f"{min(times):.2f} s (best of 2; no attentions, last position's logits)", flush=True)
    out = subprocess.run(
        [a.attnviz, "bench", "--model", GGUF, "--prompt-tokens", str(a.tokens), "--new-tokens", "32",
         "--repeats", "1"],
        capture_output=True, text=True, check=True,
    )
    print(out.stdout, end="")


if __name__ == "__main__":
    main()
