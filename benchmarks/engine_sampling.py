"""Benchmark: engine sampling (N=64 per prompt) vs ``model.generate(num_return_sequences=64)``.

Figure 2 validation mix at the paper shape (paper preset, one thread). Each prompt draws 64
responses of the full path length at temperature 1. ``generate`` runs one prompt per call
(``do_sample=True, top_k=0``, so it samples the full softmax like the engine) and expands the
prompt 64 times before its first forward pass; the engine runs the prompt once and repeats its
KV-cache row. CPU seconds of this process, both timed in the same run.

    .venv/bin/python benchmarks/engine_sampling.py --horizon 16 --per-class 1
"""

from __future__ import annotations

import argparse

import torch
from engine_common import paper_model, timed, validation_mix

from lmcoverage.engine import sample_responses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=16)
    parser.add_argument("--per-class", type=int, default=1)
    parser.add_argument("--n", type=int, default=64)
    args = parser.parse_args()

    task, problems = validation_mix(f"figure2-h{args.horizon}", args.per_class)
    model = paper_model(task)
    prompts = [list(p.prompt_ids) for p in problems]
    length = len(problems[0].response_ids)

    def generate() -> list[torch.Tensor]:
        out = []
        with torch.inference_mode():
            for p in prompts:
                ids = torch.tensor([p])
                seqs = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                      top_k=0, temperature=1.0, num_return_sequences=args.n,
                                      max_new_tokens=length, min_new_tokens=length,
                                      pad_token_id=0)
                out.append(seqs[:, len(p):])
        return out

    t_engine, ours = timed(lambda: sample_responses(model, prompts, n=args.n,
                                                    max_new_tokens=length, seed=0,
                                                    batch_size=args.n, progress=False))
    torch.manual_seed(0)
    t_gen, theirs = timed(generate)
    assert all(len(s) == args.n and all(len(r) == length for r in s) for s in ours)
    assert all(t.shape == (args.n, length) for t in theirs)
    samples = len(prompts) * args.n
    mean_plen = sum(map(len, prompts)) / len(prompts)
    print(f"## Sampling: N={args.n} per prompt, figure2-h{args.horizon}, {args.per_class} "
          f"prompt(s) per class, paper model, one thread\n")
    print(f"{len(prompts)} prompts (mean {mean_plen:.0f} tokens), responses of {length} tokens\n")
    print("| method | CPU seconds | samples/s |")
    print("|---|---|---|")
    print(f"| model.generate(num_return_sequences={args.n}) | {t_gen:.2f} | "
          f"{samples / t_gen:.1f} |")
    print(f"| engine sample_responses | {t_engine:.2f} | {samples / t_engine:.1f} |")
    print(f"\nspeed-up: {t_gen / t_engine:.1f}x")


if __name__ == "__main__":
    main()
