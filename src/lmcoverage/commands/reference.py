"""CLI command ``lmcoverage reference``: pi_D made of a reference model's correct samples."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from lmcoverage.commands._decoding import SamplingOptions, with_sampling_options

REFERENCE_HELP = """Build pi_D from a reference model's good responses.

Samples --n (K >= 2) responses per prompt row from --model (decoding flags as on `sample`),
judges them with --verifier (as on `verify`) and keeps the correct ones as pi_D's samples:
pi_D(y|x) = pi_ref(y|x) 1[y correct] / p(x), with p(x) estimated by c(x)/K. Each --out row is
a sample row (prompt_ids, response_ids, response, the input fields, problem, ...) with
logp_ref (log-prob under the reference's decoding), logp_data = logp_ref - log(c(x)/K),
n_correct (c(x)), n_samples (K), weight (1/c(x) times the input weight), reference (how it
was made) and ref_dtype (the --dtype it ran in). `score --data OUT` reads logp_data, carries
n_correct/n_samples into the table and ref_dtype into its provenance (reference_dtype).
Prompts with no correct sample are left out (pi_D is undefined there), counted on stderr and
listed in OUT.skipped.jsonl; if none remains, nothing is written (exit 2).
"""


def skipped_path(out: Path) -> Path:
    """Where the prompts without a correct sample are listed: ``OUT.skipped.jsonl``."""
    return out.with_name(out.name + ".skipped.jsonl")


@with_sampling_options
def reference(
    model: str = typer.Option(
        ..., "--model", help="Reference model: directory, .gguf file or DIR@settings."),
    data: Path = typer.Option(..., "--data", help="Prompt rows (.jsonl or .parquet)."),
    n: int = typer.Option(..., "--n", help="Samples per prompt row (K >= 2)."),
    verifier: str = typer.Option(
        ..., "--verifier", help="exact, number, regex:PATTERN or module:function."),
    out: Path = typer.Option(..., "--out", help="pi_D's samples (.jsonl)."),
    options: SamplingOptions = SamplingOptions(),
) -> None:
    from lmcoverage.commands._decoding import model_and_decoding
    from lmcoverage.commands._options import check_sampling
    from lmcoverage.commands._output import parse_batch_size, resolve_device
    from lmcoverage.engine.rows import encode_prompt, read_rows
    from lmcoverage.errors import InputError
    from lmcoverage.io import check_output_path, write_jsonl
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer, resolve_dtype
    from lmcoverage.verify.reference import build_reference, check_k
    from lmcoverage.verify.verdicts import check_problem_ids, problem_id
    from lmcoverage.verify.verifiers import get_verifier

    candidate, spec, name = model_and_decoding(model, options)
    check_k(n)
    check_sampling(n, options.seed, "--n")
    if options.max_new_tokens < 1:
        raise InputError(f"--max-new-tokens: must be a positive integer, got "
                         f"{options.max_new_tokens}")
    batch_size = parse_batch_size(options.batch_size)
    check_output_path(out, (".jsonl",), {"--data": data})
    check_output_path(skipped_path(out), (".jsonl",), {"--data": data})
    judge = get_verifier(verifier)
    numbered = read_rows(data)
    check_problem_ids([row for _, row in numbered], str(data))
    label = f"reference command: {name}, K={n}, verifier {verifier}"
    rows = [{**row, "problem": problem_id(row, i), "model": name, "reference": label}
            for i, (_, row) in enumerate(numbered)]
    where = [w for w, _ in numbered]
    judge.check_rows(rows, str(data))
    dev = resolve_device(options.device, announce=False)
    resolve_dtype(options.dtype, dev)  # an unknown or unsupported --dtype fails before any work
    tokenizer = load_tokenizer(candidate.path, trust_remote_code=options.trust_remote_code)
    for w, row in zip(where, rows, strict=True):  # every prompt encodes before loading
        encode_prompt(tokenizer, row, w)
    lm = load_causal_lm(candidate.path, trust_remote_code=options.trust_remote_code,
                        device=dev, dtype=options.dtype)
    ref = build_reference(lm, tokenizer, rows, n, judge, spec, seed=options.seed,
                          max_new_tokens=options.max_new_tokens,
                          batch_size=batch_size, progress=not options.no_progress,
                          where=where)
    if not ref.rows:
        raise InputError(f"--data {data}: no prompt has a correct sample among the {n} "
                         f"drawn (verifier {verifier}); pi_D is undefined on every prompt, "
                         "nothing written")
    write_jsonl(out, ref.rows)
    listed = skipped_path(out)
    if ref.skipped:
        write_jsonl(listed, ref.skipped)
        print(f"{len(ref.skipped)} of {len(rows)} prompt(s) have no correct sample among "
              f"the {n}: left out of pi_D, listed in {listed}", file=sys.stderr)
    elif listed.is_file():
        listed.unlink()  # a list from an earlier run of the same --out would mislead
    typer.echo(f"wrote {out}: {len(ref.rows)} correct sample(s) of {ref.prompts_kept} "
               f"prompt(s) (K = {n})")


def register(app: typer.Typer) -> None:
    """Add this module's command to app."""
    app.command("reference", help=REFERENCE_HELP)(reference)
