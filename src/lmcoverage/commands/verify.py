"""CLI: ``lmcoverage verify``: sample K responses per prompt from each candidate and verify them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from lmcoverage.commands._output import BatchSizeOption, DeviceOption, DtypeOption, WideOption
from lmcoverage.errors import InputError
from lmcoverage.sharding import (
    EXECUTOR_HELP,
    RAY_ADDRESS_HELP,
    SHARDS_HELP,
    check_executor,
    finish_sharded,
)
from lmcoverage.verify.verifiers import DEFAULT_TIMEOUT

VERIFY_HELP = """Sample --n K responses per prompt from every candidate (--model DIR,
DIR@temperature=T or a quoted glob, named as `score` names them) and check each against the
row's `answer` with --verifier: exact, number (the last number in the response equals the
answer's), regex:PATTERN, or module:function (a Python callable (row, response_text) -> bool).
Writes one JSONL row per sample (model, problem, sample_index, response, correct, and group
when the prompt row has one) and prints unbiased pass@k with intervals for k = 1, 2, 4, ...
up to K. Prompt rows (--data, .jsonl or .parquet): `prompt` text, `messages` or `prompt_ids`;
`answer`; an optional `problem` (or `id`) field (default: the row's position).

--samples K is the same as --n K. --samples FILE (repeatable) verifies samples already drawn
instead of sampling: JSONL rows with model, problem (or doc_id) and response, as `lmcoverage
sample` writes them; --data, if given, joins each sample to its prompt row by problem (for
the answer); --model is not used then.
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
    verifier_timeout: float = DEFAULT_TIMEOUT,
    batch_size: int | str = "auto",
) -> list[dict[str, Any]]:
    """Verdict rows of every candidate on the prompts of ``data`` (cheap checks first).

    With ``executor="ray"`` or ``shards``, sampling runs in prompt shards
    (:func:`lmcoverage.verify.sharded.verify_texts_sharded`, kept in ``out``.shards/ until the
    caller's :func:`~lmcoverage.sharding.finish_sharded`); the verdicts are the same.
    """
    from lmcoverage.commands._options import check_sampling
    from lmcoverage.engine.candidates import parse_candidates
    from lmcoverage.engine.rows import read_rows
    from lmcoverage.errors import InputError
    from lmcoverage.verify.sampling import sample_texts
    from lmcoverage.verify.sharded import verify_texts_sharded
    from lmcoverage.verify.verdicts import check_problem_ids, judge
    from lmcoverage.verify.verifiers import get_verifier

    if samples < 1:
        raise InputError(f"--samples: must be >= 1, got {samples}")
    if max_new_tokens < 1:
        raise InputError(f"--max-new-tokens: must be >= 1, got {max_new_tokens}")
    check_sampling(samples, seed, "--samples")
    check = get_verifier(verifier, verifier_timeout)
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
                                       device=device, source=str(data), dtype=dtype,
                                       batch_size=batch_size)
    verdicts: list[dict[str, Any]] = []
    for c, candidate in enumerate(parsed):
        texts = (sharded[c] if sharded is not None
                 else sample_texts(candidate, rows, samples, max_new_tokens, seed=seed,
                                   device=device, progress=progress, source=str(data),
                                   dtype=dtype, batch_size=batch_size))
        verdicts += judge(candidate.name, rows, texts, check, str(data))
    return verdicts


