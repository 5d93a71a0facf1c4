"""CLI: ``lmcoverage verify``: sample K responses per prompt from each candidate and verify them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lmcoverage.commands._output import DeviceOption, DtypeOption
from lmcoverage.distributed import (
    EXECUTOR_HELP,
    RAY_ADDRESS_HELP,
    SHARDS_HELP,
    check_executor,
    finish_sharded,
    verify_texts_sharded,
)

VERIFY_HELP = """Sample --samples K responses per prompt from every candidate (--model DIR or
DIR@temperature=T) and check each against the row's `answer` with --verifier: exact, number
(the last number in the response equals the answer's), regex:PATTERN, or module:function (a
Python callable (row, response_text) -> bool). Writes one JSONL row per sample (model,
problem, sample_index, response, correct) and prints unbiased pass@k with intervals for
k = 1, 2, 4, ... up to K. Prompt rows (.jsonl or .parquet): `prompt` text, `messages` or
`prompt_ids`; `answer`; an optional `problem` id (default: the row's position).
"""


def verify_candidates(
    candidates: list[str],
    data: Path,
    samples: int,
    verifier: str,
    max_new_tokens: int = 32,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    executor: str = "local",
    ray_address: str | None = None,
    shards: int | None = None,
    out: Path | None = None,
    dtype: str = "float32",
) -> list[dict[str, Any]]:
    """Verdict rows of every candidate on the prompts of ``data`` (cheap checks first).

    With ``executor="ray"`` or ``shards``, sampling runs in prompt shards
    (:func:`lmcoverage.distributed.verify_texts_sharded`, kept in ``out``.shards/ until the
    caller's :func:`~lmcoverage.distributed.finish_sharded`); the verdicts are the same.
    """
    from lmcoverage.engine.candidates import parse_candidates
    from lmcoverage.engine.rows import read_rows
    from lmcoverage.errors import InputError
    from lmcoverage.verify.sampling import sample_texts
    from lmcoverage.verify.verdicts import check_problem_ids, judge
    from lmcoverage.verify.verifiers import get_verifier

    if samples < 1:
        raise InputError(f"--samples: must be >= 1, got {samples}")
    if max_new_tokens < 1:
        raise InputError(f"--max-new-tokens: must be >= 1, got {max_new_tokens}")
    check = get_verifier(verifier)
    rows = [row for _, row in read_rows(data)]
    check.check_rows(rows, str(data))
    check_problem_ids(rows, str(data))
    parsed = parse_candidates(candidates, "--model")
    check_executor(executor, ray_address)
    sharded = None
    if executor != "local" or shards is not None:
        if out is None:
            raise InputError("sharded verify needs the output path (out) for its shards")
        sharded = verify_texts_sharded(parsed, rows, samples, out, executor, ray_address, shards,
                                       progress, max_new_tokens=max_new_tokens, seed=seed,
                                       device=device, source=str(data), dtype=dtype)
    verdicts: list[dict[str, Any]] = []
    for c, candidate in enumerate(parsed):
        texts = (sharded[c] if sharded is not None
                 else sample_texts(candidate, rows, samples, max_new_tokens, seed=seed,
                                   device=device, progress=progress, source=str(data),
                                   dtype=dtype))
        verdicts += judge(candidate.name, rows, texts, check, str(data))
    return verdicts


def verify(
    model: Annotated[list[str], typer.Option(
        "--model", help="Candidate: model directory, optionally @temperature=T; repeatable.")],
    data: Annotated[Path, typer.Option(help="Prompt rows, .jsonl or .parquet (prompt, "
                                      "messages or prompt_ids; answer; problem).")],
    samples: Annotated[int, typer.Option(help="Responses per prompt and candidate (K).")],
    verifier: Annotated[str, typer.Option(help="exact, number, regex:PATTERN or "
                                          "module:function.")],
    out: Annotated[Path, typer.Option(help="Verdicts JSONL to write.")],
    max_new_tokens: Annotated[int, typer.Option(help="Response length cap (tokens).")] = 32,
    seed: Annotated[int, typer.Option(help="Sampling seed (same seed, same samples).")] = 0,
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")]
    = 0.95,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "float32",
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")]
    = False,
    executor: Annotated[str, typer.Option("--executor", help=EXECUTOR_HELP)] = "local",
    ray_address: Annotated[str | None, typer.Option("--ray-address", help=RAY_ADDRESS_HELP)]
    = None,
    shards: Annotated[int | None, typer.Option("--shards", help=SHARDS_HELP)] = None,
) -> None:
    """Sample, verify and print pass@k (see ``lmcoverage verify --help``)."""
    from lmcoverage.commands._output import emit, resolve_device
    from lmcoverage.errors import InputError
    from lmcoverage.io import check_output_path, write_jsonl
    from lmcoverage.models.hf import resolve_dtype
    from lmcoverage.verify.verdicts import counts_by_model, passk_rows, powers_of_two

    check_output_path(out, (".jsonl",), {"--data": data})
    if not 0 < confidence < 1:
        raise InputError(f"--confidence: must lie in (0, 1), got {confidence}")
    dev = resolve_device(device, announce=not no_progress)
    resolve_dtype(dtype, dev)  # an unknown or unsupported --dtype fails before any work
    verdicts = verify_candidates(model, data, samples, verifier, max_new_tokens, seed, dev,
                                 not no_progress, executor, ray_address, shards, out, dtype)
    rows = passk_rows(counts_by_model(verdicts), powers_of_two(samples), confidence)
    write_jsonl(out, verdicts)
    finish_sharded(out)
    display = [{"model": r["model"], "k": r["k"], "pass@k": r["pass_at_k"],
                f"{confidence:.0%} interval": f"[{r['lo']:.4f}, {r['hi']:.4f}]"} for r in rows]
    emit(rows, None, None, title=f"pass@k ({verifier}, {samples} samples per prompt)",
         display=display)
    typer.echo(f"wrote {out}: {len(verdicts)} verdicts")


def register(app: typer.Typer) -> None:
    """Add ``verify`` to ``app``."""
    app.command("verify", help=VERIFY_HELP)(verify)
