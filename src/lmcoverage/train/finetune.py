"""Fine-tuning a pretrained Hugging Face causal LM on the user's prompt/response pairs.

The pairs become a fixed dataset (:class:`PairsTask`) for the task training loop
(:func:`lmcoverage.train.loop.train`), so the loss (next-token cross-entropy on response tokens
only), the seeded epoch order, ``checkpoint-STEP/`` directories and bit-exact ``--resume`` are
those of the synthetic-task training.

Rows of the pairs file are encoded with the model's own tokenizer exactly as ``score`` and
``sample`` encode rows (:mod:`lmcoverage.models.encoding`): the prompt as ``prompt_ids``,
``messages`` (a chat, through the tokenizer's chat template) or ``prompt`` text (with its
special tokens such as BOS); the response as ``response_ids`` or ``response`` text (without
special tokens, then EOS appended so the model learns to stop).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmcoverage.errors import InputError
from lmcoverage.models.encoding import encode_prompt, encode_response
from lmcoverage.tasks.base import Problem, Task, check_count
from lmcoverage.train.loop import TrainConfig, train

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

#: Defaults of ``lmcoverage train --model``: small steps for a pretrained model.
FINETUNE_DEFAULTS: dict[str, Any] = {"steps": 100, "batch_size": 8, "lr": 5e-5,
                                     "weight_decay": 0.0, "checkpoint_every": 0, "log_every": 1}


class PairsTask(Task):
    """A fixed list of (prompt, response) token sequences as a :class:`Task` for the loop.

    ``sample(len(pairs), seed)`` is the whole dataset in file order (the loop shuffles it per
    epoch); other sizes draw pairs uniformly with replacement.
    """

    name = "pairs"
    symbols: tuple[str, ...] = ()

    def __init__(self, problems: Sequence[Problem], hf_tokenizer: PreTrainedTokenizerBase,
                 source: str, digest: str) -> None:
        if not problems:
            raise InputError(f"{source}: no pairs")
        self._problems = list(problems)
        self._tokenizer = hf_tokenizer
        self.options = {"data": source, "rows": len(problems), "sha256": digest}
        self.class_weights = {0: 1.0}

    @property
    def vocab_size(self) -> int:
        return len(self._tokenizer)

    @property
    def pad_token_id(self) -> int:
        pad = self._tokenizer.pad_token_id
        return int(pad if pad is not None else self._tokenizer.eos_token_id or 0)

    @property
    def max_length(self) -> int:
        return max(len(p.prompt_ids) + len(p.response_ids) for p in self._problems)

    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self._tokenizer

    def sample(self, n: int, seed: int, group: int | None = None) -> list[Problem]:
        if check_count(n) == len(self._problems) and group is None:
            return list(self._problems)
        return super().sample(n, seed, group)

    def _sample_one(self, rng: np.random.Generator, group: int) -> Problem:
        return self._problems[int(rng.integers(len(self._problems)))]


def encode_pairs(rows: Sequence[tuple[int | str, dict[str, Any]]],
                 tokenizer: PreTrainedTokenizerBase, source: str) -> list[Problem]:
    """``(line, row)`` pairs as :class:`Problem` s (token ids), encoded as ``score`` encodes
    rows (``line``: a JSONL line number, or already a place such as ``FILE:row N``;
    :mod:`lmcoverage.models.encoding`: ``prompt_ids``, ``messages`` or ``prompt``;
    ``response_ids`` or ``response`` text plus EOS).

    Raises:
        InputError: a row without a prompt or response, malformed ids or messages, a token id
            outside the tokenizer's vocabulary (file and line named).
    """
    out = []
    vocab = len(tokenizer)
    for line, row in rows:
        where = line if isinstance(line, str) else f"{source}:{line}"
        prompt = tuple(encode_prompt(tokenizer, row, where))
        response = tuple(encode_response(tokenizer, row, where))
        for key, ids in (("prompt_ids", prompt), ("response_ids", response)):
            bad = [t for t in ids if t >= vocab]
            if bad:
                raise InputError(f"{where}: {key} has token id {bad[0]} outside the "
                                 f"vocabulary [0, {vocab})")
        out.append(Problem(prompt, response, 0, float("nan"), (), ()))
    return out


def model_vocab_size(model_dir: Path) -> int:
    """The embedding size a model directory declares (config.json; no weights loaded)."""
    from transformers import AutoConfig

    from lmcoverage.models.hf import is_gguf

    if is_gguf(model_dir):
        config = AutoConfig.from_pretrained(model_dir.parent, gguf_file=model_dir.name,
                                            local_files_only=True)
    else:
        config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    text = getattr(config, "get_text_config", lambda: config)()
    return int(text.vocab_size)


def load_pairs(model_dir: str | os.PathLike[str], data: str | os.PathLike[str],
               rows: Sequence[tuple[int | str, dict[str, Any]]] | None = None) -> PairsTask:
    """The pairs of ``data`` encoded with ``model_dir``'s tokenizer, checked before any work.

    ``rows``: ``data``'s rows as ``(place, row)`` when the caller read them (``train --data``
    reads JSONL, Parquet, ``datasets`` folders and ``.arrow`` files with
    :func:`lmcoverage.engine.rows.read_rows`); default: ``data`` read as JSONL.

    Raises:
        InputError: a model directory or pairs file that is unusable; a tokenizer with more
            tokens than the model's vocabulary.
    """
    from lmcoverage.io import path_sha256, read_jsonl_numbered
    from lmcoverage.models.hf import check_model_dir, load_tokenizer

    model_path = check_model_dir(model_dir)
    if rows is None:
        rows = read_jsonl_numbered(data)
    tokenizer = load_tokenizer(model_path)
    vocab = model_vocab_size(model_path)
    if len(tokenizer) > vocab:
        raise InputError(f"--model {model_path}: its tokenizer has {len(tokenizer)} tokens but "
                         f"the model's vocabulary has {vocab}; they do not belong together")
    return PairsTask(encode_pairs(rows, tokenizer, str(data)), tokenizer, str(data),
                     path_sha256(data))


def finetune(
    model_dir: str | os.PathLike[str],
    data: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    resume: bool = False,
    progress: bool = True,
    device: str | None = None,
    rows: Sequence[tuple[int | str, dict[str, Any]]] | None = None,
    **overrides: Any,
) -> Path:
    """Fine-tune ``model_dir`` on the pairs in ``data`` (``rows``: as for :func:`load_pairs`);
    return the ``final/`` directory.

    ``overrides``: :class:`~lmcoverage.train.loop.TrainConfig` fields (``steps``, ``lr``,
    ``batch_size``, ``checkpoint_every``, ``seed``, ``weight_decay``) over
    :data:`FINETUNE_DEFAULTS`. Every epoch visits each pair once in a seeded order.
    """
    task = load_pairs(model_dir, data, rows)
    config = TrainConfig(**{**FINETUNE_DEFAULTS, **overrides,
                            "dataset_size": task.options["rows"]})
    return train(task, config, Path(out_dir), init_from=Path(model_dir), resume=resume,
                 progress=progress, device=device)
