"""CLI command ``lmcoverage sample``: K responses per prompt row from a model and decoding."""

from __future__ import annotations

from pathlib import Path

import typer

from lmcoverage.commands._decoding import SamplingOptions, with_sampling_options
from lmcoverage.sharding import (
    EXECUTOR_HELP,
    RAY_ADDRESS_HELP,
    SHARDS_HELP,
    check_executor,
    finish_sharded,
)

SAMPLE_HELP = """Sample --n responses per prompt row from a model (directory or .gguf file).

--model is a directory, a .gguf file or DIR@temperature=0.8,... (then no decoding flags), named
as `score` names it. Rows (--data, .jsonl or .parquet) give prompt text, messages (chat
template) or prompt_ids. Each output row keeps the input row's fields and adds model (the
candidate's name), problem (the row's `problem` or `id` field, else its 0-based position),
response (text), prompt_ids,
response_ids (ending with the stop token when the sample stopped), sample_index, logp (log-prob
under the sampling distribution) and stopped. Decoding: --temperature, --top-p, --top-k,
--min-p. Responses stop at the model's EOS and chat end-of-turn tokens or at
--max-new-tokens. Same --seed, same samples.
"""


@with_sampling_options
def sample(
    model: str = typer.Option(
        ..., "--model", help="Model directory, .gguf file or DIR@temperature=T,..."),
    data: Path = typer.Option(..., "--data", help="Prompt rows (.jsonl or .parquet)."),
    n: int = typer.Option(..., "--n", help="Samples per prompt row (K)."),
    out: Path = typer.Option(..., "--out", help="Output samples (.jsonl)."),
    options: SamplingOptions = SamplingOptions(),
    executor: str = typer.Option("local", "--executor", help=EXECUTOR_HELP),
    ray_address: str | None = typer.Option(None, "--ray-address", help=RAY_ADDRESS_HELP),
    shards: int | None = typer.Option(None, "--shards", help=SHARDS_HELP),
) -> None:
    from lmcoverage.commands._decoding import model_and_decoding
    from lmcoverage.commands._options import check_sampling
    from lmcoverage.commands._output import parse_batch_size, resolve_device
    from lmcoverage.engine.rows import encode_prompt, read_rows, sample_rows
    from lmcoverage.engine.sharded import sample_sharded
    from lmcoverage.errors import InputError
    from lmcoverage.io import check_output_path, write_jsonl
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer, resolve_dtype
    from lmcoverage.verify.verdicts import check_problem_ids, problem_id

    candidate, spec, name = model_and_decoding(model, options)
    for flag, value in (("--n", n), ("--max-new-tokens", options.max_new_tokens)):
        if value < 1:
            raise InputError(f"{flag}: must be a positive integer, got {value}")
    batch_size = parse_batch_size(options.batch_size)
    check_sampling(n, options.seed, "--n")
    check_output_path(out, (".jsonl",), {"--data": data})
    check_executor(executor, ray_address)
    path = candidate.path
    numbered = read_rows(data)
    check_problem_ids([row for _, row in numbered], str(data))
    numbered = [(where, {"model": name, **row, "problem": problem_id(row, i)})
                for i, (where, row) in enumerate(numbered)]
    dev = resolve_device(options.device, announce=False)
    resolve_dtype(options.dtype, dev)  # an unknown or unsupported --dtype fails before any work
    tokenizer = load_tokenizer(path, trust_remote_code=options.trust_remote_code)
    lengths = [len(encode_prompt(tokenizer, row, where))  # all encode before the model loads
               for where, row in numbered]
    if executor == "local" and shards is None:
        lm = load_causal_lm(path, trust_remote_code=options.trust_remote_code, device=dev,
                            dtype=options.dtype)
        rows = sample_rows(lm, tokenizer, [row for _, row in numbered], n, spec,
                           seed=options.seed, max_new_tokens=options.max_new_tokens,
                           batch_size=batch_size, progress=not options.no_progress,
                           where=[w for w, _ in numbered])
    else:
        rows = sample_sharded(path, [row for _, row in numbered], [w for w, _ in numbered],
                              n, spec, out, executor, ray_address, shards,
                              not options.no_progress, prompt_lengths=lengths,
                              seed=options.seed, max_new_tokens=options.max_new_tokens,
                              batch_size=batch_size, device=dev, dtype=options.dtype,
                              trust_remote_code=options.trust_remote_code)
    write_jsonl(out, rows)
    finish_sharded(out)
    typer.echo(f"wrote {out}: {len(numbered)} prompt(s) x {n} sample(s)")


def register(app: typer.Typer) -> None:
    """Add this module's command to app."""
    app.command("sample", help=SAMPLE_HELP)(sample)
