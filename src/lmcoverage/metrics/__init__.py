"""Coverage metrics on numpy arrays (float64): Cov_N, KL, CE, stopped KL, Pass@k, the bounds."""

from lmcoverage.metrics.bounds import (
    bon_regret_lower_bound,
    bon_regret_upper_bound,
    coverage_chain_rule_bound,
    hellinger_to_coverage_bound,
    kl_to_coverage_bound,
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

__all__ = [
    "binomial_interval",
    "bon_regret_lower_bound",
    "bon_regret_upper_bound",
    "coverage_chain_rule_bound",
    "coverage_mass",
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
