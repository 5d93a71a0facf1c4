"""Executors: where independent units of work (seeds, checkpoints, shards) run.

``LocalExecutor`` runs them in this process, in order. ``ProcessExecutor`` runs them in a pool
of local worker processes (``--workers N``). ``RayExecutor`` submits each as a Ray task
(``pip install 'lmcoverage[ray]'``). Results always come back in submission order and every
unit is a pure function of its item, so all three give identical outputs for the same inputs.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from lmcoverage.errors import EnvError, InputError

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Maps a picklable function over items; results in item order."""

    name: str

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]: ...


class LocalExecutor:
    """Run every item in this process, in order."""

    name = "local"

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return [fn(item) for item in items]


class ProcessExecutor:
    """Run items in ``workers`` local processes (spawned: no state shared with this one)."""

    name = "processes"

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 2:
            raise InputError(f"--workers must be an integer >= 2 for a process pool, "
                             f"got {workers!r}")
        self.workers = workers

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if len(items) < 2:
            return [fn(item) for item in items]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(self.workers, len(items)), mp_context=context) as pool:
            return list(pool.map(fn, items))


#: Seconds to wait for a TCP connection to ``--ray-address`` before a try counts as failed.
CONNECT_TIMEOUT = 10.0


class RayExecutor:
    """Run each item as a Ray task on a local or existing cluster (``address``).

    Ray's own log lines are silenced (``logging_level`` ERROR; file descriptor 2 points to
    ``/dev/null`` while ``ray.init`` runs, which the processes it starts inherit) unless
    ``verbose`` or the environment variable ``LMCOVERAGE_VERBOSE`` (``lmcoverage --verbose``)
    asks for them. The
    process's SIGINT/SIGTERM handlers are kept (``ray.init`` replaces SIGTERM's), and an
    interrupted :meth:`map` cancels its tasks and re-raises the interruption itself.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 verbose: bool | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise EnvError(
                "--executor ray needs Ray: pip install 'lmcoverage[ray]'"
            ) from None
        self._ray = ray
        if not ray.is_initialized():
            import logging

            if verbose is None:
                verbose = bool(os.environ.get("LMCOVERAGE_VERBOSE"))
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": verbose}
            if not verbose:
                kwargs["logging_level"] = logging.ERROR
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = num_cpus
            with contextlib.nullcontext() if verbose else _quiet_stderr():
                self._start(kwargs, address)

    @staticmethod
    def _probe(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
        """ConnectionError unless a TCP connection to ``address`` (``HOST:PORT`` or
        ``ray://HOST:PORT``; others, such as ``auto``, are left to Ray) opens within
        ``timeout`` seconds: ``ray.init`` itself retries an unreachable cluster for ever."""
        import socket

        host, sep, port = address.removeprefix("ray://").rpartition(":")
        if not sep or not host or not port.isdigit():
            return
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConnectionError(f"cannot connect to {address} within {timeout:g} s "
                                  f"({reason})") from None

    def _start(self, kwargs: dict[str, Any], address: str | None, attempts: int = 2) -> None:
        """``ray.init``, tried again once after a failure (a local instance can time out while
        starting on a loaded machine, an address may not answer within
        :data:`CONNECT_TIMEOUT`); a last failure is an :class:`EnvError` (exit 1)."""
        import signal

        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for attempt in range(1, attempts + 1):
            try:
                if address:
                    self._probe(address)
                self._ray.init(**kwargs)
                _restore(handlers)
                return
            except Exception as exc:  # noqa: BLE001 - Ray raises several types here
                self._ray.shutdown()
                _restore(handlers)
                if attempt == attempts:
                    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                    reason = " ".join(str(exc).split()) or type(exc).__name__
                    raise EnvError(f"--executor ray: could not start or reach {where} "
                                   f"({attempts} attempts): {reason}") from None

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) ...]`` as Ray tasks. A task's own error is re-raised as itself (not
        wrapped with the remote traceback); an interruption (SIGINT/SIGTERM, which Ray can
        wrap in a ``SystemError``) cancels the tasks and is re-raised."""
        remote = self._ray.remote(num_cpus=1)(fn)
        refs = [remote.remote(item) for item in items]
        try:
            pending = list(refs)
            while pending:  # short waits: Python runs the signal handlers between them
                _, pending = self._ray.wait(pending, num_returns=len(pending), timeout=1.0)
            return list(self._ray.get(refs))
        except BaseException as exc:
            # cancel only the unfinished tasks: force-cancelling a task whose result is in but
            # whose reply Ray's core is still processing aborts the driver's core worker
            # ("Tried to complete task that was not pending"), which prints a C++ stack trace
            # after the one error line
            _, unfinished = self._ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in unfinished:
                try:
                    self._ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001, S110 - finished or already gone
                    pass
            raise _unwrapped(exc) from None

    def shutdown(self) -> None:
        self._ray.shutdown()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Point file descriptor 2 at ``/dev/null`` for the duration (Ray's C++ core writes its
    log lines there directly, and the raylet and workers started meanwhile inherit it)."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _restore(handlers: dict[Any, Any]) -> None:
    """Put back signal handlers (``ray.init`` installs its own for SIGTERM)."""
    import signal

    for signum, handler in handlers.items():
        if handler is not None and signal.getsignal(signum) is not handler:
            try:
                signal.signal(signum, handler)
            except ValueError:  # not the main thread
                pass


def _unwrapped(exc: BaseException) -> BaseException:
    """The exception a user should see: the interruption inside a ``SystemError``, or the
    task's own error inside a ``RayTaskError`` (its ``cause``)."""
    from lmcoverage.errors import Interrupted

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, Interrupted | KeyboardInterrupt):
            return seen
        seen = seen.__context__ or seen.__cause__
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and type(exc).__name__.startswith("RayTaskError"):
        return cause
    return exc


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
