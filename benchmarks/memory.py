"""Peak memory of ``lmcoverage score --data`` against the number of input rows (it must not
grow with the input), the cost of its check pass, and whether scores depend on the chunking.

Run from the repository root (numbers in ``memory.md``)::

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/memory.py \\
        --rows 20000,200000,2000000 [--baseline-src /tmp/base/src --baseline-rows 20000,2000000]
    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/memory.py \\
        --invariance 3000 --chunks 8192,1000,333

Each size is one ``lmcoverage score`` process on a tiny random Llama (Figure 2 task tokenizer)
over Figure 2 rows (text prompt and response, cycled from 2,000 drawn problems); peak RSS, CPU
and wall seconds are those ``/usr/bin/time`` reports for that process. ``--baseline-src`` runs
the same command from another source tree (``git archive COMMIT src | tar -x -C DIR``) in the
same run. The check pass (:func:`lmcoverage.engine.table.check_examples`) is timed alone in this
process. ``--invariance N`` scores N distinct rows in-process under each ``--chunks`` size
(``SCORE_CHUNK_ROWS``) and counts the scores that differ from the first size's, recording for
every prompt the padded width of the prompt pass it ran in; two diagnostics, not the engine's
batching: ``--one-length-passes`` restricts each prompt pass to prompts of one length (no
padding), ``--eager`` runs the model with eager attention instead of SDPA. ``--kernels``
prints the two float32 kernel effects alone: a tiny Llama's logits with its prompt padded to
several widths (SDPA and eager), and row 0 of ``F.linear`` for inputs of 1-19 rows.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any


def _setup(tmp: Path) -> tuple[Any, Path, list[dict[str, Any]]]:
    """The task, a saved tiny Llama and 2,000 (prompt, response) rows."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from lmcoverage.models.hf import save
    from lmcoverage.tasks import get_task
    from tiny_llama import tiny_llama

    task = get_task("figure2-h4")
    base = [task.to_row(p) for p in task.sample(2000, seed=0)]
    model = save(tiny_llama(task.vocab_size, task.max_length, seed=0), tmp / "m",
                 tokenizer=task.tokenizer())
    return task, model, [{"prompt": r["prompt"], "response": r["response"]} for r in base]


def _score_process(model: Path, data: Path, out: Path, src: str | None) -> tuple[float, ...]:
    """``(peak RSS MiB, CPU s, wall s)`` of one ``lmcoverage score`` process."""
    cmd = [sys.executable, "-m", "lmcoverage", "score", "--model", str(model), "--data",
           str(data), "--out", str(out), "--no-progress", "--device", "cpu"]
    env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
    code = subprocess.run(["/usr/bin/time", "-f", "%M %U %S %e", *cmd], capture_output=True,
                          text=True, env=env)
    if code.returncode != 0:
        print(code.stderr[-2000:])
        raise SystemExit(1)
    rss_kb, user, system, wall = code.stderr.strip().splitlines()[-1].split()
    return int(rss_kb) / 1024, float(user) + float(system), float(wall)


def _check_pass_seconds(model: Path, data: Path) -> float:
    """CPU seconds of the check pass alone on ``data`` (rows re-read, tokenized, checked)."""
    from lmcoverage.engine.table import check_examples, data_examples
    from lmcoverage.models.hf import load_tokenizer

    examples = data_examples(data, keep_rows=False)
    tokenizer = load_tokenizer(model)
    start = resource.getrusage(resource.RUSAGE_SELF)
    check_examples(examples, model, tokenizer)
    end = resource.getrusage(resource.RUSAGE_SELF)
    return (end.ru_utime - start.ru_utime) + (end.ru_stime - start.ru_stime)


def memory(args: argparse.Namespace) -> None:
    from lmcoverage.io import write_jsonl

    print(f"load: {os.getloadavg()}  {time.strftime('%H:%M:%S')}")
    print("| code | rows | JSONL MB | peak RSS MiB | wall s | CPU s | check pass CPU s |")
    print("|---|---|---|---|---|---|---|")
    runs = [("this", n, None) for n in _sizes(args.rows)]
    if args.baseline_src:
        runs += [("baseline", n, args.baseline_src) for n in _sizes(args.baseline_rows)]
    with tempfile.TemporaryDirectory() as tmp:
        _, model, base = _setup(Path(tmp))
        for code, n, src in runs:
            data = Path(tmp) / f"rows{n}.jsonl"
            if not data.exists():
                write_jsonl(data, [base[i % len(base)] for i in range(n)])
            rss, cpu, wall = _score_process(model, data, Path(tmp) / f"s{n}.parquet", src)
            check = "" if src else f"{_check_pass_seconds(model, data):.1f}"
            print(f"| {code} | {n:,} | {data.stat().st_size / 1e6:.1f} | {rss:.0f} | "
                  f"{wall:.1f} | {cpu:.1f} | {check} |", flush=True)
    print(f"load after: {os.getloadavg()}  {time.strftime('%H:%M:%S')}")


