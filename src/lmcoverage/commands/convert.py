"""CLI command ``lmcoverage convert``: a GGUF file becomes a safetensors model directory."""

from __future__ import annotations

from pathlib import Path

import typer

from lmcoverage.commands._output import DtypeOption

CONVERT_HELP = """Convert a GGUF model file into a Hugging Face model directory (safetensors
weights in --dtype, float32 by default; config and tokenizer), written atomically. The file is
read once (dequantised to float32); the directory works with score, sample, verify and train
like any saved model. --dtype bfloat16 halves its size.
"""


def convert(
    gguf: Path = typer.Argument(..., help="The .gguf model file."),
    out: Path = typer.Option(..., "--out", help="Output model directory."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide progress output."),
    dtype: DtypeOption = "float32",
) -> None:
    from lmcoverage.errors import InputError
    from lmcoverage.models.hf import (
        is_gguf,
        load_causal_lm,
        load_tokenizer,
        resolve_dtype,
        save,
    )

    if not is_gguf(gguf):
        raise InputError(f"{gguf}: not a .gguf file; convert reads GGUF model files")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    if out.resolve() == gguf.resolve().parent:
        raise InputError(f"--out {out}: give a new directory, not the GGUF file's folder")
    torch_dtype = resolve_dtype(dtype, "cpu")  # auto: float32, as GGUF is dequantised
    tokenizer = load_tokenizer(gguf)
    # PreTrainedModel.to is typed through functools.wraps, which mypy does not bind to self
    model = load_causal_lm(gguf, device="cpu").to(dtype=torch_dtype)  # type: ignore[call-arg]
    if not no_progress:
        typer.echo(f"read {gguf}: {sum(p.numel() for p in model.parameters()):,} "
                   "parameters", err=True)
    save(model, out, tokenizer=tokenizer)
    typer.echo(f"wrote {out} ({str(torch_dtype).removeprefix('torch.')})")


def register(app: typer.Typer) -> None:
    """Add this module's command to app."""
    app.command("convert", help=CONVERT_HELP)(convert)
