"""bfloat16 against float32: ``score`` and ``sample`` CPU time side by side, and the error of
bfloat16 scores (per response, and as flips of the Cov_N indicator, Eq. 3).

Run from the repository root (numbers in ``precision.md``)::

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/precision.py \\
        --model /tmp/smollm2   # lmcoverage convert SmolLM2-135M-Instruct.Q4_1.gguf --out ...

``--random-llama`` replaces the weights by a seeded random Llama of the same shape (the
model's config), for machines without SmolLM2. Times are CPU seconds of this process
(``time.process_time``, one thread); both sides of each ratio are measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from engine_common import timed
from real_models import prompt_rows

torch.set_num_threads(1)


def random_llama(model_dir: Path, out: Path) -> Path:
    """A seeded random ``LlamaForCausalLM`` with ``model_dir``'s config and tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from lmcoverage.models.hf import load_tokenizer, save

    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    torch.manual_seed(0)
    return save(AutoModelForCausalLM.from_config(config).eval(), out, load_tokenizer(model_dir))


def matmul_rates(size: int = 1024) -> str:
    """One thread's float32 and bfloat16 matmul rates now (the machine's state: under load the
    bfloat16 units slow down far more than float32)."""
    rates = []
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(size, size, dtype=dtype)
        seconds, _ = timed(lambda a=a: [a @ a for _ in range(10)], repeats=3)
        rates.append(2 * size**3 * 10 / seconds / 1e9)
    return (f"matmul {size}x{size}: float32 {rates[0]:.0f} GFLOP/s, bfloat16 {rates[1]:.0f} "
            f"GFLOP/s ({rates[1] / rates[0]:.1f}x)")


def flips(exact: np.ndarray, low: np.ndarray, data: np.ndarray, n: int) -> float:
    """Fraction of rows whose indicator ``log pi_D - log pi_hat <= log n`` differs."""
    return float(np.mean((data - exact <= np.log(n)) != (data - low <= np.log(n))))


def main() -> None:
    from lmcoverage.decoding.spec import DecodingSpec
    from lmcoverage.engine.rows import sample_rows
    from lmcoverage.engine.sampling import sample_with_logp
    from lmcoverage.engine.table import data_examples, score_models
    from lmcoverage.io import write_jsonl
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--random-llama", action="store_true",
                        help="random weights of the model's shape instead of its own")
    parser.add_argument("--prompts", type=int, default=30)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--response-tokens", type=int, default=16)
    parser.add_argument("--sample-prompts", type=int, default=4)
    parser.add_argument("--parts", default="score,sample")
    parser.add_argument("--repeats", type=int, default=1,
                        help="sample: float32 and bfloat16 alternate this many times; the "
                             "fastest run of each is kept")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"load: {os.getloadavg()}  torch {torch.__version__}  {time.strftime('%H:%M:%S')}")
    print(matmul_rates())
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(args.model)
        if args.random_llama:
            model_dir = random_llama(model_dir, Path(tmp) / "random")
        tok, model = load_tokenizer(model_dir), load_causal_lm(model_dir)
        rows = prompt_rows(args.prompts if "score" in parts else args.sample_prompts)
        samples = sample_rows(model, tok, rows, args.k, seed=0,
                              max_new_tokens=args.response_tokens, progress=False)
        print(f"{len(rows)} prompts x K={args.k}: {len(samples)} rows, mean prompt "
              f"{np.mean([len(s['prompt_ids']) for s in samples]):.0f} tokens, mean response "
              f"{np.mean([len(s['response_ids']) for s in samples]):.1f} tokens")
        if "score" in parts:
            path = Path(tmp) / "samples.jsonl"
            write_jsonl(path, samples)
            examples = data_examples(path)
            times, tables = {}, {}
            for dtype in ("float32", "bfloat16"):
                times[dtype], tables[dtype] = timed(lambda d=dtype: score_models(
                    [model_dir], examples, progress=False, dtype=d))
            exact = tables["float32"].matrix("loglik")[0]
            low = tables["bfloat16"].matrix("loglik")[0]
            err = np.abs(low - exact)
            print("\n## score (data_examples + score_models, model load included)")
            print("| dtype | CPU s |\n|---|---|")
            for dtype, seconds in times.items():
                print(f"| {dtype} | {seconds:.2f} |")
            print(f"ratio {times['float32'] / times['bfloat16']:.2f}x")
            tokens = np.array([len(s["response_ids"]) for s in samples])
            print(f"|bf16 - f32| per response: mean {err.mean():.4f}, median "
                  f"{np.median(err):.4f}, p95 {np.quantile(err, 0.95):.4f}, max "
                  f"{err.max():.4f} nats (mean {err.mean() / tokens.mean():.4f} per token); "
                  f"mean signed {np.mean(low - exact):+.4f}")
            ref = score_models([model_dir], examples, progress=False,
                               specs=[DecodingSpec(temperature=0.7)]).matrix("loglik")[0]
            gaps = ref - exact
            print("Cov_N indicator flips (pi_D = the float32 model at temperature 0.7; "
                  f"log-ratio median {np.median(gaps):.2f}):")
            print("| N | " + " | ".join(str(n) for n in (2, 4, 8, 16)) + " |")
            print("|---|---|---|---|---|")
            counts = [round(flips(exact, low, ref, n) * len(exact)) for n in (2, 4, 8, 16)]
            print("| rows flipped | " + " | ".join(
                f"{c / len(exact):.4f} ({c}/{len(exact)})" for c in counts) + " |")
        if "sample" in parts:
            ids = [s["prompt_ids"] for s in samples[::args.k][:args.sample_prompts]]
            length = args.response_tokens
            models = {"float32": model, "bfloat16": load_causal_lm(model_dir, dtype="bfloat16")}
            runs: dict[str, list[float]] = {dtype: [] for dtype in models}
            drawn = {}
            for _ in range(args.repeats):
                for dtype, m in models.items():
                    seconds, drawn[dtype] = timed(lambda m=m: sample_with_logp(
                        m, ids, args.k, length, DecodingSpec(), seed=0, progress=False))
                    runs[dtype].append(seconds)
            times = {dtype: min(seconds) for dtype, seconds in runs.items()}
            same = np.mean([a.ids == b.ids for ga, gb in zip(drawn["float32"], drawn["bfloat16"],
                                                             strict=True)
                            for a, b in zip(ga, gb, strict=True)])
            print(f"\n## sample: {len(ids)} prompts x K={args.k} x {length} tokens "
                  "(no stop tokens)")
            print(f"| dtype | CPU s (fastest of {args.repeats}) | all runs |\n|---|---|---|")
            for dtype, seconds in times.items():
                print(f"| {dtype} | {seconds:.2f} | "
                      f"{', '.join(f'{s:.2f}' for s in runs[dtype])} |")
            print(f"ratio {times['float32'] / times['bfloat16']:.2f}x; samples identical to "
                  f"float32's (same seed): {same:.2f}")
    print(matmul_rates())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"\npeak RSS {usage.ru_maxrss / 1024:.0f} MiB; load after: {os.getloadavg()}  "
          f"{time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    main()
