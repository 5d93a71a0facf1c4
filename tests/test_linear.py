"""Autoregressive linear model (Eq. 3): likelihoods, gradients, sampling, exact and Monte Carlo
metrics, sigma_star^2 (Eq. 8), MLE, online fitting, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmcoverage.models.linear import (
    METHODS,
    LinearARModel,
    NextTokenPolicy,
    all_sequences,
    exact_metrics,
    fit_mle,
    inherent_variance_exact,
    inherent_variance_mc,
    monte_carlo_metrics,
    online_fit,
    token_kl,
)
from lmcoverage.train.optimizers import normalized_sgd_update, sgd_update

P, V, H, D = 3, 3, 4, 5
MU = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _prefix_phi(seed: int = 0):
    """A feature map that depends on the whole prefix (not expressible as a table)."""
    g = _gen(seed)
    emb = torch.randn(P, V, D, generator=g, dtype=torch.float64)
    mix = torch.randn(V, D, generator=g, dtype=torch.float64)

    def phi(x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        h = seq.shape[1]
        prev = seq[:, :-1].sum(1) % V if h > 1 else torch.zeros_like(x)
        return emb[x, seq[:, -1]] + 0.5 * mix[prev] * (seq[:, -1] == prev)[:, None] + 0.1 * h

    return phi


def _models(seed: int = 0) -> tuple[LinearARModel, LinearARModel, torch.Tensor]:
    """(table model, equivalent callable model, table) with position-dependent features."""
    table = torch.randn(P, H, V, D, generator=_gen(seed), dtype=torch.float64)
    callable_model = LinearARModel(
        lambda x, s: table[x, s.shape[1] - 1, s[:, -1]], H, vocab_size=V, num_prompts=P
    )
    return LinearARModel(table, H), callable_model, table


def _theta(model: LinearARModel, seed: int, scale: float = 1.0) -> torch.Tensor:
    return model.project(scale * torch.randn(model.dim, generator=_gen(seed), dtype=torch.float64))


def _brute_log_prob(phi, theta: torch.Tensor, x: int, y: list[int]) -> float:
    """log pi_theta(y|x) with explicit per-token softmax loops (reference)."""
    total = 0.0
    for h in range(len(y)):
        logits = []
        for v in range(V):
            seq = torch.tensor([[*y[:h], v]])
            logits.append(float(phi(torch.tensor([x]), seq)[0] @ theta))
        total += logits[y[h]] - math.log(sum(math.exp(v) for v in logits))
    return total


def test_log_prob_matches_reference_and_table_equals_callable() -> None:
    table_model, callable_model, _ = _models()
    theta = _theta(table_model, 1)
    x = torch.tensor([0, 1, 2, 2, 1])
    y = torch.randint(0, V, (5, H), generator=_gen(2))
    lp_table = table_model.log_prob(theta, x, y)
    lp_call = callable_model.log_prob(theta, x, y)
    assert lp_table.dtype == torch.float64
    torch.testing.assert_close(lp_table, lp_call, rtol=0, atol=1e-12)
    phi = _prefix_phi()
    model = LinearARModel(phi, H, vocab_size=V, num_prompts=P)
    lp = model.log_prob(theta, x, y)
    for i in range(2):
        assert lp[i].item() == pytest.approx(
            _brute_log_prob(phi, theta, int(x[i]), y[i].tolist()), abs=1e-12
        )


def test_sequence_probabilities_sum_to_one() -> None:
    model = LinearARModel(_prefix_phi(), H, vocab_size=V, num_prompts=P)
    theta = _theta(model, 3)
    seqs = all_sequences(V, H)
    assert seqs.shape == (V**H, H)
    assert len({tuple(s) for s in seqs.tolist()}) == V**H
    for x in range(P):
        total = model.log_prob(theta, torch.full((V**H,), x), seqs).exp().sum()
        assert float(total) == pytest.approx(1.0, abs=1e-12)


def test_grad_matches_autograd_and_finite_differences() -> None:
    model = LinearARModel(_prefix_phi(), H, vocab_size=V, num_prompts=P)
    theta = _theta(model, 4, scale=0.2)
    assert float(theta.norm()) < 0.9  # finite differences stay inside Theta
    x = torch.tensor([0, 2, 1])
    y = torch.randint(0, V, (3, H), generator=_gen(5))
    closed = model.grad_log_prob(theta, x, y)
    assert closed.shape == (3, D)
    for i in range(3):
        t = theta.clone().requires_grad_(True)
        model.log_prob(t, x[i : i + 1], y[i : i + 1]).sum().backward()
        torch.testing.assert_close(closed[i], t.grad, rtol=0, atol=1e-12)
        fd = torch.empty(D, dtype=torch.float64)
        step = 1e-6
        for j in range(D):
            e = torch.zeros(D, dtype=torch.float64)
            e[j] = step
            up = model.log_prob(theta + e, x[i : i + 1], y[i : i + 1])
            down = model.log_prob(theta - e, x[i : i + 1], y[i : i + 1])
            fd[j] = float(up - down) / (2 * step)
        torch.testing.assert_close(closed[i], fd, rtol=0, atol=1e-7)


def test_per_sequence_theta_rows() -> None:
    model, _, _ = _models()
    thetas = torch.stack([_theta(model, s) for s in range(4)])
    x = torch.tensor([0, 1, 2, 0])
    y = torch.randint(0, V, (4, H), generator=_gen(7))
    batched = model.log_prob(thetas, x, y)
    single = torch.stack(
        [model.log_prob(thetas[i], x[i : i + 1], y[i : i + 1])[0] for i in range(4)]
    )
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-12)


def test_sampling_frequencies_match_probabilities() -> None:
    model = LinearARModel(_prefix_phi(), 2, vocab_size=V, num_prompts=P)
    theta = _theta(model, 8)
    n = 40_000
    y = model.sample(theta, torch.full((n,), 1), _gen(9))
    codes = y[:, 0] * V + y[:, 1]
    freq = torch.bincount(codes, minlength=V * V).double() / n
    probs = model.log_prob(theta, torch.full((V * V,), 1), all_sequences(V, 2)).exp()
    se = torch.sqrt(probs * (1 - probs) / n)
    assert bool(((freq - probs).abs() <= 5 * se + 1e-12).all())


def test_iid_table_fast_path_equals_general_path() -> None:
    table = torch.randn(P, V, D, generator=_gen(10), dtype=torch.float64)
    iid = LinearARModel(table, H)
    general = LinearARModel(lambda x, s: table[x, s[:, -1]], H, vocab_size=V, num_prompts=P)
    assert iid.iid_tokens and not general.iid_tokens
    theta = _theta(iid, 11)
    x = torch.tensor([0, 1, 2])
    y = torch.randint(0, V, (3, H), generator=_gen(12))
    a, b = iid.rollout(theta, x, y), general.rollout(theta, x, y)
    torch.testing.assert_close(a.token_log_probs, b.token_log_probs, rtol=0, atol=1e-12)
    torch.testing.assert_close(a.token_grads, b.token_grads, rtol=0, atol=1e-12)
    data, model = iid.policy(_theta(iid, 13)), iid.policy(theta)
    gdata, gmodel = general.policy(data.theta), general.policy(theta)
    ns = [1, 2, 4, 8, 64]
    counts = exact_metrics(data, model, MU, ns)
    full = exact_metrics(gdata, gmodel, MU, ns)
    np.testing.assert_allclose(counts.cov, full.cov, atol=1e-12)
    assert counts.kl == pytest.approx(full.kl, abs=1e-12)
    assert inherent_variance_exact(iid, data, MU) == pytest.approx(
        inherent_variance_exact(general, gdata, MU), rel=1e-12
    )


def test_exact_metrics_kl_is_sum_of_token_kls() -> None:
    model = LinearARModel(_prefix_phi(), 3, vocab_size=V, num_prompts=P)
    data, pol = model.policy(_theta(model, 14)), model.policy(_theta(model, 15, 0.3))
    est = exact_metrics(data, pol, MU, [1, 2])
    assert est.exact and est.cov[0] >= est.cov[1] and est.cov_lo[1] == est.cov_hi[1] == est.cov[1]
    x = torch.arange(P).repeat_interleave(V**3)
    y = all_sequences(V, 3).repeat(P, 1)
    w = MU[x] * data.log_prob(x, y).exp()
    expected = float((w * token_kl(data, pol, x, y).sum(1)).sum())
    assert est.kl == pytest.approx(expected, rel=1e-10)


def test_exact_and_monte_carlo_agree() -> None:
    model = LinearARModel(_prefix_phi(), H, vocab_size=V, num_prompts=P)
    data, pol = model.policy(_theta(model, 16)), model.policy(_theta(model, 17, 0.4))
    ns = [2, 4, 8, 16]

    def correct(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (y[:, 0] == x % V) & (y[:, -1] != 0)

    exact = exact_metrics(data, pol, MU, ns, correct=correct)
    mc = monte_carlo_metrics(data, pol, MU, ns, 20_000, seed=3, correct=correct)
    assert not mc.exact and mc.num_samples == 20_000
    assert bool(np.all((mc.cov_lo <= exact.cov + 1e-3) & (exact.cov <= mc.cov_hi + 1e-3)))
    assert np.all(mc.cov_hi - mc.cov_lo < 0.03)
    assert mc.kl_lo <= exact.kl <= mc.kl_hi
    assert exact.pass_at_n is not None and mc.pass_at_n is not None
    np.testing.assert_allclose(mc.pass_at_n, exact.pass_at_n, atol=0.02)


def test_deterministic_data_has_zero_inherent_variance() -> None:
    model = LinearARModel(_prefix_phi(), H, vocab_size=V, num_prompts=P)

    def next_log_probs(x: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        target = (x + prefix.sum(1)) % V
        out = torch.full((x.shape[0], V), -math.inf, dtype=torch.float64)
        out[torch.arange(x.shape[0]), target] = 0.0
        return out

    data = NextTokenPolicy(next_log_probs, V, H)
    assert inherent_variance_exact(model, data, MU) == 0.0
    assert inherent_variance_mc(model, data, MU, 200).value == 0.0
    # and the exact metrics handle pi_D's zeros: KL is the mean of -log pi_hat(y*|x)
    pol = model.policy(_theta(model, 18))
    est = exact_metrics(data, pol, MU, [1, 2])
    x = torch.arange(P)
    ystar = data.sample(x)
    assert est.kl == pytest.approx(float(-(MU * pol.log_prob(x, ystar)).sum()), rel=1e-12)


def test_inherent_variance_exact_and_monte_carlo_agree() -> None:
    model = LinearARModel(_prefix_phi(), H, vocab_size=V, num_prompts=P)
    data = model.policy(_theta(model, 19))
    exact = inherent_variance_exact(model, data, MU)
    mc = inherent_variance_mc(model, data, MU, 20_000, seed=1)
    assert exact > 0
    assert mc.lo <= exact <= mc.hi


def test_mle_solves_to_tolerance_interior_and_boundary() -> None:
    model, _, _ = _models(20)
    for scale, seed in ((0.3, 21), (5.0, 22)):
        star = model.policy(_theta(model, seed, scale))
        x = torch.multinomial(MU, 3000, replacement=True, generator=_gen(seed))
        y = star.sample(x, _gen(seed + 1))
        res = fit_mle(model, x, y, tol=1e-10)
        assert res.converged and res.gap <= 1e-10
        assert float(res.theta.norm()) <= model.radius + 1e-12
        assert res.objective == pytest.approx(float(model.log_prob(res.theta, x, y).mean()))
        for s in range(20):  # no feasible point does better than objective + gap
            other = _theta(model, 100 + s, scale=float(torch.rand(1, generator=_gen(s))) * 2)
            assert float(model.log_prob(other, x, y).mean()) <= res.objective + res.gap + 1e-12
        grad = model.grad_log_prob(res.theta, x, y).mean(0)
        if float(res.theta.norm()) < model.radius - 1e-6:
            assert float(grad.norm()) < 1e-6
        else:  # KKT on the sphere: the gradient points outward along theta
            cos = float(grad @ res.theta) / (float(grad.norm()) * float(res.theta.norm()))
            assert cos == pytest.approx(1.0, abs=1e-8)


def test_online_fit_matches_manual_updates_and_shares_samples() -> None:
    model, _, _ = _models(23)
    data = model.policy(_theta(model, 24))
    theta0 = _theta(model, 25, 0.2)
    lrs = torch.tensor([0.01, 0.1, 0.5], dtype=torch.float64)
    res = online_fit(model, data, MU, theta0, method="sgd", lr=lrs, steps=5, seed=7)
    assert res.theta.shape == (3, D) and res.trajectory.shape == (2, 3, D)
    # replay: the same seed draws the same prompts and responses
    gen = _gen(7)
    xs = torch.multinomial(MU, 5, replacement=True, generator=gen)
    ys = data.rollout(xs, None, gen)[0]
    manual = theta0.expand(3, D).clone()
    for t in range(5):
        g = model.grad_log_prob(manual, xs[t].expand(3), ys[t].expand(3, -1))
        manual = sgd_update(manual, g, lrs, model.radius)
    torch.testing.assert_close(res.theta, manual, rtol=0, atol=1e-12)
    single = online_fit(model, data, MU, theta0, method="sgd", lr=0.1, steps=5, seed=7)
    torch.testing.assert_close(single.theta[0], res.theta[1], rtol=0, atol=1e-12)
    # normalized SGD with a mini-batch of K
    res = online_fit(
        model, data, MU, theta0, method="normalized_sgd", lr=0.2, lam=0.5, steps=3, batch_size=4
    )
    gen = _gen(0)
    xs = torch.multinomial(MU, 12, replacement=True, generator=gen)
    ys = data.rollout(xs, None, gen)[0]
    manual = theta0[None].clone()
    for t in range(3):
        g = model.grad_log_prob(manual[0], xs[4 * t : 4 * t + 4], ys[4 * t : 4 * t + 4]).mean(0)
        manual = normalized_sgd_update(manual, g[None], 0.2, 0.5, model.radius)
    torch.testing.assert_close(res.theta, manual, rtol=0, atol=1e-12)


def test_online_fit_token_sgd_is_teacher_forced_rollout() -> None:
    model, _, _ = _models(26)
    data = model.policy(_theta(model, 27))
    theta0 = torch.zeros(D, dtype=torch.float64)
    res = online_fit(model, data, MU, theta0, method="token_sgd", lr=0.3, steps=4, seed=2)
    gen = _gen(2)
    xs = torch.multinomial(MU, 4, replacement=True, generator=gen)
    ys = data.rollout(xs, None, gen)[0]
    manual = theta0[None]
    for t in range(4):
        for h in range(H):  # Eq. 21, one token at a time
            cand = model.candidate_features(xs[t : t + 1], ys[t : t + 1, :h])[0]
            p = torch.softmax(cand @ manual[0], 0)
            g = cand[ys[t, h]] - p @ cand
            manual = sgd_update(manual, g[None], 0.3, model.radius)
    torch.testing.assert_close(res.theta, manual, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_online_methods_reduce_kl(method: str) -> None:
    table = torch.randn(2, V, 3, generator=_gen(28), dtype=torch.float64)
    model = LinearARModel(table, 8)
    mu = torch.tensor([0.6, 0.4], dtype=torch.float64)
    data = model.policy(_theta(model, 29))
    theta0 = torch.zeros(3, dtype=torch.float64)
    lr = {"sgd": 0.02, "token_sgd": 0.02, "normalized_sgd": 0.05}.get(method, 0.01)
    res = online_fit(model, data, mu, theta0, method=method, lr=lr, lam=1.0, steps=300, seed=1)
    before = exact_metrics(data, model.policy(theta0), mu, [2]).kl
    after = exact_metrics(data, model.policy(res.theta[0]), mu, [2]).kl
    assert after < 0.2 * before


def test_bad_input_names_the_argument() -> None:
    table = torch.randn(P, V, D, dtype=torch.float64)
    with pytest.raises(ValueError, match="horizon"):
        LinearARModel(table, 0)
    with pytest.raises(ValueError, match="features"):
        LinearARModel(lambda x, s: torch.zeros(x.shape[0]), H, vocab_size=V, num_prompts=P)
    wrong_later = LinearARModel(
        lambda x, s: torch.zeros(x.shape[0], D + (s.shape[1] > 1)), H, vocab_size=V, num_prompts=P
    )
    with pytest.raises(ValueError, match="features"):
        wrong_later.log_prob(torch.zeros(D), torch.tensor([0]), torch.zeros(1, H, dtype=torch.long))
    nan_later = LinearARModel(
        lambda x, s: torch.full((x.shape[0], D), math.nan if s.shape[1] == 3 else 0.0),
        H,
        vocab_size=V,
        num_prompts=P,
    )
    with pytest.raises(ValueError, match="features"):
        nan_later.sample(torch.zeros(D), torch.tensor([0]))
    bad_table = table.clone()
    bad_table[0, 0, 0] = math.inf
    with pytest.raises(ValueError, match="features"):
        LinearARModel(bad_table, H)
    model = LinearARModel(table, H)
    outside = torch.full((D,), 1.0, dtype=torch.float64)
    with pytest.raises(ValueError, match="theta"):
        model.policy(outside)
    data = model.policy(torch.zeros(D))
    with pytest.raises(ValueError, match="theta0"):
        online_fit(model, data, MU, outside, method="sgd", lr=0.1, steps=1)
    with pytest.raises(ValueError, match="theta0"):
        fit_mle(model, torch.tensor([0]), torch.zeros(1, H, dtype=torch.long), theta0=outside)
    kwargs = {"method": "normalized_sgd", "lr": 0.1, "steps": 1}
    with pytest.raises(ValueError, match="batch_size"):
        online_fit(model, data, MU, torch.zeros(D), batch_size=0, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lr"):
        online_fit(model, data, MU, torch.zeros(D), method="sgd", lr=0.0, steps=1)
    with pytest.raises(ValueError, match="lam"):
        online_fit(model, data, MU, torch.zeros(D), lam=-1.0, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps"):
        online_fit(model, data, MU, torch.zeros(D), method="sgd", lr=0.1, steps=0)
    with pytest.raises(ValueError, match="method"):
        online_fit(model, data, MU, torch.zeros(D), method="sdg", lr=0.1, steps=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ns"):
        exact_metrics(data, data, MU, [0.5, 2])
    with pytest.raises(ValueError, match="ns"):
        monte_carlo_metrics(data, data, MU, [0], 10)
    with pytest.raises(ValueError, match="mu"):
        exact_metrics(data, data, torch.tensor([0.5, 0.5, 0.5]), [2])
    with pytest.raises(ValueError, match="max_sequences"):
        exact_metrics(
            LinearARModel(torch.randn(P, 2, V, D), 2).policy(torch.zeros(D)),
            LinearARModel(torch.randn(P, 2, V, D), 2).policy(torch.zeros(D)),
            MU,
            [2],
            max_sequences=10,
        )
    with pytest.raises(ValueError, match="y"):
        model.log_prob(torch.zeros(D), torch.tensor([0]), torch.full((1, H), V))
    with pytest.raises(ValueError, match="x"):
        model.log_prob(torch.zeros(D), torch.tensor([P]), torch.zeros(1, H, dtype=torch.long))


def test_exact_metrics_respect_prop_3_1_and_score_identity() -> None:
    from lmcoverage.metrics import kl_to_coverage_bound

    model = LinearARModel(_prefix_phi(1), 3, vocab_size=V, num_prompts=P)
    ns = np.array([2.0, 4.0, 16.0, 256.0])
    for seed in range(5):
        data = model.policy(_theta(model, 200 + seed))
        est = exact_metrics(data, model.policy(_theta(model, 300 + seed, 0.5)), MU, ns)
        assert np.all(est.cov <= kl_to_coverage_bound(est.kl, ns) + 1e-12)  # Prop 3.1
        assert np.all(np.diff(est.cov) <= 0)
        # sigma_star^2 is the variance of the score at theta_star (the score has mean zero)
        x = torch.arange(P).repeat_interleave(V**3)
        y = all_sequences(V, 3).repeat(P, 1)
        w = MU[x] * data.log_prob(x, y).exp()
        score = model.grad_log_prob(data.theta, x, y)
        assert float((w[:, None] * score).sum(0).norm()) < 1e-12
        expected = float((w * (score**2).sum(1)).sum())
        assert inherent_variance_exact(model, data, MU) == pytest.approx(expected, rel=1e-12)


def test_online_fit_chains_and_recording() -> None:
    model, _, _ = _models(30)
    data = model.policy(_theta(model, 31))
    res = online_fit(
        model,
        data,
        MU,
        torch.zeros(D),
        method="sign_sgd",
        lr=0.01,
        steps=7,
        chains=3,
        record_every=3,
    )
    assert res.steps.tolist() == [0, 3, 6, 7]
    assert res.trajectory.shape == (4, 3, D)
    torch.testing.assert_close(res.trajectory[-1], res.theta)
    assert torch.equal(res.theta[0], res.theta[2])
    with pytest.raises(ValueError, match="theta0"):
        online_fit(
            model,
            data,
            MU,
            torch.zeros(2, D),
            method="sgd",
            lr=torch.tensor([0.1, 0.2, 0.3]),
            steps=1,
        )
