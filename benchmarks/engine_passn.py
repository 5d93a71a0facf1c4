"""Benchmark: exact Pass@N via ``mass_correct`` vs sampled Pass@N at equal standard error.

Quantity: Pass@N of a model on the Figure 2 validation mix (per-class sets, paper model, one
thread), ``mean_x [1 - (1 - pi_hat(G_x|x))^N]``, G_x the valid paths.

- Exact: ``mass_correct`` teacher-forces every valid path (prompt run once per prompt); its
  only error is floating-point (~1e-6 relative), so its standard error is taken as 0.
- Sampled: n engine samples per prompt (KV-cached, prompt once), each verified, and the
  unbiased estimator 1 - C(n-c, N)/C(n, N) averaged over prompts. Its standard error depends on
  the unknown per-prompt pass rates p; the sample size that *guarantees* a standard error <= eps
  for any model is set by the worst case, ``n(eps) = min { n >= N : max_p Var_p(n) / P <= eps^2 }``
  with the estimator's variance computed exactly (binomial sum over the number correct).

CPU seconds per sample and per exact prompt are measured on ``--per-class`` prompts per class
and scaled linearly to the paper's 1,024 prompts per class (both methods are linear in prompts).

    .venv/bin/python benchmarks/engine_passn.py --horizon 8 --per-class 2 --pass-n 8 64
"""

from __future__ import annotations

import argparse

import numpy as np
from engine_common import paper_model, timed, validation_mix
from scipy.special import gammaln
from scipy.stats import binom

from lmcoverage.engine import mass_correct, sample_responses
from lmcoverage.metrics import pass_at_k


def estimator_values(n: int, big_n: int) -> np.ndarray:
    """(n+1,) unbiased Pass@N estimate 1 - C(n-c, N)/C(n, N) for c = 0..n correct, in O(n)
    via log-gamma (``lmcoverage.metrics.pass_at_k`` is the reference; checked in ``main``)."""
    c = np.arange(n + 1)
    free = n - c
    log_ratio = (gammaln(np.maximum(free, big_n) + 1) - gammaln(np.maximum(free - big_n, 0) + 1)
                 - gammaln(n + 1) + gammaln(n - big_n + 1))
    return np.where(free >= big_n, -np.expm1(log_ratio), 1.0)


def worst_case_variance(n: int, big_n: int) -> float:
    """max over p of Var[unbiased Pass@N estimate] from n samples with pass rate p."""
    p = np.concatenate([np.geomspace(1e-5, 0.5, 160), np.linspace(0.5, 1 - 1e-6, 40)])
    est = estimator_values(n, big_n)
    pmf = binom.pmf(np.arange(n + 1)[None, :], n, p[:, None])  # (p, n+1)
    truth = 1 - (1 - p) ** big_n
    return float(np.max(pmf @ est**2 - truth**2))


def samples_needed(eps: float, prompts: int, big_n: int) -> int:
    """Smallest n >= N per prompt (to 1%) with worst-case standard error <= eps over
    ``prompts`` prompts."""
    lo, hi = big_n, big_n
    while worst_case_variance(hi, big_n) / prompts > eps**2:
        lo, hi = hi, hi * 2
    while hi - lo > max(1, lo // 100):
        mid = (lo + hi) // 2
        if worst_case_variance(mid, big_n) / prompts <= eps**2:
            hi = mid
        else:
            lo = mid + 1
    return hi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=2)
    parser.add_argument("--pass-n", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--samples", type=int, default=64, help="samples per prompt to time")
    parser.add_argument("--paper-prompts", type=int, default=3 * 1024)
    args = parser.parse_args()

    for big_n in args.pass_n:
        np.testing.assert_allclose(estimator_values(3 * big_n, big_n),
                                   pass_at_k(3 * big_n, np.arange(3 * big_n + 1), big_n),
                                   rtol=1e-9, atol=1e-12)
    task, problems = validation_mix(f"figure2-h{args.horizon}", args.per_class)
    model = paper_model(task)
    prompts = [list(p.prompt_ids) for p in problems]
    length = len(problems[0].response_ids)

    t_exact, mass = timed(lambda: mass_correct(model, prompts, [p.valid_paths for p in problems],
                                               progress=False))

    def sampled() -> list[int]:
        draws = sample_responses(model, prompts, n=args.samples, max_new_tokens=length, seed=0,
                                 batch_size=args.samples, progress=False)
        return [sum(task.is_correct(p, r) for r in rs) for p, rs in
                zip(problems, draws, strict=True)]

    t_sampled, correct = timed(sampled)
    per_prompt_exact = t_exact / len(prompts)
    per_sample = t_sampled / (len(prompts) * args.samples)
    big_p = args.paper_prompts
    exact_total = per_prompt_exact * big_p
    print(f"## Exact vs sampled Pass@N: figure2-h{args.horizon}, paper model, one thread\n")
    print(f"Timed on {len(prompts)} prompts ({args.per_class} per class; "
          f"{sum(len(p.valid_paths) for p in problems)} valid paths scored by mass_correct, "
          f"{args.samples} samples per prompt drawn and verified): exact "
          f"{per_prompt_exact:.3f} CPU s per prompt, sampling {1e3 * per_sample:.1f} CPU ms "
          f"per sample. Scaled to {big_p} prompts: exact Pass@N takes {exact_total:.0f} s "
          f"(every N at once).\n")
    print("| N | target SE | samples per prompt (worst case) | sampling CPU s | exact CPU s | "
          "ratio |")
    print("|---|---|---|---|---|---|")
    for big_n in args.pass_n:
        for eps in (1e-2, 3e-3, 1e-3, 3e-4):
            n = samples_needed(eps, big_p, big_n)
            cost = n * big_p * per_sample
            ratio = cost / exact_total
            print(f"| {big_n} | {eps:g} | {n} | {cost:.0f} | {exact_total:.0f} | "
                  f"{ratio:.{1 if ratio < 10 else 0}f}x |")
    for big_n in args.pass_n:
        if big_n <= args.samples:
            exact = float(np.mean(1 - (1 - mass) ** big_n))
            estimate = float(np.mean(pass_at_k(args.samples, correct, big_n)))
            print(f"\nPass@{big_n} on these prompts: exact {exact:.3g}, sampled {estimate:.3g} "
                  "(random weights)")


if __name__ == "__main__":
    main()
