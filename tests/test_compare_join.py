"""compare and passk key on problem ids: scored rows link to verdicts through the data file
score recorded, and --by-group splits both by group."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from lmcoverage.cli import main
from lmcoverage.errors import InputError
from lmcoverage.io import read_jsonl, write_jsonl
from lmcoverage.scoretable import ScoreTable

NAMES = ["a", "b", "c", "d"]


def _inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Scores of 2 samples per problem (rows in shuffled problem order, as a samples file
    could be) for 10 problems in two groups, and verdicts keyed by problem id."""
    rng = np.random.default_rng(1)
    problems = [f"q{i}" for i in range(10)]
    group = {p: "even" if i % 2 == 0 else "odd" for i, p in enumerate(problems)}
    scored = [{"problem": p, "group": group[p]} for p in rng.permutation(problems)
              for _ in range(2)]
    data = tmp_path / "samples.jsonl"
    write_jsonl(data, scored)
    loglik = np.stack([-rng.exponential(0.3 + j, size=len(scored)) for j in range(4)])
    table = ScoreTable.from_matrix(loglik, NAMES, loglik_data=np.zeros(len(scored)),
                                   group=[r["group"] for r in scored])
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    table = table.with_provenance(data={"path": str(data.resolve()), "sha256": digest})
    table.write_parquet(tmp_path / "scores.parquet")
    verdicts = [{"model": m, "problem": p, "group": group[p], "sample_index": k,
                 "correct": bool(rng.random() < 0.9 - 0.2 * j)}
                for j, m in enumerate(NAMES) for p in problems for k in range(4)]
    write_jsonl(tmp_path / "verdicts.jsonl", verdicts)
    return tmp_path / "scores.parquet", tmp_path / "verdicts.jsonl", data


def test_align_links_examples_by_the_recorded_data_file(tmp_path: Path) -> None:
    from lmcoverage.verify.predictiveness import align, example_problems
    from lmcoverage.verify.verdicts import read_verdicts

    scores, verdicts, data = _inputs(tmp_path)
    table = ScoreTable.read_parquet(scores)
    links = example_problems(table)
    assert links == [r["problem"] for r in read_jsonl(data)]
    aligned = align(table, read_verdicts(verdicts), links)
    assert [aligned.problems[p] for p in aligned.example_prompt] == links
    data.write_text(data.read_text().replace("q1", "q9"))  # edited after scoring: refused
    with pytest.raises(InputError, match="changed since it was scored"):
        example_problems(table)


def test_compare_by_group_writes_one_report_per_group(tmp_path: Path) -> None:
    scores, verdicts, _ = _inputs(tmp_path)
    out = tmp_path / "r" / "report.html"
    assert main(["compare", str(scores), "--verdicts", str(verdicts), "--out", str(out),
                 "--bootstrap", "50", "--by-group"]) == 0
    whole = json.loads((out.parent / "results.json").read_text())
    assert whole["ns"] == [2, 4]
    for group in ("even", "odd"):
        assert (out.parent / f"report.{group}.html").is_file()
        part = json.loads((out.parent / f"results.{group}.json").read_text())
        assert part != whole and part["ns"] == whole["ns"]


def test_split_by_group_partitions_prompts_and_examples(tmp_path: Path) -> None:
    from lmcoverage.verify.predictiveness import align, example_problems, split_by_group
    from lmcoverage.verify.verdicts import read_verdicts

    scores, verdicts, samples = _inputs(tmp_path)
    group_of = {r["problem"]: r["group"] for r in read_jsonl(samples)}
    table = ScoreTable.read_parquet(scores)
    data = align(table, read_verdicts(verdicts), example_problems(table))
    parts = split_by_group(data, table.example_column("group").tolist())
    assert sorted(parts) == ["even", "odd"]
    assert sorted(p for part in parts.values() for p in part.problems) == sorted(data.problems)
    for group, part in parts.items():
        assert part.loglik.shape == (4, 10) and part.n.shape == (4, 5)
        assert set(part.example_prompt.tolist()) == set(range(5))
        assert {group_of[part.problems[p]] for p in part.example_prompt} == {group}
        whole = [data.problems.index(q) for q in part.problems]  # counts move with problems
        assert (part.n == data.n[:, whole]).all() and (part.c == data.c[:, whole]).all()


def test_passk_by_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lmcoverage.metrics import pass_at_k

    _, verdicts, _ = _inputs(tmp_path)
    assert main(["passk", str(verdicts), "--k", "1", "2", "--by-group", "--format",
                 "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["pass_at_k"]
    assert {r["group"] for r in rows} == {"all", "even", "odd"}
    mine = [v for v in read_jsonl(verdicts) if v["model"] == "b" and v["group"] == "odd"]
    by_problem: dict[str, list[bool]] = {}
    for v in mine:
        by_problem.setdefault(v["problem"], []).append(v["correct"])
    expected = np.mean([pass_at_k(len(c), sum(c), 2) for c in by_problem.values()])
    row = next(r for r in rows if r["model"] == "b" and r["group"] == "odd" and r["k"] == 2)
    assert row["pass_at_k"] == pytest.approx(expected)
    assert main(["passk", str(tmp_path / "samples.jsonl"), "--by-group"]) == 2
