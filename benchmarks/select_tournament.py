"""Time the simple tournament (Eq. 29) at 100 candidates x 100,000 examples on one thread.

Compares, in the same process and on the same matrices, ``lmcoverage.select.simple_tournament``
with a naive Python double loop over (candidate, opponent) pairs (each pair one numpy
comparison over the examples) and with a pure-Python triple loop on a smaller size, and
checks that they agree exactly. Run:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/select_tournament.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lmcoverage.select import simple_tournament


def naive_pairs(ll: np.ndarray, n: float) -> np.ndarray:
    """Max over opponents of hatCov_N, one numpy comparison per (candidate, opponent) pair."""
    k, m = ll.shape
    log_n = math.log(n)
    stat = np.full(k, -np.inf)
    with np.errstate(invalid="ignore"):
        for j in range(k):
            for o in range(k):
                if o != j:
                    stat[j] = max(stat[j], np.count_nonzero(ll[o] - ll[j] >= log_n) / m)
    return stat


def pure_python(ll: np.ndarray, n: float) -> np.ndarray:
    """The same statistic with Python loops over pairs and examples (the textbook version)."""
    rows = ll.tolist()
    k, m = len(rows), len(rows[0])
    log_n = math.log(n)
    stat = []
    for j in range(k):
        best = -math.inf
        for o in range(k):
            if o == j:
                continue
            hits = 0
            for i in range(m):
                a, b = rows[o][i], rows[j][i]
                if not (a == b == -math.inf) and a - b >= log_n:
                    hits += 1
            best = max(best, hits / m)
        stat.append(best)
    return np.array(stat)


def _time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _matrix(k: int, m: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ll = -rng.exponential(3.0, size=(k, m)) - rng.exponential(1.0, size=(k, 1))
    ll[rng.random((k, m)) < 0.01] = -np.inf
    return ll


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--small-examples", type=int, default=1_000)
    parser.add_argument("--small-candidates", type=int, default=100)
    parser.add_argument("--n", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    big = _matrix(args.candidates, args.examples, 0)
    t_lib, sel = _time(lambda: simple_tournament(big, args.n), args.repeats)
    t_pairs, ref = _time(lambda: naive_pairs(big, args.n), 1)
    assert np.array_equal(sel.statistic, ref), "library and pair loop disagree"

    small = _matrix(args.small_candidates, args.small_examples, 1)
    t_lib_small, sel_small = _time(lambda: simple_tournament(small, args.n), args.repeats)
    t_py, ref_small = _time(lambda: pure_python(small, args.n), 1)
    assert np.array_equal(sel_small.statistic, ref_small), "library and pure Python disagree"

    result = {
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"python {platform.python_version()}, numpy {np.__version__}",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1min_at_end": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "big": {"candidates": args.candidates, "examples": args.examples,
                "library_s": t_lib, "pair_loop_s": t_pairs, "speedup": t_pairs / t_lib},
        "small": {"candidates": args.small_candidates, "examples": args.small_examples,
                  "library_s": t_lib_small, "pure_python_s": t_py,
                  "speedup": t_py / t_lib_small},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        from lmcoverage.io import atomic_write_json

        atomic_write_json(args.json, result)


if __name__ == "__main__":
    main()