def invariance(args: argparse.Namespace) -> None:
    """Scores of ``args.invariance`` distinct rows under each chunk size, against the first."""
    import numpy as np
    import torch

    from lmcoverage.engine import scoring
    from lmcoverage.engine import table as engine_table
    from lmcoverage.io import write_jsonl

    torch.set_num_threads(1)
    widths: dict[tuple[int, ...], int] = {}  # prompt -> padded width of its prompt pass
    run_chunk = scoring._score_chunk

    def recording(model: Any, chunk: list[int], prompt_ids: list[list[int]],
                  *rest: Any) -> Any:
        width = max(len(prompt_ids[i]) for i in chunk)
        widths.update({tuple(prompt_ids[i]): width for i in chunk})
        return run_chunk(model, chunk, prompt_ids, *rest)

    scoring._score_chunk = recording  # type: ignore[assignment]
    if args.one_length_passes:
        next_chunk = scoring._next_chunk

        def one_length(pending: Any, start: int, counts: Any, lengths: Any,
                       budget: Any) -> list[int]:
            chunk = next_chunk(pending, start, counts, lengths, budget)  # sorted by length
            return [i for i in chunk if lengths[i] == lengths[chunk[0]]]

        scoring._next_chunk = one_length  # type: ignore[assignment]
    if args.eager:
        load = engine_table.load_causal_lm

        def eager(*a: Any, **k: Any) -> Any:
            model = load(*a, **k)
            model.set_attn_implementation("eager")
            return model

        engine_table.load_causal_lm = eager  # type: ignore[assignment]
    sizes = _sizes(args.chunks)
    with tempfile.TemporaryDirectory() as tmp:
        task, model, _ = _setup(Path(tmp))
        rows = [task.to_row(p) for p in task.sample(args.invariance, seed=1)]
        data = Path(tmp) / "rows.jsonl"
        write_jsonl(data, [{k: r[k] for k in ("prompt", "response", "valid_paths")}
                           for r in rows])
        examples = engine_table.data_examples(data, keep_rows=False)
        results = {}
        for size in sizes:
            engine_table.SCORE_CHUNK_ROWS = size
            widths.clear()
            scores = engine_table.model_scores([model], examples, progress=False,
                                               batch_size=args.batch_size)
            results[size] = (scores.loglik[0], scores.mass[0], dict(widths))
        first = results[sizes[0]]
        _, whole = next(engine_table.example_chunks(examples, len(examples)))
        prompts = [tuple(p) for p in engine_table.encode_examples(whole, model)[0]]
        for size in sizes[1:]:
            loglik, mass, w = results[size]
            differ = np.flatnonzero(loglik != first[0])
            moved = [i for i in range(len(prompts)) if w[prompts[i]] != first[2][prompts[i]]]
            print(f"chunks {sizes[0]} vs {size} (batch {args.batch_size}): loglik differs on "
                  f"{differ.size}/{len(prompts)} rows (max {np.abs(loglik - first[0]).max():.3g}"
                  f" nats), mass_correct on {np.count_nonzero(mass != first[1])} (max "
                  f"{np.abs(mass - first[1]).max():.3g}); prompt pass width changed for "
                  f"{len(moved)} rows, of which {len(set(moved) & set(differ.tolist()))} "
                  f"differ; widths of the differing rows: "
                  f"{Counter((first[2][prompts[i]], w[prompts[i]]) for i in differ)}")


def kernels() -> None:
    """The float32 kernel effects behind chunk-dependent scores, each alone (one thread)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(1)
    ids = torch.randint(0, 53, (1, 54), generator=torch.Generator().manual_seed(1))
    for impl in ("sdpa", "eager"):
        config = LlamaConfig(vocab_size=53, hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=128, attn_implementation=impl)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = LlamaForCausalLM(config).eval()
        with torch.inference_mode():
            alone = model(ids).logits[0, -1]
            gaps = {}
            for width in (60, 69, 78, 93, 128):
                padded = torch.zeros(1, width, dtype=torch.long)
                padded[0, :54] = ids
                mask = (torch.arange(width) < 54).long()[None]
                logits = model(padded, attention_mask=mask).logits[0, 53]
                gaps[width] = float((logits - alone).abs().max())
        print(f"{impl} attention, 54-token prompt padded to width: max logit change {gaps}")
    g = torch.Generator().manual_seed(0)
    weight, x = torch.randn(53, 32, generator=g), torch.randn(19, 32, generator=g)
    rows = {m: torch.nn.functional.linear(x[:m], weight)[0] for m in range(1, 20)}
    print("F.linear row 0, max change against M = 1 and M = 4 rows:",
          {m: (float((r - rows[1]).abs().max()), float((r - rows[4]).abs().max()))
           for m, r in rows.items()})


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="20000,200000,2000000")
    parser.add_argument("--baseline-src", default=None)
    parser.add_argument("--baseline-rows", default="20000,2000000")
    parser.add_argument("--invariance", type=int, default=0)
    parser.add_argument("--chunks", default="8192,1000,333")
    parser.add_argument("--batch-size", default="auto",
                        type=lambda v: v if v == "auto" else int(v))
    parser.add_argument("--one-length-passes", action="store_true")
    parser.add_argument("--eager", action="store_true")
    parser.add_argument("--kernels", action="store_true")
    args = parser.parse_args()
    if args.kernels:
        kernels()
    else:
        (invariance if args.invariance else memory)(args)


if __name__ == "__main__":
    main()
