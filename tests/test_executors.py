"""Executors: the local process pool keeps item order and refuses bad worker counts."""

from __future__ import annotations

import math
import sys

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


class _FlakyRay:
    """A stand-in for the ``ray`` module whose ``init`` fails ``failures`` times."""

    def __init__(self, failures: int) -> None:
        self.failures, self.inits, self.shutdowns = failures, 0, 0

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs: object) -> None:
        self.inits += 1
        if self.inits <= self.failures:
            raise ConnectionError("Failed to get node info: Deadline Exceeded")

    def shutdown(self) -> None:
        self.shutdowns += 1


@pytest.mark.parametrize(("failures", "starts"), [(0, True), (1, True), (2, False)])
def test_ray_start_is_tried_twice_then_an_environment_error(
        monkeypatch: pytest.MonkeyPatch, failures: int, starts: bool) -> None:
    from lmcoverage.errors import EnvError
    from lmcoverage.executors import RayExecutor

    fake = _FlakyRay(failures)
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setattr(RayExecutor, "_probe", staticmethod(lambda address: None))  # no network
    if starts:
        RayExecutor()
        assert fake.inits == failures + 1 and fake.shutdowns == failures
    else:
        with pytest.raises(EnvError, match=r"a local Ray instance \(2 attempts\): Failed to get"):
            RayExecutor()
        assert fake.inits == 2 and fake.shutdowns == 2
        monkeypatch.setitem(sys.modules, "ray", _FlakyRay(failures))
        with pytest.raises(EnvError, match="the Ray cluster at 10.0.0.1:6379"):
            RayExecutor(address="10.0.0.1:6379")
