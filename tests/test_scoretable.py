"""ScoreTable: alignment, per-example columns, Parquet round trip, selection and validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from lmcoverage.errors import InputError
from lmcoverage.scoretable import ScoreTable


def test_rows_in_any_order_align_by_model_and_example_id(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    models = np.repeat(["b", "a"], 4)
    ids = np.tile([3, 1, 0, 2], 2)
    loglik = -rng.random(8)
    order = rng.permutation(8)
    table = ScoreTable.from_columns(
        models[order], ids[order], loglik[order],
        loglik_data=np.tile([-0.3, -0.1, 0.0, -0.2], 2)[order],
        group=np.tile(["x", "y", "x", "y"], 2)[order],
    )
    first = str(models[order][0])
    assert table.models == [first, "a" if first == "b" else "b"]  # order of first appearance
    mat = table.matrix()
    for i, m in enumerate(table.models):
        for j, e in enumerate(table.example_ids):
            assert mat[i, j] == loglik[(models == m) & (ids == e)][0]
    np.testing.assert_allclose(table.example_column("loglik_data"), [0.0, -0.1, -0.2, -0.3])
    assert table.example_column("group").tolist() == ["x", "y", "y", "x"]
    path = tmp_path / "t.parquet"
    table.write_parquet(path)
    again = ScoreTable.read_parquet(path)
    np.testing.assert_array_equal(again.matrix(), mat)
    assert again.models == table.models


def test_from_matrix_select_and_concat() -> None:
    ll = -np.arange(6, dtype=float).reshape(3, 2)
    table = ScoreTable.from_matrix(ll, ["m0", "m1", "m2"], weight=[1.0, 3.0])
    assert table.models == ["m0", "m1", "m2"]
    sub = table.select_models(["m2", "m0"])
    np.testing.assert_array_equal(sub.matrix(), ll[[2, 0]])
    both = ScoreTable.concat([sub, table.select_models(["m1"])])
    assert both.models == ["m2", "m0", "m1"]
    np.testing.assert_array_equal(both.example_column("weight"), [1.0, 3.0])
    assert not table.has("loglik_data") and not table.has("mass_correct")
    with pytest.raises(InputError, match="not filled"):
        table.matrix("mass_correct")
    with pytest.raises(InputError, match="unknown model"):
        table.select_models(["zz"])


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"model": ["a", "b"], "example_id": [0, 0], "loglik": [-1.0, -1.0],
          "weight": [1.0, 2.0]}, "differs between models"),
        ({"model": ["a", "a"], "example_id": [0, 1], "loglik": [-1.0, -np.inf]}, None),
        ({"model": ["a", "a"], "example_id": [0, 1], "loglik": [-1.0, np.inf]}, "above 0"),
        ({"model": ["a", "a"], "example_id": [0, 1], "loglik": [-1.0, -1.0],
          "loglik_data": [-1.0, None]}, "fill all rows or none"),
        ({"model": ["a", None], "example_id": [0, 1], "loglik": [-1.0, -1.0]}, "missing value"),
        ({"model": ["a", "a"], "example_id": [0, 1], "loglik": [-1.0, -1.0],
          "weight": [0.0, 0.0]}, "total weight"),
    ],
)
def test_validation_names_the_problem(columns: dict, message: str | None) -> None:
    if message is None:
        assert ScoreTable(pa.table(columns)).matrix()[0, 1] == -np.inf
        return
    with pytest.raises(InputError, match=message):
        ScoreTable(pa.table(columns))
