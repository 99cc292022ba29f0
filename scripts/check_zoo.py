"""Load every zoo model (assets/models/tiny-*) in Hugging Face transformers and
compare its greedy continuation and logits with `attnviz capture` on the same
prompt. Also prints the README's zoo table rows.

    pip install torch==2.15.0 transformers==5.23.0 safetensors numpy
    cargo build --release && python scripts/check_zoo.py [ATTNVIZ_BINARY [MODEL ...]]
"""
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import safetensors.numpy
import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/release/attnviz")
PROMPT = "It is a truth universally acknowledged, that"
NEW = 16


def main():
    rows = []
    for name in sys.argv[2:] or ["tiny-mha", "tiny-gqa", "tiny-mqa", "tiny-swa", "tiny-mamba"]:
        folder = ROOT / "assets/models" / name
        tok = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
        model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
        ids = tok(PROMPT, return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=NEW, do_sample=False, output_logits=True,
                                 return_dict_in_generate=True, eos_token_id=None, pad_token_id=0)
        theirs = np.stack([l[0].numpy() for l in out.logits])
        their_ids = out.sequences[0, ids.shape[1]:].tolist()
        with tempfile.TemporaryDirectory() as d:
            trace = pathlib.Path(d) / "t.st"
            subprocess.run([BIN, "capture", "--model", str(folder), "--prompt", PROMPT, "--max-new-tokens", str(NEW),
                            "--ignore-eos", "--out", str(trace)], check=True, capture_output=True)
            t = safetensors.numpy.load_file(str(trace))
        ours = t["logits"]
        our_ids = t["tokens"][ids.shape[1]:].tolist()
        diff = float(np.abs(ours - theirs).max())
        same = our_ids == their_ids
        print(f"{name}: logits max diff {diff:.2e}, greedy tokens identical: {same}")
        assert same and diff < 1e-3, name
        record = json.loads((folder / "training.json").read_text())
        text = tok.decode(our_ids).replace("\n", " ")
        rows.append(f"| `{name}` | {record['parameters'] / 1e6:.2f}M | {record['tokens'] / 1e6:.2f}M | "
                    f"{record['seconds'] / 60:.1f} min | {record['eval_loss']:.3f} | {PROMPT}**{text}** |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
