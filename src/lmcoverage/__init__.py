"""lmcoverage: the coverage principle of language-model pre-training, made usable.

Measure coverage profiles, KL, cross-entropy and Pass@N for any set of checkpoints, choose
checkpoints by coverage, and re-run the experiments of "The Coverage Principle"
(arXiv 2510.15020). See ``lmcoverage --help``.
"""

from lmcoverage.metrics import (
    bon_regret_lower_bound,
    bon_regret_upper_bound,
    coverage_chain_rule_bound,
    coverage_profile,
    coverage_profile_ci,
    cross_entropy,
    hellinger_squared,
    hellinger_to_coverage_bound,
    kl_divergence,
    kl_to_coverage_bound,
    pass_at_k,
    pass_at_n_exact,
    stopped_kl,
    stopped_kl_to_coverage_bound,
)
from lmcoverage.scoretable import ScoreTable

__version__ = "0.1.0"

__all__ = [
    "ScoreTable",
    "bon_regret_lower_bound",
    "bon_regret_upper_bound",
    "coverage_chain_rule_bound",
    "coverage_profile",
    "coverage_profile_ci",
    "cross_entropy",
    "hellinger_squared",
    "hellinger_to_coverage_bound",
    "kl_divergence",
    "kl_to_coverage_bound",
    "pass_at_k",
    "pass_at_n_exact",
    "stopped_kl",
    "stopped_kl_to_coverage_bound",
]
