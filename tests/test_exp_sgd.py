"""The SGD experiment (Prop 5.1, Thm 5.1): instance, batched sweep, end-to-end presets."""

import json
import math

import numpy as np
import pytest
import torch

from lmcoverage.commands.run import run_experiment
from lmcoverage.experiments.sgd import Batches, batch_gradient, run_sweep
from lmcoverage.experiments.theory_common import make_rng
from lmcoverage.models.linear import exact_metrics
from lmcoverage.tasks.linear import (
    CountEnumeration,
    count_vectors,
    graded_instance,
    heterogeneous_instance,
    prop32_instance,
    sgd_instance,
)
from lmcoverage.train.optimizers import normalized_sgd_update, sgd_update


def _sequences(counts: np.ndarray) -> torch.Tensor:
    """A response (B, H) with the given token counts (order is irrelevant for i.i.d. tokens)."""
    return torch.tensor(np.stack([np.repeat(np.arange(c.size), c) for c in counts]))


def test_count_vectors():
    cv = count_vectors(3, 7)
    assert cv.shape == (math.comb(9, 2), 3)
    assert (cv.sum(1) == 7).all() and len({tuple(r) for r in cv}) == cv.shape[0]
    assert count_vectors(2, 1).tolist() == [[0, 1], [1, 0]]


@pytest.mark.parametrize(
    "make", [heterogeneous_instance, graded_instance, lambda: prop32_instance(5, 2.0)])
def test_count_gradient_matches_library(make):
    inst = make()
    horizon = 6
    rng = make_rng([3])
    x, counts = inst.sample_counts(horizon, (5,), rng)
    theta = inst.model(horizon).project(torch.randn(5, inst.dim, dtype=torch.float64) * 0.3)
    observed = torch.einsum("bv,bvd->bd", torch.tensor(counts, dtype=torch.float64),
                            inst.features[x])
    freq = torch.nn.functional.one_hot(torch.tensor(x), inst.num_prompts).double()
    g = batch_gradient(inst, theta, observed, freq, horizon)
    ref = inst.model(horizon).grad_log_prob(theta, torch.tensor(x), _sequences(counts))
    torch.testing.assert_close(g, ref)


@pytest.mark.parametrize("horizon", [1, 5, 12])
def test_enumeration_matches_library_exact_metrics(horizon):
    inst = heterogeneous_instance(scale_a=3.0, scale_r=2.0)
    enum = CountEnumeration(inst, horizon, min_prob=0.0)
    thetas = torch.tensor([[0.5, 0.8, 0.0], [0.3, 0.0, 0.9], [0.0, -0.4, 0.2]],
                          dtype=torch.float64)
    cov = enum.coverage(thetas, [1, 2, 8])
    kl = inst.kl(thetas, horizon)
    data = inst.data_policy(horizon)
    for i, th in enumerate(thetas):
        ref = exact_metrics(data, inst.model(horizon).policy(th), inst.mu, [1, 2, 8])
        np.testing.assert_allclose(cov[i], ref.cov, atol=1e-12)
        assert float(kl[i]) == pytest.approx(ref.kl, rel=1e-9)


def test_sgd_instances():
    for name in ("two-prompt", "graded"):
        inst = sgd_instance(name)
        assert float(inst.mu.sum()) == pytest.approx(1.0)
        assert float(inst.theta_star.norm()) == pytest.approx(1.0, abs=1e-3)
        assert float(inst.theta0.norm()) == pytest.approx(1.0)
    assert graded_instance().features.shape == (5, 3, 6)
    with pytest.raises(ValueError, match="instance"):
        sgd_instance("nope")
    with pytest.raises(ValueError, match="rare_masses"):
        graded_instance(rare_masses=(0.6, 0.5))


def test_enumeration_pruning_is_tiny_and_reported():
    enum = CountEnumeration(heterogeneous_instance(), 256)
    assert 0.0 <= enum.dropped_mass < 1e-12
    assert sum(c.shape[0] for c in enum.counts) < 100  # pi_D is nearly deterministic


def test_sweep_equals_library_updates_step_by_step():
    inst = heterogeneous_instance()
    horizon, steps = 8, 5
    batches = Batches(inst, horizon, steps, 2, [1, 4], make_rng([0], 8))
    configs = [{"lr": 1e-4}, {"lr": 3e-3}]
    traj = run_sweep(inst, batches, "sgd", configs, list(range(steps + 1)))
    # replay with the single-run library pieces on explicit token sequences
    rng = make_rng([0], 8)
    x, counts = inst.sample_counts(horizon, (2, steps, 4), rng)
    model = inst.model(horizon)
    for ci, cfg in enumerate(configs):
        for rep in range(2):
            theta = inst.theta0.clone()
            for t in range(steps):
                y = _sequences(counts[rep, t, :1])
                g = model.grad_log_prob(theta[None], torch.tensor(x[rep, t, :1]), y)[0]
                theta = sgd_update(theta, g, cfg["lr"], inst.radius)
                torch.testing.assert_close(traj[t + 1, ci * 2 + rep], theta)


