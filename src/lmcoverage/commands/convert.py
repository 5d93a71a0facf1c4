"""CLI command ``lmcoverage convert``: a GGUF file becomes a float32 safetensors model directory."""

from __future__ import annotations

from pathlib import Path

import typer

CONVERT_HELP = """Convert a GGUF model file into a Hugging Face model directory (float32
safetensors weights, config and tokenizer), written atomically. The file is read once; the
directory works with score, sample, verify and train like any saved model.
"""


def register(app: typer.Typer) -> None:
    """Add this module's command to app."""

    @app.command("convert", help=CONVERT_HELP)
    def convert(
        gguf: Path = typer.Argument(..., help="The .gguf model file."),
        out: Path = typer.Option(..., "--out", help="Output model directory."),
        no_progress: bool = typer.Option(False, "--no-progress", help="Hide progress output."),
    ) -> None:
        from lmcoverage.errors import InputError
        from lmcoverage.models.hf import is_gguf, load_causal_lm, load_tokenizer, save

        if not is_gguf(gguf):
            raise InputError(f"{gguf}: not a .gguf file; convert reads GGUF model files")
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out}: exists and is not a directory")
        if out.resolve() == gguf.resolve().parent:
            raise InputError(f"--out {out}: give a new directory, not the GGUF file's folder")
        tokenizer = load_tokenizer(gguf)
        model = load_causal_lm(gguf, device="cpu")
        if not no_progress:
            typer.echo(f"read {gguf}: {sum(p.numel() for p in model.parameters()):,} "
                       "parameters", err=True)
        save(model, out, tokenizer=tokenizer)
        typer.echo(f"wrote {out}")
