"""Truncated distillation gradient (Eq. 24-26): the weights of Lemma I.4, the loss helper and the
linear-model driver."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcoverage.models.linear import LinearARModel, online_fit, token_kl
from lmcoverage.train.optimizers import truncated_distillation_loss, truncated_kl_weights

token_kls = st.lists(
    st.one_of(st.just(0.0), st.floats(1e-12, 50.0, allow_nan=False)), min_size=1, max_size=40
)


@settings(max_examples=250, deadline=None)
@given(token_kls, st.one_of(st.just(0.0), st.floats(0.0, 100.0)))
def test_weights_give_min_of_log_n_and_total(eps: list[float], log_n: float) -> None:
    kl = torch.tensor([eps], dtype=torch.float64)
    alpha = truncated_kl_weights(kl, log_n)
    assert alpha.shape == kl.shape
    assert bool(((alpha >= 0) & (alpha <= 1)).all())
    assert bool((alpha[0, 1:] <= alpha[0, :-1]).all())  # 1, ..., 1, fraction, 0, ..., 0
    total = math.fsum(eps)
    value = float((alpha * kl).sum())
    assert value == pytest.approx(min(log_n, total), rel=1e-12, abs=1e-12)


def test_weights_worked_example_and_plain_distillation() -> None:
    kl = torch.tensor([[0.5, 1.0, 2.0, 0.0, 1.0], [0.1, 0.0, 0.1, 0.1, 0.1]], dtype=torch.float64)
    alpha = truncated_kl_weights(kl, 1.0)
    expected = torch.tensor([[1.0, 0.5, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    torch.testing.assert_close(alpha, expected.double())
    assert torch.equal(truncated_kl_weights(kl, math.inf), torch.ones_like(kl))


def test_loss_gradient_is_weighted_sum_of_token_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(3, dtype=torch.float64, requires_grad=True)
    feats = torch.randn(2, 4, 3, generator=g, dtype=torch.float64)
    logprobs = torch.nn.functional.logsigmoid(feats @ theta)  # (batch, H)
    kl = torch.rand(2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    loss = truncated_distillation_loss(logprobs, kl, 0.7)
    loss.backward()
    alpha = truncated_kl_weights(kl.detach(), 0.7)
    manual = torch.zeros(3, dtype=torch.float64)
    for b in range(2):
        for h in range(4):
            t = theta.detach().clone().requires_grad_(True)
            torch.nn.functional.logsigmoid(feats[b, h] @ t).backward()
            manual -= alpha[b, h] * t.grad / 2
    torch.testing.assert_close(theta.grad, manual, rtol=1e-12, atol=1e-12)
    assert kl.grad is None  # the weights are constants


def test_linear_driver_truncates_and_reduces_to_plain_sgd() -> None:
    g = torch.Generator().manual_seed(1)
    model = LinearARModel(torch.randn(2, 3, 3, generator=g, dtype=torch.float64), 6)
    mu = torch.tensor([0.5, 0.5], dtype=torch.float64)
    data = model.policy(model.project(torch.randn(3, generator=g, dtype=torch.float64)))
    theta0 = torch.zeros(3, dtype=torch.float64)
    kwargs = {"method": "sgd", "lr": 0.05, "steps": 20, "seed": 3}
    plain = online_fit(model, data, mu, theta0, **kwargs)  # type: ignore[arg-type]
    untruncated = online_fit(model, data, mu, theta0, distill_log_n=math.inf, **kwargs)  # type: ignore[arg-type]
    torch.testing.assert_close(plain.theta, untruncated.theta, rtol=0, atol=1e-12)
    truncated = online_fit(model, data, mu, theta0, distill_log_n=0.01, **kwargs)  # type: ignore[arg-type]
    assert float((truncated.theta - plain.theta).norm()) > 1e-6
    # token-level KLs along a sequence are what the weights see
    x = torch.tensor([0, 1])
    y = data.sample(x, g)
    eps = token_kl(data, model.policy(theta0), x, y)
    assert eps.shape == (2, 6) and bool((eps > 0).all())


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match="token_kl"):
        truncated_kl_weights(torch.tensor([[0.1, -0.2]]), 1.0)
    with pytest.raises(ValueError, match="token_kl"):
        truncated_kl_weights(torch.tensor([[0.1, math.nan]]), 1.0)
    with pytest.raises(ValueError, match="token_kl"):
        truncated_kl_weights(torch.tensor([0.1, 0.2]), 1.0)
    with pytest.raises(ValueError, match="log_n"):
        truncated_kl_weights(torch.tensor([[0.1, 0.2]]), -1.0)
    with pytest.raises(ValueError, match="token_logprobs"):
        truncated_distillation_loss(torch.zeros(2, 3), torch.zeros(2, 4), 1.0)
