"""Benchmark: coverage_profile (one sort + binary search) against one comparison pass per N.

Usage: python benchmarks/metrics_coverage_profile.py [--examples 10000000] [--ns 64] [--repeats 3]
Prints a Markdown table row and the speed-up ratio; both are measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lmcoverage.metrics import TIE_ATOL, coverage_profile


def loop_per_n(log_ratio: np.ndarray, ns: np.ndarray) -> np.ndarray:
    """The obvious baseline: one vectorised comparison pass over all examples per N."""
    return np.array([np.mean(log_ratio >= np.log(n) - TIE_ATOL) for n in ns])


def best_time(fn, *args, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=10_000_000)
    parser.add_argument("--ns", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    log_ratio = rng.standard_normal(args.examples) * 2.0
    ns = np.logspace(0, 4, args.ns)
    np.testing.assert_allclose(coverage_profile(log_ratio, ns), loop_per_n(log_ratio, ns))
    ours = best_time(coverage_profile, log_ratio, ns, repeats=args.repeats)
    base = best_time(loop_per_n, log_ratio, ns, repeats=args.repeats)
    print("| examples | N values | coverage_profile (s) | loop per N (s) | speed-up |")
    print("|---|---|---|---|---|")
    print(f"| {args.examples:,} | {args.ns} | {ours:.3f} | {base:.3f} | {base / ours:.2f}x |")


if __name__ == "__main__":
    main()
