"""The TTT experiment (Thm 6.1): batched training/scoring against the library, preset run."""

import json

import numpy as np
import pytest
import torch

from lmcoverage.commands.run import run_experiment
from lmcoverage.decoding import TTTPolicy
from lmcoverage.experiments.theory_common import make_rng
from lmcoverage.experiments.ttt import _orders, train_token_sgd, ttt_log_ratios
from lmcoverage.tasks.linear import prop32_instance


def test_training_skips_only_gradient_free_sequences():
    inst = prop32_instance(3, scale=2.0, theta_star=0.8)  # rare prompt mass 1/6
    horizon, steps = 5, 8
    rng = make_rng([1])
    x, counts = inst.sample_counts(horizon, (4, steps), rng)
    y = _orders(counts.reshape(4 * steps, -1), rng).reshape(4, steps, horizon)
    lr = torch.tensor([0.05, 0.1, 0.3, 1.0], dtype=torch.float64)
    theta = train_token_sgd(inst, horizon, x, y, lr)
    model = inst.model(horizon)
    for r in range(4):  # replay every sequence, one token step at a time (Eq. 21)
        th = inst.theta0.clone()
        for t in range(steps):
            th = model.rollout(th[None], torch.tensor([x[r, t]]), torch.tensor(y[r, t])[None],
                               lr=float(lr[r])).theta[0]
        torch.testing.assert_close(theta[r], th)
    assert (x == 1).any() and not torch.allclose(theta, torch.zeros_like(theta))


def test_ttt_scores_match_library_policy():
    inst = prop32_instance(4, scale=3.0)
    horizon = 6
    theta = torch.tensor([[0.0], [0.5], [-0.3]], dtype=torch.float64)
    lr = torch.tensor([0.2, 0.05, 1.0], dtype=torch.float64)
    ratio = ttt_log_ratios(inst, horizon, theta, lr, 1, 7, make_rng([2]))
    # the same responses, scored one policy at a time
    rng = make_rng([2])
    counts = rng.multinomial(horizon, inst.data_token_probs()[1], size=7)
    y = torch.from_numpy(_orders(counts, rng))
    x = torch.ones(7, dtype=torch.long)
    data = inst.data_policy(horizon)
    for r in range(3):
        ttt = TTTPolicy(inst.model(horizon), theta[r], float(lr[r]))
        torch.testing.assert_close(ratio[r], data.log_prob(x, y) - ttt.log_prob(x, y))


def test_orders_keep_counts():
    counts = np.array([[2, 3], [5, 0]])
    seqs = _orders(counts, make_rng([0]))
    assert seqs.shape == (2, 5)
    np.testing.assert_array_equal([np.bincount(s, minlength=2) for s in seqs], counts)


def test_bad_config(tmp_path):
    with pytest.raises(ValueError, match="lr_grid"):
        run_experiment("ttt", "test", tmp_path / "x", [0], overrides={"lr_grid": [0.0]},
                       progress=False)


def test_test_preset(tmp_path):
    out = tmp_path / "run"
    res = run_experiment("ttt", "test", out, [0], progress=False)
    saved = json.loads((out / "results.json").read_text())
    for key in ("T", "horizons", "coverage_ns", "decoders", "checks"):
        assert key in saved
    assert set(saved["decoders"]) == {"plain", "ttt"}
    assert (out / "report.html").is_file() and (out / "ttt.png").is_file()
    assert all(c["holds"] for c in res["checks"]), res["checks"]
    fresh = run_experiment("ttt", "test", tmp_path / "fresh", [0], progress=False)
    assert fresh["decoders"] == res["decoders"]  # same seed, same numbers
    other = run_experiment("ttt", "test", tmp_path / "other", [1], progress=False)
    assert other["decoders"] != res["decoders"]


@pytest.mark.slow
def test_cpu_preset(tmp_path):
    res = run_experiment("ttt", "cpu", tmp_path / "cpu", [0], progress=False)
    assert all(c["holds"] for c in res["checks"]), res["checks"]
