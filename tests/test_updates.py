"""The leaf module of update rules: truncation weights at exactly the budget (Eq. 25), the
closed form for a constant token KL, and the rule-by-name loop."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcoverage.updates import (
    make_update,
    normalized_sgd_update,
    run_updates,
    sgd_update,
    truncated_kl_weights,
    truncation_point,
)


def test_token_whose_running_kl_equals_the_budget_gets_weight_one() -> None:
    """Eq. 25: alpha_h = 1 while sum_{j<=h} eps_j <= A, ties included. Here A is the float
    running sum through token 2, and A - eps_1 falls one ulp short of eps_2."""
    eps = torch.tensor([[0.85, 0.76, 0.43]], dtype=torch.float64)
    budget = float(torch.cumsum(eps, 1)[0, 1])
    assert (budget - 0.85) / 0.76 < 1.0  # the rounding that used to give 0.9999999999999999
    assert truncated_kl_weights(eps, budget).tolist() == [[1.0, 1.0, 0.0]]
    # a zero-KL token right at the budget is inside it too; the next positive one is not
    eps = torch.tensor([[0.5, 0.0, 0.25]], dtype=torch.float64)
    assert truncated_kl_weights(eps, 0.5).tolist() == [[1.0, 1.0, 0.0]]


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-6, 5.0), st.floats(0.0, 20.0), st.integers(1, 64))
def test_constant_kl_closed_form_matches_the_weights(eps: float, log_n: float, h: int) -> None:
    ones, frac = truncation_point(torch.tensor([eps], dtype=torch.float64), log_n, h)
    alpha = truncated_kl_weights(torch.full((1, h), eps, dtype=torch.float64), log_n)[0]
    k = int(ones)
    assert torch.equal(alpha[:k], torch.ones(k, dtype=torch.float64))
    assert torch.equal(alpha[k + 1:], torch.zeros(max(h - k - 1, 0), dtype=torch.float64))
    if k < h:
        assert float(alpha[k]) == pytest.approx(float(frac), abs=1e-9)
    assert float((alpha * eps).sum()) == pytest.approx(min(log_n, h * eps), rel=1e-9, abs=1e-12)


def test_constant_kl_exact_budget() -> None:
    """k * eps == A exactly gives k full tokens and no fraction (Eq. 25)."""
    eps = torch.tensor([0.1, 0.25], dtype=torch.float64)
    ones, frac = truncation_point(eps, 0.75, 10)
    assert ones.tolist() == [7, 3] and frac[1] == 0.0
    assert float(ones[0]) * 0.1 <= 0.75 < float(ones[0] + 1) * 0.1


def test_run_updates_is_the_rule_applied_step_by_step() -> None:
    g = torch.Generator().manual_seed(0)
    grads = torch.randn(5, 3, 2, generator=g, dtype=torch.float64)
    theta0 = torch.zeros(3, 2, dtype=torch.float64)
    lr = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)
    lam = torch.full((3,), 0.3, dtype=torch.float64)
    traj = run_updates(theta0, lambda t, th: grads[t],
                       make_update("normalized_sgd", lr, lam=lam, radius=1.0), 5, [0, 2, 5])
    theta = theta0
    manual = [theta]
    for t in range(5):
        theta = normalized_sgd_update(theta, grads[t], lr, lam, 1.0)
        manual.append(theta)
    assert torch.equal(traj, torch.stack([manual[0], manual[2], manual[5]]))
    sgd = run_updates(theta0, lambda t, th: grads[t], make_update("sgd", lr), 1, [1])
    assert torch.equal(sgd[0], sgd_update(theta0, grads[0], lr))
    with pytest.raises(ValueError, match="method"):
        make_update("rmsprop", 0.1)
    with pytest.raises(ValueError, match="lam"):
        make_update("normalized_sgd", 0.1)
    assert math.isfinite(float(run_updates(theta0, lambda t, th: grads[t],
                                           make_update("adam", 0.1), 5, [5]).sum()))
