"""Benchmark: engine scoring vs one sequence per (prompt, response) pair, Figure 2 validation mix.

Workload (what ``lmcoverage score --task figure2-hH`` computes for exact metrics): for every
validation prompt, its held-out response and every valid path (for ``mass_correct``). Classes:
1 (one valid path), 2 (2^(H/2) valid paths), 3 (16 valid paths), ``--per-class`` prompts each,
as in the paper's per-class validation sets. Model: the paper preset (6 layers, 4 heads, width
384), one thread. Baseline: each (prompt, response) pair as its own right-padded sequence,
``--batch-size`` sequences per Hugging Face forward pass, response tokens gathered from a float32
log-softmax. Both are timed in the same run; their scores must agree within 1e-4 nats.

    .venv/bin/python benchmarks/engine_scoring.py --horizon 16 --per-class 2
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from engine_common import flops_per_token, matmul_gflops, paper_model, timed, validation_mix

from lmcoverage.engine import score_responses


def baseline_scores(model: torch.nn.Module, prompts: list[list[int]],
                    responses: list[list[list[int]]], batch_size: int) -> list[np.ndarray]:
    """Each pair as its own sequence: right-padded prompt + response, batched forward passes."""
    pairs = [(i, p + r, len(p), len(r)) for i, (p, rs) in enumerate(zip(prompts, responses,
                                                                           strict=True))
             for r in rs]
    flat = []
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            part = pairs[start : start + batch_size]
            width = max(len(seq) for _, seq, _, _ in part)
            ids = torch.zeros((len(part), width), dtype=torch.long)
            mask = torch.zeros((len(part), width), dtype=torch.long)
            for b, (_, seq, _, _) in enumerate(part):
                ids[b, : len(seq)] = torch.tensor(seq)
                mask[b, : len(seq)] = 1
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
            for b, (_, _, plen, rlen) in enumerate(part):
                pos = torch.arange(plen - 1, plen + rlen - 1)
                flat.append(float(logp[b, pos, ids[b, pos + 1]].double().sum()))
    out, k = [], 0
    for rs in responses:
        out.append(np.array(flat[k : k + len(rs)]))
        k += len(rs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=16)
    parser.add_argument("--per-class", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    task, problems = validation_mix(f"figure2-h{args.horizon}", args.per_class)
    model = paper_model(task)
    prompts = [list(p.prompt_ids) for p in problems]
    responses = [[list(p.response_ids), *map(list, p.valid_paths)] for p in problems]
    n_pairs = sum(len(rs) for rs in responses)
    plen = np.mean([len(p) for p in prompts])
    rlen = len(responses[0][0])

    gflops = matmul_gflops()
    t_engine, ours = timed(lambda: score_responses(model, prompts, responses,
                                                   batch_size=args.batch_size, progress=False))
    t_base, base = timed(lambda: baseline_scores(model, prompts, responses, args.batch_size))
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(ours, base, strict=True))

    # Tokens each method runs through the model, and the FLOPs that costs.
    base_tokens = sum(len(p) + len(r) for p, rs in zip(prompts, responses, strict=True)
                      for r in rs)
    engine_tokens = sum(len(p) for p in prompts) + sum(len(r) - 1 for rs in responses
                                                       for r in rs)
    ctx = plen + rlen
    engine_gflop = (sum(len(p) for p in prompts) * flops_per_token(model, plen / 2)
                    + (engine_tokens - sum(len(p) for p in prompts))
                    * flops_per_token(model, ctx)) / 1e9
    base_gflop = base_tokens * flops_per_token(model, ctx / 2) / 1e9
    print(f"## Scoring: figure2-h{args.horizon}, {args.per_class} prompts per class, "
          f"paper model, one thread\n")
    print(f"{len(prompts)} prompts (mean {plen:.0f} tokens), {n_pairs} (prompt, response) "
          f"pairs, responses of {rlen} tokens, batch size {args.batch_size}; "
          f"max |engine - baseline| = {diff:.2e} nats; float32 matmul {gflops:.1f} GFLOP/s\n")
    print("| method | CPU seconds | pairs/s | tokens run | tokens/s | GFLOP/s | % of matmul |")
    print("|---|---|---|---|---|---|---|")
    for name, t, tokens, gf in (("baseline: one sequence per pair", t_base, base_tokens,
                                 base_gflop),
                                ("engine: prompt KV once", t_engine, engine_tokens,
                                 engine_gflop)):
        print(f"| {name} | {t:.2f} | {n_pairs / t:.1f} | {tokens} | {tokens / t:.0f} | "
              f"{gf / t:.1f} | {100 * gf / t / gflops:.0f}% |")
    print(f"\nspeed-up: {t_base / t_engine:.1f}x")
    if diff > 1e-4:
        raise SystemExit(f"engine and baseline disagree by {diff:.2e} nats")


if __name__ == "__main__":
    main()
