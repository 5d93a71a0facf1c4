"""``score`` and ``sample`` on CUDA against CPU, in float32 and bfloat16: agreement and
throughput. Part of ``gpu_check.sh`` (which runs it on a lent GPU); without CUDA it runs the
CPU side only and says so, which is how it is checked on CPU-only machines.

    .venv/bin/python benchmarks/gpu_check.py [--model DIR] [--out summary.md]

Model: ``--model DIR`` (e.g. SmolLM2-135M converted with ``lmcoverage convert``) when given
and present, else a seeded random Llama of SmolLM2-135M's shape built from its config (no
download, no tokenizer: token ids). Times are wall seconds (``torch.cuda.synchronize``d).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: SmolLM2-135M's shape (config.json of HuggingFaceTB/SmolLM2-135M).
SMOLLM2_SHAPE = {"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
                 "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
                 "max_position_embeddings": 8192, "rope_theta": 100000.0,
                 "tie_word_embeddings": True}


def build_model(model_dir: Path | None, device: str, dtype: str) -> Any:
    """The model on ``device`` in ``dtype``: ``model_dir`` loaded, or the random Llama."""
    from lmcoverage.models.hf import load_causal_lm, resolve_dtype

    if model_dir is not None:
        return load_causal_lm(model_dir, device=device, dtype=dtype)
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(**SMOLLM2_SHAPE))
    return model.to(device=device, dtype=resolve_dtype(dtype, device)).eval()


def workload(vocab: int, prompts: int, k: int, seed: int = 0) -> tuple[list, list]:
    """``prompts`` random prompts (40-120 tokens), each with ``k`` responses (8-24 tokens)."""
    rng = np.random.default_rng(seed)
    ps = [rng.integers(0, vocab, int(rng.integers(40, 121))).tolist() for _ in range(prompts)]
    rs = [[rng.integers(0, vocab, int(rng.integers(8, 25))).tolist() for _ in range(k)]
          for _ in ps]
    return ps, rs


def clock(fn: Any, device: str) -> tuple[float, Any]:
    """Wall seconds of ``fn()`` (CUDA synchronised) and its result."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main() -> None:
    from lmcoverage.decoding.spec import DecodingSpec
    from lmcoverage.engine import score_responses
    from lmcoverage.engine.sampling import sample_with_logp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--cpu-prompts", type=int, default=8,
                        help="prompts scored on CPU as well (the agreement check)")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    model_dir = args.model if args.model is not None and args.model.is_dir() else None
    cuda = torch.cuda.is_available()
    lines = [f"model: {model_dir or 'random Llama of SmolLM2-135M shape'}; torch "
             f"{torch.__version__}; CUDA: "
             f"{torch.cuda.get_device_name(0) if cuda else 'not available (CPU side only)'}"]
    few = args.cpu_prompts
    cpu = build_model(model_dir, "cpu", "float32")
    vocab = int(cpu.get_input_embeddings().num_embeddings)
    prompts, responses = workload(vocab, args.prompts, args.k)
    t_cpu, exact = clock(lambda: score_responses(cpu, prompts[:few], responses[:few],
                                                 progress=False), "cpu")
    rows = sum(len(r) for r in responses[:few])
    lines.append(f"| score | cpu | float32 | {rows} rows | {t_cpu:.2f} s | "
                 f"{rows / t_cpu:.1f} rows/s | reference |")
    spec = DecodingSpec()
    t_scpu, drawn_cpu = clock(lambda: sample_with_logp(cpu, prompts[:2], args.k,
                                                        args.new_tokens, spec, seed=0,
                                                        progress=False), "cpu")
    lines.append(f"| sample | cpu | float32 | {2 * args.k} x {args.new_tokens} tokens | "
                 f"{t_scpu:.2f} s | {2 * args.k * args.new_tokens / t_scpu:.0f} tokens/s | "
                 "reference |")
    devices = ["cuda"] if cuda else []
    for device in devices:
        for dtype in ("float32", "bfloat16"):
            model = build_model(model_dir, device, dtype)
            score_responses(model, prompts[:2], responses[:2], progress=False)  # warm-up
            t, got = clock(lambda m=model: score_responses(m, prompts, responses,
                                                           progress=False), device)
            err = np.abs(np.concatenate(got[:few]) - np.concatenate(exact))
            total = sum(len(r) for r in responses)
            lines.append(f"| score | {device} | {dtype} | {total} rows | {t:.2f} s | "
                         f"{total / t:.0f} rows/s | vs cpu float32: mean {err.mean():.2e}, max "
                         f"{err.max():.2e} nats |")
            t, drawn = clock(lambda m=model: sample_with_logp(m, prompts[:2], args.k,
                                                              args.new_tokens, spec, seed=0,
                                                              progress=False), device)
            same = np.mean([a.ids == b.ids for ga, gb in zip(drawn, drawn_cpu, strict=True)
                            for a, b in zip(ga, gb, strict=True)])
            t_big, _ = clock(lambda m=model: sample_with_logp(m, prompts, args.k,
                                                              args.new_tokens, spec, seed=0,
                                                              progress=False), device)
            n_tok = len(prompts) * args.k * args.new_tokens
            lines.append(f"| sample | {device} | {dtype} | {n_tok} tokens | {t_big:.2f} s | "
                         f"{n_tok / t_big:.0f} tokens/s | samples equal to cpu float32's: "
                         f"{same:.2f} |")
            del model
            torch.cuda.empty_cache()
    table = ["| command | device | dtype | work | time | throughput | agreement |",
             "|---|---|---|---|---|---|---|", *lines[1:]]
    text = "\n".join([lines[0], "", *table]) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
