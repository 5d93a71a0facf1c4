"""The one candidate parser: globs in natural order, DIR@spec, one naming rule, errors naming
the option they came from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmcoverage.cli import main
from lmcoverage.decoding.spec import DecodingSpec
from lmcoverage.engine.candidates import Candidate, model_names, parse_candidates
from lmcoverage.errors import InputError


def _model(path: Path) -> Path:
    """A directory that passes check_model_dir (config and safetensors weights)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"")
    return path


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    for sub, step in (("x", 1000), ("x", 200), ("y", 1000)):
        _model(tmp_path / "runs" / sub / f"checkpoint-{step}")
    return tmp_path / "runs"


def test_globs_expand_in_natural_order_and_names_are_directory_names(runs: Path) -> None:
    found = parse_candidates([str(runs / "x" / "checkpoint-*")])
    assert [c.name for c in found] == ["checkpoint-200", "checkpoint-1000"]
    assert found[0] == Candidate(runs / "x" / "checkpoint-200", None, "checkpoint-200")
    assert found[0].decoding == DecodingSpec()


def test_shared_directory_names_take_their_parents(runs: Path) -> None:
    found = parse_candidates([str(runs / "*" / "checkpoint-1000"),
                              str(runs / "x" / "checkpoint-200")])
    assert [c.name for c in found] == ["x/checkpoint-1000", "y/checkpoint-1000",
                                       "checkpoint-200"]


def test_spec_is_parsed_once_and_named_canonically(runs: Path) -> None:
    d = runs / "x" / "checkpoint-200"
    found = parse_candidates([str(d), f"{d}@top_p=0.950,temperature=0.80"])
    assert found[1].spec == DecodingSpec(temperature=0.8, top_p=0.95)
    assert [c.name for c in found] == ["checkpoint-200",
                                       "checkpoint-200@temperature=0.8,top_p=0.95"]
    # the name depends on the path and spec only, not on the other candidates
    alone = parse_candidates([f"{d}@temperature=0.8,top_p=0.95"])
    assert alone[0].name == found[1].name


@pytest.mark.parametrize(("values", "option", "match"), [
    ([], "--model", "--model: give at least one"),
    (["{d}@temperature=0"], "--reference", "--reference '"),
    (["{d}@temperature=0"], "--model", "temperature must be finite and > 0"),
    (["{d}", "{d}/"], "--model", "given twice"),
    (["{d}@temperature=0.5", "{d}@temperature=0.50"], "--model", "given twice"),
    (["{runs}/nothing-*"], "--model", "--model: no directory matches"),
    (["{runs}/missing"], "--reference", "--reference: model directory not found"),
])
def test_bad_candidates_name_the_option(runs: Path, values: list[str], option: str,
                                        match: str) -> None:
    d = runs / "x" / "checkpoint-200"
    with pytest.raises(InputError, match=re.escape(match)) as info:
        parse_candidates([v.format(d=d, runs=runs) for v in values], option)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(option)


def test_same_path_same_name(runs: Path) -> None:
    d = runs / "x" / "checkpoint-200"
    assert model_names([d, d.parent / ".." / "x" / "checkpoint-200"]) == ["checkpoint-200"] * 2


def test_score_reports_a_bad_reference_as_reference(runs: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n')
    argv = ["score", "--model", str(runs / "x" / "checkpoint-200"), "--data", str(data),
            "--reference", f"{runs / 'x' / 'checkpoint-200'}@temperature=0",
            "--out", str(tmp_path / "s.parquet")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--reference" in err and "--model" not in err, err
    assert not (tmp_path / "s.parquet").exists()
