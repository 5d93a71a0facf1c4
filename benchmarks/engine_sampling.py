"""Benchmark: engine sampling (K per prompt) vs ``model.generate(num_return_sequences=K)``.

Two workloads. Default: the Figure 2 validation mix at the paper shape (paper preset, random
weights), K = 64 responses of the full path length. ``--model DIR``: a Hugging Face model
directory (SmolLM2-135M in ``engine.md``) on ``--prompts`` chat prompts of ``real_models.py``,
K = 8 responses of exactly ``--tokens`` tokens. Both sides sample the full softmax at
temperature 1 and give the same output (K responses of the same length per prompt, no stop
token): ``generate`` runs one prompt per call (``do_sample=True, top_k=0, top_p=1``) and
expands the prompt K times before its first forward pass; the engine runs the prompt once and
repeats its KV-cache row. CPU seconds of this process (one thread), the two sides alternating
``--repeats`` times in the same run; the ratio is taken between the fastest run of each.

    .venv/bin/python benchmarks/engine_sampling.py --horizon 16 --per-class 1
    .venv/bin/python benchmarks/engine_sampling.py --model /tmp/es/smollm2 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import torch
from engine_common import paper_model, timed, validation_mix

from lmcoverage.engine import sample_responses


def paper_workload(horizon: int, per_class: int) -> tuple[Any, list[list[int]], int, str]:
    """The paper model, the Figure 2 validation prompts and their response length."""
    task, problems = validation_mix(f"figure2-h{horizon}", per_class)
    label = f"figure2-h{horizon}, {per_class} prompt(s) per class, paper model"
    return (paper_model(task), [list(p.prompt_ids) for p in problems],
            len(problems[0].response_ids), label)


def model_workload(model_dir: Path, prompts: int, tokens: int) -> tuple[Any, list[list[int]],
                                                                         int, str]:
    """A model directory and ``prompts`` chat prompts (rendered with its chat template)."""
    from real_models import prompt_rows

    from lmcoverage.engine.rows import encode_prompt
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer

    tok = load_tokenizer(model_dir)
    ids = [encode_prompt(tok, row, f"row {i}") for i, row in enumerate(prompt_rows(prompts))]
    return load_causal_lm(model_dir), ids, tokens, f"{model_dir.name}, chat prompts"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model directory (default: paper model)")
    parser.add_argument("--horizon", type=int, default=16)
    parser.add_argument("--per-class", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=4, help="with --model")
    parser.add_argument("--tokens", type=int, default=16, help="with --model")
    parser.add_argument("--n", type=int, help="samples per prompt (default 64, 8 with --model)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    n = args.n or (8 if args.model else 64)
    model, prompts, length, label = (
        model_workload(args.model, args.prompts, args.tokens) if args.model
        else paper_workload(args.horizon, args.per_class))
    pad = model.generation_config.pad_token_id or 0

    def generate() -> list[torch.Tensor]:
        torch.manual_seed(0)
        out = []
        with torch.inference_mode():
            for p in prompts:
                ids = torch.tensor([p])
                seqs = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                      top_k=0, top_p=1.0, temperature=1.0,
                                      num_return_sequences=n, max_new_tokens=length,
                                      min_new_tokens=length, pad_token_id=pad)
                out.append(seqs[:, len(p):])
        return out

    def engine() -> list[list[list[int]]]:
        return sample_responses(model, prompts, n=n, max_new_tokens=length, seed=0,
                                batch_size=max(64, n), progress=False)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  commit {commit}  load {os.getloadavg()}")
    times: dict[str, list[float]] = {"generate": [], "engine": []}
    for _ in range(args.repeats):
        seconds, theirs = timed(generate)
        times["generate"].append(seconds)
        seconds, ours = timed(engine)
        times["engine"].append(seconds)
    assert all(len(s) == n and all(len(r) == length for r in s) for s in ours)
    assert all(t.shape == (n, length) for t in theirs)
    samples = len(prompts) * n
    t_gen, t_eng = min(times["generate"]), min(times["engine"])
    mean_plen = sum(map(len, prompts)) / len(prompts)
    print(f"## Sampling: K={n} per prompt, {label}, one thread\n")
    print(f"{len(prompts)} prompts (mean {mean_plen:.0f} tokens), responses of {length} tokens, "
          f"fastest of {args.repeats} alternating run(s)\n")
    print("| method | CPU seconds | samples/s | all runs |")
    print("|---|---|---|---|")
    for name, seconds in (("model.generate(num_return_sequences=K)", t_gen),
                          ("engine sample_responses", t_eng)):
        runs = times["generate" if name.startswith("model") else "engine"]
        print(f"| {name} | {seconds:.2f} | {samples / seconds:.1f} | "
              f"{', '.join(f'{s:.2f}' for s in runs)} |")
    print(f"\nspeed-up: {t_gen / t_eng:.2f}x  (load after {os.getloadavg()})")


if __name__ == "__main__":
    main()
