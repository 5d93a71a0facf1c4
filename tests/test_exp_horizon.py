"""The horizon experiment (Prop 3.2, Thm 4.2): instances against the library, preset end to end."""

import json

import numpy as np
import pytest
import torch

from lmcoverage.commands.run import run_experiment
from lmcoverage.experiments.horizon import prop32_mle
from lmcoverage.experiments.theory_common import make_rng
from lmcoverage.models.linear import exact_metrics, fit_mle, inherent_variance_exact
from lmcoverage.tasks.linear import pivotal_instance, prop32_instance


def test_prop32_closed_form_mle_matches_library_fit():
    inst = prop32_instance(3, scale=1.0, theta_star=0.7)
    horizon = 4
    x, counts = inst.sample_counts(horizon, (12, 3), make_rng([5]))
    theta = prop32_mle(inst, x, counts)
    model = inst.model(horizon)
    for r in range(12):
        y = torch.tensor(np.stack([np.repeat([0, 1], c) for c in counts[r]]))
        fit = fit_mle(model, torch.tensor(x[r]), y, tol=1e-12)
        assert float(fit.theta[0]) == pytest.approx(theta[r], abs=1e-5)
    assert (theta[~(x == 1).any(1)] == 0).all()


def test_prop32_unseen_prompt_gives_linear_kl():
    inst = prop32_instance(10)
    zero = torch.zeros(1, 1, dtype=torch.float64)
    kl = [float(inst.kl(zero, h)[0]) for h in (1, 2, 8)]
    np.testing.assert_allclose(np.array(kl) / [1, 2, 8], kl[0])
    assert kl[0] == pytest.approx(inst.mu[1] * float(inst.token_kl(zero)[0, 1]))


def test_eq6_erratum_numbers():
    # The proof of Prop 3.2 needs 2 KL(Ber(e/(e+e^-1)) || Ber(1/2)) >= 1; it is 0.656, so the
    # MLE's KL with prompt 1 unseen is 0.1639 H/n: below Eq. 6's H/(4n), above H/(8n).
    n = 50
    inst = prop32_instance(n)
    token = float(inst.token_kl(torch.zeros(1, 1, dtype=torch.float64))[0, 1])
    p = np.e / (np.e + 1 / np.e)
    assert token == pytest.approx(p * np.log(2 * p) + (1 - p) * np.log(2 * (1 - p)))
    assert round(2 * token, 3) == 0.656
    unseen = float(inst.kl(torch.zeros(1, 1, dtype=torch.float64), 8)[0]) * n / 8
    assert round(unseen, 4) == 0.1639 and 1 / 8 < unseen < 1 / 4
    assert (1 - 1 / (2 * n)) ** n >= 0.5  # P[prompt 1 unseen] >= 1/2 >= 1/4: c = 1/8 holds


def test_pivotal_instance_exact_quantities_match_library():
    rng = make_rng([2])
    inst = pivotal_instance(3, 1, rng, num_prompts=3, vocab_size=3, det_scale=4.0)
    model = inst.model()
    data = model.policy(inst.theta_star)
    theta = inst.theta_star * 0.5
    ref = exact_metrics(data, model.policy(theta), inst.mu, [2])
    assert float(inst.kl(theta)) == pytest.approx(ref.kl, rel=1e-9)
    assert inst.inherent_variance() == pytest.approx(
        inherent_variance_exact(model, data, inst.mu), rel=1e-9)
    x, y = inst.sample(50, rng)
    ratio = inst.log_ratios(theta[None], x, y)[0]
    lib = data.log_prob(torch.tensor(x), torch.tensor(y)) - model.log_prob(
        theta, torch.tensor(x), torch.tensor(y))
    torch.testing.assert_close(ratio, lib)


def test_pivotal_sampler_draws_from_pi_d():
    rng = make_rng([4])
    inst = pivotal_instance(2, 2, rng, num_prompts=1, vocab_size=3)
    _, y = inst.sample(40000, rng)
    freq = np.stack([np.bincount(y[:, h], minlength=3) / 40000 for h in range(2)])
    np.testing.assert_allclose(freq, inst.token_log_probs(inst.theta_star).exp()[0].numpy(),
                               atol=0.01)


def test_pivotal_sigma2_counts_only_random_tokens():
    rng = make_rng([3])
    few = [pivotal_instance(h, 2, rng).inherent_variance() for h in (2, 8, 32)]
    assert max(few) < 20 and pivotal_instance(8, 0, rng).inherent_variance() < 1e-9
    assert pivotal_instance(32, None, rng).inherent_variance() > 5 * max(few)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="pivotal"):
        pivotal_instance(3, 5, make_rng([0]))
    with pytest.raises(ValueError, match="theta_star"):
        run_experiment("horizon", "test", tmp_path / "x", [0], overrides={"theta_star": 2.0},
                       progress=False)


def test_test_preset(tmp_path):
    out = tmp_path / "run"
    res = run_experiment("horizon", "test", out, [0], progress=False)
    saved = json.loads((out / "results.json").read_text())
    for key in ("n", "horizons", "coverage_ns", "prop32", "rich", "checks"):
        assert key in saved
    assert (out / "report.html").is_file() and (out / "prop32.png").is_file()
    assert all(c["holds"] for c in res["checks"]), res["checks"]


@pytest.mark.slow
def test_cpu_preset(tmp_path):
    res = run_experiment("horizon", "cpu", tmp_path / "cpu", [0], progress=False)
    assert all(c["holds"] for c in res["checks"]), res["checks"]
