"""A reference made of good responses: pi_D as the reference model's correct samples.

``pi_D(y|x) = pi_ref(y|x) 1[y correct] / p(x)`` with ``p(x) = P_{y ~ pi_ref}[y correct]``: the
reference distribution conditioned on the verifier's reward (the distribution Best-of-N with a
perfect verifier converges to). K samples per prompt are drawn from ``pi_ref`` (the reference
model under its decoding settings) and judged; the ``c(x)`` correct ones are samples from
pi_D, and ``p(x)`` is estimated by ``p_hat(x) = c(x) / K``, so

    log pi_D(y|x) = logp_ref(y|x) - log(c(x) / K)

is the ``logp_data`` that ``lmcoverage score --data`` reads (Cov_N, Eq. 1, and KL need it).
One correction: p(x) is at least the mass ``pi_ref`` puts on the distinct correct responses
drawn, so when c(x)/K falls below that mass (a likely correct response drawn rarely), which
would make pi_D(y|x) > 1, ``p_hat(x)`` is that mass instead. A prompt with no correct sample
has no pi_D estimate and is left out (listed as skipped).

Each kept row is a sample row of :func:`lmcoverage.engine.rows.sample_rows` (``prompt_ids``,
``response_ids``, ``response``, the input row's fields, ``problem``, ...) with ``logp`` renamed
``logp_ref``, plus ``logp_data``, ``p_correct`` (p_hat(x)), ``n_correct`` (c(x)),
``n_samples`` (K), ``weight``
(the input row's weight, default 1, divided by c(x), so that every prompt weighs the same in a
score table however many of its samples were kept) and ``ref_dtype``, the dtype the reference
model ran in (``float32``, ``bfloat16``, ...: ``logp_ref`` and ``logp_data`` carry its
rounding error; ``score --data`` records it as the table's ``reference_dtype``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmcoverage.decoding.spec import DecodingSpec
from lmcoverage.errors import InputError
from lmcoverage.verify.verdicts import problem_id
from lmcoverage.verify.verifiers import Verifier

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class Reference:
    """pi_D's samples: ``rows`` (kept correct samples, prompt by prompt) and ``skipped`` (one
    row per prompt without a correct sample: the input row plus ``problem``, ``n_correct`` = 0
    and ``n_samples``); ``k`` samples were drawn per prompt, judged by ``verifier``."""

    rows: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    k: int
    verifier: str

    @property
    def prompts_kept(self) -> int:
        """Prompts with at least one correct sample."""
        return len({row["problem"] for row in self.rows})


def check_k(k: int) -> None:
    """InputError unless ``k >= 2`` (one sample estimates p(x) as 0 or 1 only)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise InputError(f"--n: need at least 2 samples per prompt to estimate p(x) = "
                         f"c(x)/K, got {k!r}")


def reference_rows(
    inputs: Sequence[dict[str, Any]],
    samples: Sequence[dict[str, Any]],
    k: int,
    verifier: Verifier,
    where: Sequence[str] | None = None,
    dtype: str | None = None,
) -> Reference:
    """Judge ``k`` samples per input row and keep the correct ones as pi_D's samples.

    Args:
        inputs: the P prompt rows (``answer`` where the verifier needs it).
        samples: ``P * k`` sample rows, row by row (as :func:`sample_rows` returns them),
            each with ``response`` text and ``logp`` (log-prob under the reference's decoding).
        k: samples per prompt (>= 2).
        verifier: judges ``(input row, response)``.
        where: per input row, its place for error messages.
        dtype: the dtype the samples' ``logp`` were computed in, kept as each row's
            ``ref_dtype`` (not recorded when None).

    Raises:
        InputError: ``k < 2``, a sample count other than ``P * k``, a verifier that raises or
            returns a non-bool (one line naming the row).
    """
    check_k(k)
    if len(samples) != len(inputs) * k:
        raise InputError(f"samples: expected {len(inputs)} x {k} rows, got {len(samples)}")
    places = list(where) if where is not None else [f"row {i + 1}" for i in range(len(inputs))]
    kept: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for i, row in enumerate(inputs):
        problem = problem_id(row, i)
        group = samples[i * k:(i + 1) * k]
        verdicts = [verifier(row, s["response"], f"{places[i]}: ") for s in group]
        c = sum(verdicts)
        if c == 0:
            skipped.append({**row, "problem": problem, "n_correct": 0, "n_samples": k})
            continue
        weight = float(row.get("weight", 1.0)) / c
        good = [s for s, ok in zip(group, verdicts, strict=True) if ok]
        seen = {_response_key(s): s["logp"] for s in good}
        mass = math.fsum(math.exp(lp) for lp in seen.values())
        log_p = math.log(c / k) if c / k >= mass else math.log(mass)
        for s in good:
            out = {key: value for key, value in s.items() if key != "logp"}
            out.update(problem=s.get("problem", problem), logp_ref=s["logp"],
                       logp_data=min(s["logp"] - log_p, 0.0), p_correct=math.exp(log_p),
                       n_correct=c, n_samples=k, weight=weight)
            if dtype is not None:
                out["ref_dtype"] = dtype
            kept.append(out)
    return Reference(kept, skipped, k, verifier.spec)


def _response_key(sample: dict[str, Any]) -> Hashable:
    """What makes two samples the same response: their token ids, else their text."""
    ids = sample.get("response_ids")
    return tuple(ids) if ids is not None else sample["response"]


def build_reference(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    inputs: Sequence[dict[str, Any]],
    k: int,
    verifier: Verifier,
    spec: DecodingSpec = DecodingSpec(),
    seed: int = 0,
    max_new_tokens: int = 256,
    batch_size: int | str = "auto",
    progress: bool = True,
    where: Sequence[str] | None = None,
) -> Reference:
    """Sample ``k`` responses per prompt from ``model`` decoded with ``spec`` and keep the
    correct ones (:func:`reference_rows`); rows are checked before any sampling.

    Raises:
        InputError: as :func:`reference_rows`, and rows the verifier cannot judge (no
            ``answer``).
    """
    from lmcoverage.engine.rows import sample_rows
    from lmcoverage.models.hf import dtype_name

    check_k(k)
    verifier.check_rows(inputs, "--data")
    samples = sample_rows(model, tokenizer, inputs, k, spec, seed=seed,
                          max_new_tokens=max_new_tokens, batch_size=batch_size,
                          progress=progress, where=where)
    return reference_rows(inputs, samples, k, verifier, where, dtype_name(model.dtype))
