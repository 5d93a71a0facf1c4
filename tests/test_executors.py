"""Executors: the local process pool keeps item order and refuses bad worker counts."""

from __future__ import annotations

import math

import pytest

from lmcoverage.executors import LocalExecutor, ProcessExecutor, make_executor


def test_make_executor_picks_the_pool_and_checks_workers() -> None:
    assert isinstance(make_executor("local"), LocalExecutor)
    pool = make_executor("local", workers=2)
    assert isinstance(pool, ProcessExecutor) and pool.workers == 2
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="--workers"):
            make_executor("local", workers=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--workers needs --executor local"):
        make_executor("ray", workers=2)


def test_process_pool_returns_results_in_item_order() -> None:
    items = [9, 1, 4, 16, 0, 25]
    assert ProcessExecutor(2).map(math.isqrt, items) == [3, 1, 2, 4, 0, 5]
    assert ProcessExecutor(3).map(math.isqrt, [49]) == [7]  # one item: no pool
