"""Candidates: a model (directory or ``.gguf`` file) with optional decoding settings, and the
one rule that names it in every table.

Every command that takes models (``score``, ``sample``, ``verify``, ``reference``, ``select``,
the sharded runs) parses them with :func:`parse_candidates`, so the same argument gets the same
name everywhere and tables written by different commands join:

- ``DIR`` or a quoted glob (``'runs/x/checkpoint-*'``: matching directories and ``.gguf`` files
  in natural order, ``checkpoint-200`` before ``checkpoint-1000``);
- either followed by ``@temperature=0.8,top_p=0.95`` (also ``top_k``, ``min_p``): the
  distribution decoding samples from (:func:`lmcoverage.decoding.spec.decoding_logprobs`).

Naming rule: the directory name (a ``.gguf`` file by its stem), plus ``@`` and the settings
(``DecodingSpec.name``, keys in the order temperature, top_p, top_k, min_p) when settings are
given. When two different paths share a name, each takes as many parent folders as it needs to
be unique (``x/checkpoint-100`` and ``y/checkpoint-100``).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lmcoverage.decoding.spec import DecodingSpec, parse_candidate
from lmcoverage.errors import InputError
from lmcoverage.models.hf import check_model_dir, is_gguf

_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Candidate:
    """One candidate pi_hat: ``path`` (model directory or GGUF file), ``spec`` (decoding
    settings, None for the model's own distribution) and ``name`` (its label in tables)."""

    path: Path
    spec: DecodingSpec | None
    name: str

    @property
    def decoding(self) -> DecodingSpec:
        """The settings to sample or score with (the plain model when ``spec`` is None)."""
        return self.spec if self.spec is not None else DecodingSpec()


def natural_key(text: str) -> list[int | str]:
    """Sort key that orders embedded numbers numerically (``checkpoint-200 < checkpoint-1000``)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def parse_candidates(values: Sequence[str], option: str = "--model") -> list[Candidate]:
    """Candidates from command-line values, in order (globs expanded in natural order).

    Args:
        values: ``DIR``, ``FILE.gguf`` or a quoted glob, each optionally ``@key=value,...``.
        option: the option the values came from, named in every error (``--reference``).

    Raises:
        InputError: no value; a bad decoding spec; a glob matching nothing; a path that is not
            a model (:func:`lmcoverage.models.hf.check_model_dir`); the same model with the
            same settings twice.
    """
    if not values:
        raise InputError(f"{option}: give at least one model directory")
    parsed: list[tuple[Path, DecodingSpec | None, str]] = []
    for text in values:
        try:
            path_text, spec = parse_candidate(text)
        except ValueError as exc:
            raise InputError(f"{option} {text!r}: {_reason(exc, text)}") from None
        tail = text[len(path_text) + 1:] if path_text != text else ""
        label = "@" + (spec.name() or tail.strip()) if tail else ""
        for path in _expand(path_text, option):
            try:
                check_model_dir(path)
            except InputError as exc:
                raise InputError(f"{option}: {exc}") from None
            parsed.append((path, spec if tail else None, label))
    seen: dict[tuple[Path, DecodingSpec], str] = {}
    for path, given, label in parsed:
        key = (path.resolve(), given if given is not None else DecodingSpec())
        if key in seen:
            raise InputError(f"{option}: {path}{label} is given twice (also as {seen[key]})")
        seen[key] = f"{path}{label}"
    names = model_names([p for p, _, _ in parsed])
    return [Candidate(path, spec, name + label)
            for (path, spec, label), name in zip(parsed, names, strict=True)]


def parse_one_candidate(value: str, option: str) -> Candidate:
    """The candidate of an option that takes one model (``--reference``); a glob must match
    exactly one model."""
    found = parse_candidates([value], option)
    if len(found) != 1:
        raise InputError(f"{option} {value!r}: matches {len(found)} models; give one")
    return found[0]


def model_names(paths: Sequence[Path]) -> list[str]:
    """The naming rule for paths: each one's directory name (a GGUF file's stem); paths that
    share a name are named relative to their common parent instead (``x/checkpoint-100`` and
    ``y/checkpoint-100``). The same path keeps one name."""
    resolved = [Path(p).resolve() for p in paths]
    groups: dict[str, list[Path]] = {}
    for r in dict.fromkeys(resolved):
        groups.setdefault(_stem(r), []).append(r)
    names: dict[Path, str] = {}
    for group in groups.values():
        parent = Path(os.path.commonpath(group)) if len(group) > 1 else group[0].parent
        for r in group:
            names[r] = _stem(r, r.relative_to(parent))
    if len(set(names.values())) != len(names):  # e.g. ``m`` and ``m.gguf`` side by side
        names = {r: r.as_posix() for r in names}
    return [names[r] for r in resolved]


def _stem(path: Path, shown: Path | None = None) -> str:
    """``shown`` (default: ``path``'s name) as POSIX text, without a GGUF file's suffix."""
    text = (shown if shown is not None else Path(path.name)).as_posix()
    return text[: -len(path.suffix)] if is_gguf(path) else text


def _expand(pattern: str, option: str) -> list[Path]:
    """A plain path as it is; a glob's matching directories and GGUF files, natural order."""
    if not _GLOB_CHARS.search(pattern):
        return [Path(pattern)]
    matches = sorted((m for m in glob.glob(pattern)
                      if os.path.isdir(m) or (is_gguf(m) and os.path.isfile(m))),
                     key=natural_key)
    if not matches:
        raise InputError(f"{option}: no directory matches the pattern {pattern!r}")
    return [Path(m) for m in matches]


def _reason(exc: Exception, text: str) -> str:
    """The parser's message without its own ``--model 'text':`` prefix."""
    message = str(exc)
    prefix = f"--model {text!r}: "
    return message[len(prefix):] if message.startswith(prefix) else message
