"""One model and its decoding settings, from ``--model`` and the decoding flags of ``sample``
and ``reference``: ``--model DIR@temperature=0.8,...`` or ``--model DIR --temperature 0.8``,
never both."""

from __future__ import annotations

from typing import Any


def model_and_decoding(model: str, temperature: float, top_p: float, top_k: int,
                       min_p: float) -> tuple[Any, Any, str]:
    """``(Candidate, DecodingSpec, name)``: the name is the one ``score`` gives the same
    candidate (the flags written as ``@`` settings).

    Raises:
        InputError: a bad model or spec, or settings given both ways.
    """
    from lmcoverage.decoding.spec import DecodingSpec
    from lmcoverage.engine.candidates import parse_one_candidate
    from lmcoverage.errors import InputError

    flags = DecodingSpec(temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p)
    candidate = parse_one_candidate(model, "--model")
    if candidate.spec is not None and not flags.is_plain:
        raise InputError(f"--model {model!r} gives decoding settings; drop --temperature, "
                         "--top-p, --top-k and --min-p or the @ settings")
    spec = candidate.spec if candidate.spec is not None else flags
    name = candidate.name if candidate.spec is not None or flags.is_plain else (
        f"{candidate.name}@{flags.name()}")
    return candidate, spec, name
