"""Fine-tuning a pretrained Hugging Face causal LM on the user's prompt/response pairs.

The pairs become a fixed dataset (:class:`PairsTask`) for the task training loop
(:func:`lmcoverage.train.loop.train`), so the loss (next-token cross-entropy on response tokens
only), the seeded epoch order, ``checkpoint-STEP/`` directories and bit-exact ``--resume`` are
those of the synthetic-task training.

Rows of the pairs file: ``{"prompt": text, "response": text}`` encoded with the model's own
tokenizer (the prompt with its special tokens such as BOS, the response without, then EOS
appended so the model learns to stop), or ``{"prompt_ids": [...], "response_ids": [...]}``
used as they are.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmcoverage.errors import InputError
from lmcoverage.tasks.base import Problem, Task, check_count
from lmcoverage.train.loop import TrainConfig, train

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

    def __init__(self, problems: Sequence[Problem], hf_tokenizer: Any, source: str,
                 digest: str) -> None:
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

    def tokenizer(self) -> Any:
        return self._tokenizer

    def sample(self, n: int, seed: int, group: int | None = None) -> list[Problem]:
        if check_count(n) == len(self._problems) and group is None:
            return list(self._problems)
        return super().sample(n, seed, group)

    def _sample_one(self, rng: np.random.Generator, group: int) -> Problem:
        return self._problems[int(rng.integers(len(self._problems)))]


def _ids(row: dict[str, Any], key: str, where: str, vocab: int) -> tuple[int, ...]:
    value = row[key]
    if (not isinstance(value, list) or not value
            or not all(isinstance(t, int) and not isinstance(t, bool) for t in value)):
        raise InputError(f"{where}: {key} must be a non-empty list of token ids")
    bad = [t for t in value if not 0 <= t < vocab]
    if bad:
        raise InputError(f"{where}: {key} has token id {bad[0]} outside the vocabulary "
                         f"[0, {vocab})")
    return tuple(value)


def encode_pairs(rows: Sequence[tuple[int, dict[str, Any]]], tokenizer: Any, source: str
                 ) -> list[Problem]:
    """``(line, row)`` pairs as :class:`Problem` s (token ids), see the module docstring."""
    out = []
    vocab = len(tokenizer)
    for line, row in rows:
        where = f"{source}:{line}"
        if "prompt_ids" in row or "response_ids" in row:
            prompt = _ids(row, "prompt_ids", where, vocab)
            response = _ids(row, "response_ids", where, vocab)
        else:
            for key in ("prompt", "response"):
                if not isinstance(row.get(key), str) or not row[key]:
                    raise InputError(f"{where}: {key!r} must be a non-empty string (or give "
                                     "prompt_ids and response_ids)")
            prompt = tuple(tokenizer(row["prompt"], add_special_tokens=True)["input_ids"])
            response = tuple(tokenizer(row["response"], add_special_tokens=False)["input_ids"])
            if tokenizer.eos_token_id is not None:
                response += (int(tokenizer.eos_token_id),)
            if not prompt or not response:
                raise InputError(f"{where}: prompt or response encodes to no tokens")
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


def load_pairs(model_dir: str | os.PathLike[str], data: str | os.PathLike[str]) -> PairsTask:
    """The pairs of ``data`` encoded with ``model_dir``'s tokenizer, checked before any work.

    Raises:
        InputError: a model directory or pairs file that is unusable; a tokenizer with more
            tokens than the model's vocabulary.
    """
    from lmcoverage.io import read_jsonl_numbered
    from lmcoverage.models.hf import check_model_dir, load_tokenizer

    model_path = check_model_dir(model_dir)
    rows = read_jsonl_numbered(data)
    tokenizer = load_tokenizer(model_path)
    vocab = model_vocab_size(model_path)
    if len(tokenizer) > vocab:
        raise InputError(f"--model {model_path}: its tokenizer has {len(tokenizer)} tokens but "
                         f"the model's vocabulary has {vocab}; they do not belong together")
    digest = hashlib.sha256(Path(data).read_bytes()).hexdigest()
    return PairsTask(encode_pairs(rows, tokenizer, str(data)), tokenizer, str(data), digest)


def finetune(
    model_dir: str | os.PathLike[str],
    data: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    resume: bool = False,
    progress: bool = True,
    device: str | None = None,
    **overrides: Any,
) -> Path:
    """Fine-tune ``model_dir`` on the pairs in ``data``; return the ``final/`` directory.

    ``overrides``: :class:`~lmcoverage.train.loop.TrainConfig` fields (``steps``, ``lr``,
    ``batch_size``, ``checkpoint_every``, ``seed``, ``weight_decay``) over
    :data:`FINETUNE_DEFAULTS`. Every epoch visits each pair once in a seeded order.
    """
    task = load_pairs(model_dir, data)
    config = TrainConfig(**{**FINETUNE_DEFAULTS, **overrides,
                            "dataset_size": task.options["rows"]})
    return train(task, config, Path(out_dir), init_from=Path(model_dir), resume=resume,
                 progress=progress, device=device)
