"""The task interface: seeded problems with an exactly known data distribution pi_D.

A :class:`Task` samples :class:`Problem` s. Each problem carries its prompt, one response
``y ~ pi_D(.|x)``, the full support of ``pi_D(.|x)`` with probabilities and the set of
correct (valid) responses, so that every quantity of the paper's Sec. 2 (log-ratios, Cov_N,
exact Pass@N through ``mass_correct``) can be computed without approximation.

Everything that follows from the support alone (``log_prob_data``, ``token_distribution``,
``is_correct``, text forms, the tokenizer) is implemented here once; a concrete task only
says how to draw one problem (:meth:`Task._sample_one`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from lmcoverage.errors import InputError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Tokens = tuple[int, ...]


@dataclass(frozen=True)
class Problem:
    """One prompt x with a response y ~ pi_D(.|x) and everything known about pi_D(.|x).

    Attributes:
        prompt_ids: token ids of x.
        response_ids: token ids of the sampled y.
        group: class label of the prompt (1, 2, 3 for the graph tasks).
        logp_data: log pi_D(y|x) of ``response_ids`` (natural log).
        support: every response with positive pi_D(.|x), with its probability (sums to 1).
        valid_paths: the correct set G_x (responses the verifier accepts).
    """

    prompt_ids: Tokens
    response_ids: Tokens
    group: int
    logp_data: float
    support: tuple[tuple[Tokens, float], ...]
    valid_paths: tuple[Tokens, ...]


def check_seed(seed: object, name: str = "seed") -> int:
    """Return ``seed`` as a non-negative int; ValueError naming ``name`` otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_count(n: object, name: str = "n") -> int:
    """Return ``n`` as a non-negative int; ValueError naming ``name`` otherwise."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise InputError(f"{name} must be a non-negative integer, got {n!r}")
    return int(n)


class Task(ABC):
    """A seeded source of :class:`Problem` s over a fixed vocabulary of symbols.

    Subclasses set :attr:`name`, :attr:`options` (keyword arguments that rebuild the task via
    ``get_task(name, **options)``), :attr:`class_weights` and :attr:`symbols`, and implement
    :meth:`_sample_one` and :attr:`max_length`.
    """

    name: str
    options: dict[str, Any]
    #: group label -> mixture weight (positive, sums to 1); ``sample`` draws classes from it.
    class_weights: dict[int, float]
    #: ``symbols[i]`` is the text of token id ``i``; must include :attr:`pad_token`.
    symbols: tuple[str, ...]
    pad_token: str = "<pad>"
    unk_token: str = "<unk>"

    @property
    def vocab_size(self) -> int:
        """Number of token ids (including pad and unk)."""
        return len(self.symbols)

    @property
    @abstractmethod
    def max_length(self) -> int:
        """An upper bound on ``len(prompt_ids) + len(response_ids)`` over all problems."""

    @property
    def pad_token_id(self) -> int:
        """Token id used to pad batches (never part of a prompt or response)."""
        return self.symbols.index(self.pad_token)

    @abstractmethod
    def _sample_one(self, rng: np.random.Generator, group: int) -> Problem:
        """Draw one problem of class ``group`` using ``rng`` only."""

    def sample(self, n: int, seed: int, group: int | None = None) -> list[Problem]:
        """``n`` problems drawn i.i.d. with classes from :attr:`class_weights`.

        Args:
            n: number of problems.
            seed: non-negative int; the same seed gives the same problems.
            group: if given, every problem is of this class (per-class validation sets).
        """
        n = check_count(n)
        rng = np.random.default_rng(check_seed(seed))
        if group is None:
            labels = list(self.class_weights)
            probs = np.array([self.class_weights[g] for g in labels], dtype=np.float64)
            groups = [labels[i] for i in rng.choice(len(labels), size=n, p=probs / probs.sum())]
        else:
            if group not in self.class_groups:
                raise InputError(
                    f"group must be one of {sorted(self.class_groups)} for task {self.name!r}, "
                    f"got {group!r}"
                )
            groups = [group] * n
        return [self._sample_one(rng, g) for g in groups]

    @property
    def class_groups(self) -> tuple[int, ...]:
        """Every class label this task can produce with :meth:`sample` (``group=``)."""
        return tuple(self.class_weights)

    # --- pi_D from the support -------------------------------------------------------------

    def log_prob_data(self, problem: Problem, response_ids: Sequence[int]) -> float:
        """log pi_D(y|x) of ``response_ids``; ``-inf`` outside the support."""
        y = tuple(int(t) for t in response_ids)
        for resp, p in problem.support:
            if resp == y:
                return math.log(p)
        return -math.inf

    def token_distribution(self, problem: Problem, prefix_ids: Sequence[int]) -> np.ndarray:
        """pi_D(. | x, y_<h) for the response prefix ``prefix_ids``: shape ``(vocab_size,)``.

        Raises ValueError if the prefix has probability 0 or is already a full response.
        """
        prefix = tuple(int(t) for t in prefix_ids)
        h = len(prefix)
        out = np.zeros(self.vocab_size, dtype=np.float64)
        for resp, p in problem.support:
            if resp[:h] == prefix:
                if len(resp) == h:
                    raise InputError(f"prefix_ids {list(prefix)} is already a complete response")
                out[resp[h]] += p
        total = out.sum()
        if total <= 0.0:
            raise InputError(f"prefix_ids {list(prefix)} has probability 0 under pi_D")
        return out / total

    def is_correct(self, problem: Problem, response_ids: Sequence[int]) -> bool:
        """The verifier: is ``response_ids`` in the problem's correct set?"""
        return tuple(int(t) for t in response_ids) in set(problem.valid_paths)

    # --- text and tokenizer ----------------------------------------------------------------

    @cached_property
    def _symbol_ids(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols)}

    def ids_to_text(self, ids: Sequence[int]) -> str:
        """Space-separated symbols of ``ids``."""
        bad = [int(i) for i in ids if not 0 <= int(i) < self.vocab_size]
        if bad:
            raise InputError(f"token id {bad[0]} out of range [0, {self.vocab_size})")
        return " ".join(self.symbols[int(i)] for i in ids)

    def text_to_ids(self, text: str) -> Tokens:
        """Inverse of :meth:`ids_to_text`; ValueError naming an unknown symbol."""
        out = []
        for sym in text.split():
            if sym not in self._symbol_ids:
                raise InputError(f"unknown symbol {sym!r} in text {text!r} for task {self.name!r}")
            out.append(self._symbol_ids[sym])
        return tuple(out)

    def prompt_text(self, problem: Problem) -> str:
        """Text form of the prompt, e.g. ``"3 7 | 7 9 / 3 9 ="``."""
        return self.ids_to_text(problem.prompt_ids)

    def response_text(self, ids: Sequence[int]) -> str:
        """Text form of a response, e.g. ``"3 7 9"``."""
        return self.ids_to_text(ids)

    def tokenizer(self) -> PreTrainedTokenizerBase:
        """A Hugging Face ``PreTrainedTokenizerFast`` mapping :meth:`ids_to_text` back to ids."""
        from lmcoverage.tasks.tokenizer import build_tokenizer

        return build_tokenizer(self.symbols, pad_token=self.pad_token, unk_token=self.unk_token)

    def to_row(self, problem: Problem) -> dict[str, Any]:
        """The JSONL export row: prompt, response, group, logp_data, support, valid_paths."""
        return {
            "prompt": self.prompt_text(problem),
            "response": self.response_text(problem.response_ids),
            "group": problem.group,
            "logp_data": problem.logp_data,
            "support": [[self.response_text(y), p] for y, p in problem.support],
            "valid_paths": [self.response_text(y) for y in problem.valid_paths],
        }


