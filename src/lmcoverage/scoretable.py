"""The ScoreTable: one row per (model, example), the hub every metric is computed from.

Columns (Parquet schema :data:`SCHEMA`):

========== ======= =========================================================================
model      string  checkpoint / candidate name
example_id int64   held-out example id; every model must have the same set
loglik     float64 log pi_hat(y|x), sequence log-likelihood of the response (<= 0, -inf legal)
loglik_data float64 log pi_D(y|x) when known (synthetic tasks), else null
weight     float64 example weight >= 0 (class mixtures), default 1
group      string  class / slice label, default "all"
mass_correct float64 pi_hat(G_x|x), the model's mass on the correct set, in [0, 1], or null
ref_correct int64  c(x): correct samples of the example's prompt among the reference's K, or
                   null (a reference made of good responses, ``lmcoverage reference``)
ref_samples int64  K: the reference's samples of that prompt (>= ref_correct), or null
========== ======= =========================================================================

Per-example columns (``loglik_data``, ``weight``, ``group``, ``ref_correct``,
``ref_samples``) must agree across models.

Provenance (:attr:`ScoreTable.provenance`): a JSON dict stored in the Parquet schema metadata
key :data:`PROVENANCE_KEY`: how the table was made (``reference``, ``candidates``, ``data``,
``eos``, ``dtype``, ``lmcoverage_version``, ...). Kept by read/write, ``select_models`` and
``concat``.

Files are written by :class:`ScoreTableWriter`, a batch of rows at a time (so a table need not
be held whole to be written); :meth:`ScoreTable.write_parquet` is one batch of it.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import ArrayLike, NDArray

from lmcoverage.errors import InputError
from lmcoverage.io import atomic_path

SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("example_id", pa.int64()),
        ("loglik", pa.float64()),
        ("loglik_data", pa.float64()),
        ("weight", pa.float64()),
        ("group", pa.string()),
        ("mass_correct", pa.float64()),
        ("ref_correct", pa.int64()),
        ("ref_samples", pa.int64()),
    ]
)
REQUIRED = ("model", "example_id", "loglik")
OPTIONAL_DEFAULTS: dict[str, Any] = {
    "loglik_data": None,
    "weight": 1.0,
    "group": "all",
    "mass_correct": None,
    "ref_correct": None,
    "ref_samples": None,
}
PER_EXAMPLE = ("loglik_data", "weight", "group", "ref_correct", "ref_samples")
PROVENANCE_KEY = b"lmcoverage.provenance"


def _read_provenance(table: pa.Table) -> dict[str, Any]:
    """The provenance dict of a pyarrow table's schema metadata ({} when absent)."""
    raw = (table.schema.metadata or {}).get(PROVENANCE_KEY)
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError("schema metadata 'lmcoverage.provenance' is not valid JSON") from None
    if not isinstance(value, dict):
        raise InputError("schema metadata 'lmcoverage.provenance' is not a JSON object")
    return value


