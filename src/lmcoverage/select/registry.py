"""The selectors by name: one home for what each needs and how to call it.

``lmcoverage select --method NAME``, Figure 1, the paired regret statistic
(:func:`lmcoverage.verify.paired.selector_regret`) and the Trainer callback all read
:data:`SELECTORS`. A new selector is a function in :mod:`lmcoverage.select` plus one entry here.

Every entry is called the same way: ``SELECTORS[name](scores, n=..., onpolicy=...,
loglik_data=..., weights=..., names=...)`` (all options keyword-only), where ``scores`` is a
(candidates, examples) log-likelihood matrix or a ScoreTable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lmcoverage.errors import InputError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from lmcoverage.select._inputs import Scores
    from lmcoverage.select.result import Selection


@dataclass(frozen=True)
class SelectorInfo:
    """One selector: its name, what its statistic is, and what it needs.

    ``uses_n``: runs at a coverage threshold N (``n=`` required); ``needs_samples``: needs
    on-policy estimates from responses sampled by every candidate (``onpolicy=``);
    ``needs_oracle``: needs pi_D's log-likelihoods (``loglik_data=``, or the table's column).
    """

    name: str
    label: str
    description: str
    uses_n: bool
    needs_samples: bool
    needs_oracle: bool
    _run: Callable[..., Selection]

    def __call__(
        self,
        scores: Scores,
        *,
        n: float | None = None,
        a: float = 0.5,
        onpolicy: ArrayLike | None = None,
        loglik_data: ArrayLike | None = None,
        weights: ArrayLike | None = None,
        names: Sequence[str] | None = None,
    ) -> Selection:
        """Run the selector; InputError naming what is missing (N, on-policy estimates)."""
        options: dict[str, object] = {"weights": weights, "names": names}
        if self.uses_n:
            if n is None:
                raise InputError(f"{self.name}: needs the coverage threshold n")
            options["n"] = n
        if self.needs_samples:
            if onpolicy is None:
                raise InputError(f"{self.name}: needs on-policy estimates (samples from "
                                 "every candidate)")
            options.update(onpolicy=onpolicy, a=a)
        if self.needs_oracle:
            options["loglik_data"] = loglik_data
        return self._run(scores, **options)


def _entries() -> dict[str, SelectorInfo]:
    from lmcoverage.select.baselines import min_cross_entropy, min_kl, oracle_coverage
    from lmcoverage.select.tournament import offset_tournament, simple_tournament

    entries = [
        SelectorInfo("tournament", "worst hatCov_N",
                     "the simple tournament (Eq. 29): only held-out log-likelihoods",
                     True, False, False, simple_tournament),
        SelectorInfo("offset", "worst offset score",
                     "the offset tournament (Eq. 32): also samples from every candidate",
                     True, True, False, offset_tournament),
        SelectorInfo("cross-entropy", "cross-entropy (nats)",
                     "the lowest held-out cross-entropy", False, False, False,
                     min_cross_entropy),
        SelectorInfo("kl", "KL (nats)", "the lowest sequence-level KL (needs pi_D)",
                     False, False, True, min_kl),
        SelectorInfo("oracle", "Cov_N", "the lowest Cov_N (Eq. 1; needs pi_D)",
                     True, False, True, oracle_coverage),
    ]
    return {e.name: e for e in entries}


#: selector name -> :class:`SelectorInfo`, in the order ``lmcoverage select --help`` lists them
SELECTORS: dict[str, SelectorInfo] = _entries()


def get_selector(name: str, option: str = "selector") -> SelectorInfo:
    """The selector called ``name``; InputError naming ``option`` and the known names otherwise."""
    try:
        return SELECTORS[name]
    except KeyError:
        raise InputError(f"{option}: unknown {name!r}; choose from "
                         f"{', '.join(SELECTORS)}") from None
