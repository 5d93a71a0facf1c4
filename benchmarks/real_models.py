"""Real-model speed: ``score`` (CLI code path) vs a plain padded HF forward, M decoding variants
vs one, and ``sample`` vs ``generate(num_return_sequences=K)`` at equal output.

Run from the repository root (see ``real_models.md`` for the numbers measured)::

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 nice -n 5 .venv/bin/python benchmarks/real_models.py \\
        --model /tmp/smollm2   # a directory: lmcoverage convert SmolLM2-135M-Instruct.Q4_1.gguf

Times are CPU seconds of this process (``time.process_time``, one thread); both sides of each
ratio are measured in the same run, one after the other.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from engine_common import timed

torch.set_num_threads(1)

NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana"]
ITEMS = ["apples", "pencils", "stamps", "marbles", "books", "shells"]


def prompt_rows(count: int) -> list[dict[str, Any]]:
    """Chat rows with small arithmetic word problems (deterministic)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(count):
        a, b, c = (int(v) for v in rng.integers(2, 60, 3))
        who, what = NAMES[i % len(NAMES)], ITEMS[i % len(ITEMS)]
        text = (f"{who} has {a} {what}. A friend gives {who} {b} more, and then {who} gives "
                f"away {c}. How many {what} does {who} have now? Answer with a number.")
        rows.append({"messages": [{"role": "user", "content": text}], "answer": a + b - c})
    return rows


def padded_forward_scores(model: Any, prompts: list[list[int]], responses: list[list[int]],
                          batch_size: int = 64) -> np.ndarray:
    """Baseline: each (prompt, response) pair as one right-padded sequence, ``batch_size`` per
    forward pass, response-token log-probs summed."""
    out = np.zeros(len(prompts))
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            seqs = [p + r for p, r in zip(prompts[start:start + batch_size],
                                          responses[start:start + batch_size], strict=True)]
            width = max(len(s) for s in seqs)
            ids = torch.zeros((len(seqs), width), dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for b, s in enumerate(seqs):
                ids[b, :len(s)], mask[b, :len(s)] = torch.tensor(s), 1
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
            for b in range(len(seqs)):
                p, r = prompts[start + b], responses[start + b]
                pos = torch.arange(len(p) - 1, len(p) + len(r) - 1)
                out[start + b] = float(logp[b, pos, torch.tensor(r)].double().sum())
    return out


def main() -> None:
    from lmcoverage.decoding.spec import DecodingSpec
    from lmcoverage.engine.rows import sample_rows
    from lmcoverage.engine.sampling import sample_with_logp
    from lmcoverage.engine.table import data_examples, score_models
    from lmcoverage.io import write_jsonl
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--prompts", type=int, default=30)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--response-tokens", type=int, default=16)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--sample-prompts", type=int, default=4)
    parser.add_argument("--parts", default="score,variants,sample",
                        help="comma-separated subset of score, variants, sample")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"load: {os.getloadavg()}  torch {torch.__version__}")

    model_dir = Path(args.model)
    tok, model = load_tokenizer(model_dir), load_causal_lm(model_dir)
    rows = prompt_rows(args.prompts)
    samples = sample_rows(model, tok, rows, args.k, seed=0,
                          max_new_tokens=args.response_tokens, progress=False)
    prompts = [s["prompt_ids"] for s in samples]
    responses = [s["response_ids"] for s in samples]
    print(f"{args.prompts} prompts x K={args.k}: {len(samples)} rows, mean prompt "
          f"{np.mean([len(p) for p in prompts]):.0f} tokens, mean response "
          f"{np.mean([len(r) for r in responses]):.1f} tokens")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.jsonl"
        write_jsonl(path, samples)
        examples = data_examples(path)
        t_cli, table = timed(lambda: score_models([model_dir], examples, progress=False))
        t_load, _ = timed(lambda: load_causal_lm(model_dir))
        if "score" in parts:
            t_base, base = timed(lambda: padded_forward_scores(model, prompts, responses))
            diff = float(np.abs(table.matrix("loglik")[0] - base).max())
            print("\n## score (CLI code path: data_examples + score_models, model load "
                  "included)")
            print("| method | CPU s |\n|---|---|")
            print(f"| plain padded HF forward, 64 per batch | {t_base:.2f} |")
            print(f"| score_models (1 candidate) | {t_cli:.2f} (of which model load "
                  f"{t_load:.2f}) |")
            print(f"ratio {t_base / t_cli:.2f}x (excluding the load: "
                  f"{t_base / (t_cli - t_load):.2f}x); max |difference| {diff:.1e} nats")
        specs = [DecodingSpec(), DecodingSpec(temperature=0.8), DecodingSpec(top_p=0.95),
                 DecodingSpec(temperature=0.7, top_k=50), DecodingSpec(min_p=0.05),
                 DecodingSpec(temperature=1.2, top_p=0.9)][:args.variants]
        if "variants" in parts:
            t_var, _ = timed(lambda: score_models([model_dir] * len(specs), examples,
                                                  names=[s.name() or "plain" for s in specs],
                                                  specs=specs, progress=False))
            print(f"\n## {len(specs)} decoding variants of one model: {t_var:.2f} s vs one "
                  f"{t_cli:.2f} s = {t_var / t_cli:.2f}x "
                  f"({'; '.join(s.name() or 'plain' for s in specs)})")
    if "sample" not in parts:
        return

    ids = [s["prompt_ids"] for s in samples[::args.k][:args.sample_prompts]]
    length = args.response_tokens

    def engine() -> Any:
        return sample_with_logp(model, ids, args.k, length, DecodingSpec(), seed=0,
                                progress=False)

    def generate() -> Any:
        torch.manual_seed(0)
        with torch.inference_mode():
            return [model.generate(torch.tensor([p]), do_sample=True, temperature=1.0, top_k=0,
                                   top_p=1.0, num_return_sequences=args.k,
                                   max_new_tokens=length, min_new_tokens=length,
                                   pad_token_id=tok.pad_token_id or 0) for p in ids]

    t_gen, gen = timed(generate)
    t_eng, eng = timed(engine)
    assert all(g.shape[1] - len(p) == length for g, p in zip(gen, ids, strict=True))
    assert all(len(s.ids) == length for group in eng for s in group)
    print(f"\n## sample: {len(ids)} prompts x K={args.k} x {length} tokens (equal output, "
          "no stop tokens)")
    print("| method | CPU s |\n|---|---|")
    print(f"| model.generate(num_return_sequences={args.k}) | {t_gen:.2f} |")
    print(f"| engine sample_with_logp | {t_eng:.2f} |")
    print(f"ratio {t_gen / t_eng:.2f}x")
    print(f"load after: {os.getloadavg()}  wall clock {time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    main()
