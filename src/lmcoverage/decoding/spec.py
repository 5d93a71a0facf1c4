"""Decoding settings as exact sequence distributions: temperature, top-k, top-p, min-p.

A :class:`DecodingSpec` turns a model's next-token logits into the distribution that decoding
actually samples from, so a (model, decoding) pair is a candidate pi_hat like any other (its
coverage, Eq. 5, and cross-entropy are those of the sampled distribution). Per token, in this
order (the order of Hugging Face's logits warpers):

1. temperature: ``logits / temperature``;
2. top-k: keep the tokens whose scaled logit is >= the k-th largest (ties at the boundary kept);
3. top-p: renormalise the survivors, sort by probability, keep the smallest prefix whose mass
   reaches ``top_p`` (a token is kept iff the mass sorted before it is < ``top_p``; equal
   probabilities keep their sort order, as in Hugging Face's top-p warper);
4. min-p: renormalise, keep the tokens with probability >= ``min_p`` x the largest;
5. renormalise: the log-probs of the kept tokens log-sum-exp to 0, every other token is -inf.

:func:`decoding_logprobs` is the one implementation, used by sampling (``lmcoverage sample``)
and by scoring (``lmcoverage score --model DIR@temperature=0.8``), so the log-prob a sample was
drawn with is the log-prob it is scored with.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from lmcoverage.errors import InputError

#: The keys of a spec string, in the order :meth:`DecodingSpec.name` writes them.
KEYS = ("temperature", "top_p", "top_k", "min_p")
_PAIR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*([^=,]+?)\s*$")


@dataclass(frozen=True)
class DecodingSpec:
    """How next tokens are drawn; the defaults sample the model itself.

    Attributes:
        temperature: > 0 (finite); logits are divided by it.
        top_p: in (0, 1]; nucleus mass (1 = off).
        top_k: >= 0; keep the k most likely tokens (0 = off).
        min_p: in [0, 1]; keep tokens with probability >= min_p x the top one (0 = off).

    Raises:
        ValueError: a value outside these ranges (one line naming the key).
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0

    def __post_init__(self) -> None:
        for key in ("temperature", "top_p", "min_p"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"decoding: {key} must be a number, got {value!r}")
            object.__setattr__(self, key, float(value))
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise InputError(f"decoding: temperature must be finite and > 0, got "
                             f"{self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise InputError(f"decoding: top_p must lie in (0, 1], got {self.top_p!r}")
        if not 0 <= self.min_p <= 1:
            raise InputError(f"decoding: min_p must lie in [0, 1], got {self.min_p!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise InputError(f"decoding: top_k must be an integer >= 0, got {self.top_k!r}")

    @property
    def is_plain(self) -> bool:
        """True when decoding samples the model's own distribution (all settings off)."""
        return self == DecodingSpec()

    def name(self) -> str:
        """``key=value`` pairs of the settings that differ from the defaults, comma-separated
        (``""`` for the plain model): ``DecodingSpec(0.8, 0.95).name() ==
        "temperature=0.8,top_p=0.95"``."""
        default = DecodingSpec()
        return ",".join(f"{k}={_format(getattr(self, k))}" for k in KEYS
                        if getattr(self, k) != getattr(default, k))

    @classmethod
    def parse(cls, text: str) -> DecodingSpec:
        """A spec from ``"temperature=0.8,top_p=0.95"`` (keys in any order, each at most once).

        Raises:
            ValueError: an unknown key, a repeated key, a malformed pair or a bad value.
        """
        values: dict[str, Any] = {}
        for part in text.split(","):
            match = _PAIR.match(part)
            if match is None:
                raise InputError(f"decoding spec {text!r}: expected key=value pairs separated "
                                 f"by commas, got {part!r}")
            key, raw = match.group(1).replace("-", "_"), match.group(2)
            if key not in KEYS:
                raise InputError(f"decoding spec {text!r}: unknown key {key!r} (known: "
                                 f"{', '.join(KEYS)})")
            if key in values:
                raise InputError(f"decoding spec {text!r}: {key} given twice")
            values[key] = _number(raw, integer=key == "top_k", where=f"decoding spec {text!r}",
                                  key=key)
        return cls(**values)


def _format(value: float | int) -> str:
    """``0.8`` -> ``"0.8"``, ``40`` -> ``"40"``, ``1.0`` -> ``"1"``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _number(raw: str, integer: bool, where: str, key: str) -> float | int:
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{where}: {key} must be a number, got {raw!r}") from None
    if integer:
        if not value.is_integer():
            raise InputError(f"{where}: {key} must be an integer, got {raw!r}")
        return int(value)
    return value


def parse_candidate(text: str) -> tuple[str, DecodingSpec]:
    """Split ``"DIR@temperature=0.8,top_p=0.95"`` into ``("DIR", DecodingSpec(0.8, 0.95))``.

    Only the text after the last ``@`` is a spec, and only when it looks like ``key=value``
    pairs; anything else (a path with ``@`` or commas in it) is a plain path with the default
    spec. The full string stays the candidate's name in tables.

    Raises:
        ValueError: the part after ``@`` is ``key=value`` pairs with an unknown key or a bad
            value, or nothing comes before the ``@``.
    """
    path, at, tail = text.rpartition("@")
    if not at or not all(_PAIR.match(part) for part in tail.split(",")):
        return text, DecodingSpec()
    if not path:
        raise InputError(f"--model {text!r}: no model path before '@'")
    try:
        return path, DecodingSpec.parse(tail)
    except ValueError as exc:
        raise InputError(f"--model {text!r}: {exc}") from None


def decoding_logprobs(logits: torch.Tensor, spec: DecodingSpec) -> torch.Tensor:
    """Log-probabilities ``(..., V)`` of the distribution ``spec`` samples from, per position.

    ``logits: (..., V)`` raw next-token logits (any float dtype; computed in float32). Tokens
    outside the truncated set get ``-inf``; the kept ones log-sum-exp to 0. The plain spec is
    ``log_softmax(logits)``.
    """
    x = _scaled(logits, spec)
    neg_inf = torch.tensor(-math.inf, dtype=x.dtype, device=x.device)
    if 0 < spec.top_k < x.shape[-1]:
        x = torch.where(x < _kth_largest(x, spec.top_k), neg_inf, x)
    if spec.top_p < 1.0:
        keep = torch.zeros(x.shape, dtype=torch.bool, device=x.device).view(-1, x.shape[-1])
        for rows, order, kept, _, _ in _nucleus_stages(x, spec.top_p):
            keep[rows[:, None], order] = kept
        x = torch.where(keep.view(x.shape), x, neg_inf)
    if spec.min_p > 0.0:
        logp = torch.log_softmax(x, dim=-1)
        floor = logp.max(dim=-1, keepdim=True).values + math.log(spec.min_p)
        x = torch.where(logp < floor, neg_inf, x)
    return torch.log_softmax(x, dim=-1)


def _scaled(logits: torch.Tensor, spec: DecodingSpec) -> torch.Tensor:
    """Step 1: float32 logits divided by the temperature."""
    x = logits.float()
    return x / spec.temperature if spec.temperature != 1.0 else x


def _kth_largest(x: torch.Tensor, k: int) -> torch.Tensor:
    """``(..., 1)``: the k-th largest value of each row (step 2 keeps the values >= it)."""
    return torch.topk(x, k, dim=-1).values[..., -1:]


def _nucleus_stages(x: torch.Tensor, top_p: float) -> Iterator[tuple[torch.Tensor, ...]]:
    """Step 3 on the rows of ``x (..., V)`` (scaled logits, maybe -inf), a group of rows at a time.

    Yields ``(rows (r,), order (r, k), kept (r, k), probs (r, k), log_norm (r,))``: for the
    flat row indices ``rows``, their k most likely tokens (most likely first), whether each is
    in the nucleus, its probability and the row's log-sum-exp. Only the most likely tokens are
    sorted: 256, then 4x more for the rows whose top tokens hold less than ``top_p`` (a token
    outside them has at least that mass above it), so the result is that of a full sort at a
    fraction of its cost.
    """
    vocab = x.shape[-1]
    flat = x.reshape(-1, vocab)
    log_norm = torch.logsumexp(flat, dim=-1)
    rows = torch.arange(flat.shape[0], device=x.device)
    sub, k = flat, min(vocab, 256)
    while rows.numel():
        top, order = torch.topk(sub, k, dim=-1)  # sorted, most likely first
        probs = torch.exp(top - log_norm[rows, None])
        cumulative = probs.cumsum(dim=-1)
        done = (cumulative[:, -1] >= top_p) | (k == vocab)
        kept = (cumulative - probs) < top_p  # the mass sorted before each token
        yield rows[done], order[done], kept[done], probs[done], log_norm[rows[done]]
        rows = rows[~done]
        sub, k = flat[rows], min(vocab, 4 * k)


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, spec: DecodingSpec) -> torch.Tensor:
    """``decoding_logprobs(logits, spec)`` at ``tokens``: ``logits (..., V)``, ``tokens (...)``
    int64 -> ``(...)`` float32.

    A spec with at most one truncation (temperature with top-k, or with top-p) never builds
    the truncated distribution: the kept set's log-normaliser is taken from the k most likely
    tokens, so scoring a variant costs a few passes over the logits, not a full renormalised
    copy. The values are those of :func:`decoding_logprobs` (same rules, float32 rounding).
    """
    x = _scaled(logits, spec)
    picked = x.gather(-1, tokens[..., None])[..., 0]
    top_k = 0 < spec.top_k < x.shape[-1]
    truncations = int(top_k) + int(spec.top_p < 1.0) + int(spec.min_p > 0.0)
    neg_inf = torch.tensor(-math.inf, dtype=x.dtype, device=x.device)
    if truncations == 0:
        return picked - torch.logsumexp(x, dim=-1)
    if truncations == 1 and top_k:
        top = torch.topk(x, spec.top_k + 1, dim=-1).values  # top_k < V: one more fits
        kth = top[..., spec.top_k - 1]
        log_norm = torch.logsumexp(top[..., : spec.top_k], dim=-1)
        tied = top[..., -1] == kth  # more tokens share the boundary value than the top k hold
        if bool(tied.any()):
            log_norm[tied] = torch.logsumexp(torch.where(x[tied] < kth[tied, None], neg_inf,
                                                         x[tied]), dim=-1)
        return torch.where(picked < kth, neg_inf, picked - log_norm)
    if truncations == 1 and spec.top_p < 1.0:
        flat_tokens, flat_picked = tokens.reshape(-1), picked.reshape(-1)
        out = torch.empty_like(flat_picked)
        for rows, order, kept, probs, log_norm in _nucleus_stages(x, spec.top_p):
            inside = ((order == flat_tokens[rows, None]) & kept).any(dim=-1)
            mass = (probs * kept).sum(dim=-1)
            out[rows] = torch.where(inside, flat_picked[rows] - log_norm - mass.log(), neg_inf)
        return out.view(picked.shape)
    return decoding_logprobs(logits, spec).gather(-1, tokens[..., None])[..., 0]


__all__ = ["KEYS", "DecodingSpec", "decoding_logprobs", "parse_candidate", "token_logprobs"]
