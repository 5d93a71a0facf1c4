"""Coverage metrics on numpy arrays (float64): Cov_N, KL, CE, stopped KL, Pass@k, the bounds."""

from lmcoverage.metrics.best_of_n import best_of_n_regret, coverage_gap_reward
from lmcoverage.metrics.bounds import (
    best_stepwise_hellinger_coverage_lower_bound,
    bon_regret_lower_bound,
    bon_regret_upper_bound,
    coverage_chain_rule_bound,
    coverage_decay_constant,
    coverage_to_kl_bound,
    hellinger_to_coverage_bound,
    kl_to_coverage_bound,
    sequence_hellinger_coverage_lower_bound,
    stepwise_hellinger_coverage_lower_bound,
    stopped_kl_to_coverage_bound,
)
from lmcoverage.metrics.coverage import (
    binomial_interval,
    coverage_mass,
    coverage_profile,
    coverage_profile_ci,
)
from lmcoverage.metrics.divergences import (
    cross_entropy,
    hellinger_squared,
    kl_divergence,
    stopped_kl,
)
from lmcoverage.metrics.passk import pass_at_k, pass_at_n_exact
from lmcoverage.metrics.threshold import TIE_ATOL, log_threshold, ratio_at_least

__all__ = [
    "TIE_ATOL",
    "best_of_n_regret",
    "best_stepwise_hellinger_coverage_lower_bound",
    "binomial_interval",
    "bon_regret_lower_bound",
    "bon_regret_upper_bound",
    "coverage_chain_rule_bound",
    "coverage_decay_constant",
    "coverage_gap_reward",
    "coverage_mass",
    "coverage_profile",
    "coverage_profile_ci",
    "coverage_to_kl_bound",
    "cross_entropy",
    "hellinger_squared",
    "hellinger_to_coverage_bound",
    "kl_divergence",
    "kl_to_coverage_bound",
    "log_threshold",
    "pass_at_k",
    "pass_at_n_exact",
    "ratio_at_least",
    "sequence_hellinger_coverage_lower_bound",
    "stepwise_hellinger_coverage_lower_bound",
    "stopped_kl",
    "stopped_kl_to_coverage_bound",
]