def normalise_weights(
    weights: Mapping[int, float], name: str = "class_weights"
) -> dict[int, float]:
    """Validate a group -> weight map (non-negative, positive total); drop zeros; sum to one."""
    if not weights:
        raise InputError(f"{name} must not be empty")
    for g, w in weights.items():
        if not (isinstance(w, int | float) and math.isfinite(w) and w >= 0):
            raise InputError(f"{name}[{g!r}] must be a finite non-negative number, got {w!r}")
    total = float(sum(weights.values()))
    if total <= 0:
        raise InputError(f"{name} must have a positive total, got {dict(weights)}")
    return {int(g): float(w) / total for g, w in weights.items() if w > 0}


def mixture_weights(groups: Sequence[int], class_weights: Mapping[int, float]) -> np.ndarray:
    """Per-example weights ``w_g / n_g`` (float64, (examples,)) mixing classes by their weights.

    Classes present in ``groups`` but absent from ``class_weights`` (or with weight 0) get 0.
    A class with positive weight but no example is an error (the mixture cannot be estimated
    without it; silently renormalising over the classes present would bias every metric).
    """
    g = np.asarray(groups, dtype=np.int64)
    if g.ndim != 1 or g.size == 0:
        raise InputError(f"groups must be a non-empty 1-D sequence, got shape {g.shape}")
    out = np.zeros(g.size, dtype=np.float64)
    for label in np.unique(g):
        w = float(class_weights.get(int(label), 0.0))
        if w < 0 or not math.isfinite(w):
            raise InputError(f"class_weights[{int(label)}] must be finite and >= 0, got {w}")
        mask = g == label
        out[mask] = w / mask.sum()
    missing = sorted(int(c) for c, w in class_weights.items()
                     if w > 0 and not np.any(g == int(c)))
    if missing:
        raise InputError(
            f"class {missing[0]} (weight {class_weights[missing[0]]:g}) has no examples; "
            "sample every class (e.g. score --per-class) or draw more examples"
        )
    total = out.sum()
    if total <= 0:
        raise InputError(f"class_weights {dict(class_weights)} give zero weight to every example")
    return out / total
