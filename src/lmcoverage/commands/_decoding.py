"""What ``sample`` and ``reference`` share: their decoding and model-loading options, declared
once (:class:`SamplingOptions`, added to a command by :func:`with_sampling_options`), and one
model with its decoding settings from ``--model`` and the decoding flags:
``--model DIR@temperature=0.8,...`` or ``--model DIR --temperature 0.8``, never both."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

import typer

from lmcoverage.commands._output import BatchSizeOption, DtypeOption

if TYPE_CHECKING:
    from lmcoverage.decoding.spec import DecodingSpec
    from lmcoverage.engine.candidates import Candidate


@dataclass(frozen=True)
class SamplingOptions:
    """The options of ``sample`` and ``reference`` after ``--out``, in ``--help`` order; each
    field's annotation carries its ``typer.Option`` and its default is the option's default."""

    temperature: Annotated[float, typer.Option("--temperature", help="Temperature (> 0).")] = 1.0
    top_p: Annotated[float, typer.Option(
        "--top-p", help="Nucleus mass in (0, 1] (1 = off).")] = 1.0
    top_k: Annotated[int, typer.Option(
        "--top-k", help="Keep the k likeliest tokens (0 = off).")] = 0
    min_p: Annotated[float, typer.Option("--min-p", help="Min-p in [0, 1] (0 = off).")] = 0.0
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Response cap.")] = 256
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0
    batch_size: BatchSizeOption = "auto"
    dtype: DtypeOption = "float32"
    device: Annotated[str, typer.Option(
        "--device", help="Torch device: auto (cuda if available, else cpu), cpu.")] = "auto"
    trust_remote_code: Annotated[bool, typer.Option(
        "--trust-remote-code", help="Allow model code shipped in the directory.")] = False
    no_progress: Annotated[bool, typer.Option(
        "--no-progress", help="Hide progress bars.")] = False


def with_sampling_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with its one ``SamplingOptions`` parameter shown to typer as the options of
    :class:`SamplingOptions` (in its place, so ``--help`` lists them there) and passed to
    ``command`` as one ``SamplingOptions``."""
    signature = inspect.signature(command, eval_str=True)
    (slot,) = [p for p in signature.parameters.values() if p.annotation is SamplingOptions]
    hints = get_type_hints(SamplingOptions, include_extras=True)
    expanded = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                  annotation=hints[f.name]) for f in fields(SamplingOptions)]
    params = list(signature.parameters.values())
    at = params.index(slot)
    params[at:at + 1] = expanded
    names = [f.name for f in fields(SamplingOptions)]

    @functools.wraps(command)
    def wrapped(**kwargs: Any) -> None:
        options = SamplingOptions(**{name: kwargs.pop(name) for name in names})
        command(**kwargs, **{slot.name: options})

    wrapped.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params])
    return wrapped


def model_and_decoding(model: str, options: SamplingOptions
                       ) -> tuple[Candidate, DecodingSpec, str]:
    """``(Candidate, DecodingSpec, name)``: the name is the one ``score`` gives the same
    candidate (the flags written as ``@`` settings).

    Raises:
        InputError: a bad model or spec, or settings given both ways.
    """
    from lmcoverage.decoding.spec import DecodingSpec
    from lmcoverage.engine.candidates import parse_one_candidate
    from lmcoverage.errors import InputError

    flags = DecodingSpec(temperature=options.temperature, top_p=options.top_p,
                         top_k=options.top_k, min_p=options.min_p)
    candidate = parse_one_candidate(model, "--model")
    if candidate.spec is not None and not flags.is_plain:
        raise InputError(f"--model {model!r} gives decoding settings; drop --temperature, "
                         "--top-p, --top-k and --min-p or the @ settings")
    spec = candidate.spec if candidate.spec is not None else flags
    name = candidate.name if candidate.spec is not None or flags.is_plain else (
        f"{candidate.name}@{flags.name()}")
    return candidate, spec, name