def merge_provenance(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One provenance for stacked tables: ``candidates`` dicts are united; any other key keeps
    its value when every part that has it agrees, else becomes the list of distinct values."""
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(k for part in parts for k in part):
        values = [part[key] for part in parts if key in part]
        if key == "candidates" and all(isinstance(v, dict) for v in values):
            merged[key] = {name: spec for v in values for name, spec in v.items()}
            continue
        distinct: list[Any] = []
        for v in values:
            if v not in distinct:
                distinct.append(v)
        merged[key] = distinct[0] if len(distinct) == 1 else distinct
    return merged


def _bad_row(column: str, mask: NDArray[np.bool_], values: NDArray[Any], why: str) -> InputError:
    row = int(np.flatnonzero(mask)[0])
    return InputError(f"column {column!r}, row {row}: {why} (got {values[row]!r})")


def columns_table(
    model: Sequence[str],
    example_id: ArrayLike,
    loglik: ArrayLike,
    loglik_data: ArrayLike | None = None,
    weight: ArrayLike | None = None,
    group: Sequence[str] | None = None,
    mass_correct: ArrayLike | None = None,
    ref_correct: ArrayLike | None = None,
    ref_samples: ArrayLike | None = None,
) -> pa.Table:
    """Equal-length columns (one entry per row) as an Arrow table of ScoreTable rows, not yet
    checked (:meth:`ScoreTable.from_columns` and :meth:`ScoreTableWriter.write` check them);
    columns left None are absent (their defaults)."""
    data: dict[str, Any] = {
        "model": model if isinstance(model, pa.Array) else pa.array(list(model), pa.string()),
        "example_id": np.asarray(example_id),
        "loglik": np.asarray(loglik, dtype=np.float64),
    }
    for name, value in (("loglik_data", loglik_data), ("weight", weight),
                        ("mass_correct", mass_correct)):
        if value is not None:
            data[name] = np.asarray(value, dtype=np.float64)
    for name, value in (("ref_correct", ref_correct), ("ref_samples", ref_samples)):
        if value is not None:
            data[name] = np.asarray(value, dtype=np.int64)
    if group is not None:
        data["group"] = [str(g) for g in group]
    lengths = {k: len(v) for k, v in data.items()}
    if len(set(lengths.values())) != 1:
        raise InputError(f"columns have different lengths: {lengths}")
    return pa.table(data)


class ScoreTable:
    """Validated (model, example) scores over a pyarrow table. See the module docstring."""

    def __init__(self, table: pa.Table, provenance: Mapping[str, Any] | None = None) -> None:
        """``provenance`` (JSON-serialisable) defaults to the table's schema metadata."""
        prov = _read_provenance(table) if provenance is None else dict(provenance)
        try:
            json.dumps(prov, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"provenance: not JSON-serialisable ({exc})") from None
        self._provenance = prov
        self._table = self._normalise(table)
        self._validate(self._table)
        if not np.any(self._table.column("weight").to_numpy() > 0):
            raise InputError("column 'weight': total weight must be > 0")
        self._index()

    # ---------------------------------------------------------------- construction
    @staticmethod
    def _normalise(table: pa.Table) -> pa.Table:
        for name in REQUIRED:
            if name not in table.column_names:
                raise InputError(f"missing column {name!r} (have: {', '.join(table.column_names)})")
        unknown = set(table.column_names) - set(SCHEMA.names)
        if unknown:
            raise InputError(f"unknown column(s) {sorted(unknown)}; expected {SCHEMA.names}")
        if table.num_rows == 0:
            raise InputError("score table is empty")
        columns = []
        for field in SCHEMA:
            if field.name in table.column_names:
                col = table.column(field.name)
                try:
                    col = col.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise InputError(
                        f"column {field.name!r}: expected {field.type}, got {col.type}"
                    ) from None
            else:
                default = OPTIONAL_DEFAULTS[field.name]
                col = pa.nulls(table.num_rows, type=field.type)
                if default is not None:
                    col = pc.fill_null(col, pa.scalar(default, type=field.type))
            columns.append(col)
        return pa.Table.from_arrays(columns, schema=SCHEMA)

    @classmethod
    def from_columns(
        cls,
        model: Sequence[str],
        example_id: ArrayLike,
        loglik: ArrayLike,
        loglik_data: ArrayLike | None = None,
        weight: ArrayLike | None = None,
        group: Sequence[str] | None = None,
        mass_correct: ArrayLike | None = None,
        ref_correct: ArrayLike | None = None,
        ref_samples: ArrayLike | None = None,
    ) -> ScoreTable:
        """Build from equal-length columns (one entry per row)."""
        return cls(columns_table(model, example_id, loglik, loglik_data, weight, group,
                                 mass_correct, ref_correct, ref_samples))

    @classmethod
    def from_matrix(
        cls,
        loglik: ArrayLike,
        models: Sequence[str],
        loglik_data: ArrayLike | None = None,
        weight: ArrayLike | None = None,
        group: Sequence[str] | None = None,
        mass_correct: ArrayLike | None = None,
        example_ids: ArrayLike | None = None,
        ref_correct: ArrayLike | None = None,
        ref_samples: ArrayLike | None = None,
    ) -> ScoreTable:
        """Build from a (models, examples) ``loglik`` matrix and per-example columns.

        ``mass_correct`` is (models, examples); ``loglik_data``, ``weight``, ``group``,
        ``example_ids``, ``ref_correct`` and ``ref_samples`` are (examples,).
        """
        ll = np.asarray(loglik, dtype=np.float64)
        if ll.ndim != 2:
            raise InputError(f"loglik: expected (models, examples), got shape {ll.shape}")
        n_models, n_examples = ll.shape
        if len(models) != n_models:
            raise InputError(f"models: {len(models)} names for {n_models} rows of loglik")
        ids = np.arange(n_examples) if example_ids is None else np.asarray(example_ids)

        def per_example(value: ArrayLike | None) -> NDArray[Any] | None:
            return None if value is None else np.tile(np.asarray(value), n_models)

        mc = None if mass_correct is None else np.asarray(mass_correct, dtype=np.float64).ravel()
        return cls.from_columns(
            model=pa.DictionaryArray.from_arrays(
                np.repeat(np.arange(n_models, dtype=np.int32), n_examples), list(models)
            ).cast(pa.string()),
            example_id=np.tile(ids, n_models),
            loglik=ll.ravel(),
            loglik_data=per_example(loglik_data),
            weight=per_example(weight),
            group=None if group is None else [str(g) for g in group] * n_models,
            mass_correct=mc,
            ref_correct=per_example(ref_correct),
            ref_samples=per_example(ref_samples),
        )

    # ---------------------------------------------------------------- validation
    @staticmethod
    def _validate(t: pa.Table) -> None:
        """Row by row checks of normalised rows (what holds for any subset of a table's
        rows; the total weight and the (model, example) structure are checked whole)."""
        for name in ("model", "example_id", "group"):
            col = t.column(name)
            if col.null_count:
                values = col.to_numpy(zero_copy_only=False)
                raise _bad_row(name, np.asarray(col.is_null()), values, "missing value")
        for name in ("loglik", "loglik_data", "weight", "mass_correct"):
            col = t.column(name)
            values = col.to_numpy(zero_copy_only=False).astype(np.float64)
            present = ~np.asarray(col.is_null())
            if name in ("loglik", "weight") and not present.all():
                raise _bad_row(name, ~present, values, "missing value")
            if name in ("loglik_data", "mass_correct") and present.any() and not present.all():
                raise _bad_row(name, ~present, values, "missing value (fill all rows or none)")
            nan = present & np.isnan(values)
            if nan.any():
                raise _bad_row(name, nan, values, "NaN")
            if name in ("loglik", "loglik_data"):
                if (values[present] > 0).any():
                    raise _bad_row(name, present & (values > 0), values,
                                   "log-likelihood above 0 (a probability above one)")
                if (values[present] == np.inf).any():
                    raise _bad_row(name, present & (values == np.inf), values, "+inf")
            if name == "weight" and ((values < 0) | ~np.isfinite(values)).any():
                raise _bad_row(name, (values < 0) | ~np.isfinite(values), values,
                               "weight must be finite and >= 0")
            if name == "mass_correct" and ((values[present] < 0) | (values[present] > 1)).any():
                raise _bad_row(name, present & ((values < 0) | (values > 1)), values,
                               "probability outside [0, 1]")
        ScoreTable._validate_reference_counts(t)

    @staticmethod
    def _validate_reference_counts(t: pa.Table) -> None:
        """``ref_correct`` and ``ref_samples``: both filled on every row or both empty, with
        ``0 <= ref_correct <= ref_samples`` and ``ref_samples >= 1``."""
        present = {n: ~np.asarray(t.column(n).is_null()) for n in ("ref_correct", "ref_samples")}
        if not present["ref_correct"].any() and not present["ref_samples"].any():
            return
        for name, mask in present.items():
            if not mask.all():
                values = t.column(name).to_numpy(zero_copy_only=False)
                raise _bad_row(name, ~mask, values, "missing value (fill ref_correct and "
                               "ref_samples on all rows or on none)")
        c = t.column("ref_correct").to_numpy()
        k = t.column("ref_samples").to_numpy()
        if ((c < 0) | (c > k)).any():
            raise _bad_row("ref_correct", (c < 0) | (c > k), c,
                           "must lie in [0, ref_samples]")
        if (k < 1).any():
            raise _bad_row("ref_samples", k < 1, k, "must be >= 1")

    def _index(self) -> None:
        """Sort rows by (model, example_id) so every column reshapes to (models, examples)."""
        t = self._table
        encoded = pc.dictionary_encode(t.column("model")).combine_chunks()
        self._models = [str(m) for m in encoded.dictionary.to_pylist()]  # first-appearance order
        model_idx = encoded.indices.to_numpy().astype(np.int64)
        ids = t.column("example_id").to_numpy()
        order = np.lexsort((ids, model_idx))
        n_models = len(self._models)
        if ids.size % n_models:
            raise InputError("models were scored on different numbers of examples")
        n_examples = ids.size // n_models
        sorted_ids = ids[order].reshape(n_models, n_examples)
        if (np.diff(sorted_ids, axis=1) == 0).any():
            raise InputError("duplicated (model, example_id) rows")
        counts = np.bincount(model_idx, minlength=n_models)
        mismatch = (counts != n_examples) | (sorted_ids != sorted_ids[0]).any(axis=1)
        if mismatch.any():
            other = self._models[int(np.flatnonzero(mismatch)[0])]
            raise InputError(
                f"models {self._models[0]!r} and {other!r} were scored on different example sets"
            )
        self._order = order
        self._shape = (n_models, n_examples)
        self._example_ids = sorted_ids[0]
        for name in PER_EXAMPLE:
            mat = self._column_matrix(name)
            if mat.dtype.kind == "f":
                same = (mat == mat[0]) | (np.isnan(mat) & np.isnan(mat[0]))
            else:
                same = mat == mat[0]
            if not same.all():
                row = int(np.flatnonzero(~same.all(axis=0))[0])
                raise InputError(
                    f"column {name!r} differs between models for example_id "
                    f"{self._example_ids[row]}"
                )

    # ---------------------------------------------------------------- access
    def _column_matrix(self, column: str) -> NDArray[Any]:
        """(models, examples) values; for ``group``, integer codes into :meth:`_group_names`."""
        col = self._table.column(column)
        if column == "group":
            values = pc.dictionary_encode(col).combine_chunks().indices.to_numpy()
        else:
            values = col.to_numpy(zero_copy_only=False).astype(np.float64)
        return values[self._order].reshape(self._shape)

    def _group_names(self) -> NDArray[np.str_]:
        encoded = pc.dictionary_encode(self._table.column("group")).combine_chunks()
        return np.asarray(encoded.dictionary.to_pylist(), dtype=str)

    @property
    def models(self) -> list[str]:
        """Model names in order of first appearance."""
        return list(self._models)

    @property
    def example_ids(self) -> NDArray[np.int64]:
        """(examples,) ids in ascending order (the column order of :meth:`matrix`)."""
        return self._example_ids.copy()

    @property
    def num_examples(self) -> int:
        return int(self._example_ids.size)

    def has(self, column: str) -> bool:
        """Whether an optional column (``loglik_data``, ``mass_correct``) is filled."""
        return self._table.column(column).null_count == 0

    def matrix(self, column: str = "loglik") -> NDArray[np.float64]:
        """(models, examples) float64 matrix of ``column``, examples sorted by id."""
        if column not in ("loglik", "mass_correct", "loglik_data", "weight"):
            raise InputError(f"column: {column!r} is not a numeric per-(model, example) column")
        if not self.has(column):
            raise InputError(f"column {column!r} is not filled in this score table")
        return np.asarray(self._column_matrix(column), dtype=np.float64)

    def example_column(self, column: str) -> NDArray[Any]:
        """(examples,) values of a per-example column (``loglik_data``, ``weight``, ``group``,
        and the int64 ``ref_correct``, ``ref_samples``)."""
        if column not in PER_EXAMPLE:
            raise InputError(f"column: {column!r} is not per-example; choose {PER_EXAMPLE}")
        if column == "loglik_data" and not self.has(column):
            raise InputError("column 'loglik_data' is not filled (pi_D unknown for this data)")
        if column in ("ref_correct", "ref_samples"):
            if not self.has(column):
                raise InputError(f"column {column!r} is not filled (the data did not come "
                                 "from `lmcoverage reference`)")
            return self._column_matrix(column)[0].astype(np.int64)
        first = self._column_matrix(column)[0]
        return self._group_names()[first] if column == "group" else first

    def select_models(self, models: Sequence[str]) -> ScoreTable:
        """A table with only ``models`` (in that order)."""
        missing = [m for m in models if m not in self._models]
        if missing:
            raise InputError(f"unknown model(s) {missing}; have {self._models}")
        names = self._table.column("model")
        parts = [self._table.filter(pc.equal(names, m)) for m in models]
        prov = dict(self._provenance)
        if isinstance(prov.get("candidates"), dict):
            prov["candidates"] = {m: prov["candidates"][m] for m in models
                                  if m in prov["candidates"]}
        return ScoreTable(pa.concat_tables(parts), provenance=prov)

    @staticmethod
    def concat(tables: Sequence[ScoreTable]) -> ScoreTable:
        """Stack tables of different models scored on the same examples."""
        if not tables:
            raise InputError("tables: nothing to concatenate")
        return ScoreTable(pa.concat_tables([t.to_arrow() for t in tables]),
                          provenance=merge_provenance([t.provenance for t in tables]))

    def to_arrow(self) -> pa.Table:
        return self._table

    # ---------------------------------------------------------------- provenance
    @property
    def provenance(self) -> dict[str, Any]:
        """How the table was made (a copy): ``reference``, ``candidates`` ({name: spec or
        path}), ``data`` ({"path", "sha256"} of the file or ``datasets`` folder scored),
        ``eos``, ``dtype``, ``reference_dtype`` (scored from ``lmcoverage reference`` rows),
        ``lmcoverage_version``."""
        return json.loads(json.dumps(self._provenance))

    def with_provenance(self, **fields: Any) -> ScoreTable:
        """A copy whose provenance has ``fields`` added (a value of None removes the key)."""
        prov = {k: v for k, v in {**self._provenance, **fields}.items() if v is not None}
        try:
            json.dumps(prov, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"provenance: not JSON-serialisable ({exc})") from None
        out = copy.copy(self)  # same validated rows, no re-validation
        out._provenance = prov
        return out

    # ---------------------------------------------------------------- I/O
    @classmethod
    def read_parquet(cls, path: str | os.PathLike[str]) -> ScoreTable:
        """Read and validate a Parquet score table; ValueError on a missing or bad file."""
        from lmcoverage.io import check_input_file

        p = Path(path)
        if not p.exists() and not p.is_symlink():
            raise InputError(f"score table not found: {p}")
        check_input_file(p)  # a directory or FIFO: exit 2; unreadable: OSError, exit 1
        try:
            table = pq.read_table(p)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{p}: not a readable Parquet file ({exc})") from None
        return cls(table)

    def write_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (temporary name, then rename): one batch of a
        :class:`ScoreTableWriter`."""
        with ScoreTableWriter(path, self._provenance) as out:
            out.append_checked(self._table)

    def __repr__(self) -> str:
        return f"ScoreTable(models={len(self._models)}, examples={self.num_examples})"


class ScoreTableWriter:
    """Write a score table's rows to a Parquet file a batch at a time, so the table is never
    held whole: the file :meth:`ScoreTable.write_parquet` writes (schema :data:`SCHEMA`,
    ``provenance`` as JSON under :data:`PROVENANCE_KEY`), one row group per batch.

    A context manager over :func:`lmcoverage.io.atomic_path`: the rows go to a temporary file
    renamed onto ``path`` when the block ends without an exception; on an exception (a bad
    batch, Ctrl-C) it is removed and ``path`` is left as it was. Each batch is checked row by
    row as :class:`ScoreTable` checks rows; what concerns the rows together (every model on
    the same example ids, no duplicate, per-example columns equal across models, a positive
    total weight) is the caller's to keep: :meth:`ScoreTable.read_parquet` checks it.
    """

    def __init__(self, path: str | os.PathLike[str],
                 provenance: Mapping[str, Any] | None = None) -> None:
        prov = dict(provenance or {})
        try:
            meta = ({PROVENANCE_KEY: json.dumps(prov, sort_keys=True, allow_nan=False).encode()}
                    if prov else None)
        except (TypeError, ValueError) as exc:
            raise InputError(f"provenance: not JSON-serialisable ({exc})") from None
        self.path = Path(path)
        self.schema = SCHEMA.with_metadata(meta) if meta else SCHEMA
        self.rows = 0
        self._stack = ExitStack()
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> ScoreTableWriter:
        try:
            tmp = self._stack.enter_context(atomic_path(self.path))
            self._writer = self._stack.enter_context(pq.ParquetWriter(tmp, self.schema))
        except BaseException:
            self._stack.__exit__(*sys.exc_info())  # removes the temporary file
            raise
        return self

    def write(self, rows: pa.Table) -> None:
        """Append ``rows`` (ScoreTable columns, e.g. :func:`columns_table`; absent optional
        columns get their defaults), checked row by row.

        Raises:
            InputError: a missing or unknown column, or a bad value (naming the column and
                the row within ``rows``).
        """
        table = ScoreTable._normalise(rows)
        ScoreTable._validate(table)
        self.append_checked(table)

    def append_checked(self, table: pa.Table) -> None:
        """Append normalised, checked rows (a :class:`ScoreTable`'s own)."""
        if self._writer is None:
            raise RuntimeError("ScoreTableWriter: write inside its with block")
        self._writer.write_table(table)
        self.rows += table.num_rows

    def __exit__(self, *exc: Any) -> bool:
        """Close the file and rename it into place (remove it on an exception, or when no
        row was written: an empty table is not a score table)."""
        self._writer = None
        if exc[0] is None and not self.rows:
            try:
                raise InputError(f"{self.path}: no rows to write; a score table needs rows")
            except InputError:
                self._stack.__exit__(*sys.exc_info())  # removes the temporary file
                raise
        return bool(self._stack.__exit__(*exc))
