"""Score model directories on held-out examples into a :class:`~lmcoverage.scoretable.ScoreTable`.

The library side of ``lmcoverage score``. Examples come from a task (token ids, exact
``log pi_D``, classes, correct sets) or from a JSONL file of texts, tokenized with the tokenizer
saved in each model directory. Each model is loaded once; every example's held-out response and
its correct set (if any) are scored in one engine call, so the prompt runs once per model.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from lmcoverage.decoding.spec import DecodingSpec
from lmcoverage.engine.candidates import model_names
from lmcoverage.engine.scoring import held_out_then_correct, loglik_and_mass
from lmcoverage.errors import InputError
from lmcoverage.models.hf import dtype_name, load_causal_lm, load_tokenizer

if TYPE_CHECKING:
    from lmcoverage.scoretable import ScoreTable

CorrectSet = Literal["valid", "support"]


@dataclass(frozen=True)
class Examples:
    """Held-out examples for :func:`score_models`, one entry per example in every list.

    Either token ids (``prompt_ids``, ``response_ids``, ``correct_ids``; from a task), input
    ``rows`` (from a file: see :mod:`lmcoverage.engine.rows`; encoded per tokenizer, ids in a
    row used as they are) or texts (``prompt_text``, ``response_text``, ``correct_text``;
    tokenized per model directory). ``loglik_data``, ``correct_*`` are None when unknown.
    ``lines`` are the JSONL line numbers; ``where`` each row's place for error messages.
    ``ref_correct``, ``ref_samples`` (int64) and ``reference``: c(x), K and the description
    of a reference made of good responses (rows of ``lmcoverage reference``), else None.
    """

    group: list[str]
    weight: np.ndarray
    loglik_data: np.ndarray | None = None
    prompt_ids: list[list[int]] | None = None
    response_ids: list[list[int]] | None = None
    correct_ids: list[list[list[int]]] | None = None
    prompt_text: list[str] | None = None
    response_text: list[str] | None = None
    correct_text: list[list[str]] | None = None
    source: str = ""
    lines: list[int] | None = None
    rows: list[dict[str, Any]] | None = None
    where: list[str] | None = None
    ref_correct: np.ndarray | None = None
    ref_samples: np.ndarray | None = None
    reference: str | None = None

    def __len__(self) -> int:
        return len(self.group)


def task_examples(
    task_name: str,
    n: int,
    seed: int,
    per_class: bool = False,
    correct: CorrectSet = "valid",
    options: dict[str, Any] | None = None,
) -> Examples:
    """Examples drawn from a task (``figure1-pretrain``, ``figure2-h8``, ...).

    With ``per_class=False``, ``n`` problems are drawn from the task's class mixture; with
    ``per_class=True``, ``n`` problems of each class (seeds ``seed``, ``seed+1``, ...), as in the
    paper's per-class validation sets. With mixture sampling every example weighs 1/n (the
    sample already follows the mixture); per class, ``weight`` is the class weight divided by
    the class's count (post-stratification), so either way every weighted mean over the
    examples estimates the mixture's expectation. ``correct`` picks the correct set for
    ``mass_correct``: the graph's valid paths or pi_D's support. ``options`` are the task's
    own (e.g. ``{"layers": 4}`` for a scaled-down variant), as in
    :func:`lmcoverage.tasks.get_task`.
    """
    from lmcoverage.tasks import get_task, mixture_weights

    if correct not in ("valid", "support"):
        raise InputError(f"correct must be 'valid' or 'support', got {correct!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    task = get_task(task_name, **(options or {}))
    if per_class:
        problems = [p for k, g in enumerate(sorted(task.class_weights))
                    for p in task.sample(n, seed + k, group=g)]
    else:
        problems = task.sample(n, seed)
    groups = [p.group for p in problems]
    sets = [p.valid_paths if correct == "valid" else tuple(y for y, _ in p.support)
            for p in problems]
    return Examples(
        group=[str(g) for g in groups],
        weight=(mixture_weights(groups, task.class_weights) if per_class
                else np.full(len(problems), 1.0 / len(problems))),
        loglik_data=np.array([p.logp_data for p in problems], dtype=np.float64),
        prompt_ids=[list(p.prompt_ids) for p in problems],
        response_ids=[list(p.response_ids) for p in problems],
        correct_ids=[[list(y) for y in s] for s in sets],
        source=task_name,
    )


def _optional_number(row: dict[str, Any], key: str, where: str, upper: float) -> float | None:
    """``row[key]`` as a float <= upper (NaN refused), None when absent."""
    if key not in row or row[key] is None:
        return None
    value = row[key]
    if isinstance(value, str) and value in ("-inf", "-Infinity"):
        value = -math.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InputError(f"{where}: {key} must be a number, got {row[key]!r}")
    if value > upper:
        raise InputError(f"{where}: {key} must be <= {upper}, got {value!r}")
    return float(value)


def data_examples(path: str | os.PathLike[str]) -> Examples:
    """Examples from a JSONL or Parquet file of rows with a prompt (``prompt``, ``messages`` or
    ``prompt_ids``), a response (``response`` or ``response_ids``) and optional ``logp_data``,
    ``group``, ``weight``, ``valid_paths`` (correct responses as texts, for ``mass_correct``),
    ``n_correct`` and ``n_samples`` (c(x) and K of ``lmcoverage reference`` rows, with their
    ``reference`` description). Optional numeric fields must be present on all rows or none.
    Rows are encoded per model tokenizer by :func:`encode_examples` (see
    :mod:`lmcoverage.engine.rows`).

    Raises:
        InputError: naming the file and line of a malformed row.
    """
    from lmcoverage.engine.rows import read_rows

    p = Path(path)
    numbered = read_rows(p)
    groups: list[str] = []
    weights: list[float] = []
    data: list[float | None] = []
    correct: list[list[str] | None] = []
    for where, row in numbered:
        if not any(k in row for k in ("prompt", "messages", "prompt_ids")):
            raise InputError(f"{where}: needs a prompt: 'prompt' text, 'messages' or "
                             "'prompt_ids'")
        if "response_ids" not in row and (not isinstance(row.get("response"), str)
                                          or not row["response"].strip()):
            raise InputError(f"{where}: 'response' must be a non-empty string (or give "
                             f"response_ids), got {row.get('response')!r}")
        groups.append(str(row.get("group", "all")))
        weight = _optional_number(row, "weight", where, math.inf)
        if weight is not None and (weight < 0 or math.isinf(weight)):
            raise InputError(f"{where}: weight must be finite and >= 0, got {weight!r}")
        weights.append(1.0 if weight is None else weight)
        data.append(_optional_number(row, "logp_data", where, 0.0))
        paths = row.get("valid_paths")
        if paths is not None and (not isinstance(paths, list)
                                  or not all(isinstance(y, str) and y.strip() for y in paths)):
            raise InputError(f"{where}: valid_paths must be a list of non-empty strings")
        correct.append(paths)
    places = [where for where, _ in numbered]
    for key, values in (("logp_data", data), ("valid_paths", correct)):
        missing = [w for w, v in zip(places, values, strict=True) if v is None]
        if missing and len(missing) != len(values):
            raise InputError(f"{missing[0]}: {key} is missing here but given on other rows; "
                             "give it on every row or on none")
    ref_correct, ref_samples, reference = _reference_counts(numbered)
    return Examples(
        group=groups,
        weight=np.array(weights, dtype=np.float64),
        loglik_data=None if data[0] is None else np.array(data, dtype=np.float64),
        correct_text=None if correct[0] is None else [list(c or []) for c in correct],
        source=str(p),
        rows=[row for _, row in numbered],
        where=places,
        ref_correct=ref_correct,
        ref_samples=ref_samples,
        reference=reference,
    )


def _reference_counts(numbered: Sequence[tuple[str, dict[str, Any]]]
                      ) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """``(c(x), K, description)`` from ``n_correct``, ``n_samples`` and ``reference`` fields
    (on every row or on none; ``0 <= n_correct <= n_samples``), or Nones."""
    given = ["n_correct" in row or "n_samples" in row for _, row in numbered]
    if not any(given):
        return None, None, None
    counts = []
    for where, row in numbered:
        c, k = row.get("n_correct"), row.get("n_samples")
        if not (isinstance(c, int) and isinstance(k, int)) or isinstance(c, bool) or isinstance(
                k, bool):
            raise InputError(f"{where}: n_correct and n_samples must be integers on every row "
                             f"(or absent from all), got {c!r} and {k!r}")
        if not 0 <= c <= k or k < 1:
            raise InputError(f"{where}: need 0 <= n_correct <= n_samples and n_samples >= 1, "
                             f"got {c} and {k}")
        counts.append((c, k))
    labels = {row.get("reference") for _, row in numbered}
    label = labels.pop() if len(labels) == 1 else None
    matrix = np.array(counts, dtype=np.int64)
    return matrix[:, 0], matrix[:, 1], label if isinstance(label, str) else None


def _input_rows(examples: Examples) -> tuple[list[dict[str, Any]], list[str]]:
    """The examples as input rows with their places (text examples become text rows)."""
    if examples.rows is not None:
        return examples.rows, examples.where or [f"{examples.source}: row {k + 1}"
                                                 for k in range(len(examples))]
    if examples.prompt_text is None or examples.response_text is None:
        raise InputError("Examples need token ids, rows or texts")
    rows = [{"prompt": x, "response": y}
            for x, y in zip(examples.prompt_text, examples.response_text, strict=True)]
    lines = examples.lines or list(range(1, len(rows) + 1))
    return rows, [f"{examples.source}:{line}" for line in lines]


def encode_examples(
    examples: Examples, model_dir: Path | None, trust_remote_code: bool = False,
    tokenizer: Any = None
) -> tuple[list[list[int]], list[list[int]], list[list[list[int]]] | None]:
    """``(prompts, responses, correct sets or None)`` as token ids for one model: token-id
    examples as they are, rows and texts encoded with ``tokenizer`` (default: the one saved
    with ``model_dir``; ``model_dir`` None: an in-memory model's ``tokenizer``) under the EOS
    convention of :mod:`lmcoverage.engine.rows`."""
    from lmcoverage.engine.rows import complete, encode_prompt, encode_response, encode_text

    if examples.prompt_ids is not None and examples.response_ids is not None:
        return examples.prompt_ids, examples.response_ids, examples.correct_ids
    rows, places = _input_rows(examples)
    tok = tokenizer
    if tok is None:
        if model_dir is None:
            raise InputError("encode_examples: give model_dir or tokenizer")
        tok = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    try:
        prompts = [encode_prompt(tok, row, w) for row, w in zip(rows, places, strict=True)]
        responses = [encode_response(tok, row, w) for row, w in zip(rows, places, strict=True)]
        if examples.correct_text is None:
            return prompts, responses, None
        correct = [[complete(tok, encode_text(tok, y, False, w)) for y in ys]
                   for ys, w in zip(examples.correct_text, places, strict=True)]
    except InputError as exc:
        if model_dir is None:
            raise
        raise InputError(f"{exc} (tokenizer of {model_dir})") from None
    return prompts, responses, correct


def _vocab_check(reference: Path, ref_tok: Any, model_dir: Path, tok: Any,
                 examples: Examples) -> None:
    """Refuse a reference whose tokenizer differs from a candidate's: always when the
    vocabularies differ, and for rows without token ids when anything else differs."""
    if ref_tok.get_vocab() != tok.get_vocab():
        raise InputError(f"--reference {reference}: its tokenizer's vocabulary differs from "
                         f"that of {model_dir}; the reference must score the same token ids")
    has_ids = (examples.prompt_ids is not None and examples.response_ids is not None) or (
        examples.rows is not None
        and all("prompt_ids" in r and "response_ids" in r for r in examples.rows))
    if not has_ids and _fingerprint(ref_tok) != _fingerprint(tok):
        raise InputError(f"--reference {reference}: its tokenizer differs from that of "
                         f"{model_dir} and the rows give texts, which would be tokenized "
                         "differently; give prompt_ids and response_ids")


def _fingerprint(tok: Any) -> tuple[str, str]:
    """What decides how a tokenizer encodes text and chats."""
    backend = getattr(tok, "backend_tokenizer", None)
    return (backend.to_str() if backend is not None else repr(sorted(tok.get_vocab().items())),
            str(getattr(tok, "chat_template", None)))


def score_models(
    model_dirs: Sequence[Path],
    examples: Examples,
    names: Sequence[str] | None = None,
    batch_size: int | str = "auto",
    device: str = "cpu",
    trust_remote_code: bool = False,
    progress: bool = True,
    specs: Sequence[DecodingSpec] | None = None,
    reference: tuple[Path, DecodingSpec] | None = None,
    dtype: str = "float32",
) -> ScoreTable:
    """Score every candidate on ``examples``; returns a ScoreTable.

    Rows: ``loglik = log pi_hat(y|x)`` of the held-out response, ``loglik_data``,
    ``weight``, ``group`` from the examples, ``mass_correct = pi_hat(G_x|x)`` when correct sets
    are known (else null). ``example_id`` is the example's position (0-based).

    Args:
        model_dirs: candidate paths (a path may repeat with different ``specs``).
        specs: per candidate its decoding settings (default: the plain model). The variants
            of one path are scored from one forward pass; the model is loaded once.
        reference: ``(path, spec)`` of a model whose log-probs become ``loglik_data``
            (pi_D); its tokenizer must match the candidates' (see :func:`_vocab_check`).
        dtype: the models' weights (:func:`lmcoverage.models.hf.resolve_dtype`: ``float32``,
            ``bfloat16``, ``float16`` or ``auto``); log-probabilities stay float32, sums float64.
            The provenance records the dtype the models ran in (one name, or ``{name: dtype}``
            when ``auto`` gave them different ones).

    Rows that share a prompt are grouped, so each prompt runs once per model. Each model
    (and its tokenizer) is read once, the reference too when it is also a candidate.
    """
    from lmcoverage.engine.scoring import score_variants
    from lmcoverage.scoretable import ScoreTable

    names = list(names) if names is not None else model_names(model_dirs)
    specs = list(specs) if specs is not None else [DecodingSpec()] * len(model_dirs)
    if not len(names) == len(specs) == len(model_dirs):
        raise InputError(f"names, specs: expected {len(model_dirs)} each, got {len(names)} "
                         f"and {len(specs)}")
    by_path: dict[Path, list[int]] = {}
    for k, d in enumerate(model_dirs):
        by_path.setdefault(Path(d).resolve(), []).append(k)
    # Everything cheap first: tokenizers (read once per path) and every row's encoding.
    tokenizers = {key: _tokenizer(Path(model_dirs[ks[0]]), examples, trust_remote_code)
                  for key, ks in by_path.items()}
    encoded = {key: encode_examples(examples, Path(model_dirs[ks[0]]), trust_remote_code,
                                    tokenizer=tokenizers[key]) for key, ks in by_path.items()}
    loglik_data = examples.loglik_data
    ran_in: dict[str, str] = {}  # model name (or "reference") -> the dtype it ran in
    ref_key = Path(reference[0]).resolve() if reference is not None else None
    if reference is not None:
        ref_path, ref_spec = reference
        ref_tok = (tokenizers[ref_key] if ref_key in by_path
                   else _tokenizer(ref_path, examples, trust_remote_code))
        for key, ks in by_path.items():
            if ref_tok is not None and tokenizers[key] is not None:
                _vocab_check(ref_path, ref_tok, Path(model_dirs[ks[0]]), tokenizers[key],
                             examples)
        if ref_key not in by_path:  # else scored with the candidates of the same model
            prompts, responses, _ = encode_examples(examples, ref_path, trust_remote_code,
                                                    tokenizer=ref_tok)
            model = load_causal_lm(ref_path, trust_remote_code=trust_remote_code,
                                   device=device, dtype=dtype)
            ran_in["reference"] = dtype_name(model.dtype)
            if progress:
                print(f"scoring the reference {ref_path}", file=sys.stderr)
            ref_scores = score_variants(model, prompts, [[r] for r in responses], [ref_spec],
                                        batch_size=batch_size, progress=progress)
            loglik_data = np.array([s[0, 0] for s in ref_scores], dtype=np.float64)
            del model
    columns: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    for n_path, (key, ks) in enumerate(by_path.items()):
        prompts, responses, correct = encoded[key]
        model = load_causal_lm(model_dirs[ks[0]], trust_remote_code=trust_remote_code,
                               device=device, dtype=dtype)
        ran_in.update({names[k]: dtype_name(model.dtype) for k in ks})
        if progress:
            print(f"scoring {', '.join(names[k] for k in ks)} ({n_path + 1}/{len(by_path)})",
                  file=sys.stderr)
        groups = held_out_then_correct(responses, correct)
        variants = [specs[k] for k in ks]
        if reference is not None and key == ref_key:
            variants.append(reference[1])
        scores = score_variants(model, prompts, groups, variants, batch_size=batch_size,
                                progress=progress)
        del model
        if len(variants) > len(ks):  # the reference's column: the held-out responses
            loglik_data = np.array([s[0, -1] for s in scores], dtype=np.float64)
        for m, k in enumerate(ks):
            columns[k] = loglik_and_mass([s[:, m] for s in scores], responses, correct)
    table = ScoreTable.concat([
        ScoreTable.from_columns(
            model=[names[k]] * len(examples),
            example_id=np.arange(len(examples), dtype=np.int64),
            loglik=columns[k][0],
            loglik_data=loglik_data,
            weight=examples.weight,
            group=examples.group,
            mass_correct=columns[k][1],
            ref_correct=examples.ref_correct,
            ref_samples=examples.ref_samples,
        )
        for k in range(len(model_dirs))
    ])
    kinds = set(ran_in.values())
    return table.with_provenance(**score_provenance(
        model_dirs, names, specs, examples, reference,
        dtype=kinds.pop() if len(kinds) == 1 else ran_in))


def candidate_label(path: str | os.PathLike[str], spec: DecodingSpec) -> str:
    """``/abs/path`` or ``/abs/path@temperature=0.8``: how provenance records a model."""
    name = spec.name()
    return Path(path).resolve().as_posix() + (f"@{name}" if name else "")


def score_provenance(
    model_dirs: Sequence[Path],
    names: Sequence[str],
    specs: Sequence[DecodingSpec],
    examples: Examples,
    reference: tuple[Path, DecodingSpec] | None,
    dtype: str | dict[str, str] = "float32",
) -> dict[str, Any]:
    """What :func:`score_models` records in :attr:`ScoreTable.provenance`: the reference
    (model and decoding, ``logp_data from FILE`` or the task's exact pi_D), each candidate's
    model and decoding, the data file's path and SHA-256, the EOS convention, the dtype and
    the lmcoverage version."""
    from lmcoverage import __version__

    prov: dict[str, Any] = {
        "candidates": {n: candidate_label(d, s) for n, d, s in zip(names, model_dirs, specs,
                                                                  strict=True)},
        "dtype": dtype,
        "lmcoverage_version": __version__,
    }
    source = Path(examples.source) if examples.source else None
    if examples.rows is not None and source is not None and source.is_file():
        digest = hashlib.sha256()
        with source.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        prov["data"] = {"path": source.resolve().as_posix(), "sha256": digest.hexdigest()}
        prov["eos"] = ("response text + the tokenizer's EOS unless it ends with a stop token; "
                       "response_ids as given")
    else:
        prov["data"] = {"task": examples.source}
        prov["eos"] = "task responses (token ids, no EOS appended)"
    if reference is not None:
        prov["reference"] = candidate_label(*reference)
    elif examples.loglik_data is not None and examples.reference is not None:
        prov["reference"] = f"{examples.reference}; logp_data from {prov['data']['path']}"
    elif examples.loglik_data is not None:
        prov["reference"] = (f"logp_data from {prov['data']['path']}" if "path" in prov["data"]
                             else f"task {examples.source} (exact log pi_D)")
    return prov


def _tokenizer(path: Path, examples: Examples, trust_remote_code: bool) -> Any:
    """The tokenizer saved with ``path`` (None for token-id examples, which need none)."""
    if examples.prompt_ids is not None and examples.response_ids is not None:
        return None
    return load_tokenizer(path, trust_remote_code=trust_remote_code)