def test_normalized_sweep_steps_shorter_than_lr_and_minibatch_mean():
    inst = heterogeneous_instance()
    batches = Batches(inst, 16, 30, 3, [1, 4], make_rng([1]))
    configs = [{"lr": 0.05, "lam": 1.0, "K": 4}, {"lr": 0.2, "lam": 1e-3, "K": 1}]
    traj = run_sweep(inst, batches, "normalized_sgd", configs, list(range(31)))
    step = (traj[1:] - traj[:-1]).norm(dim=-1)  # (T, rows)
    lr = torch.tensor([0.05] * 3 + [0.2] * 3, dtype=torch.float64)
    assert bool((step <= lr + 1e-12).all())
    # K = 4 uses the mean of 4 count gradients
    theta = traj[0, :1]
    g = batch_gradient(inst, theta, batches.observed[4][0, 0][None],
                       batches.prompt_freq[4][0, 0][None], 16)
    torch.testing.assert_close(traj[1, :1], normalized_sgd_update(theta, g, 0.05, 1.0, 1.0))


def test_bad_config(tmp_path):
    with pytest.raises(ValueError, match="nsgd_K"):
        run_experiment("sgd", "test", tmp_path / "x", [0], overrides={"nsgd_K": [0]},
                       progress=False)
    with pytest.raises(ValueError, match="sgd_lr"):
        run_experiment("sgd", "test", tmp_path / "y", [0], overrides={"sgd_lr": [-1.0]},
                       progress=False)


def _check_results(out, res):
    saved = json.loads((out / "results.json").read_text())
    for key in ("N", "T", "horizons", "methods", "best_final_cov"):
        assert key in saved
    assert {"sgd", "normalized_sgd", "sign_sgd", "adam"} <= set(saved["methods"])
    for m in saved["methods"]:
        assert set(saved["best_final_cov"][m]) == {str(h) for h in saved["horizons"]}
    assert (out / "report.html").is_file()
    assert list(out.glob("*.png"))
    best = res["best_final_cov"]
    lo, hi = str(min(res["horizons"])), str(max(res["horizons"]))
    nsgd = list(best["normalized_sgd"].values())
    assert best["sgd"][hi] - best["sgd"][lo] >= 0.1
    assert max(nsgd) - min(nsgd) <= 0.05
    assert best["sgd"][hi] - best["normalized_sgd"][hi] >= 0.1
    assert all(c["holds"] for c in res["checks"])


def test_test_preset_shows_the_separation_and_resumes(tmp_path):
    out = tmp_path / "run"
    res = run_experiment("sgd", "test", out, [0], progress=False)
    _check_results(out, res)
    units = sorted(p.name for p in (out / "units").iterdir())
    assert units == [f"H{h}.npz" for h in sorted(res["horizons"], key=str)]
    again = run_experiment("sgd", "test", out, [0], progress=False)  # resumes from the cache
    assert again["best_final_cov"] == res["best_final_cov"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["cpu", "cpu-graded"])
def test_cpu_presets(tmp_path, preset):
    out = tmp_path / preset
    _check_results(out, run_experiment("sgd", preset, out, [0], progress=False))


def test_step_size_is_tuned_on_replicates_separate_from_the_reported_ones():
    from lmcoverage.experiments.sgd import summarize_sweep
    from lmcoverage.tasks.linear import CountEnumeration, sgd_instance

    inst = sgd_instance("two-prompt")
    enum = CountEnumeration(inst, 4)
    good, bad = inst.theta_star, inst.theta0
    # config 0 looks best on its 2 tuning replicates, config 1 is best on the 3 reported ones
    rows = [good, good, bad, bad, bad, bad, bad, good, good, good]
    traj = torch.stack(rows)[None]  # (1 checkpoint, 2 configs * 5 replicates, d)
    res = summarize_sweep(inst, enum, traj, 2, 8.0, tune=2)
    cov_bad = float(enum.coverage(bad[None], [8.0])[0, 0])
    assert cov_bad > 0.0
    assert int(res["best"]) == 0  # chosen on the tuning replicates ...
    assert res["final_cov"][0] == pytest.approx(cov_bad)  # ... reported on the others
    assert res["tune_cov"][0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="tune"):
        summarize_sweep(inst, enum, traj, 2, 8.0, tune=5)
