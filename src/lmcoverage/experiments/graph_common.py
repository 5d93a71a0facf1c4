"""Analysis shared by Figures 1 and 2: score checkpoints on graph problems, mix class metrics.

The pieces (Eq. 1, the paper's Appendix C, hand-derived reference values):

- :func:`make_validation_set`: per-class validation problems as
  :class:`~lmcoverage.engine.table.Examples` (with their problems) and the per-example
  weights that mix class metrics with the class weights (``weight = w_class / n_class``), so
  every weighted mean over the set is the mixture's expectation;
- a :class:`SequenceModel` is a :class:`~lmcoverage.engine.scorer.SequenceScorer` of graph
  problems (exact ``log pi_hat(y|x)`` for any response) that also decodes greedily and samples.
  :class:`HFSequenceModel` wraps a Hugging Face causal LM through
  :class:`~lmcoverage.engine.scorer.HFScorer`;
  :class:`~lmcoverage.experiments.graph_oracle.OracleModel` is a hand-built model with known
  sequence probabilities (the feature-blind optima, derived by hand), used to test the
  analysis without training;
- :func:`score_model` turns a model into :class:`~lmcoverage.scoretable.ScoreTable` rows
  through :func:`lmcoverage.engine.scorer.score_table` (the log-likelihood of the held-out
  response, pi_D's log-likelihood, the weight, the class, and the model's mass on the correct
  set, so Pass@N is exact);
- :func:`curve_metrics` computes KL, Cov_N and Pass@N per checkpoint from a table, for the
  mixture or one class;
- :func:`effect_verdict` ends a report's reading with how many effect checks hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from lmcoverage.engine.scorer import SequenceScorer
from lmcoverage.engine.table import Examples
from lmcoverage.errors import InputError
from lmcoverage.experiments.graph_oracle import Path_
from lmcoverage.tasks.base import mixture_weights

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from lmcoverage.scoretable import ScoreTable
    from lmcoverage.tasks import Problem, Task

#: The reports' pointer to where the presets' sizing is documented with every measurement.
SIZING_NOTE = ("How the presets were sized, with every measurement: docs/experiments/presets.md "
               "in the project documentation.")
#: Scales of the figures' KL axes: the paper's linear one, or log.
KL_AXES = ("linear", "log")
CorrectSet = Literal["support", "valid"]
"""Which responses count as correct for Pass@N: pi_D's support (Figure 1: the class's path)
or every valid path of the graph."""


# --------------------------------------------------------------------------------------------
# validation sets


def make_validation_set(
    problems_by_class: Mapping[int, Sequence[Problem]], class_weights: Mapping[int, float]
) -> Examples:
    """Concatenate per-class problem lists (classes in sorted order) with mixture weights.

    Returns Examples with ``problems`` and their token ids, ``group`` the class labels (as
    strings), ``weight`` (examples,) non-negative, summing to one over the set (``w_class /
    n_class`` for each example), ``loglik_data`` the exact ``log pi_D(y|x)``.
    """
    problems: list[Problem] = []
    groups: list[int] = []
    for label in sorted(problems_by_class):
        if float(class_weights.get(label, 0.0)) <= 0:
            continue
        items = list(problems_by_class[label])
        if not items:
            raise InputError(f"problems_by_class[{label}] is empty")
        problems.extend(items)
        groups.extend([label] * len(items))
    if not problems:
        raise InputError(f"no class with positive weight in {dict(class_weights)}")
    return Examples(
        group=[str(g) for g in groups],
        weight=mixture_weights(groups, class_weights),
        loglik_data=np.array([p.logp_data for p in problems], dtype=np.float64),
        prompt_ids=[list(p.prompt_ids) for p in problems],
        response_ids=[list(p.response_ids) for p in problems],
        problems=problems,
    )


def classes(vset: Examples) -> np.ndarray:
    """(examples,) int64 class labels of a validation set."""
    return np.array([int(g) for g in vset.group], dtype=np.int64)


def _problems(vset: Examples) -> list[Problem]:
    if vset.problems is None:
        raise InputError(f"{vset.source or 'examples'}: a validation set needs its problems "
                         "(make_validation_set)")
    return vset.problems


# --------------------------------------------------------------------------------------------
# models


class SequenceModel(SequenceScorer["Problem"], Protocol):
    """A scorer of graph problems that also decodes (its prompts are the problems)."""

    def greedy(self, problems: Sequence[Problem]) -> list[Path_]:
        """The greedy (per-token argmax) response for each problem."""
        ...

    def sample(self, problems: Sequence[Problem], n: int, seed: int) -> list[list[Path_]]:
        """``n`` seeded samples ``y ~ pi_hat(.|x)`` per problem."""
        ...


def _correct_set(problem: Problem, correct: CorrectSet) -> list[Path_]:
    if correct == "support":
        return [tuple(r) for r, _ in problem.support]
    if correct == "valid":
        return [tuple(r) for r in problem.valid_paths]
    raise InputError(f"correct must be 'support' or 'valid', got {correct!r}")


class HFSequenceModel:
    """A Hugging Face causal LM scored by :mod:`lmcoverage.engine` (prompt computed once)."""

    def __init__(self, model: PreTrainedModel, batch_size: int = 256,
                 progress: bool = False) -> None:
        self.model = model
        self.batch_size = batch_size
        self.progress = progress

    @classmethod
    def load(cls, path: str, batch_size: int = 256, progress: bool = False) -> HFSequenceModel:
        """Load a model directory (safetensors) with :func:`lmcoverage.engine.load_causal_lm`."""
        from lmcoverage.engine import load_causal_lm

        return cls(load_causal_lm(path), batch_size=batch_size, progress=progress)

    def score(self, problems: Sequence[Problem], responses: Sequence[Sequence[Sequence[int]]]
              ) -> list[np.ndarray]:
        from lmcoverage.engine.scorer import HFScorer

        return HFScorer(self.model, self.batch_size, self.progress).score(
            [list(p.prompt_ids) for p in problems], [[list(r) for r in rs] for rs in responses])

    def greedy(self, problems: Sequence[Problem]) -> list[Path_]:
        """Greedy decoding (engine sampling at temperature 0), grouped by response length."""
        from lmcoverage.engine import sample_responses

        out: dict[int, Path_] = {}
        by_length: dict[int, list[int]] = {}
        for i, p in enumerate(problems):
            by_length.setdefault(len(p.response_ids), []).append(i)
        for length, idx in by_length.items():
            decoded = sample_responses(self.model, [list(problems[i].prompt_ids) for i in idx],
                                       n=1, max_new_tokens=length, temperature=0.0,
                                       batch_size=self.batch_size, progress=self.progress)
            out.update({i: tuple(d[0]) for i, d in zip(idx, decoded, strict=True)})
        return [out[i] for i in range(len(problems))]

    def sample(self, problems: Sequence[Problem], n: int, seed: int) -> list[list[Path_]]:
        """``n`` responses per problem at temperature 1 (seeded), each of the response length."""
        from lmcoverage.engine import sample_responses

        length = max(len(p.response_ids) for p in problems)
        decoded = sample_responses(self.model, [list(p.prompt_ids) for p in problems], n=n,
                                   max_new_tokens=length, seed=seed, batch_size=self.batch_size,
                                   progress=self.progress)
        return [[tuple(r) for r in rs] for rs in decoded]


# --------------------------------------------------------------------------------------------
# training


def train_checkpoints(task: Task, out_dir: Path, *, seed: int, steps: int, lr: float,
                      checkpoint_every: int, config: Mapping[str, Any],
                      examples: int | None = None, init_from: Path | None = None,
                      save_initial: bool = False,
                      progress: bool = True) -> list[tuple[int, Path]]:
    """Train (or resume) with :func:`lmcoverage.train.train`; return ``[(step, dir), ...]``.

    ``config`` supplies ``batch_size``, ``weight_decay``, ``model`` (GPT preset) and
    ``model_overrides``. ``examples``: None trains on fresh samples every batch; N on a fixed
    set of N problems seen for ``steps * batch_size / N`` epochs (the paper's regime,
    Appendix C). A finished run is not retrained.
    """
    from lmcoverage.train import TrainConfig, list_checkpoints, train

    cfg = TrainConfig(steps=steps, batch_size=config["batch_size"], lr=lr,
                      weight_decay=config["weight_decay"], seed=seed,
                      model_preset=config["model"], model_overrides=dict(config["model_overrides"]),
                      dataset_size=examples, checkpoint_every=checkpoint_every,
                      save_initial=save_initial)
    train(task, cfg, out_dir, init_from=init_from, resume=True, progress=progress)
    return list_checkpoints(out_dir)


# --------------------------------------------------------------------------------------------
# scoring into ScoreTables


def score_model(model: SequenceModel, name: str, vset: Examples,
                correct: CorrectSet = "support") -> ScoreTable:
    """Score ``model`` on ``vset``: one ScoreTable row per validation example.

    ``loglik`` is ``log pi_hat(y|x)`` of the held-out response, ``loglik_data`` is
    ``log pi_D(y|x)``, ``mass_correct`` is ``pi_hat(correct set | x)`` (the correct set being
    pi_D's support or the valid paths), so Pass@N = E_x[1 - (1 - mass)^N] is exact.
    All responses of one prompt are scored in one call (the engine reuses the prompt's keys
    and values).
    """
    from lmcoverage.engine.scorer import score_table

    problems = _problems(vset)
    held_out = [tuple(p.response_ids) for p in problems]
    correct_sets = [_correct_set(p, correct) for p in problems]
    return score_table(model, vset, name, encoded=(problems, held_out, correct_sets))


def greedy_accuracy(model: SequenceModel, vset: Examples, task: Task) -> dict[int, float]:
    """Fraction of each class's problems whose greedy response is a valid path (by class)."""
    problems, groups = _problems(vset), classes(vset)
    decoded = model.greedy(problems)
    ok = np.array([task.is_correct(p, list(r)) for p, r in zip(problems, decoded, strict=True)],
                  dtype=float)
    return {int(g): float(ok[groups == g].mean()) for g in np.unique(groups)}


# --------------------------------------------------------------------------------------------
# metrics per checkpoint


def level_key(n: float) -> int | float:
    """A coverage level as a results key: ``4`` for 4 or 4.0, ``4.6`` for 4.6 (JSON "4", "4.6")."""
    return int(n) if float(n).is_integer() else float(n)


def curve_metrics(table: ScoreTable, cov_ns: Sequence[float], pass_ns: Sequence[int],
                  group: str | None = None) -> dict[str, Any]:
    """KL, cross-entropy, Cov_N and exact Pass@N for every model of ``table`` (in its order).

    With ``group`` the metrics are those of that class alone (its weights renormalised);
    otherwise of the class mixture. Returns ``{"models", "kl", "ce", "cov": {N: [...]},
    "pass_at": {N: [...]}}``, each list (models,), keyed by :func:`level_key`. Cov_N is Eq. 1
    (event X >= log N, inclusive up to ``TIE_ATOL``), for any real N >= 1.
    """
    from lmcoverage.metrics import coverage_profile, cross_entropy, kl_divergence, pass_at_n_exact

    loglik = table.matrix("loglik")
    mass = table.matrix("mass_correct")
    data = np.asarray(table.example_column("loglik_data"), dtype=np.float64)
    weights = np.asarray(table.example_column("weight"), dtype=np.float64)
    if group is not None:
        mask = np.asarray(table.example_column("group")) == group
        if not mask.any():
            raise InputError(f"group {group!r} not in the table")
        loglik, mass, data, weights = loglik[:, mask], mass[:, mask], data[mask], weights[mask]
    weights = weights / weights.sum()
    out: dict[str, Any] = {"models": list(table.models), "kl": [], "ce": [],
                           "cov": {level_key(n): [] for n in cov_ns},
                           "pass_at": {int(n): [] for n in pass_ns}}
    for row in range(loglik.shape[0]):
        log_ratio = data - loglik[row]
        out["kl"].append(float(kl_divergence(log_ratio, weights=weights)))
        out["ce"].append(float(cross_entropy(loglik[row], weights=weights)))
        cov = coverage_profile(log_ratio, list(cov_ns), weights=weights)
        for n, c in zip(cov_ns, np.atleast_1d(cov), strict=True):
            out["cov"][level_key(n)].append(float(c))
        pa = pass_at_n_exact(mass[row], list(pass_ns), weights=weights)
        for n, v in zip(pass_ns, np.atleast_1d(pa), strict=True):
            out["pass_at"][int(n)].append(float(v))
    return out


def training_data(examples: int | None, steps: int, batch_size: int) -> dict[str, Any]:
    """results.json's record of a training stage's data regime (Appendix C).

    ``{"examples": N or None, "epochs": steps * batch_size / N or None, "draws": steps *
    batch_size}``; ``examples`` None means fresh samples every batch.
    """
    draws = steps * batch_size
    return {"examples": examples, "draws": draws,
            "epochs": None if examples is None else draws / examples}


def describe_training_data(record: Mapping[str, Any]) -> str:
    """``"a fixed set of 1,280 problems (50 epochs)"`` or ``"fresh samples every batch"``."""
    if record["examples"] is None:
        return f"fresh samples every batch ({record['draws']:,} problems drawn)"
    return f"a fixed set of {record['examples']:,} problems ({record['epochs']:.3g} epochs)"


def quantile_band(values: np.ndarray, lo: float = 1 / 16, hi: float = 15 / 16
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and (lo, hi) quantiles over axis 0 (seeds) of ``values``: (seeds, checkpoints)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] == 0:
        raise InputError(f"values must be (seeds, checkpoints), got shape {v.shape}")
    return (np.median(v, axis=0), np.quantile(v, lo, axis=0), np.quantile(v, hi, axis=0))


def kl_axis(config: Mapping[str, Any]) -> str:
    """``config["kl_axis"]`` if it is one of :data:`KL_AXES`, else InputError naming it."""
    value = config["kl_axis"]
    if value not in KL_AXES:
        raise InputError(f"--set kl_axis: choose from {', '.join(KL_AXES)}, got {value!r}")
    return str(value)


def effect_verdict(checks: Sequence[Mapping[str, Any]], success: str) -> str:
    """The end of a report's reading: how many effect checks (dicts with ``check`` and ``ok``)
    hold, then ``success`` if all do, else the failed checks by name."""
    n_ok = sum(c["ok"] for c in checks)
    text = f"{n_ok} of {len(checks)} effect checks hold. "
    if n_ok == len(checks):
        return text + success
    failed = "; ".join(c["check"] for c in checks if not c["ok"])
    return text + f"Failed: {failed}. This run does not show the full effect at this size."


# --------------------------------------------------------------------------------------------
# on-policy coverage for the offset tournament (Eq. 32)


def onpolicy_matrix(models: Sequence[SequenceModel], vset: Examples, n_threshold: float,
                    n_prompts: int, samples: int, seed: int) -> np.ndarray:
    """hatCov^{pi_j}_N(pi_k || pi_j) for every pair of candidates, (candidates, candidates).

    Candidate j samples ``samples`` responses on the first ``n_prompts`` validation prompts of
    every class (seed ``seed + j``); every candidate k scores them; the matrix is
    :func:`lmcoverage.select.onpolicy_from_samples` with the prompts' mixture weights.
    """
    from lmcoverage.select import onpolicy_from_samples

    if n_prompts < 1 or samples < 1:
        raise InputError(f"n_prompts and samples must be >= 1, got {n_prompts}, {samples}")
    groups = classes(vset)
    idx = np.concatenate([np.flatnonzero(groups == g)[:n_prompts] for g in np.unique(groups)])
    problems = [_problems(vset)[i] for i in idx]
    weights = mixture_weights(groups[idx], {int(g): float(vset.weight[groups == g].sum())
                                            for g in np.unique(groups)})
    c = len(models)
    logp = np.empty((c, c, len(problems), samples), dtype=np.float64)
    for j, mj in enumerate(models):
        drawn = mj.sample(problems, samples, seed=seed + j)
        for k, mk in enumerate(models):
            logp[j, k] = np.stack(mk.score(problems, drawn))
    return onpolicy_from_samples(logp, n_threshold, weights=weights)
