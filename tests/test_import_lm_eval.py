"""``lmcoverage import lm-eval``: lm-evaluation-harness ``--log_samples`` files as a ScoreTable.

The fixture in tests/data/lm_eval/ is lm-eval 0.4.13's own output (``make_fixture.py`` there
regenerates it): two tiny random Llamas on a 4-question multiple-choice task (10
loglikelihood requests). The imported numbers must equal ``lmcoverage score`` of the same
(context, continuation) token ids (without EOS, as lm-eval scores them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lmcoverage.cli import main
from lmcoverage.integrations.lm_eval import import_scores, read_samples
from lmcoverage.io import write_jsonl
from lmcoverage.scoretable import ScoreTable

DATA = Path(__file__).parent / "data" / "lm_eval"


def samples(seed: int) -> Path:
    (path,) = (DATA / f"out-{seed}").glob("*/samples_tiny_mc_*.jsonl")
    return path


def test_import_matches_lmcoverage_score_of_the_same_pairs(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    out = tmp_path / "imported.parquet"
    assert main(["import", "lm-eval", str(samples(0)), str(samples(1)),
                 "--reference", str(samples(1)), "--out", str(out)]) == 0
    imported = ScoreTable.read_parquet(out)
    assert imported.models == ["model-0", "model-1"]  # names from lm-eval's results file
    assert imported.num_examples == 10
    assert imported.provenance["eos"] is False
    assert imported.provenance["dtype"] == "float32"

    # The same pairs, tokenized as lm-eval splits them, scored by lmcoverage.
    tok = AutoTokenizer.from_pretrained(DATA / "model-0")
    pairs = read_samples(samples(0)).rows
    rows = [{"prompt_ids": tok(ctx)["input_ids"],
             "response_ids": tok(cont, add_special_tokens=False)["input_ids"]}
            for _, (ctx, cont, _) in sorted(pairs.items())]
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    scored = tmp_path / "scored.parquet"
    assert main(["score", "--model", str(DATA / "model-0"), str(DATA / "model-1"),
                 "--data", str(tmp_path / "pairs.jsonl"), "--reference", str(DATA / "model-1"),
                 "--out", str(scored), "--no-progress", "--device", "cpu"]) == 0
    ours = ScoreTable.read_parquet(scored)
    assert ours.models == imported.models
    np.testing.assert_allclose(imported.matrix("loglik"), ours.matrix("loglik"), atol=1e-4)
    np.testing.assert_allclose(imported.example_column("loglik_data"),
                               ours.example_column("loglik_data"), atol=1e-4)
    assert np.abs(imported.matrix("loglik")[0] - imported.matrix("loglik")[1]).max() > 1e-2


def test_model_name_falls_back_to_lm_evals_folder(tmp_path: Path) -> None:
    folder = tmp_path / "__models__my-model"
    folder.mkdir()
    copy = folder / samples(0).name
    copy.write_text(samples(0).read_text())
    table = import_scores([copy], [samples(1)])
    assert table.models == ["my-model"]
    assert set(table.example_column("group")) == {"tiny_mc"}


def _rows(seed: int) -> list[dict]:
    return [json.loads(line) for line in samples(seed).read_text().splitlines()]


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], match: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err
    return err


@pytest.mark.parametrize(("edit", "match"), [
    (lambda r: r.pop("doc_id"), "missing 'doc_id'"),
    (lambda r: (r.pop("resps"), r.pop("filtered_resps")), "missing 'resps'"),
    (lambda r: r.update(arguments={"gen_args_0": {"arg_0": "q", "arg_1": {"until": ["\n"]}}},
                        resps=[["text"]], filtered_resps=["text"]), "a generate_until request"),
    (lambda r: r.update(arguments={"gen_args_0": {"arg_0": "a whole text"}}),
     "loglikelihood_rolling"),
    (lambda r: r["filtered_resps"][0].__setitem__(0, "nan"), "must be <= 0"),
])
def test_bad_samples_rows_exit_2_without_output(edit, match: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    rows = _rows(0)
    edit(rows[1])
    bad = _write(tmp_path / "m" / "samples_tiny_mc_2026-01-01T00-00-00.0.jsonl", rows)
    out = tmp_path / "out.parquet"
    err = _fails(["import", "lm-eval", str(bad), "--reference", str(samples(1)),
                  "--out", str(out)], capsys, match)
    assert f"{bad}:2:" in err  # the file and line of the bad row
    assert not out.exists()


def test_different_documents_are_named(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    short = _write(tmp_path / "m" / "samples_tiny_mc_2026-01-01T00-00-00.0.jsonl",
                   _rows(0)[:3])
    out = tmp_path / "out.parquet"
    _fails(["import", "lm-eval", str(short), "--reference", str(samples(1)), "--out", str(out)],
           capsys, "lacks 2 of the reference's requests (tiny_mc doc 3 request 0, tiny_mc doc 3 "
                   "request 1)")
    _fails(["import", "lm-eval", str(samples(0)), "--reference", str(short), "--out", str(out)],
           capsys, "has 2 the reference")
    _fails(["import", "lm-eval", str(samples(0)), "--reference", str(samples(1)), "--out",
            str(tmp_path / "scores.csv")], capsys, "give a .parquet file path")
    changed = _rows(0)
    changed[0]["arguments"]["gen_args_0"]["arg_1"] = " red red"
    other = _write(tmp_path / "c" / "samples_tiny_mc_2026-01-01T00-00-00.0.jsonl", changed)
    _fails(["import", "lm-eval", str(other), "--reference", str(samples(1)), "--out", str(out)],
           capsys, "tiny_mc doc 0 request 0: context or continuation differs")
    assert not out.exists()


def test_a_bfloat16_candidate_among_float32_ones_gets_the_precision_note(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lm-eval's ``model_dtype`` per candidate: mixed dtypes are kept per model, so profile
    still says that one candidate was scored below float32."""
    copy = tmp_path / "out-0"
    copy.mkdir()
    (results,) = samples(0).parent.glob("results_*.json")
    config = json.loads(results.read_text())
    config["config"]["model_dtype"] = "torch.bfloat16"
    (copy / results.name).write_text(json.dumps(config))
    low = copy / samples(0).name
    low.write_text(samples(0).read_text())
    out = tmp_path / "mixed.parquet"
    assert main(["import", "lm-eval", str(low), str(samples(1)), "--reference", str(samples(1)),
                 "--out", str(out)]) == 0
    assert ScoreTable.read_parquet(out).provenance["dtype"] == {"model-0": "bfloat16",
                                                                "model-1": "float32"}
    capsys.readouterr()
    assert main(["profile", str(out), "--n", "2"]) == 0
    assert "note: scored in bfloat16, not float32" in capsys.readouterr().err


def test_several_tasks_of_one_model_are_united(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """One samples file per task: the candidate's files are joined to the reference's by task,
    doc_id and request index; a task the candidate lacks is named."""
    files: dict[str, list[Path]] = {"cand": [], "ref": []}
    for task in ("tiny_mc", "tiny_other"):
        for side, seed in (("cand", 0), ("ref", 1)):
            files[side].append(_write(tmp_path / side / "__models__model" /
                                      f"samples_{task}_2026-01-01T00-00-00.0.jsonl",
                                      _rows(seed)))
    table = import_scores(files["cand"], files["ref"])
    assert table.models == ["model"] and table.num_examples == 20
    assert sorted(set(table.example_column("group"))) == ["tiny_mc", "tiny_other"]
    one = import_scores(files["cand"][:1], files["ref"][:1])
    np.testing.assert_array_equal(table.matrix("loglik")[0][:10], one.matrix("loglik")[0])
    _fails(["import", "lm-eval", str(files["cand"][0]), "--reference", *map(str, files["ref"]),
            "--out", str(tmp_path / "out.parquet")], capsys,
           "lacks 10 of the reference's requests (tiny_other doc 0 request 0")
