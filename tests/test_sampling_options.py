"""``sample`` and ``reference`` take the decoding options declared once in
``commands._decoding.SamplingOptions`` (#21: one declaration for both commands)."""

from __future__ import annotations

import dataclasses

import typer

from lmcoverage.cli import app
from lmcoverage.commands._decoding import SamplingOptions, with_sampling_options


def _options(command: str) -> list[tuple[str, object]]:
    """``(option, default)`` of each option of ``command``, in ``--help`` order."""
    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    return [(p.opts[0], p.default) for p in cmd.params if p.param_type_name == "option"]


def test_sample_and_reference_show_the_shared_options_after_out() -> None:
    shared = [("--" + f.name.replace("_", "-"), f.default)
              for f in dataclasses.fields(SamplingOptions)]
    for command in ("sample", "reference"):
        options = _options(command)
        at = [name for name, _ in options].index("--out") + 1
        assert options[at:at + len(shared)] == shared, command


def test_the_command_gets_one_sampling_options() -> None:
    got: list[tuple[int, SamplingOptions]] = []

    @with_sampling_options
    def command(n: int, options: SamplingOptions = SamplingOptions(), last: int = 0) -> None:
        got.append((n + last, options))

    values = {f.name: f.default for f in dataclasses.fields(SamplingOptions)}
    command(n=1, last=2, **{**values, "temperature": 0.5, "seed": 7})
    assert got == [(3, SamplingOptions(temperature=0.5, seed=7))]
