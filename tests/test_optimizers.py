"""Optimizers: projection, normalized SGD (Eq. 18) step length, SignSGD (Eq. 20), Adam, the
torch.optim wrappers on a transformer, token-level steps (Eq. 21), bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcoverage.train.optimizers import (
    NormalizedSGD,
    ProjectedSGD,
    SignSGD,
    adam_update,
    normalized_sgd_update,
    project_ball,
    sgd_update,
    sign_sgd_update,
    token_level_steps,
)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
vectors = st.lists(finite, min_size=1, max_size=6)


@settings(max_examples=100, deadline=None)
@given(vectors, st.floats(0.01, 10.0))
def test_projection_is_the_nearest_point_of_the_ball(values: list[float], radius: float) -> None:
    theta = torch.tensor(values, dtype=torch.float64)
    proj = project_ball(theta, radius)
    norm = float(theta.norm(dim=-1))  # the norm project_ball computes (1 ulp matters on the sphere)
    assert float(proj.norm()) <= radius * (1 + 1e-12)
    if norm <= radius:
        assert torch.equal(proj, theta)
    else:
        assert float(proj.norm()) == pytest.approx(radius, rel=1e-12)
        torch.testing.assert_close(proj * norm / radius, theta, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(project_ball(proj, radius), proj, rtol=0, atol=1e-12)
    # nearest point: no random point of the ball is closer to theta
    g = torch.Generator().manual_seed(len(values))
    others = project_ball(torch.randn(64, len(values), generator=g, dtype=torch.float64), radius)
    assert float((others - theta).norm(dim=1).min()) >= float((proj - theta).norm()) - 1e-9


def test_projection_rows_independent_and_no_radius() -> None:
    theta = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]], dtype=torch.float64)
    out = project_ball(theta, 1.0)
    torch.testing.assert_close(out[0], torch.tensor([0.6, 0.8], dtype=torch.float64))
    assert torch.equal(out[1:], theta[1:])
    assert project_ball(theta, None) is theta


@settings(max_examples=150, deadline=None)
@given(vectors, st.floats(1e-4, 10.0), st.floats(1e-6, 1e3), st.booleans())
def test_normalized_step_never_exceeds_eta(
    values: list[float], lr: float, lam: float, project: bool
) -> None:
    d = len(values)
    grad = torch.tensor(values, dtype=torch.float64)
    theta = project_ball(torch.linspace(-1, 1, d, dtype=torch.float64), 1.0)
    radius = 1.0 if project else None
    new = normalized_sgd_update(theta, grad, lr, lam, radius)
    assert float((new - theta).norm()) <= lr * (1 + 1e-12)
    if not project:
        expected = theta + lr * grad / (lam + float(grad.norm()))
        torch.testing.assert_close(new, expected, rtol=1e-12, atol=1e-12)
    # the torch.optim version: descent on a loss with gradient -grad, same step bound
    p = torch.nn.Parameter(theta.clone())
    opt = NormalizedSGD([p], lr=lr, lam=lam, radius=radius)
    p.grad = -grad.clone()
    opt.step()
    torch.testing.assert_close(p.detach(), new, rtol=1e-12, atol=1e-12)


def test_normalized_sgd_norm_is_global_over_a_group() -> None:
    a = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    b = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = NormalizedSGD([a, b], lr=0.5, lam=1.0)
    a.grad = torch.tensor([3.0, 0.0], dtype=torch.float64)
    b.grad = torch.tensor([0.0, 4.0, 0.0], dtype=torch.float64)
    opt.step()
    step = torch.cat([a.detach(), b.detach()])
    torch.testing.assert_close(step, -0.5 * torch.tensor([3.0, 0, 0, 4, 0]).double() / 6.0)


def test_sgd_and_sign_sgd_updates() -> None:
    theta = torch.tensor([[0.1, -0.2], [0.0, 0.0]], dtype=torch.float64)
    grad = torch.tensor([[2.0, -0.5], [-1.0, 0.0]], dtype=torch.float64)
    lr = torch.tensor([0.1, 0.2], dtype=torch.float64)
    torch.testing.assert_close(sgd_update(theta, grad, lr), theta + lr[:, None] * grad)
    torch.testing.assert_close(
        sign_sgd_update(theta, grad, 0.05), theta + 0.05 * torch.sign(grad), rtol=0, atol=1e-15
    )
    big = sgd_update(theta, 100 * grad, 1.0, radius=1.0)
    assert bool((big.norm(dim=1) <= 1.0 + 1e-12).all())
    p = torch.nn.Parameter(theta[0].clone())
    opt = SignSGD([p], lr=0.05)
    p.grad = -grad[0].clone()
    opt.step()
    torch.testing.assert_close(p.detach(), theta[0] + 0.05 * torch.sign(grad[0]))


def test_adam_update_matches_torch_adam() -> None:
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(4, generator=g, dtype=torch.float64)
    p = torch.nn.Parameter(theta.clone())
    opt = torch.optim.Adam([p], lr=0.01, betas=(0.8, 0.99), eps=1e-8)
    state = None
    for _ in range(5):
        grad = torch.randn(4, generator=g, dtype=torch.float64)
        theta, state = adam_update(theta, grad, state, 0.01, betas=(0.8, 0.99))
        p.grad = -grad
        opt.step()
    torch.testing.assert_close(theta, p.detach(), rtol=1e-10, atol=1e-12)
    assert state is not None and state.step == 5


def test_projected_sgd_keeps_a_module_in_the_ball() -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    with torch.no_grad():
        for q in net.parameters():
            q.mul_(0.01)
    opt = ProjectedSGD(net.parameters(), lr=10.0, radius=0.5)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 3)).pow(2).sum().neg().backward()
        opt.step()
    total = math.sqrt(sum(float((q.detach() ** 2).sum()) for q in net.parameters()))
    assert total == pytest.approx(0.5, rel=1e-6)


def test_optimizers_on_a_tiny_transformer_with_token_level_steps() -> None:
    from lmcoverage.models.gpt import build_gpt

    model = build_gpt("tiny", vocab_size=11, n_positions=16, seed=0)
    before = [q.detach().clone() for q in model.parameters()]
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    prompt_len, horizon = 3, 3

    def token_loss(h: int) -> torch.Tensor:
        pos = prompt_len + h
        logits = model(ids[:, :pos]).logits[:, -1]
        return torch.nn.functional.cross_entropy(logits, ids[:, pos])

    for opt in (
        NormalizedSGD(model.parameters(), lr=1e-2, lam=1.0),
        SignSGD(model.parameters(), lr=1e-4),
        ProjectedSGD(model.parameters(), lr=1e-2),
    ):
        losses = token_level_steps(opt, token_loss, horizon)
        assert losses.shape == (horizon,) and bool(torch.isfinite(losses).all())
    moved = sum(
        float((q.detach() - b).abs().sum()) for q, b in zip(model.parameters(), before, strict=True)
    )
    assert moved > 0
    # normalized steps are bounded by lr per step (global norm over all parameters)
    snap = [q.detach().clone() for q in model.parameters()]
    opt = NormalizedSGD(model.parameters(), lr=1e-3, lam=1e-6)
    token_level_steps(opt, token_loss, 1)
    step = math.sqrt(
        sum(
            float(((q.detach() - s) ** 2).sum())
            for q, s in zip(model.parameters(), snap, strict=True)
        )
    )
    assert 0 < step <= 1e-3 * (1 + 1e-5)  # float32 parameters


def test_bad_input_names_the_argument() -> None:
    theta = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="lr"):
        sgd_update(theta, theta, 0.0)
    with pytest.raises(ValueError, match="lr"):
        normalized_sgd_update(theta, theta, -1.0, 1.0)
    with pytest.raises(ValueError, match="lam"):
        normalized_sgd_update(theta, theta, 0.1, 0.0)
    with pytest.raises(ValueError, match="lr"):
        sign_sgd_update(theta, theta, math.nan)
    with pytest.raises(ValueError, match="lr"):
        sgd_update(torch.zeros(3, 2), torch.zeros(3, 2), torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="radius"):
        sgd_update(theta, theta, 0.1, radius=0.0)
    p = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    with pytest.raises(ValueError, match="lr"):
        NormalizedSGD([p], lr=0.0, lam=1.0)
    with pytest.raises(ValueError, match="lam"):
        NormalizedSGD([p], lr=0.1, lam=-1.0)
    with pytest.raises(ValueError, match="params"):
        ProjectedSGD([p], lr=0.1, radius=1.0)
    with pytest.raises(ValueError, match="horizon"):
        token_level_steps(ProjectedSGD([p], lr=0.1), lambda h: p.sum(), 0)
