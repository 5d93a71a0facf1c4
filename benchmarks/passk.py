"""Benchmark: vectorised pass_at_k on many problems against the per-problem loop it replaced.

Usage: python benchmarks/passk.py [--problems 100000] [--max-samples 200] [--repeats 3]
Prints a Markdown table row and the speed-up ratio; both are measured in the same run, after
checking that both give the same values.
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np
from engine_common import timed

from lmcoverage.metrics import pass_at_k


def loop_per_problem(n: np.ndarray, c: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The baseline (the previous implementation): one product per problem in a Python loop."""
    out = np.empty(n.shape, dtype=np.float64)
    for idx in np.ndindex(n.shape):
        ni, ci, ki = int(n[idx]), int(c[idx]), int(k[idx])
        if ni - ci < ki:
            out[idx] = 1.0
        else:
            out[idx] = 1.0 - np.prod(1.0 - ki / np.arange(ni - ci + 1, ni + 1, dtype=np.float64))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--problems", type=int, default=100_000)
    parser.add_argument("--max-samples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = rng.integers(10, args.max_samples + 1, size=args.problems)
    c = rng.binomial(n, rng.uniform(0, 0.5, size=args.problems))
    for k_value in (1, 8):
        k = np.full(args.problems, k_value)
        np.testing.assert_allclose(pass_at_k(n, c, k), loop_per_problem(n, c, k), atol=1e-12)
        ours = timed(partial(pass_at_k, n, c, k), args.repeats)[0]
        base = timed(partial(loop_per_problem, n, c, k), args.repeats)[0]
        print(f"| {args.problems:,} | {args.max_samples} | {k_value} | {ours:.4f} | {base:.3f} "
              f"| {base / ours:.0f}x |")


if __name__ == "__main__":
    main()
