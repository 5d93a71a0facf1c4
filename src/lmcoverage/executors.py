"""Executors: where independent units of work (seeds, checkpoints, shards) run.

``LocalExecutor`` runs them in this process, in order. ``ProcessExecutor`` runs them in a pool
of local worker processes (``--workers N``). ``RayExecutor`` submits each as a Ray task
(``pip install 'lmcoverage[ray]'``). Results always come back in submission order and every
unit is a pure function of its item, so all three give identical outputs for the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from lmcoverage.errors import EnvError, InputError


class Executor(Protocol):
    """Maps a picklable function over items; results in item order."""

    name: str

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]: ...


class LocalExecutor:
    """Run every item in this process, in order."""

    name = "local"

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return [fn(item) for item in items]


class ProcessExecutor:
    """Run items in ``workers`` local processes (spawned: no state shared with this one)."""

    name = "processes"

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 2:
            raise InputError(f"--workers must be an integer >= 2 for a process pool, "
                             f"got {workers!r}")
        self.workers = workers

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if len(items) < 2:
            return [fn(item) for item in items]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(self.workers, len(items)), mp_context=context) as pool:
            return list(pool.map(fn, items))


class RayExecutor:
    """Run each item as a Ray task on a local or existing cluster (``address``)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise EnvError(
                "--executor ray needs Ray: pip install 'lmcoverage[ray]'"
            ) from None
        self._ray = ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = num_cpus
            self._start(kwargs, address)

    def _start(self, kwargs: dict[str, Any], address: str | None, attempts: int = 2) -> None:
        """``ray.init``, tried again once after a failure (a local instance can time out while
        starting on a loaded machine); a last failure is an :class:`EnvError` (exit 1)."""
        for attempt in range(1, attempts + 1):
            try:
                self._ray.init(**kwargs)
                return
            except Exception as exc:  # noqa: BLE001 - Ray raises several types here
                self._ray.shutdown()
                if attempt == attempts:
                    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                    reason = " ".join(str(exc).split()) or type(exc).__name__
                    raise EnvError(f"--executor ray: could not start or reach {where} "
                                   f"({attempts} attempts): {reason}") from None

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        remote = self._ray.remote(num_cpus=1)(fn)
        return list(self._ray.get([remote.remote(item) for item in items]))

    def shutdown(self) -> None:
        self._ray.shutdown()


def make_executor(name: str, address: str | None = None, workers: int = 1) -> Executor:
    """``"local"`` (``workers`` > 1: a :class:`ProcessExecutor`) or ``"ray"``; else InputError."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"--workers must be an integer >= 1, got {workers!r}")
    if name == "local":
        if address:
            raise InputError("--ray-address needs --executor ray")
        return LocalExecutor() if workers == 1 else ProcessExecutor(workers)
    if workers != 1:
        raise InputError("--workers needs --executor local (Ray schedules its own workers)")
    if name == "ray":
        return RayExecutor(address)
    raise InputError(f"unknown executor {name!r}; choose 'local' or 'ray'")