def verify(
    verifier: Annotated[str, typer.Option(help="exact, number, regex:PATTERN or "
                                          "module:function.")],
    out: Annotated[Path, typer.Option(help="Verdicts JSONL to write.")],
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="Candidate: model directory or quoted glob, optionally "
                        "@temperature=T,...; repeatable.")] = None,
    data: Annotated[Path | None, typer.Option(help="Prompt rows, .jsonl or .parquet (prompt, "
                                             "messages or prompt_ids; answer; problem).")]
    = None,
    n: Annotated[int | None, typer.Option(
        "--n", help="Responses to sample per prompt and candidate (K).")] = None,
    samples: Annotated[list[str] | None, typer.Option(
        "--samples", help="K (as --n), or a samples JSONL file to verify instead of "
                          "sampling (repeatable).")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Response length cap (tokens).")] = 32,
    seed: Annotated[int, typer.Option(help="Sampling seed (same seed, same samples).")] = 0,
    confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.")]
    = 0.95,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "float32",
    batch_size: BatchSizeOption = "auto",
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")]
    = False,
    executor: Annotated[str, typer.Option("--executor", help=EXECUTOR_HELP)] = "local",
    ray_address: Annotated[str | None, typer.Option("--ray-address", help=RAY_ADDRESS_HELP)]
    = None,
    shards: Annotated[int | None, typer.Option("--shards", help=SHARDS_HELP)] = None,
    verifier_timeout: Annotated[float, typer.Option(
        help="Seconds one verdict may take; a sample that takes longer is an error naming "
             "its row.")] = DEFAULT_TIMEOUT,
    wide: WideOption = False,
) -> None:
    """Sample, verify and print pass@k (see ``lmcoverage verify --help``)."""
    from lmcoverage.commands._output import emit, parse_batch_size, resolve_device
    from lmcoverage.errors import InputError
    from lmcoverage.io import check_output_path, write_jsonl
    from lmcoverage.models.hf import resolve_dtype
    from lmcoverage.verify.verdicts import counts_by_model, passk_rows, powers_of_two

    k, files = _samples_option(n, samples)
    size = parse_batch_size(batch_size)
    inputs: dict[str, str | os.PathLike[str] | None] = {"--data": data}
    inputs.update({f"--samples {f}": f for f in files})
    check_output_path(out, (".jsonl",), inputs)
    if not 0 < confidence < 1:
        raise InputError(f"--confidence: must lie in (0, 1), got {confidence}")
    if files:
        if model:
            raise InputError("--samples FILE verifies samples already drawn; drop --model "
                             "(the samples name their models)")
        verdicts = verify_sample_files(files, verifier, data, verifier_timeout)
        counts = counts_by_model(verdicts, str(files[0]))
        k = int(min(int(c.n.min()) for c in counts.values()))
    else:
        if not model or data is None:
            raise InputError("give --model and --data to sample (or --samples FILE)")
        dev = resolve_device(device, announce=not no_progress)
        resolve_dtype(dtype, dev)  # an unknown or unsupported --dtype fails before any work
        verdicts = verify_candidates(model, data, k, verifier, max_new_tokens, seed, dev,
                                     not no_progress, executor, ray_address, shards, out, dtype,
                                     verifier_timeout, size)
        counts = counts_by_model(verdicts)
    rows = passk_rows(counts, powers_of_two(k), confidence)
    write_jsonl(out, verdicts)
    finish_sharded(out)
    display = [{"model": r["model"], "k": r["k"], "pass@k": r["pass_at_k"],
                f"{confidence:.0%} interval": f"[{r['lo']:.4f}, {r['hi']:.4f}]"} for r in rows]
    emit(rows, None, None, title=f"pass@k ({verifier}, {k} samples per prompt)",
         display=display, wide=wide)
    typer.echo(f"wrote {out}: {len(verdicts)} verdicts")


def _samples_option(n: int | None, samples: list[str] | None) -> tuple[int, list[str]]:
    """``(K, [])`` to sample K responses, or ``(0, files)`` to verify samples files:
    ``--samples`` is K when it is one integer, else samples files."""
    values = list(samples or [])
    if len(values) == 1 and values[0].strip().lstrip("+-").isdigit():
        if n is not None:
            raise InputError("give --n K or --samples K, not both")
        return int(values[0]), []
    if values:
        if n is not None:
            raise InputError("--n samples afresh and --samples FILE verifies drawn samples; "
                             "give one")
        return 0, values
    if n is None:
        raise InputError("give --n K (responses to sample) or --samples FILE (samples to "
                         "verify)")
    return n, []


def verify_sample_files(files: list[str], verifier: str, data: Path | None,
                        verifier_timeout: float = DEFAULT_TIMEOUT) -> list[dict[str, Any]]:
    """Verdict rows of the samples in ``files`` (see :mod:`lmcoverage.verify.existing`)."""
    from lmcoverage.engine.rows import read_rows
    from lmcoverage.verify.existing import judge_samples, read_samples
    from lmcoverage.verify.verdicts import check_problem_ids
    from lmcoverage.verify.verifiers import get_verifier

    check = get_verifier(verifier, verifier_timeout)
    prompts = None
    if data is not None:
        prompts = [row for _, row in read_rows(data)]
        check_problem_ids(prompts, str(data))
    return judge_samples(read_samples(files), check, prompts, str(data))


def register(app: typer.Typer) -> None:
    """Add ``verify`` to ``app``."""
    app.command("verify", help=VERIFY_HELP)(verify)
