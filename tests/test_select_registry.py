"""The selector registry: every name the CLI offers runs, says what it needs, and refuses
what it lacks with an InputError (exit 2 in the CLI)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from lmcoverage.errors import InputError
from lmcoverage.scoretable import ScoreTable
from lmcoverage.select import min_kl, offset_tournament, simple_tournament
from lmcoverage.select.registry import SELECTORS, get_selector


def _table() -> ScoreTable:
    rng = np.random.default_rng(0)
    ll = -rng.gamma(2.0, size=(3, 40))
    return ScoreTable.from_matrix(ll, models=["a", "b", "c"],
                                  loglik_data=-rng.gamma(2.0, size=40))


def test_every_selector_runs_through_the_registry() -> None:
    table = _table()
    onpolicy = np.full((3, 3), 0.1)
    for name, info in SELECTORS.items():
        sel = info(table, n=4.0, onpolicy=onpolicy)
        assert sel.name in table.models, name
        assert info.label and info.description


def test_registry_entries_equal_the_direct_calls() -> None:
    table = _table()
    onpolicy = np.full((3, 3), 0.2)
    np.testing.assert_array_equal(SELECTORS["tournament"](table, n=4.0).statistic,
                                  simple_tournament(table, 4.0).statistic)
    np.testing.assert_array_equal(
        SELECTORS["offset"](table, n=4.0, a=0.3, onpolicy=onpolicy).statistic,
        offset_tournament(table, 4.0, a=0.3, onpolicy=onpolicy).statistic)
    np.testing.assert_array_equal(SELECTORS["kl"](table).statistic, min_kl(table).statistic)


def test_missing_requirements_are_input_errors() -> None:
    table = _table()
    with pytest.raises(InputError, match="offset: needs on-policy"):
        SELECTORS["offset"](table, n=4.0)
    with pytest.raises(InputError, match="tournament: needs the coverage threshold"):
        SELECTORS["tournament"](table)
    with pytest.raises(InputError, match="choose from tournament, offset"):
        get_selector("best")
    assert [s.name for s in SELECTORS.values() if s.needs_oracle] == ["kl", "oracle"]
    assert [s.name for s in SELECTORS.values() if s.needs_samples] == ["offset"]


def test_selector_options_are_keyword_only() -> None:
    """Only the scores and N may be positional: nothing whose meaning depends on its type."""
    for info in SELECTORS.values():
        params = inspect.signature(info._run).parameters.values()
        positional = [p.name for p in params
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        assert positional in (["loglik"], ["loglik", "n"]), (info.name, positional)


def test_select_cli_offers_exactly_the_registry(tmp_path, capsys) -> None:
    from lmcoverage.cli import main

    path = tmp_path / "scores.parquet"
    _table().write_parquet(path)
    assert main(["select", str(path), "--method", "best"]) == 2
    err = capsys.readouterr().err
    assert "--method: unknown 'best'; choose from " + ", ".join(SELECTORS) in err
    for name in SELECTORS:
        args = ["select", str(path), "--method", name, "--n", "4"]
        if SELECTORS[name].needs_samples:
            continue  # samples from model directories: tests/test_select_cli.py
        assert main(args) == 0, name
