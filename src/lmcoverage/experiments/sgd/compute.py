"""sgd: The computation: independent units (cached in the run directory) and ``run()``."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lmcoverage.errors import InputError
from lmcoverage.experiments.registry import RunContext
from lmcoverage.experiments.sgd.checks import effect_checks
from lmcoverage.experiments.sgd.presets import METHODS, validate
from lmcoverage.experiments.sgd.report import plot_figures, write_html
from lmcoverage.experiments.theory_common import (
    best_over_grid,
    checks_to_json,
    finish_run,
    make_rng,
    run_units,
    tuned_results,
)
from lmcoverage.tasks.linear import CountEnumeration, IIDInstance, sgd_instance
from lmcoverage.updates import make_update, run_updates


class Batches:
    """The samples of one H shared by every method: per replicate s and step t, K fresh
    sequences summarised as the mean observed feature sum and the prompt frequencies.

    ``observed[K]``: (S, T, d) (1/K) sum_k sum_v c_v F[x_k, v];
    ``prompt_freq[K]``: (S, T, P) (1/K) #{k: x_k = p}.
    """

    def __init__(
        self, inst: IIDInstance, horizon: int, steps: int, replicates: int, ks: list[int],
        rng: np.random.Generator,
    ) -> None:
        kmax = max(ks)
        x, counts = inst.sample_counts(horizon, (replicates, steps, kmax), rng)
        feats = inst.features.numpy()
        obs = np.einsum("stkv,stkvd->stkd", counts, feats[x])
        onehot = np.eye(inst.num_prompts)[x]
        self.horizon = horizon
        self.observed = {k: torch.from_numpy(obs[:, :, :k].mean(2)) for k in ks}
        self.prompt_freq = {k: torch.from_numpy(onehot[:, :, :k].mean(2)) for k in ks}


def batch_gradient(
    inst: IIDInstance, theta: Tensor, observed: Tensor, prompt_freq: Tensor, horizon: int
) -> Tensor:
    """(R, d) mini-batch mean of grad log pi_theta(y|x) (Eq. 14/17) from count summaries.

    Args:
        theta: (R, d). observed: (R, d) mean of sum_v c_v F[x, v]. prompt_freq: (R, P).
    """
    return observed - horizon * torch.einsum("rp,rpd->rd", prompt_freq,
                                              inst.expected_features(theta))


def run_sweep(
    inst: IIDInstance,
    batches: Batches,
    method: str,
    configs: list[dict[str, float]],
    record_at: list[int],
) -> Tensor:
    """Run every (config, replicate) of ``method`` at once; returns theta at ``record_at``
    steps: (len(record_at), configs * replicates, d), rows config-major."""
    if method not in METHODS:
        raise InputError(f"method: choose one of {', '.join(METHODS)}, got {method!r}")
    reps = next(iter(batches.observed.values())).shape[0]
    steps = next(iter(batches.observed.values())).shape[1]
    rows = len(configs) * reps
    rep_idx = torch.arange(rows) % reps
    lr = torch.tensor([c["lr"] for c in configs], dtype=torch.float64).repeat_interleave(reps)
    ks = [int(c.get("K", 1)) for c in configs]
    k_of_row = np.repeat(ks, reps)
    groups = {k: torch.from_numpy(np.flatnonzero(k_of_row == k)) for k in sorted(set(ks))}
    lam = (torch.tensor([c["lam"] for c in configs], dtype=torch.float64).repeat_interleave(reps)
           if method == "normalized_sgd" else None)

    def gradient(t: int, theta: Tensor) -> Tensor:
        g = torch.empty_like(theta)
        for k, idx in groups.items():
            r = rep_idx[idx]
            g[idx] = batch_gradient(inst, theta[idx], batches.observed[k][r, t],
                                    batches.prompt_freq[k][r, t], batches.horizon)
        return g

    theta0 = inst.theta0.expand(rows, inst.dim)
    update = make_update(method, lr, lam=lam, radius=inst.radius)
    return run_updates(theta0, gradient, update, steps, record_at)


def method_configs(config: dict[str, Any], method: str) -> list[dict[str, float]]:
    """The tuning grid of ``method`` from the preset."""
    if method == "sgd":
        return [{"lr": lr} for lr in config["sgd_lr"]]
    if method == "normalized_sgd":
        return [{"lr": lr, "lam": lam, "K": k} for k in config["nsgd_K"]
                for lam in config["nsgd_lam"] for lr in config["nsgd_lr"]]
    if method == "sign_sgd":
        return [{"lr": lr} for lr in config["sign_lr"]]
    if method == "adam":
        return [{"lr": lr} for lr in config["adam_lr"]]
    raise InputError(f"method: choose one of {', '.join(METHODS)}, got {method!r}")


def checkpoint_steps(steps: int, count: int) -> list[int]:
    """0 and ~``count`` log-spaced steps up to T (inclusive)."""
    pts = np.unique(np.round(np.geomspace(1, steps, count)).astype(int))
    return [0, *pts.tolist()]


def summarize_sweep(
    inst: IIDInstance, enum: CountEnumeration, traj: Tensor, num_configs: int, n_cov: float,
    tune: int,
) -> dict[str, np.ndarray]:
    """Pick the config on the tuning replicates, report it on the others.

    The first ``tune`` replicates of every config choose the config with the smallest mean
    final Cov_N; the numbers reported come from the remaining replicates only, so the choice
    does not pick the reported replicates' luck (no winner's curse).

    Args:
        traj: (checkpoints, configs * replicates, d), rows config-major; replicates =
            ``tune`` tuning ones, then the reported ones.

    Returns arrays: ``final_cov`` (configs,) means over the reported replicates, ``tune_cov``
    (configs,) means over the tuning ones, ``best`` (), ``best_se`` () the standard error of
    the best config's reported mean, and its ``curve`` and ``curve_kl`` (checkpoints,)
    reported-replicate means of Cov_N and KL along training.
    """
    reps = traj.shape[1] // num_configs
    if not 1 <= tune < reps:
        raise InputError(f"tune: need 1 <= tune < replicates per config ({reps}), got {tune}")
    final = enum.coverage(traj[-1], [n_cov])[:, 0].reshape(num_configs, reps)
    best = int(np.argmin(final[:, :tune].mean(1)))
    report = final[:, tune:]
    best_traj = traj[:, best * reps + tune:(best + 1) * reps]  # (checkpoints, reported, d)
    curve = enum.coverage(best_traj.reshape(-1, inst.dim), [n_cov])[:, 0]
    shown = report.shape[1]
    return {
        "final_cov": report.mean(1),
        "tune_cov": final[:, :tune].mean(1),
        "best": np.array(best),
        "best_se": np.array(report[best].std(ddof=1) / np.sqrt(shown) if shown > 1 else 0.0),
        "curve": curve.reshape(traj.shape[0], shown).mean(1),
        "curve_kl": inst.kl(best_traj, enum.horizon).mean(1).numpy(),
    }


def run_horizon(
    inst: IIDInstance, config: dict[str, Any], horizon: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Every method at one H; keys ``<method>.<array>`` as in :func:`summarize_sweep`."""
    ks = sorted({1, *[int(k) for k in config["nsgd_K"]]})
    tune = int(config["tune_replicates"])
    batches = Batches(inst, horizon, int(config["T"]), tune + int(config["replicates"]), ks, rng)
    enum = CountEnumeration(inst, horizon)
    record_at = checkpoint_steps(int(config["T"]), int(config["checkpoints"]))
    out: dict[str, np.ndarray] = {"dropped_mass": np.array(enum.dropped_mass)}
    for method in METHODS:
        configs = method_configs(config, method)
        traj = run_sweep(inst, batches, method, configs, record_at)
        res = summarize_sweep(inst, enum, traj, len(configs), float(config["N"]), tune)
        out.update({f"{method}.{k}": v for k, v in res.items()})
    return out


def run(config: dict[str, Any], out_dir: Path, ctx: RunContext) -> dict[str, Any]:
    """Sweep every method and grid at every H; write results.json, figures, report.html."""
    validate(config)
    inst = sgd_instance(config["instance"])
    horizons = [int(h) for h in config["horizons"]]
    done = run_units(out_dir, {
        f"H{h}": partial(run_horizon, inst, config, h, make_rng(ctx.seeds, h)) for h in horizons
    }, ctx.executor, ctx.progress)
    units = {h: done[f"H{h}"] for h in horizons}
    record_at = checkpoint_steps(int(config["T"]), int(config["checkpoints"]))
    best = best_over_grid(units, METHODS, lambda m, i: method_configs(config, m)[i])
    checks = effect_checks(best.final_cov, horizons)
    results: dict[str, Any] = {
        **tuned_results(config, horizons, METHODS, best, "best_config", record_at),
        "enumeration_dropped_mass": {str(h): float(u["dropped_mass"]) for h, u in units.items()},
        "checks": checks_to_json(checks),
    }
    return finish_run(out_dir, results, checks, config, plot_figures, write_html)
