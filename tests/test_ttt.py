"""Test-time-training decoding (Eq. 22-23): a proper sequence distribution, exact scoring by
teacher forcing through the same updates, reset per sequence, batched."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmcoverage.decoding import TTTPolicy
from lmcoverage.models.linear import (
    LinearARModel,
    all_sequences,
    exact_metrics,
    monte_carlo_metrics,
)

P, V, H, D = 2, 3, 4, 3
MU = torch.tensor([0.7, 0.3], dtype=torch.float64)


def _model(horizon: int = H) -> LinearARModel:
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(P, V, D, generator=g, dtype=torch.float64)

    def phi(x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:  # prefix-dependent
        return emb[x, seq[:, -1]] * (1.0 + 0.25 * (seq[:, 0] == seq[:, -1]))[:, None]

    return LinearARModel(phi, horizon, vocab_size=V, num_prompts=P, radius=2.0)


def _theta() -> torch.Tensor:
    return torch.tensor([0.8, -0.5, 0.3], dtype=torch.float64)


def test_ttt_sums_to_one_over_all_sequences() -> None:
    model = _model()
    ttt = TTTPolicy(model, _theta(), lr=0.7)
    seqs = all_sequences(V, H)
    for x in range(P):
        probs = ttt.log_prob(torch.full((V**H,), x), seqs).exp()
        assert float(probs.sum()) == pytest.approx(1.0, abs=1e-12)
        base = model.policy(_theta()).log_prob(torch.full((V**H,), x), seqs).exp()
        assert float((probs - base).abs().max()) > 1e-3  # TTT changes the distribution


def test_ttt_scoring_matches_an_explicit_per_token_loop() -> None:
    model = _model()
    theta, lr = _theta(), 0.4
    x = torch.tensor([1])
    y = torch.tensor([[2, 0, 2, 1]])
    cur = theta.clone()
    total = 0.0
    for h in range(H):  # Eq. 22-23 with autograd gradients and explicit projection
        t = cur.clone().requires_grad_(True)
        cand = model.candidate_features(x, y[:, :h])[0]
        lp = torch.log_softmax(cand @ t, 0)[y[0, h]]
        lp.backward()
        total += float(lp.detach())
        cur = cur + lr * t.grad
        cur = cur * min(1.0, model.radius / float(cur.norm()))
    got = TTTPolicy(model, theta, lr).log_prob(x, y)
    assert float(got[0]) == pytest.approx(total, abs=1e-12)


def test_ttt_resets_per_sequence_and_batches() -> None:
    model = _model()
    ttt = TTTPolicy(model, _theta(), lr=0.5)
    x = torch.tensor([0, 1, 0, 1])
    y = torch.randint(0, V, (4, H), generator=torch.Generator().manual_seed(1))
    batched = ttt.log_prob(x, y)
    alone = torch.cat([ttt.log_prob(x[i : i + 1], y[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-12)
    torch.testing.assert_close(ttt.log_prob(x.flip(0), y.flip(0)), batched.flip(0))


def test_ttt_sampling_agrees_with_scoring() -> None:
    model = _model(horizon=2)
    ttt = TTTPolicy(model, _theta(), lr=1.5)
    n = 40_000
    y = ttt.sample(torch.zeros(n, dtype=torch.long), torch.Generator().manual_seed(2))
    freq = torch.bincount(y[:, 0] * V + y[:, 1], minlength=V * V).double() / n
    probs = ttt.log_prob(torch.zeros(V * V, dtype=torch.long), all_sequences(V, 2)).exp()
    se = torch.sqrt(probs * (1 - probs) / n)
    assert bool(((freq - probs).abs() <= 5 * se + 1e-12).all())


def test_ttt_metrics_exact_and_monte_carlo_agree() -> None:
    model = _model()
    data = model.policy(torch.tensor([-0.6, 0.9, 0.4], dtype=torch.float64))
    ttt = TTTPolicy(model, torch.zeros(D, dtype=torch.float64), lr=0.5)
    ns = [2, 4, 8]
    exact = exact_metrics(data, ttt, MU, ns)
    mc = monte_carlo_metrics(data, ttt, MU, ns, 10_000, seed=5)
    assert bool(np.all((mc.cov_lo <= exact.cov + 1e-3) & (exact.cov <= mc.cov_hi + 1e-3)))
    assert mc.kl_lo <= exact.kl <= mc.kl_hi
    # a vanishing step size recovers the base policy
    tiny = exact_metrics(data, TTTPolicy(model, torch.zeros(D), lr=1e-9), MU, ns)
    base = exact_metrics(data, model.policy(torch.zeros(D)), MU, ns)
    assert tiny.kl == pytest.approx(base.kl, abs=1e-6)
    assert abs(exact.kl - base.kl) > 1e-3


def test_bad_input_names_the_argument() -> None:
    model = _model()
    for bad in (0.0, -0.1, math.inf):
        with pytest.raises(ValueError, match="lr"):
            TTTPolicy(model, _theta(), lr=bad)
    with pytest.raises(ValueError, match="theta"):
        TTTPolicy(model, torch.tensor([3.0, 0.0, 0.0]), lr=0.1)
