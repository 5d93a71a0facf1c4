"""``lmcoverage verify``, ``compare`` and ``train --model`` on a tiny random Llama with a
word-level tokenizer (built in seconds, offline)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lmcoverage.cli import main
from lmcoverage.experiments.real_lm_task import make_problems, tiny_llama
from lmcoverage.io import read_jsonl, write_jsonl
from lmcoverage.scoretable import ScoreTable


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("verify")
    model = tiny_llama(root / "llama", seed=0)
    write_jsonl(root / "prompts.jsonl", make_problems(5, seed=0))
    return model


def _prompts(llama: Path) -> Path:
    return llama.parent / "prompts.jsonl"


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and match in err, err


def test_verify_writes_one_row_per_sample_and_is_seeded(llama: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    cands = [str(llama), f"{llama}@temperature=0.5,top_p=0.9"]
    argv = ["verify", "--model", cands[0], "--model", cands[1], "--data", str(_prompts(llama)),
            "--samples", "4", "--verifier", "number", "--max-new-tokens", "3", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "a.jsonl")]) == 0
    assert "pass@k" in capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "b.jsonl")]) == 0
    rows = read_jsonl(tmp_path / "a.jsonl")
    assert rows == read_jsonl(tmp_path / "b.jsonl")  # same seed, same samples
    assert len(rows) == 2 * 5 * 4
    assert {r["model"] for r in rows} == {"llama", "llama@temperature=0.5,top_p=0.9"}  # as score
    assert [r["sample_index"] for r in rows[:4]] == [0, 1, 2, 3]
    prompts = {p["problem"]: p for p in read_jsonl(_prompts(llama))}
    for r in rows:  # the verdict is the number verifier's
        numbers = [w for w in r["response"].split() if w.isdigit()]
        assert r["correct"] == (bool(numbers) and int(numbers[-1]) == prompts[r["problem"]]
                                ["answer"])


def test_verify_bad_input_exit_2_and_no_file(llama: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "v.jsonl"
    no_answer = tmp_path / "no_answer.jsonl"
    write_jsonl(no_answer, [{"prompt": "Question : Ana ? Answer :"}])
    (tmp_path / "e4_bad.py").write_text("def boom(row, text):\n    raise KeyError('x')\n"
                                        "def text(row, text):\n    return text\n")
    monkeypatch.chdir(tmp_path)
    base = ["verify", "--model", str(llama), "--samples", "2", "--max-new-tokens", "2",
            "--out", str(out), "--no-progress"]
    data = ["--data", str(_prompts(llama))]
    _fails([*base, "--data", str(no_answer), "--verifier", "exact"], capsys, "no 'answer'")
    _fails([*base, *data, "--verifier", "e4_bad:boom"], capsys, "raised KeyError")
    _fails([*base, *data, "--verifier", "e4_bad:text"], capsys, "not a bool")
    _fails([*base, *data, "--verifier", "e4_nowhere:f"], capsys, "cannot import")
    _fails([*base, *data, "--verifier", "number", "--model", f"{llama}@temp=2"], capsys,
           "unknown key")
    assert not out.exists()


def _synthetic(tmp_path: Path) -> tuple[Path, Path, list[dict]]:
    """Scores and verdicts of 4 candidates on 12 problems with known per-candidate quality."""
    rng = np.random.default_rng(0)
    names, problems = ["a", "b", "c", "d"], [f"q{i}" for i in range(12)]
    loglik = np.stack([-rng.exponential(0.4 + j, size=12) for j in range(4)])
    table = ScoreTable.from_matrix(loglik, names, loglik_data=np.zeros(12))
    table.write_parquet(tmp_path / "scores.parquet")
    verdicts = [{"model": m, "problem": p, "sample_index": k,
                 "correct": bool(rng.random() < 0.8 - 0.2 * j)}
                for j, m in enumerate(names) for p in problems for k in range(8)]
    write_jsonl(tmp_path / "verdicts.jsonl", verdicts)
    write_jsonl(tmp_path / "examples.jsonl", [{"problem": p} for p in problems])
    return tmp_path / "scores.parquet", tmp_path / "verdicts.jsonl", verdicts


def test_compare_report_numbers_match_the_metrics(tmp_path: Path) -> None:
    from scipy import stats

    from lmcoverage.metrics import coverage_profile, pass_at_k
    from lmcoverage.select import simple_tournament
    from lmcoverage.verify.verdicts import counts_by_model

    scores, verdicts, rows = _synthetic(tmp_path)
    out = tmp_path / "report" / "report.html"
    assert main(["compare", str(scores), "--verdicts", str(verdicts), "--out", str(out),
                 "--examples", str(tmp_path / "examples.jsonl"), "--bootstrap", "100"]) == 0
    results = json.loads((out.parent / "results.json").read_text())
    html = out.read_text()
    assert "data:image/png;base64," in html and "http" not in html.split("<body>")[1][:2000]
    assert results["ns"] == [2, 4, 8]
    table = ScoreTable.read_parquet(scores)
    loglik = table.matrix("loglik")
    counts = counts_by_model(rows)
    for n in results["ns"]:
        pass_n = np.array([pass_at_k(counts[m].n, counts[m].c, n).mean() for m in table.models])
        cov = np.array([coverage_profile(-row, n / 2) for row in loglik])
        rho = next(r for r in results["correlations"]
                   if r["n"] == n and r["metric"] == "cov_half_n")
        if np.all(cov == cov[0]):  # Cov_1 = 1 for every candidate: no ranking to correlate
            assert n == 2 and rho["rho"] is None and "undefined" in rho["rho_reason"]
        else:
            assert rho["rho"] == pytest.approx(stats.spearmanr(pass_n, cov).statistic)
            assert rho["lo"] <= rho["hi"]
        pick = next(p for p in results["picks"] if p["n"] == n and p["method"] == "tournament")
        chosen = simple_tournament(loglik, n / 2, names=table.models).index
        assert pick["pick"] == table.models[chosen]
        assert pick["pass_at_n"] == pytest.approx(pass_n[chosen])


def test_compare_refuses_mismatched_inputs(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    scores, verdicts, rows = _synthetic(tmp_path)
    out = tmp_path / "r.html"
    # without --examples, example i is problem "i": these verdicts name problems q0, q1, ...
    _fails(["compare", str(scores), "--verdicts", str(verdicts), "--out", str(out)], capsys,
           "has no verdicts")
    write_jsonl(tmp_path / "few.jsonl", [r for r in rows if r["model"] != "d"])
    _fails(["compare", str(scores), "--verdicts", str(tmp_path / "few.jsonl"), "--out",
            str(out)], capsys, "different candidates")
    assert not out.exists()


def _pairs(tmp_path: Path) -> Path:
    rows = make_problems(6, seed=1)
    write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": r["prompt"], "response": r["response"]}
                                           for r in rows])
    return tmp_path / "pairs.jsonl"


def test_train_model_finetunes_and_resumes_bit_exactly(llama: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    pairs = _pairs(tmp_path)
    args = ["--model", str(llama), "--data", str(pairs), "--batch-size", "2", "--lr", "0.01",
            "--checkpoint-every", "2", "--no-progress"]
    assert main(["train", "--out", str(tmp_path / "full"), "--steps", "4", *args]) == 0
    assert main(["train", "--out", str(tmp_path / "half"), "--steps", "2", *args]) == 0
    (tmp_path / "half" / "final").unlink()  # a link: as if killed after checkpoint-2
    run_json = json.loads((tmp_path / "half" / "run.json").read_text())
    run_json["config"]["steps"] = 4  # continue the same run for two more steps
    (tmp_path / "half" / "run.json").write_text(json.dumps(run_json))
    assert main(["train", "--out", str(tmp_path / "half"), "--steps", "4", "--resume",
                 *args]) == 0
    full = load_file(str(tmp_path / "full" / "final" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "half" / "final" / "model.safetensors"))
    start = load_file(str(llama / "model.safetensors"))
    assert all((full[k] == resumed[k]).all() for k in full)
    assert any((full[k] != start[k]).any() for k in full)
    history = json.loads((tmp_path / "full" / "final" / "trainer_state.json").read_text())
    assert history["history"][-1][1] < history["history"][0][1]  # the loss went down


def test_train_model_refuses_a_tokenizer_bigger_than_the_model(
        llama: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lmcoverage.models.hf import load_causal_lm, save
    from lmcoverage.tasks.tokenizer import build_tokenizer

    vocab = json.loads((llama / "tokenizer.json").read_text())["model"]["vocab"]
    words = [*sorted(vocab, key=vocab.get), "extra"]
    save(load_causal_lm(llama), tmp_path / "odd", tokenizer=build_tokenizer(words))
    out = tmp_path / "run"
    _fails(["train", "--model", str(tmp_path / "odd"), "--data", str(_pairs(tmp_path)),
            "--out", str(out), "--no-progress"], capsys, "do not belong together")
    assert not out.exists()
    _fails(["train", "--out", str(out)], capsys, "give a TASK")
