"""Atomic file output and validated JSONL input.

Every writer goes through :func:`atomic_path`: data is written to a temporary name in the
destination directory and renamed into place, so a crash never leaves half a file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeAlias, overload

from lmcoverage.errors import FileDecodeError, InputError

#: A value of plain JSON types (what :func:`json.loads` returns).
JSONValue: TypeAlias = "dict[str, Any] | list[Any] | str | int | float | bool | None"


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched; an
    ``OSError`` about the temporary file or without a file name (``ENOSPC`` from a write) is
    re-raised naming ``path``.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                        dir=target.parent)
    except OSError as exc:
        raise _naming(exc, target) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, usual_mode())
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename in (None, str(tmp), tmp):
            raise _naming(exc, target) from exc
        raise


def check_output_path(
    path: str | os.PathLike[str],
    suffixes: tuple[str, ...],
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    option: str = "--out",
) -> Path:
    """Refuse an output ``path`` before any work: its suffix must be one of ``suffixes``
    (lower case, with the dot; empty: any), it must not be a directory, and it must not be one
    of ``inputs`` (option name -> path; the same file by resolved path or inode).

    Raises:
        InputError: naming ``option``, the path and what is wrong (one line).
    """
    out = Path(path)
    wanted = " or ".join(suffixes)
    if out.is_dir():
        raise InputError(f"{option} {out}: is a directory; give a {wanted or 'file'} path")
    if suffixes and out.suffix.lower() not in suffixes:
        raise InputError(f"{option} {out}: give a {wanted} file path")
    for flag, given in (inputs or {}).items():
        if given is not None and _same_file(out, Path(given)):
            raise InputError(f"{option} {out} is also the input {flag} {given}: writing it "
                             "would destroy the input; give another output path")
    return out


def check_input_file(path: str | os.PathLike[str]) -> Path:
    """``path`` if it is a regular file this process can open for reading.

    Raises:
        InputError: the path is missing (``file not found``), a symlink loop, a directory, or
            not a regular file (a FIFO, a device such as ``/dev/zero``): bad input, exit 2.
        OSError: the file exists but cannot be opened (``Permission denied``): exit 1.
    """
    import stat

    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{p}: is a symlink loop") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise InputError(f"file not found: {p}") from None
        raise
    if stat.S_ISDIR(mode):
        raise InputError(f"{p}: is a directory, not a file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if (
            stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) else "a special file"
        raise InputError(f"{p}: is {kind}, not a regular file")
    with open(p, "rb"):  # PermissionError names the path: an environment error
        pass
    return p


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (after symlinks, or as hard links)."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _naming(exc: OSError, target: Path) -> OSError:
    """``exc`` about ``target`` (the output the user named, not our temporary file)."""
    if exc.errno is None:
        return exc
    return type(exc)(exc.errno, os.strerror(exc.errno), str(target))


def usual_mode(directory: bool = False) -> int:
    """The mode a plain ``open``/``mkdir`` would give (0666 or 0777 less the umask).

    ``tempfile.mkstemp``/``mkdtemp`` create 0600/0700 entries; renamed into place as outputs
    they get this mode instead.
    """
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: object) -> JSONValue:
    """Convert numpy scalars/arrays and paths for :func:`json.dumps`."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def _finite_or_none(obj: JSONValue) -> JSONValue:
    """Replace non-finite floats by strings ('inf', '-inf', 'nan') so the JSON stays standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_or_none(v) for v in obj]
    return obj


@overload
def to_jsonable(obj: Mapping[str, Any]) -> dict[str, Any]: ...
@overload
def to_jsonable(obj: object) -> JSONValue: ...
def to_jsonable(obj: object) -> JSONValue:
    """Return ``obj`` as plain JSON types: numpy converted, non-finite floats as strings."""
    return _finite_or_none(json.loads(json.dumps(obj, default=_json_default, allow_nan=True)))


def atomic_write_json(path: str | os.PathLike[str], obj: JSONValue) -> None:
    """Write ``obj`` as indented, standard JSON (no NaN/Infinity literals) atomically."""
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def path_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes, or of a folder's files (a ``datasets`` ``save_to_disk``
    folder): each file's path relative to the folder, a NUL byte and its bytes, in sorted
    order, so a renamed, added or edited file changes it. Read 1 MiB at a time."""
    root = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    for file in files:
        if file != root:
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with file.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def read_jsonl_numbered(path: str | os.PathLike[str]) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of a JSONL file
    (:func:`iter_jsonl_numbered` as a list)."""
    return list(iter_jsonl_numbered(path))


def iter_jsonl_numbered(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of a JSONL file, read as it goes
    (one line in memory at a time).

    Lines are split on ``\\n`` only (JSON strings may hold other line separators). Raises
    InputError naming the file and line of a malformed row, or for a missing or empty file
    (the file is checked before the first row is yielded).
    """
    p = check_input_file(path)
    empty = True
    with p.open("r", encoding="utf-8", newline="\n") as fh:
        for lineno, line in _decoded_lines(fh, p):
            if not line.strip():
                continue
            try:
                row = json.loads(line, parse_constant=_refuse_constant)
            except json.JSONDecodeError as exc:
                raise InputError(f"{p}:{lineno}: malformed JSON ({exc.msg})") from None
            except _NonStandardNumber as exc:
                raise InputError(f"{p}:{lineno}: {exc} is not JSON; write null, a number or "
                                 "a string") from None
            if not isinstance(row, dict):
                raise InputError(f"{p}:{lineno}: expected a JSON object, got {type(row).__name__}")
            empty = False
            yield lineno, row
    if empty:
        raise InputError(f"{p}: no rows")


