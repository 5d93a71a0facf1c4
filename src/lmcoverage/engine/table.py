"""Score model directories on held-out examples into a :class:`~lmcoverage.scoretable.ScoreTable`.

The library side of ``lmcoverage score``. Examples come from a task (token ids, exact
``log pi_D``, classes, correct sets) or from a JSONL file of texts, tokenized with the tokenizer
saved in each model directory. Each model is loaded once; examples are encoded and scored a
chunk at a time (:data:`SCORE_CHUNK_ROWS`), each example's held-out response and its correct
set (if any) in one engine call, so the prompt runs once per model and chunk.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
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
    import pyarrow as pa
    from transformers import PreTrainedTokenizerBase

    from lmcoverage.scoretable import ScoreTable
    from lmcoverage.tasks import Problem

CorrectSet = Literal["valid", "support"]
#: Examples that :func:`score_models` encodes and scores at a time: memory for rows, token ids
#: and the engine's bookkeeping is bounded by a chunk, not by the input.
SCORE_CHUNK_ROWS = 8192
#: Rows :meth:`ModelScores.write_parquet` writes at a time (one Parquet row group each).
WRITE_BATCH_ROWS = 65536


@dataclass(frozen=True)
class Examples:
    """Held-out examples for :func:`score_models`, one entry per example in every list.

    Either token ids (``prompt_ids``, ``response_ids``, ``correct_ids``; from a task) or input
    ``rows`` (from a file: see :mod:`lmcoverage.engine.rows`; encoded per tokenizer, ids in a
    row used as they are; ``correct_text`` their correct responses). ``loglik_data``,
    ``correct_*`` are None when unknown. ``where``: each row's place for error messages.
    ``ref_correct``, ``ref_samples`` (int64) and ``reference``: c(x), K and the description
    of a reference made of good responses (rows of ``lmcoverage reference``), else None;
    ``reference_dtype``: the dtype(s) that reference ran in (its rows' ``ref_dtype``), else None.
    ``row_file``: with ``rows`` None, the file the rows are re-read from, a chunk at a time
    (:func:`data_examples` with ``keep_rows=False``); ``row_ids``: every row gives
    ``prompt_ids`` and ``response_ids``; ``correct_in_rows``: ``correct_text`` is each row's
    ``valid_paths``, re-read with the rows (not kept). ``problems``: the task problems
    themselves, for scorers whose prompts are problems (the graph experiments' hand-built
    models), else None.
    """

    group: list[str]
    weight: np.ndarray
    loglik_data: np.ndarray | None = None
    prompt_ids: list[list[int]] | None = None
    response_ids: list[list[int]] | None = None
    correct_ids: list[list[list[int]]] | None = None
    correct_text: list[list[str]] | None = None
    source: str = ""
    rows: list[dict[str, Any]] | None = None
    where: list[str] | None = None
    ref_correct: np.ndarray | None = None
    ref_samples: np.ndarray | None = None
    reference: str | None = None
    reference_dtype: str | tuple[str, ...] | None = None
    row_file: Path | None = None
    row_ids: bool = False
    correct_in_rows: bool = False
    problems: list[Problem] | None = None

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


def data_examples(path: str | os.PathLike[str], keep_rows: bool = True) -> Examples:
    """Examples from a JSONL or Parquet file of rows with a prompt (``prompt``, ``messages`` or
    ``prompt_ids``), a response (``response`` or ``response_ids``) and optional ``logp_data``,
    ``group``, ``weight``, ``valid_paths`` (correct responses as texts, for ``mass_correct``),
    ``n_correct`` and ``n_samples`` (c(x) and K of ``lmcoverage reference`` rows, with their
    ``reference`` description and ``ref_dtype``). Optional numeric fields must be present on
    all rows or none.
    Rows are encoded per model tokenizer by :func:`encode_examples` (see
    :mod:`lmcoverage.engine.rows`).

    The file is read in one pass that checks every row and keeps only the per-row numbers
    (and ``valid_paths`` when given); with ``keep_rows=False`` neither the rows nor their
    ``valid_paths`` are kept (``row_file`` is set instead and :func:`score_models` re-reads
    them a chunk at a time), so memory does not grow with the rows' text.

    Raises:
        InputError: naming the file and line of a malformed row.
    """
    from array import array

    from lmcoverage.engine.rows import iter_rows

    p = Path(path)
    groups: list[str] = []
    names: dict[str, str] = {}  # one string object per distinct group
    weights, data = array("d"), array("d")
    given: dict[str, str | None] = {}  # logp_data / valid_paths -> place of the first row
    missing: dict[str, str] = {}  # ... -> place of the first row that lacks it
    correct: list[list[str]] = []
    rows: list[dict[str, Any]] = []
    places: list[str] = []
    counts = array("q")
    ref = _ReferenceFields()
    row_ids = True
    for where, row in iter_rows(p):
        if not any(k in row for k in ("prompt", "messages", "prompt_ids")):
            raise InputError(f"{where}: needs a prompt: 'prompt' text, 'messages' or "
                             "'prompt_ids'")
        if "response_ids" not in row and (not isinstance(row.get("response"), str)
                                          or not row["response"].strip()):
            raise InputError(f"{where}: 'response' must be a non-empty string (or give "
                             f"response_ids), got {row.get('response')!r}")
        group = str(row.get("group", "all"))
        groups.append(names.setdefault(group, group))
        weight = _optional_number(row, "weight", where, math.inf)
        if weight is not None and (weight < 0 or math.isinf(weight)):
            raise InputError(f"{where}: weight must be finite and >= 0, got {weight!r}")
        weights.append(1.0 if weight is None else weight)
        value = _optional_number(row, "logp_data", where, 0.0)
        if value is not None:  # on every row or none (_same_fields)
            data.append(value)
        paths = row.get("valid_paths")
        if paths is not None and (not isinstance(paths, list)
                                  or not all(isinstance(y, str) and y.strip() for y in paths)):
            raise InputError(f"{where}: valid_paths must be a list of non-empty strings")
        for key, present in (("logp_data", value is not None), ("valid_paths", paths is not None)):
            _same_fields(key, present, where, given, missing)
        if paths is not None and keep_rows:
            correct.append(paths)
        counts.extend(ref.add(row, where))
        row_ids = row_ids and "prompt_ids" in row and "response_ids" in row
        if keep_rows:
            rows.append(row)
            places.append(where)
    has_data, has_correct = given.get("logp_data") is not None, given.get("valid_paths")
    ref_counts = np.frombuffer(counts, dtype=np.int64).reshape(-1, 2) if ref.seen else None
    return Examples(
        group=groups,
        weight=np.frombuffer(weights, dtype=np.float64),  # no copy: 8 bytes a row
        loglik_data=np.frombuffer(data, dtype=np.float64) if has_data else None,
        correct_text=correct if has_correct and keep_rows else None,
        source=str(p),
        rows=rows if keep_rows else None,
        where=places if keep_rows else None,
        ref_correct=None if ref_counts is None else ref_counts[:, 0].copy(),
        ref_samples=None if ref_counts is None else ref_counts[:, 1].copy(),
        reference=ref.label(),
        reference_dtype=ref.dtype(),
        row_file=None if keep_rows else p,
        row_ids=row_ids,
        correct_in_rows=bool(has_correct) and not keep_rows,
    )


def _same_fields(key: str, present: bool, where: str, given: dict[str, str | None],
                 missing: dict[str, str]) -> None:
    """Refuse an optional field given on some rows and missing on others, naming the first
    row that lacks it; ``given[key]``: the first row's place when the first row has it."""
    if key not in given:
        given[key] = where if present else None
    if not present:
        missing.setdefault(key, where)
    if (given[key] is None) == present:  # the first row disagrees with this one
        raise InputError(f"{missing[key]}: {key} is missing here but given on other rows; "
                         "give it on every row or on none")


class _ReferenceFields:
    """``n_correct``, ``n_samples``, ``reference`` and ``ref_dtype`` of ``lmcoverage reference``
    rows, checked row by row: on every row or on none, ``0 <= n_correct <= n_samples``,
    ``n_samples >= 1``."""

    def __init__(self) -> None:
        self.seen: bool | None = None  # whether the first row has them
        self.first = ""  # the first row's place
        self.labels: set[Any] = set()
        self.dtypes: set[str] = set()

    def add(self, row: dict[str, Any], where: str) -> tuple[int, ...]:
        """``(c, K)`` of ``row`` (``()`` when rows have none)."""
        has = "n_correct" in row or "n_samples" in row
        if self.seen is None:
            self.seen, self.first = has, where
        if not self.seen and not has:
            return ()
        if not self.seen:  # given here, absent from the first row
            raise InputError(f"{self.first}: n_correct and n_samples must be integers on every "
                             "row (or absent from all), got None and None")
        c, k = row.get("n_correct"), row.get("n_samples")
        if not (isinstance(c, int) and isinstance(k, int)) or isinstance(c, bool) or isinstance(
                k, bool):
            raise InputError(f"{where}: n_correct and n_samples must be integers on every row "
                             f"(or absent from all), got {c!r} and {k!r}")
        if not 0 <= c <= k or k < 1:
            raise InputError(f"{where}: need 0 <= n_correct <= n_samples and n_samples >= 1, "
                             f"got {c} and {k}")
        if len(self.labels) < 2:
            self.labels.add(row.get("reference"))
        if row.get("ref_dtype") is not None:
            self.dtypes.add(str(row["ref_dtype"]))
        return c, k

    def label(self) -> str | None:
        """The rows' one ``reference`` description (None when they differ or give none)."""
        label = next(iter(self.labels)) if self.seen and len(self.labels) == 1 else None
        return label if isinstance(label, str) else None

    def dtype(self) -> str | tuple[str, ...] | None:
        """The dtype the rows' reference ran in (their ``ref_dtype``; sorted names when they
        differ; None when no row gives one)."""
        names = tuple(sorted(self.dtypes))
        return None if not names else names[0] if len(names) == 1 else names


def _input_rows(examples: Examples) -> tuple[list[dict[str, Any]], list[str]]:
    """The examples' input rows with their places."""
    if examples.rows is None:
        raise InputError(f"{examples.source}: Examples need token ids or rows")
    return examples.rows, examples.where or [f"{examples.source}: row {k + 1}"
                                             for k in range(len(examples))]


def example_chunks(examples: Examples, size: int | None = None) -> Iterator[tuple[int, Examples]]:
    """``(start, chunk)`` for consecutive runs of at most ``size`` examples (default
    :data:`SCORE_CHUNK_ROWS`), each an :class:`Examples` of its own: every per-example field
    sliced, and the rows re-read from ``row_file`` when they are not kept. Places for error
    messages keep their numbering in the whole input."""
    from lmcoverage.engine.rows import iter_rows

    n, size = len(examples), size or SCORE_CHUNK_ROWS
    stream = (iter_rows(examples.row_file)
              if examples.rows is None and examples.row_file is not None else None)
    for start in range(0, n, size):
        stop = min(n, start + size)
        fields: dict[str, Any] = {}
        for field in dataclasses.fields(examples):
            value = getattr(examples, field.name)
            if isinstance(value, list | np.ndarray) and len(value) == n:
                fields[field.name] = value[start:stop]
        if stream is not None:
            numbered = list(itertools.islice(stream, stop - start))
            if len(numbered) != stop - start:
                raise InputError(f"{examples.row_file}: changed while it was read")
            fields["rows"] = [row for _, row in numbered]
            fields["where"] = [where for where, _ in numbered]
            if examples.correct_in_rows:
                fields["correct_text"] = [row.get("valid_paths") for row in fields["rows"]]
                if not all(isinstance(paths, list) for paths in fields["correct_text"]):
                    raise InputError(f"{examples.row_file}: changed while it was read")
        elif examples.rows is not None and examples.where is None:
            fields["where"] = [f"{examples.source}: row {k + 1}" for k in range(start, stop)]
        yield start, dataclasses.replace(examples, **fields)


def encode_examples(
    examples: Examples, model_dir: Path | None, trust_remote_code: bool = False,
    tokenizer: PreTrainedTokenizerBase | None = None
) -> tuple[list[list[int]], list[list[int]], list[list[list[int]]] | None]:
    """``(prompts, responses, correct sets or None)`` as token ids for one model: token-id
    examples as they are, rows encoded with ``tokenizer`` (default: the one saved
    with ``model_dir``; ``model_dir`` None: an in-memory model's ``tokenizer``) under the EOS
    convention of :mod:`lmcoverage.engine.rows`. A prompt text repeated in ``examples`` (the
    K samples of one prompt) is tokenized once and its rows share one id list."""
    from lmcoverage.engine.rows import complete, encode_response, encode_text

    if examples.prompt_ids is not None and examples.response_ids is not None:
        return examples.prompt_ids, examples.response_ids, examples.correct_ids
    rows, places = _input_rows(examples)
    tok = tokenizer
    if tok is None:
        if model_dir is None:
            raise InputError("encode_examples: give model_dir or tokenizer")
        tok = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    try:
        seen: dict[str, list[int]] = {}
        prompts = [_encode_prompt_once(tok, row, w, seen)
                   for row, w in zip(rows, places, strict=True)]
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


def _encode_prompt_once(tok: PreTrainedTokenizerBase, row: dict[str, Any], where: str,
                        seen: dict[str, list[int]]) -> list[int]:
    """``encode_prompt(tok, row, where)``, looked up in ``seen`` (text -> ids) for a row
    whose prompt is text alone (its ids depend on nothing else)."""
    from lmcoverage.engine.rows import encode_prompt

    text = row.get("prompt")
    if "prompt_ids" in row or "messages" in row or not isinstance(text, str):
        return encode_prompt(tok, row, where)
    if text not in seen:
        seen[text] = encode_prompt(tok, row, where)
    return seen[text]


def _vocab_check(reference: Path, ref_tok: PreTrainedTokenizerBase, model_dir: Path,
                 tok: PreTrainedTokenizerBase, examples: Examples) -> None:
    """Refuse a reference whose tokenizer differs from a candidate's: always when the
    vocabularies differ, and for rows without token ids when anything else differs."""
    if ref_tok.get_vocab() != tok.get_vocab():
        raise InputError(f"--reference {reference}: its tokenizer's vocabulary differs from "
                         f"that of {model_dir}; the reference must score the same token ids")
    has_ids = (examples.prompt_ids is not None and examples.response_ids is not None) or (
        examples.row_ids) or (examples.rows is not None and all(
            "prompt_ids" in r and "response_ids" in r for r in examples.rows))
    if not has_ids and _fingerprint(ref_tok) != _fingerprint(tok):
        raise InputError(f"--reference {reference}: its tokenizer differs from that of "
                         f"{model_dir} and the rows give texts, which would be tokenized "
                         "differently; give prompt_ids and response_ids")


def _fingerprint(tok: PreTrainedTokenizerBase) -> tuple[str, str]:
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
    """:func:`model_scores` as one ScoreTable in memory (for shards and the Python API;
    ``lmcoverage score`` writes its file a batch at a time with
    :meth:`ModelScores.write_parquet` instead, never holding the table whole)."""
    return model_scores(model_dirs, examples, names, batch_size, device, trust_remote_code,
                        progress, specs, reference, dtype).table()


def model_scores(
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
) -> ModelScores:
    """Score every candidate on ``examples``: the columns of its ScoreTable.

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

    First :func:`check_inputs`, with its check pass (:func:`check_examples`): every example is
    encoded and checked against each distinct tokenizer and model limits, without loading a
    model, so a bad row anywhere in the input fails (InputError naming the row) before
    anything is scored. Then examples
    are encoded and scored :data:`SCORE_CHUNK_ROWS` at a time
    (:func:`example_chunks`; rows of a ``row_file`` are re-read per model), so memory does not
    grow with the input beyond a few numbers per example; scores do not depend on the chunks.
    Rows that share a prompt within a chunk are grouped, so each prompt runs once per model
    and chunk. Each model (and its tokenizer) is read once, the reference too when it is also
    a candidate.
    """
    from lmcoverage.engine.scoring import score_variants

    names = list(names) if names is not None else model_names(model_dirs)
    specs = list(specs) if specs is not None else [DecodingSpec()] * len(model_dirs)
    if not len(names) == len(specs) == len(model_dirs):
        raise InputError(f"names, specs: expected {len(model_dirs)} each, got {len(names)} "
                         f"and {len(specs)}")
    by_path, tokenizers, ref_tok = check_inputs(model_dirs, examples, reference,
                                                trust_remote_code, progress)
    n = len(examples)
    loglik_data = examples.loglik_data
    ran_in: dict[str, str] = {}  # model name (or "reference") -> the dtype it ran in
    ref_key = Path(reference[0]).resolve() if reference is not None else None
    if reference is not None:
        ref_path, ref_spec = reference
        loglik_data = np.empty(n, dtype=np.float64)
        if ref_key not in by_path:  # else scored with the candidates of the same model
            model = load_causal_lm(ref_path, trust_remote_code=trust_remote_code,
                                   device=device, dtype=dtype)
            ran_in["reference"] = dtype_name(model.dtype)
            if progress:
                print(f"scoring the reference {ref_path}", file=sys.stderr)
            for start, chunk in example_chunks(examples):
                prompts, responses, _ = encode_examples(chunk, ref_path, trust_remote_code,
                                                        tokenizer=ref_tok)
                ref_scores = score_variants(model, prompts, [[r] for r in responses],
                                            [ref_spec], batch_size=batch_size,
                                            progress=progress, first_index=start)
                loglik_data[start:start + len(chunk)] = [s[0, 0] for s in ref_scores]
            del model
    # Per candidate (loglik, mass_correct or None), filled a chunk of examples at a time.
    columns: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    for n_path, (key, ks) in enumerate(by_path.items()):
        model_dir = Path(model_dirs[ks[0]])
        model = load_causal_lm(model_dir, trust_remote_code=trust_remote_code,
                               device=device, dtype=dtype)
        ran_in.update({names[k]: dtype_name(model.dtype) for k in ks})
        if progress:
            print(f"scoring {', '.join(names[k] for k in ks)} ({n_path + 1}/{len(by_path)})",
                  file=sys.stderr)
        variants = [specs[k] for k in ks]
        if reference is not None and key == ref_key:
            variants.append(reference[1])
        for start, chunk in example_chunks(examples):
            stop = start + len(chunk)
            prompts, responses, correct = encode_examples(chunk, model_dir, trust_remote_code,
                                                          tokenizer=tokenizers[key])
            scores = score_variants(model, prompts, held_out_then_correct(responses, correct),
                                    variants, batch_size=batch_size, progress=progress,
                                    first_index=start)
            if len(variants) > len(ks):  # the reference's column: the held-out responses
                assert loglik_data is not None
                loglik_data[start:stop] = [s[0, -1] for s in scores]
            for m, k in enumerate(ks):
                loglik, mass = loglik_and_mass([s[:, m] for s in scores], responses, correct)
                if k not in columns:
                    columns[k] = (np.empty(n), None if mass is None else np.empty(n))
                columns[k][0][start:stop] = loglik
                if mass is not None:
                    columns[k][1][start:stop] = mass  # type: ignore[index]
        del model
    kinds = set(ran_in.values())
    prov = score_provenance(model_dirs, names, specs, examples, reference,
                            dtype=kinds.pop() if len(kinds) == 1 else ran_in)
    return ModelScores(examples, names, [columns[k][0] for k in range(len(model_dirs))],
                       [columns[k][1] for k in range(len(model_dirs))], loglik_data,
                       {k: v for k, v in prov.items() if v is not None})


def check_inputs(
    model_dirs: Sequence[Path],
    examples: Examples,
    reference: tuple[Path, DecodingSpec] | None = None,
    trust_remote_code: bool = False,
    progress: bool = False,
) -> tuple[dict[Path, list[int]], dict[Path, PreTrainedTokenizerBase | None],
           PreTrainedTokenizerBase | None]:
    """What :func:`model_scores` checks before it loads any model: the tokenizers, the
    reference's vocabulary (:func:`_vocab_check`) and the check pass over every example
    (:func:`check_examples`). Returns the candidates' indices by resolved path, each path's
    tokenizer (None for token-id examples) and the reference's.

    Raises:
        InputError: naming the bad row (its place in the input) or the model.
    """
    by_path: dict[Path, list[int]] = {}
    for k, d in enumerate(model_dirs):
        by_path.setdefault(Path(d).resolve(), []).append(k)
    tokenizers = {key: _tokenizer(Path(model_dirs[ks[0]]), examples, trust_remote_code)
                  for key, ks in by_path.items()}
    ref_tok = None
    if reference is not None:
        ref_key = Path(reference[0]).resolve()
        ref_tok = (tokenizers[ref_key] if ref_key in by_path
                   else _tokenizer(reference[0], examples, trust_remote_code))
        for key, ks in by_path.items():
            if ref_tok is not None and (tok := tokenizers[key]) is not None:
                _vocab_check(reference[0], ref_tok, Path(model_dirs[ks[0]]), tok, examples)
    checks = [(Path(model_dirs[ks[0]]), tokenizers[key], True) for key, ks in by_path.items()]
    if reference is not None and Path(reference[0]).resolve() not in by_path:
        checks.append((Path(reference[0]), ref_tok, False))  # its held-out responses only
    _check_pass(examples, checks, trust_remote_code, progress)
    return by_path, tokenizers, ref_tok


def _check_pass(examples: Examples,
                checks: Sequence[tuple[Path, PreTrainedTokenizerBase | None, bool]],
                trust_remote_code: bool, progress: bool) -> None:
    """:func:`check_examples` for each ``(model, tokenizer, with correct sets)`` of
    ``checks``, once per distinct tokenizer and model limits (checkpoints of one run share
    them)."""
    done: set[tuple[Any, ...]] = set()
    for path, tok, correct in checks:
        key = (None if tok is None else _fingerprint(tok), model_limits(path))
        if (*key, True) in done or (*key, correct) in done:
            continue
        done.add((*key, correct))
        if progress:
            print(f"checking {len(examples):,} example(s) for {path}", file=sys.stderr)
        check_examples(examples, path, tok, trust_remote_code, correct=correct)


def model_limits(path: str | os.PathLike[str]) -> tuple[int | None, int | None]:
    """``(vocabulary size, context length)`` from a model directory's ``config.json``, read
    without loading the model; None for what it does not say (and for a GGUF file)."""
    from lmcoverage.engine._hf import config_context_length
    from lmcoverage.models.hf import is_gguf

    p = Path(path)
    try:
        config = (None if is_gguf(p) else
                  json.loads((p / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict):
        return None, None
    vocab = config.get("vocab_size")
    return (vocab if isinstance(vocab, int) and not isinstance(vocab, bool) and vocab > 0
            else None), config_context_length(config)


def check_examples(examples: Examples, model_dir: Path,
                   tokenizer: PreTrainedTokenizerBase | None, trust_remote_code: bool = False,
                   correct: bool = True) -> None:
    """The check pass of :func:`model_scores`: every example encoded with ``tokenizer`` as
    :func:`encode_examples` encodes it (rows re-read a chunk at a time, nothing kept), its
    prompt, held-out response and (``correct``) correct responses checked against the
    vocabulary and context of ``model_dir``'s config (:func:`model_limits`). Only the
    tokenizer runs, no model, so a bad row late in a large input fails before any scoring.

    Raises:
        InputError: naming the row (its place in the input) and the model.
    """
    from lmcoverage.engine._hf import as_ids, check_fits

    vocab, ctx = model_limits(model_dir)
    for start, chunk in example_chunks(examples):
        prompts, responses, sets = encode_examples(chunk, model_dir, trust_remote_code,
                                                   tokenizer=tokenizer)
        places = chunk.where or [f"{examples.source}: example {i}"
                                 for i in range(start, start + len(chunk))]
        for k, (prompt, response, where) in enumerate(zip(prompts, responses, places,
                                                          strict=True)):
            try:
                ids = as_ids(prompt, vocab or sys.maxsize, "prompt")
                if not ids:
                    raise InputError("prompt: empty; every prompt needs at least one token")
                extra = sets[k] if sets is not None and correct else []
                for j, r in enumerate([response, *extra]):
                    what = "response" if j == 0 else f"valid_paths[{j - 1}]"
                    check_fits(len(ids), len(as_ids(r, vocab or sys.maxsize, what)), ctx, what)
            except InputError as exc:
                raise InputError(f"{where}: {exc} (model {model_dir})") from None


@dataclass(frozen=True)
class ModelScores:
    """The columns :func:`model_scores` computed, a few numbers per example: per candidate
    (``names``) its ``loglik`` (examples,) and ``mass`` (examples,) = ``pi_hat(G_x|x)`` or
    None, the ``loglik_data`` (examples,) of pi_D or None, the per-example columns of
    ``examples`` and the ``provenance``. :meth:`write_parquet` writes them a batch of rows at
    a time, :meth:`table` builds the ScoreTable whole: the same rows and metadata."""

    examples: Examples
    names: list[str]
    loglik: list[np.ndarray]
    mass: list[np.ndarray | None]
    loglik_data: np.ndarray | None
    provenance: dict[str, Any]

    def batches(self, size: int | None = None) -> Iterator[pa.Table]:
        """The table's rows, model by model in ``names`` order, ``size`` examples (default
        :data:`WRITE_BATCH_ROWS`) at a time (:func:`lmcoverage.engine.scorer.example_rows`)."""
        from lmcoverage.engine.scorer import example_rows

        n = len(self.examples)
        size = size or WRITE_BATCH_ROWS
        for name, loglik, mass in zip(self.names, self.loglik, self.mass, strict=True):
            for start in range(0, n, size):
                yield example_rows(self.examples, name, loglik, mass, self.loglik_data,
                                   start, min(n, start + size))

    def table(self) -> ScoreTable:
        """The ScoreTable, whole in memory."""
        import pyarrow as pa

        from lmcoverage.scoretable import ScoreTable

        return ScoreTable(pa.concat_tables(list(self.batches(len(self.examples)))),
                          provenance=self.provenance)

    def write_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the file ``self.table().write_parquet(path)`` would, without building the
        table: :data:`WRITE_BATCH_ROWS` rows at a time through a
        :class:`~lmcoverage.scoretable.ScoreTableWriter` (atomic: temporary name, then
        rename; nothing under ``path`` on an error)."""
        from lmcoverage.scoretable import ScoreTableWriter

        with ScoreTableWriter(path, self.provenance) as out:
            for rows in self.batches():
                out.write(rows)


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
    model and decoding, the data file's (or ``datasets`` folder's) path and SHA-256
    (:func:`lmcoverage.io.path_sha256`), the EOS convention, the dtype and the lmcoverage
    version; ``reference_dtype`` when ``logp_data`` comes from ``lmcoverage reference`` rows
    (the dtype that reference ran in: below float32 its rounding error is in ``loglik_data``)."""
    from lmcoverage import __version__
    from lmcoverage.io import path_sha256

    prov: dict[str, Any] = {
        "candidates": {n: candidate_label(d, s) for n, d, s in zip(names, model_dirs, specs,
                                                                  strict=True)},
        "dtype": dtype,
        "lmcoverage_version": __version__,
    }
    source = Path(examples.source) if examples.source else None
    if ((examples.rows is not None or examples.row_file is not None) and source is not None
            and source.exists()):  # a file, or a datasets save_to_disk folder
        prov["data"] = {"path": source.resolve().as_posix(), "sha256": path_sha256(source)}
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
    if reference is None and examples.loglik_data is not None and examples.reference_dtype:
        dtypes = examples.reference_dtype
        prov["reference_dtype"] = dtypes if isinstance(dtypes, str) else list(dtypes)
    return prov


def _tokenizer(path: Path, examples: Examples, trust_remote_code: bool
               ) -> PreTrainedTokenizerBase | None:
    """The tokenizer saved with ``path`` (None for token-id examples, which need none)."""
    if examples.prompt_ids is not None and examples.response_ids is not None:
        return None
    return load_tokenizer(path, trust_remote_code=trust_remote_code)
