"""Executors: where independent units of work (seeds, checkpoints, shards) run.

``LocalExecutor`` runs them in this process, in order. ``RayExecutor`` submits each as a Ray
task (``pip install 'lmcoverage[ray]'``); results come back in submission order, so both give
identical outputs for the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol


class Executor(Protocol):
    """Maps a picklable function over items; results in item order."""

    name: str

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]: ...


class LocalExecutor:
    """Run every item in this process, in order."""

    name = "local"

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return [fn(item) for item in items]


class RayExecutor:
    """Run each item as a Ray task on a local or existing cluster (``address``)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError(
                "--executor ray needs Ray: pip install 'lmcoverage[ray]'"
            ) from None
        self._ray = ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = num_cpus
            ray.init(**kwargs)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        remote = self._ray.remote(num_cpus=1)(fn)
        return list(self._ray.get([remote.remote(item) for item in items]))

    def shutdown(self) -> None:
        self._ray.shutdown()


def make_executor(name: str, address: str | None = None) -> Executor:
    """``"local"`` or ``"ray"``; anything else -> ValueError."""
    if name == "local":
        if address:
            raise ValueError("--ray-address needs --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address)
    raise ValueError(f"unknown executor {name!r}; choose 'local' or 'ray'")
