"""The distillation experiment (Thm 6.2): truncation weights and gradients against the library."""

import json

import numpy as np
import pytest
import torch

from lmcoverage.commands.run import run_experiment
from lmcoverage.experiments.distill import TokenStream, truncation, weighted_gradient
from lmcoverage.experiments.theory_common import make_rng
from lmcoverage.tasks.linear import heterogeneous_instance
from lmcoverage.train.optimizers import truncated_kl_weights


def _alpha(ones: torch.Tensor, frac: torch.Tensor, horizon: int) -> torch.Tensor:
    pos = torch.arange(horizon)[None]
    return torch.where(pos < ones[:, None], 1.0,
                       torch.where(pos == ones[:, None], frac[:, None], 0.0)).double()


@pytest.mark.parametrize("horizon", [1, 3, 16])
def test_truncation_matches_library_weights(horizon):
    eps = torch.tensor([0.0, 1e-4, 0.05, 0.3, 0.7, 2.0, 5.0, 0.13862943611198905],
                       dtype=torch.float64)
    log_n = float(np.log(2.0))
    ones, frac = truncation(eps, log_n, horizon)
    ref = truncated_kl_weights(eps[:, None].expand(-1, horizon).contiguous(), log_n)
    torch.testing.assert_close(_alpha(ones, frac, horizon), ref)
    # Lemma I.4: sum_h alpha_h eps_h = min(A, sum_h eps_h)
    torch.testing.assert_close((ones + frac) * eps, torch.clamp(eps * horizon, max=log_n))


def test_weighted_gradient_matches_library_token_gradients():
    inst = heterogeneous_instance(scale_a=3.0, scale_r=2.0)
    horizon = 6
    stream = TokenStream(inst, horizon, 2, 4, make_rng([7]))
    x, prefix = stream.step(0)
    rep = torch.tensor([0, 1, 2, 3, 0, 1])
    theta = inst.model(horizon).project(torch.randn(6, 3, dtype=torch.float64, generator=
                                                    torch.Generator().manual_seed(0)))
    tokens = (prefix[:, 1:] - prefix[:, :-1]).argmax(-1)  # (S, H)
    model = inst.model(horizon)
    roll = model.rollout(theta, x[rep], tokens[rep])
    log_n = float(np.log(8.0))
    eps = inst.token_kl(theta)[torch.arange(6), x[rep]][:, None].expand(-1, horizon)
    alpha = truncated_kl_weights(eps.contiguous(), log_n)
    expected = (alpha[..., None] * roll.token_grads).sum(1)
    torch.testing.assert_close(weighted_gradient(inst, theta, x, prefix, rep, log_n), expected)
    torch.testing.assert_close(weighted_gradient(inst, theta, x, prefix, rep, None),
                               roll.token_grads.sum(1))


def test_token_stream_samples_teacher():
    inst = heterogeneous_instance(scale_a=0.5, scale_r=0.5)
    stream = TokenStream(inst, 50, 1, 2000, make_rng([3]))
    x, prefix = stream.step(0)
    freq = np.stack([prefix[x == p, -1].sum(0).numpy() / (50 * int((x == p).sum()))
                     for p in range(2)])
    np.testing.assert_allclose(freq, inst.data_token_probs(), atol=0.01)


def test_bad_config(tmp_path):
    with pytest.raises(ValueError, match="N"):
        run_experiment("distill", "test", tmp_path / "x", [0], overrides={"N": 1},
                       progress=False)


def test_test_preset(tmp_path):
    out = tmp_path / "run"
    res = run_experiment("distill", "test", out, [0], progress=False)
    saved = json.loads((out / "results.json").read_text())
    for key in ("N", "T", "horizons", "methods", "best_final_cov", "checks"):
        assert key in saved
    assert (out / "report.html").is_file() and (out / "distill.png").is_file()
    assert all(c["holds"] for c in res["checks"]), res["checks"]


@pytest.mark.slow
def test_cpu_preset(tmp_path):
    res = run_experiment("distill", "cpu", tmp_path / "cpu", [0], progress=False)
    assert all(c["holds"] for c in res["checks"]), res["checks"]
