"""``lmcoverage reference`` (pi_D made of a reference model's correct samples) and
``lmcoverage.verify.reference`` on a tiny random Llama with a word-level tokenizer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from tests.tiny_llama import saved_word_llama

from lmcoverage.cli import main
from lmcoverage.errors import InputError
from lmcoverage.io import read_jsonl, write_jsonl

WORDS = ["<pad>", "<unk>", "<eos>", "say", "a", "b", "c", "d", "?"]

# A verifier module: "always" rows accept every response, "never" rows none, "even" rows the
# responses with an even number of words (some, not all, of the 6 samples), "boom" rows raise.
VERIFIER = '''
def judge(row, response):
    rule = row["answer"]
    if rule == "boom":
        raise RuntimeError("verifier crashed")
    if rule == "always":
        return True
    if rule == "never":
        return False
    return len(response.split()) % 2 == 0
'''


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return saved_word_llama(WORDS, tmp_path_factory.mktemp("reference") / "llama")


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "refcheck.py").write_text(VERIFIER)
    monkeypatch.chdir(tmp_path)  # module:function verifiers are imported from the cwd too
    return tmp_path


def _prompts(path: Path, rules: list[str]) -> Path:
    write_jsonl(path, [{"prompt": f"say {w} ?", "answer": r, "id": f"q{i}"}
                       for i, (w, r) in enumerate(zip("abcd" * 3, rules, strict=False))])
    return path


def _args(model: Path, data: Path, out: Path, k: int = 6) -> list[str]:
    return ["reference", "--model", str(model), "--data", str(data), "--n", str(k),
            "--verifier", "refcheck:judge", "--out", str(out), "--max-new-tokens", "4",
            "--seed", "5", "--no-progress", "--device", "cpu"]


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and match in err, err


def test_logp_data_is_logp_ref_minus_log_c_over_k(model: Path, work: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = _prompts(work / "prompts.jsonl", ["always", "even", "even", "even", "even"])
    out = work / "pid.jsonl"
    assert main(_args(model, data, out)) == 0
    rows = read_jsonl(out)
    # The same model, seed and decoding through `sample`: the kept rows are exactly the
    # samples the verifier accepts, with the same ids and log-probs.
    assert main(["sample", "--model", str(model), "--data", str(data), "--n", "6", "--out",
                 str(work / "s.jsonl"), "--max-new-tokens", "4", "--seed", "5",
                 "--no-progress", "--device", "cpu"]) == 0
    samples = read_jsonl(work / "s.jsonl")
    accepted = [s for s in samples
                if s["answer"] == "always" or len(s["response"].split()) % 2 == 0]
    assert [(r["problem"], r["sample_index"], r["response_ids"]) for r in rows] == [
        (s["problem"], s["sample_index"], s["response_ids"]) for s in accepted]
    assert [r["logp_ref"] for r in rows] == [s["logp"] for s in accepted]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["problem"]] = counts.get(r["problem"], 0) + 1
    assert len(set(counts.values())) > 1  # the check sees different c(x)
    for r in rows:
        c = counts[r["problem"]]
        assert (r["n_correct"], r["n_samples"]) == (c, 6)
        assert r["logp_data"] == r["logp_ref"] - math.log(c / 6)  # exactly
        assert r["weight"] == 1.0 / c and "logp" not in r
        assert r["prompt_ids"] and r["response"] is not None
        assert r["reference"].startswith("reference command:") and "K=6" in r["reference"]
    assert counts["q0"] == 6 and all(r["logp_data"] == r["logp_ref"] + 0.0
                                     for r in rows if r["problem"] == "q0")
    # `score --data pid.jsonl` uses logp_data and carries c(x), K into the table.
    from lmcoverage.scoretable import ScoreTable

    assert main(["score", "--model", str(model), "--data", str(out), "--out",
                 str(work / "s.parquet"), "--no-progress", "--device", "cpu"]) == 0
    table = ScoreTable.read_parquet(work / "s.parquet")
    np.testing.assert_array_equal(table.example_column("loglik_data"),
                                  [r["logp_data"] for r in rows])
    np.testing.assert_array_equal(table.example_column("ref_correct"),
                                  [r["n_correct"] for r in rows])
    np.testing.assert_array_equal(table.example_column("ref_samples"), [6] * len(rows))
    assert table.example_column("ref_correct").dtype == np.int64
    assert table.provenance["reference"].startswith("reference command:")
    # The sampled response is its own pi_D sample: the candidate that is the reference scores
    # it as logp_ref (same distribution), up to float32 kernel rounding.
    np.testing.assert_allclose(table.matrix("loglik")[0], [r["logp_ref"] for r in rows],
                               atol=1e-4)
    assert not (work / "pid.jsonl.skipped.jsonl").exists()
    capsys.readouterr()


def test_prompts_without_a_correct_sample_are_counted_and_listed(
        model: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _prompts(work / "prompts.jsonl", ["never", "always", "never", "always"])
    out = work / "pid.jsonl"
    (work / "pid.jsonl.skipped.jsonl").write_text('{"stale": true}\n')
    assert main(_args(model, data, out)) == 0
    err = capsys.readouterr().err
    assert "2 of 4 prompt(s) have no correct sample" in err
    skipped = read_jsonl(work / "pid.jsonl.skipped.jsonl")
    assert [(s["problem"], s["n_correct"], s["n_samples"]) for s in skipped] == [
        ("q0", 0, 6), ("q2", 0, 6)]
    assert {r["problem"] for r in read_jsonl(out)} == {"q1", "q3"}
    # A later run where every prompt has a correct sample removes the stale list.
    assert main(_args(model, _prompts(work / "p2.jsonl", ["always"] * 2), out)) == 0
    assert not (work / "pid.jsonl.skipped.jsonl").exists()


@pytest.mark.parametrize(("rules", "k", "match"), [
    (["never", "never"], 6, "no prompt has a correct sample among the 6"),
    (["always", "always"], 1, "--n: need at least 2 samples"),
    (["always", "boom"], 6, "raised RuntimeError: verifier crashed"),
])
def test_bad_reference_exits_2_with_one_line_and_no_file(
        model: Path, work: Path, capsys: pytest.CaptureFixture[str], rules: list[str], k: int,
        match: str) -> None:
    out = work / "pid.jsonl"
    _one_line_exit_2(_args(model, _prompts(work / "prompts.jsonl", rules), out, k), capsys,
                     match)
    assert not out.exists() and not (work / "pid.jsonl.skipped.jsonl").exists()
    assert [p.name for p in work.iterdir() if p.name.startswith(".")] == []


def test_reference_rows_keeps_the_correct_samples_with_their_normaliser() -> None:
    from lmcoverage.verify.reference import reference_rows
    from lmcoverage.verify.verifiers import get_verifier

    inputs = [{"answer": 1, "weight": 2.0}, {"answer": 2}, {"answer": 3, "problem": "p"}]
    texts = [["1", "0", "1", "1"], ["0", "0", "0", "0"], ["3", "9", "9", "9"]]
    logps = [[-1.5, -1.0, -1.6, -2.0], [-1.0] * 4, [-2.5, -3.0, -3.0, -3.0]]
    samples = [{"response": t, "logp": lp, "sample_index": j}
               for ts, ls in zip(texts, logps, strict=True)
               for j, (t, lp) in enumerate(zip(ts, ls, strict=True))]
    ref = reference_rows(inputs, samples, 4, get_verifier("number"))
    assert [(r["problem"], r["sample_index"]) for r in ref.rows] == [
        ("0", 0), ("0", 2), ("0", 3), ("p", 0)]
    assert [r["logp_data"] for r in ref.rows] == [
        -1.5 - math.log(3 / 4), -1.6 - math.log(3 / 4), -2.0 - math.log(3 / 4),
        -2.5 - math.log(1 / 4)]
    assert [r["weight"] for r in ref.rows] == [2.0 / 3] * 3 + [1.0]
    assert ref.skipped == [{"answer": 2, "problem": "1", "n_correct": 0, "n_samples": 4}]
    assert ref.prompts_kept == 2 and ref.k == 4 and ref.verifier == "number"
    with pytest.raises(InputError, match="expected 3 x 4 rows"):
        reference_rows(inputs, samples[:-1], 4, get_verifier("number"))
    with pytest.raises(InputError, match="at least 2 samples"):
        reference_rows(inputs, samples, 1, get_verifier("number"))


def test_normaliser_is_at_least_the_mass_of_the_distinct_correct_responses() -> None:
    """c(x)/K below pi_ref's mass on the correct responses drawn would give pi_D(y|x) > 1:
    p_hat(x) is then that mass (a response drawn twice counts once)."""
    from lmcoverage.verify.reference import reference_rows
    from lmcoverage.verify.verifiers import get_verifier

    samples = [{"response": t, "logp": lp, "response_ids": ids} for t, lp, ids in (
        ("1", math.log(0.6), [1]), ("0", math.log(0.1), [0]), ("0", math.log(0.1), [0]),
        ("0", math.log(0.1), [0]),  # prompt 1: c/K = 1/4 < 0.6
        ("2", math.log(0.3), [2]), ("2", math.log(0.3), [2]), ("5", math.log(0.2), [5]),
        ("5", math.log(0.2), [5]))]  # prompt 2: c/K = 2/4 > 0.3 (one distinct response)
    ref = reference_rows([{"answer": 1}, {"answer": 2}], samples, 4, get_verifier("number"))
    first, *second = ref.rows
    assert first["p_correct"] == pytest.approx(0.6) and first["logp_data"] == 0.0
    assert [r["p_correct"] for r in second] == [0.5, 0.5]
    assert [r["logp_data"] for r in second] == [math.log(0.3) - math.log(2 / 4)] * 2
    assert all(r["logp_data"] <= 0 for r in ref.rows)
