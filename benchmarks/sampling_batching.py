"""Benchmark: engine sampling under ``batch_size="auto"`` vs ``64`` (the former default).

A 4-layer random Llama (width 256, 2 key-value heads, vocabulary 8,192), 32 prompts of 40
tokens, N = 8 samples of 32 new tokens at temperature 1 (no stop token). Under auto the decode
budget (2^15 positions on CPU) holds all 256 sequences in one pass; 64 decodes 4 passes of 8
prompts. The two settings alternate ``--repeats`` times in one process (one thread); CPU and
wall seconds of each run, the ratio between the fastest CPU runs, and whether the samples and
log-probs agree. Prints a Markdown table (``benchmarks/sampling_batching.md``).

    .venv/bin/python benchmarks/sampling_batching.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import torch

from lmcoverage.engine.sampling import sample_with_logp


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=8192, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)).eval()
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, 8192, (40,), generator=g).tolist() for _ in range(32)]
    runs: dict[int | str, list[tuple[float, float]]] = {"auto": [], 64: []}
    outputs = {}
    for _ in range(args.repeats):
        for size in runs:
            cpu, wall = _cpu(), time.perf_counter()
            outputs[size] = sample_with_logp(model, prompts, 8, 32, seed=0, batch_size=size,
                                             progress=False)
            runs[size].append((_cpu() - cpu, time.perf_counter() - wall))
    pairs = [(a, b) for ga, gb in zip(outputs["auto"], outputs[64], strict=True)
             for a, b in zip(ga, gb, strict=True)]
    print("| batch_size | CPU s per run | wall s per run |")
    print("|---|---|---|")
    for size, times in runs.items():
        print(f"| {size} | {', '.join(f'{c:.2f}' for c, _ in times)} | "
              f"{', '.join(f'{w:.2f}' for _, w in times)} |")
    best = {size: min(c for c, _ in times) for size, times in runs.items()}
    print(f"\nauto / 64 CPU time (fastest runs): {best['auto'] / best[64]:.2f}; same tokens: "
          f"{all(a.ids == b.ids for a, b in pairs)}; max |logp difference|: "
          f"{max(abs(a.logp - b.logp) for a, b in pairs):.2e}; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