class _NonStandardNumber(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in a JSON text (Python's json accepts them)."""


def _refuse_constant(name: str) -> NoReturn:
    raise _NonStandardNumber(name)


def _decoded_lines(fh: TextIO, path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of ``fh``; a byte that is not UTF-8 is a FileDecodeError."""
    lineno = 0
    try:
        for lineno, line in enumerate(fh, start=1):  # noqa: B007 - read after the loop
            yield lineno, line
    except UnicodeDecodeError as exc:
        raise FileDecodeError(f"{path}: line {lineno + 1} is not UTF-8 text ({exc.reason}, "
                              f"byte 0x{exc.object[exc.start]:02x})") from None


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The objects of a JSONL file (see :func:`read_jsonl_numbered` for the errors)."""
    return [row for _, row in read_jsonl_numbered(path)]


def write_jsonl(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as JSONL atomically."""
    text = "".join(json.dumps(to_jsonable(r), allow_nan=False) + "\n" for r in rows)
    atomic_write_text(path, text)


class RunDir:
    """A run's output directory and the JSON record that says which run it holds.

    One rule for every command that writes a run directory (``train``: ``run.json``; ``run``
    and ``demo``: ``config.json``): re-running the same command into the same ``--out``
    resumes it.

    - missing, empty, or holding nothing but the record (a run that failed before its first
      result): started afresh and the record written;
    - holding a run whose record matches (``differs`` returns None): resumed;
    - holding a run with another record: refused (InputError naming the difference);
    - a file, or a non-empty directory without the record: refused, nothing touched.
    """

    def __init__(self, path: str | os.PathLike[str], record_name: str,
                 what: str = "an lmcoverage run") -> None:
        self.path = Path(path)
        self.record_path = self.path / record_name
        self.what = what

    def previous(self) -> dict[str, Any] | None:
        """The record of the run already in the directory (None: nothing to resume)."""
        if not self.record_path.is_file():
            return None
        if not any(p != self.record_path for p in self.path.iterdir()):
            return None  # only the record: the run never produced anything
        record = json.loads(self.record_path.read_text(encoding="utf-8"))
        return record if isinstance(record, dict) else None

    def prepare(self, record: dict[str, Any],
                differs: Callable[[dict[str, Any], dict[str, Any]], str | None] | None = None,
                ) -> dict[str, Any] | None:
        """Apply the rule for ``record``; return the previous record when resuming, else None.

        ``differs(previous, record)``: the one-line reason the two runs differ, or None when
        ``record`` continues ``previous`` (default: any difference, named by its first key).
        """
        record = to_jsonable(record)
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"--out {self.path}: exists and is not a directory")
        if self.path.is_dir() and any(self.path.iterdir()):
            if not self.record_path.is_file():
                raise InputError(f"--out {self.path}: not empty and not {self.what} directory "
                                 f"(no {self.record_path.name}); choose a new or empty "
                                 "directory")
            previous = self.previous()
            if previous is not None:
                reason = (differs or first_difference)(previous, record)
                if reason:
                    raise InputError(f"--out {self.path}: {reason}; re-run with the same "
                                     "options or choose another --out")
                return previous
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.record_path, record)
        return None


def first_difference(before: object, now: object, where: str = "") -> str | None:
    """``"holds a run with another config.lr (0.1, now 0.2)"`` for the first differing key of
    two JSON values, or None when they are equal."""
    if isinstance(before, dict) and isinstance(now, dict):
        for key in sorted(set(before) | set(now), key=str):
            found = first_difference(before.get(key), now.get(key),
                                     f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    if before != now:
        return (f"holds a run with a different configuration ({where or 'record'}: "
                f"{before!r}, now {now!r})")
    return None
