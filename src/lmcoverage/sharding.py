"""Shard prompt rows across an executor (local or Ray), resumably.

The machinery behind ``score``, ``sample`` and ``verify`` with ``--executor ray
[--ray-address ADDR]`` (or ``--shards K`` with the local executor); the adapters are
:mod:`lmcoverage.engine.sharded` (score, sample) and :mod:`lmcoverage.verify.sharded`:

- :func:`plan_shards` cuts the input rows into K shards; rows that share a prompt stay in one
  shard (so each shard keeps the engine's prompt grouping) and shards keep the input order.
- :func:`run_sharded` runs ``work(shard)`` for every shard not yet done, one executor task per
  shard: each task loads each model once and processes its shard. The task itself writes its
  result atomically to ``OUT.shards/shard-KKKKK.*`` (a shared filesystem on a cluster), so an
  interrupted run resumes shard by shard; the directory is removed once the merged output is
  written. ``OUT.shards/manifest.json`` records what the shards were computed from (the
  command, the models' files, a SHA-256 of the rows, seed, n, spec, dtype, max-new-tokens,
  every option) and each shard file carries that record's digest in its name: a run with other
  inputs or options starts afresh instead of mixing results, and a shard that no manifest
  vouches for is never read. ``OUT.lock`` (an ``fcntl.flock`` naming its process) keeps a
  second run on the same output out: it is refused with one line naming the running one.

The plan does not depend on the executor, so ``--executor local --shards K`` and
``--executor ray --shards K`` compute exactly the same batches and give identical numbers;
different K change only float32 rounding (prompts share forward passes with other prompts).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import sys
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from lmcoverage.errors import EnvError, InputError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    class _PerRow(DataclassInstance, Protocol):
        """A dataclass of per-row fields with ``len()`` rows (:func:`subset`)."""

        def __len__(self) -> int: ...

T = TypeVar("T")
RowsT = TypeVar("RowsT", bound="_PerRow")
EXECUTORS = ("local", "ray")
EXECUTOR_HELP = "Where shards run: local (this process) or ray (a Ray cluster)."
RAY_ADDRESS_HELP = "Address of an existing Ray cluster (--executor ray; default: start one here)."
SHARDS_HELP = ("Prompt shards (default: 1 locally, the cluster's CPUs with Ray); finished "
               "shards are kept in OUT.shards/ and a re-run resumes from them.")


def plan_shards(keys: Sequence[Hashable], shards: int) -> list[list[int]]:
    """Row indices of each of at most ``shards`` shards, in input order.

    ``keys[i]`` identifies row i's prompt; all rows of one prompt go to the shard of its first
    row. Prompts are dealt in order of first appearance into contiguous runs of about equal row
    counts, so concatenating the shards' rows (each shard sorted) gives the rows grouped by
    prompt, and with distinct prompts exactly the input order. Empty shards are dropped.
    """
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise InputError(f"--shards: must be an integer >= 1, got {shards!r}")
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    plan: list[list[int]] = [[] for _ in range(shards)]
    total, done = len(keys), 0
    for rows in groups.values():
        k = min(shards - 1, done * shards // max(total, 1))
        plan[k].extend(rows)
        done += len(rows)
    return [sorted(rows) for rows in plan if rows]


def subset(examples: RowsT, rows: Sequence[int]) -> RowsT:
    """A dataclass of per-row lists/arrays (e.g. :class:`~lmcoverage.engine.table.Examples`)
    restricted to ``rows``; fields that are not per-row (names, sources) are kept."""
    n = len(examples)
    index = np.asarray(rows, dtype=np.int64)
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(examples):
        value = getattr(examples, field.name)
        if isinstance(value, np.ndarray) and value.shape[:1] == (n,):
            changes[field.name] = value[index]
        elif isinstance(value, list) and len(value) == n:
            changes[field.name] = [value[i] for i in rows]
    return dataclasses.replace(examples, **changes)


@dataclasses.dataclass(frozen=True)
class ShardFormat:
    """How one shard's result is stored: file suffix, ``write(path, result)`` (atomic) and
    ``read(path) -> result``; both run on the machine that has the shard directory."""

    suffix: str
    write: Callable[[Path, Any], None]
    read: Callable[[Path], Any]


def shard_dir(out: Path) -> Path:
    """``OUT.shards`` next to the output ``out``."""
    return out.with_name(out.name + ".shards")


def run_sharded(
    work: Callable[[list[int]], T],
    plan: list[list[int]],
    out: Path,
    fingerprint: dict[str, Any],
    fmt: ShardFormat,
    executor: str = "local",
    address: str | None = None,
    progress: bool = True,
) -> tuple[list[list[int]], list[T]]:
    """``(plan, [work(rows) for rows in plan])``, each shard computed once across re-runs.

    ``work`` must be picklable (a module-level function, or a ``functools.partial`` of one)
    for Ray. A re-run with the same ``fingerprint`` keeps the plan stored in ``OUT.shards/``
    (whatever ``plan`` is given now) and reads its finished shards back instead of recomputing
    them. The caller writes the merged output and then calls :func:`finish_sharded`.
    """
    from lmcoverage.executors import make_executor

    folder = shard_dir(out)
    lock_output(out)
    digest = _digest(fingerprint)
    plan = _prepare(folder, digest, fingerprint, plan, progress)
    paths = [folder / f"shard-{k:05d}-{digest[:12]}{fmt.suffix}" for k in range(len(plan))]
    todo = [k for k, p in enumerate(paths) if not p.is_file()]
    if progress and len(todo) < len(plan):
        print(f"resuming: {len(plan) - len(todo)} of {len(plan)} shards already in {folder}",
              file=sys.stderr)
    if todo:
        make_executor(executor, address).map(_run_and_store,
                                             [(work, fmt.write, plan[k], paths[k])
                                              for k in todo])
    return plan, [fmt.read(p) for p in paths]


def finish_sharded(out: Path) -> None:
    """Remove ``OUT.shards/`` once ``out`` has been written, and release ``OUT.lock``."""
    shutil.rmtree(shard_dir(out), ignore_errors=True)
    unlock_output(out)


#: Output locks this process holds: resolved output path -> open lock file descriptor.
_LOCKS: dict[Path, int] = {}


def lock_path(out: Path) -> Path:
    """``OUT.lock`` next to the output ``out``."""
    return out.with_name(out.name + ".lock")


def lock_output(out: Path) -> None:
    """Hold ``OUT.lock`` (an exclusive ``flock``, released by :func:`unlock_output` or when the
    process ends, even by ``kill -9``) for the rest of this run; the same process may call it
    again. Another live run holding it is an :class:`EnvError` naming that run (exit 1)."""
    import fcntl

    key = Path(out).resolve()
    if key in _LOCKS:
        return
    path = lock_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise EnvError(f"--out {out}: another run ({holder}) is writing it (lock {path}); "
                           "wait for it to finish, or give another --out") from None
        if os.path.exists(path) and os.stat(path).st_ino == os.fstat(fd).st_ino:
            break
        os.close(fd)  # the holder removed the file as we opened it: lock the new one
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    _LOCKS[key] = fd


def unlock_output(out: Path | None = None) -> None:
    """Release (and remove) the lock of ``out``, or with None every lock this process holds."""
    keys = list(_LOCKS) if out is None else [Path(out).resolve()]
    for key in keys:
        fd = _LOCKS.pop(key, None)
        if fd is not None:
            lock_path(key).unlink(missing_ok=True)  # still held: no one else has it
            os.close(fd)


def shard_count(executor: str, address: str | None, shards: int | None) -> int:
    """``shards`` if given; else 1 locally and, with Ray, the CPUs of the cluster (connecting
    to it): one shard per worker, so each worker loads each model once."""
    if shards is not None or executor != "ray":
        return 1 if shards is None else shards
    import ray

    from lmcoverage.executors import make_executor

    make_executor(executor, address)
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def check_executor(executor: str, address: str | None) -> None:
    """Refuse an unknown executor, ``--ray-address`` without ``--executor ray``, or Ray that is
    not installed (an environment error), before any work."""
    if executor not in EXECUTORS:
        raise InputError(f"--executor: unknown executor {executor!r}; choose local or ray")
    if address and executor != "ray":
        raise InputError("--ray-address needs --executor ray")
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise EnvError("--executor ray needs Ray: pip install 'lmcoverage[ray]'") from None


def _run_and_store(item: tuple[Callable[[list[int]], Any], Callable[[Path, Any], None],
                                list[int], Path]) -> None:
    """Executor task ``(work, write, rows, path)``: run one shard and store its result under
    its final name (atomically)."""
    work, write, rows, path = item
    write(path, work(rows))


def _digest(fingerprint: dict[str, Any]) -> str:
    text = json.dumps(fingerprint, sort_keys=True, default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()


def data_sha256(data: object) -> str:
    """SHA-256 of ``data`` (rows, or a dataclass of per-row lists) as canonical JSON: the
    manifest records this instead of the rows themselves."""
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = dataclasses.asdict(data)
    return _digest({"data": data})


def _plain(obj: object) -> object:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def _prepare(folder: Path, digest: str, fingerprint: dict[str, Any], plan: list[list[int]],
             progress: bool) -> list[list[int]]:
    """Create ``folder`` with its manifest and return the plan to run: the stored one when the
    folder's manifest records the same run, else ``plan`` (a folder of another run, or one
    without a readable manifest, is emptied)."""
    from lmcoverage.io import atomic_write_json

    path = folder / "manifest.json"
    if folder.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            stored = {}
        if (isinstance(stored, dict) and stored.get("fingerprint") == digest
                and isinstance(stored.get("plan"), list)):
            return [list(map(int, rows)) for rows in stored["plan"]]
        if progress and any(folder.iterdir()):
            print(f"{folder} holds shards of another run (other inputs or options): "
                  "starting afresh", file=sys.stderr)
        shutil.rmtree(folder)
    record = json.loads(json.dumps(fingerprint, sort_keys=True, default=_plain))
    atomic_write_json(path, {"fingerprint": digest, "run": record, "plan": plan})
    return plan


def model_stamp(path: Path) -> list[Any]:
    """A model directory (or file) with the size and mtime of what is in it."""
    p = Path(path).resolve()
    files = sorted(p.iterdir()) if p.is_dir() else [p]
    return [str(p), [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files
                     if f.is_file()]]


def decoding_plan(rows: int, batch_size: int | str, n: int, shards: int) -> list[list[int]]:
    """Contiguous shards of ``rows`` prompt rows cut only between the engine's decoding
    batches (``batch_size // n`` prompts each), so every batch is the one an unsharded call
    decodes. Under ``batch_size="auto"`` the passes depend on prompt lengths (see
    :func:`lmcoverage.engine.sampling.prompt_passes`), so shards cut between any rows: the
    samples do not depend on their batch-mates, their log-probs only up to float32 rounding
    (``tests/test_sampling_batching.py``)."""
    per_pass = 1 if batch_size == "auto" else max(1, int(batch_size) // n)
    return plan_shards([i // per_pass for i in range(rows)], shards)

