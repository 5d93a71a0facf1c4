"""``sample`` writes model and problem; ``verify --samples FILE`` verifies those samples
instead of drawing new ones (the same verdicts as ``verify --n K`` with the same seed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmcoverage.cli import main
from lmcoverage.experiments.real_lm_task import make_problems, tiny_llama
from lmcoverage.io import read_jsonl, write_jsonl


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("verify_samples")
    model = tiny_llama(root / "llama", seed=0)
    rows = make_problems(4, seed=0)
    for row in rows:  # ids from an `id` field: sample must carry them as `problem`
        row["id"] = row.pop("problem").upper()
    write_jsonl(root / "prompts.jsonl", rows)
    return model


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and match in err, err


def test_sample_then_verify_samples_equals_verify_sampling(llama: Path, tmp_path: Path) -> None:
    prompts = llama.parent / "prompts.jsonl"
    common = ["--data", str(prompts), "--max-new-tokens", "3", "--no-progress"]
    cand = f"{llama}@temperature=0.7"
    assert main(["sample", "--model", cand, "--n", "4", "--out", str(tmp_path / "s.jsonl"),
                 *common]) == 0
    samples = read_jsonl(tmp_path / "s.jsonl")
    assert {r["model"] for r in samples} == {"llama@temperature=0.7"}
    assert [r["problem"] for r in samples[::4]] == ["P0", "P1", "P2", "P3"]
    assert main(["verify", "--samples", str(tmp_path / "s.jsonl"), "--verifier", "number",
                 "--out", str(tmp_path / "from_file.jsonl"), "--no-progress"]) == 0
    assert main(["verify", "--model", cand, "--n", "4", "--verifier", "number",
                 "--out", str(tmp_path / "sampled.jsonl"), *common]) == 0
    assert main(["verify", "--model", cand, "--samples", "4", "--verifier", "number",
                 "--out", str(tmp_path / "k.jsonl"), *common]) == 0  # --samples K: as --n K
    from_file, sampled = read_jsonl(tmp_path / "from_file.jsonl"), read_jsonl(
        tmp_path / "sampled.jsonl")
    assert from_file == sampled == read_jsonl(tmp_path / "k.jsonl")
    assert {r["group"] for r in sampled} <= {"add-sub", "mult"} and len(sampled) == 16


def test_verify_samples_joins_prompts_and_accepts_doc_id(llama: Path, tmp_path: Path) -> None:
    prompts = llama.parent / "prompts.jsonl"
    answers = {r["id"]: r["answer"] for r in read_jsonl(prompts)}
    rows = [{"model": m, "doc_id": p, "response": f"it is {answers[p] + (m == 'b')}"}
            for m in ("a", "b") for p in answers for _ in range(2)]
    write_jsonl(tmp_path / "s.jsonl", rows)
    out = tmp_path / "v.jsonl"
    assert main(["verify", "--samples", str(tmp_path / "s.jsonl"), "--data", str(prompts),
                 "--verifier", "number", "--out", str(out)]) == 0
    verdicts = read_jsonl(out)
    assert [v["sample_index"] for v in verdicts[:2]] == [0, 1]
    assert all(v["correct"] == (v["model"] == "a") for v in verdicts)
    assert {v["problem"] for v in verdicts} == set(answers)


def test_verify_samples_bad_input_exit_2_one_line_no_file(
        llama: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v.jsonl"
    good = {"model": "a", "problem": "P0", "response": "3", "answer": 3}
    cases = {
        "no_problem.jsonl": ([{**good, "problem": None}], "needs 'problem'"),
        "no_response.jsonl": ([{k: v for k, v in good.items() if k != "response"}],
                              "'response' must be a string"),
        "no_model.jsonl": ([{k: v for k, v in good.items() if k != "model"}], "needs 'model'"),
        "no_answer.jsonl": ([{k: v for k, v in good.items() if k != "answer"}], "no 'answer'"),
    }
    for name, (rows, match) in cases.items():
        write_jsonl(tmp_path / name, rows)
        _fails(["verify", "--samples", str(tmp_path / name), "--verifier", "number",
                "--out", str(out)], capsys, match)
    write_jsonl(tmp_path / "one.jsonl", [good])
    write_jsonl(tmp_path / "two.jsonl", [good])
    _fails(["verify", "--samples", str(tmp_path / "one.jsonl"), "--samples",
            str(tmp_path / "two.jsonl"), "--verifier", "number", "--out", str(out)], capsys,
           "named in two samples files")
    _fails(["verify", "--samples", str(tmp_path / "one.jsonl"), "--model", str(llama),
            "--verifier", "number", "--out", str(out)], capsys, "drop --model")
    write_jsonl(tmp_path / "stray.jsonl", [{**good, "problem": "Q9"}])
    _fails(["verify", "--samples", str(tmp_path / "stray.jsonl"), "--data",
            str(llama.parent / "prompts.jsonl"), "--verifier", "number", "--out", str(out)],
           capsys, "problem 'Q9' is not in")
    _fails(["verify", "--model", str(llama), "--n", "2", "--samples", "2", "--verifier",
            "number", "--out", str(out)], capsys, "not both")
    _fails(["verify", "--verifier", "number", "--out", str(out)], capsys, "give --n K")
    _fails(["verify", "--model", str(llama), "--model", f"{llama}/", "--n", "1", "--data",
            str(llama.parent / "prompts.jsonl"), "--verifier", "number", "--out", str(out)],
           capsys, "given twice")
    assert not out.exists()


def test_verify_expands_a_quoted_glob_and_names_as_score(tmp_path: Path) -> None:
    for step in (20, 100):
        tiny_llama(tmp_path / "ckpts" / f"checkpoint-{step}", seed=step)
    write_jsonl(tmp_path / "p.jsonl", make_problems(2, seed=0))
    out = tmp_path / "v.jsonl"
    assert main(["verify", "--model", str(tmp_path / "ckpts" / "checkpoint-*"), "--data",
                 str(tmp_path / "p.jsonl"), "--n", "1", "--max-new-tokens", "1",
                 "--verifier", "number", "--out", str(out), "--no-progress"]) == 0
    assert list(dict.fromkeys(v["model"] for v in read_jsonl(out))) == [
        "checkpoint-20", "checkpoint-100"]  # natural order, directory names
