"""``score`` against lm-evaluation-harness ``HFLM.loglikelihood`` at equal results: 200
distinct (prompt, response) pairs, and a 4-choice workload (each context with 4
continuations).

Run from the repository root (numbers in ``lm_eval_batching.md``; needs the benchmark-only
dependency ``lm-eval``, see ``pyproject.toml``'s ``bench`` extra; skipped without it)::

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lm_eval_batching.py \\
        --model /tmp/smollm2   # lmcoverage convert SmolLM2-135M-Instruct.Q4_1.gguf --out ...

Both sides score the same token ids (lm-eval's own encoding of each (context, continuation)
pair, fed to ``score`` as ``prompt_ids``/``response_ids`` rows), with the same batch size.
Times are CPU seconds of this process (one thread); ``score`` is timed through the CLI code
path (``data_examples`` + ``score_models``, model load included), lm-eval with the model
already loaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from engine_common import timed

torch.set_num_threads(1)

WORDS = ("the river carried small boats past the old mill while children counted stones and "
         "a quiet dog watched the baker open his shop before the rain began to fall on every "
         "roof of the town near the hills where farmers grow wheat and apples").split()


def text(rng: np.random.Generator, low: int, high: int) -> str:
    """Between ``low`` and ``high`` words drawn from :data:`WORDS`."""
    return " ".join(rng.choice(WORDS, size=int(rng.integers(low, high + 1))))


def workloads(seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    """``distinct``: 200 pairs with their own contexts (10-120 words, continuations 2-20);
    ``4-choice``: 100 contexts x 4 continuations (2-12 words)."""
    rng = np.random.default_rng(seed)
    distinct = [(text(rng, 10, 120), " " + text(rng, 2, 20)) for _ in range(200)]
    choice = [(ctx, " " + text(rng, 2, 12)) for ctx in (text(rng, 10, 120) for _ in range(100))
              for _ in range(4)]
    return {"distinct": distinct, "4-choice": choice}


def main() -> None:
    if importlib.util.find_spec("lm_eval") is None:
        print("skipped: lm-eval is not installed (pip install 'lmcoverage[bench]')")
        sys.exit(0)
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from lmcoverage.engine.table import data_examples, score_models
    from lmcoverage.io import write_jsonl
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--parts", default="distinct,4-choice")
    args = parser.parse_args()
    model_dir = Path(args.model)
    print(f"load: {os.getloadavg()}  torch {torch.__version__}  {time.strftime('%H:%M:%S')}")
    model, tok = load_causal_lm(model_dir), load_tokenizer(model_dir)
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=args.batch_size, device="cpu")
    for name, pairs in workloads().items():
        if name not in args.parts.split(","):
            continue
        requests = [Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=0)
                    for pair in pairs]
        t_lm, theirs = timed(lambda r=requests: lm.loglikelihood(r, disable_tqdm=True))
        rows = []
        for ctx, cont in pairs:
            ctx_ids, cont_ids = lm._encode_pair(ctx, cont)
            rows.append({"prompt_ids": ctx_ids, "response_ids": cont_ids})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pairs.jsonl"
            write_jsonl(path, rows)
            t_ours, table = timed(lambda p=path: score_models(
                [model_dir], data_examples(p), progress=False, batch_size=args.batch_size))
        ours = table.matrix("loglik")[0]
        diff = np.abs(ours - np.array([ll for ll, _ in theirs]))
        tokens = sum(len(r["prompt_ids"]) + len(r["response_ids"]) for r in rows)
        print(f"\n## {name}: {len(pairs)} pairs, {len({c for c, _ in pairs})} contexts, "
              f"{tokens} tokens; batch size {args.batch_size}")
        print("| method | CPU s |\n|---|---|")
        print(f"| lm-eval HFLM.loglikelihood | {t_lm:.2f} |")
        print(f"| lmcoverage score_models | {t_ours:.2f} |")
        print(f"ratio {t_lm / t_ours:.2f}x; max |difference| {diff.max():.1e} nats "
              f"(mean {diff.mean():.1e})")
    print(f"\nload after: {os.getloadavg()}  {time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    main()
