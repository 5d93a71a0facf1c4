"""Input rows from Arrow: a Hugging Face ``datasets`` folder (``Dataset.save_to_disk``) or an
``.arrow`` file, read with pyarrow alone (the ``datasets`` package is not needed to read them).

``save_to_disk`` writes ``DIR/state.json`` (listing ``_data_files``), ``dataset_info.json``
and ``data-0000K-of-0000N.arrow`` shards in Arrow's IPC stream format; a ``DatasetDict``
writes ``dataset_dict.json`` and one such folder per split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmcoverage.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

#: Suffixes of Arrow IPC files.
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")


def is_arrow_input(path: Path) -> bool:
    """True for a directory or a file with an Arrow suffix (:data:`ARROW_SUFFIXES`)."""
    return path.is_dir() or path.suffix.lower() in ARROW_SUFFIXES


def _read_ipc(path: Path) -> pa.Table:
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            try:
                return pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                source.seek(0)
                return pa.ipc.open_file(source).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Arrow file ({exc})") from None


def dataset_files(folder: Path) -> list[Path]:
    """The Arrow shards of a ``save_to_disk`` folder, in order.

    Raises:
        InputError: a ``DatasetDict`` folder (name the split's folder instead), a folder that
            ``save_to_disk`` did not write.
    """
    if (folder / "dataset_dict.json").is_file():
        splits = sorted(p.name for p in folder.iterdir() if (p / "state.json").is_file())
        raise InputError(f"{folder}: a DatasetDict; give one split's folder "
                         f"({', '.join(str(folder / s) for s in splits) or 'none found'})")
    state = folder / "state.json"
    if not state.is_file():
        raise InputError(f"{folder}: a directory, but not a datasets folder written by "
                         "save_to_disk (no state.json); give a .jsonl, .parquet or .arrow file")
    try:
        listed = json.loads(state.read_text(encoding="utf-8"))["_data_files"]
        files = [folder / str(entry["filename"]) for entry in listed]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{state}: not a datasets state file ({exc})") from None
    missing = [str(f) for f in files if not f.is_file()]
    if missing or not files:
        raise InputError(f"{folder}: datasets folder without its data files "
                         f"({', '.join(missing) or 'none listed'})")
    return files


def read_arrow_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for every row of a ``save_to_disk`` folder or an Arrow file (``where``:
    ``FILE:row N``, 1-based within each file); null fields are left out, as for Parquet.

    Raises:
        InputError: see :func:`dataset_files`; an unreadable or empty file.
    """
    files = dataset_files(path) if path.is_dir() else [path]
    if not path.is_dir() and not path.is_file():
        raise InputError(f"file not found: {path}")
    out = []
    for file in files:
        for i, row in enumerate(_read_ipc(file).to_pylist()):
            out.append((f"{file}:row {i + 1}", {k: v for k, v in row.items() if v is not None}))
    if not out:
        raise InputError(f"{path}: no rows")
    return out
