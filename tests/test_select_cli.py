"""`lmcoverage select`: output, JSON, bad input, and the end-to-end path on tiny HF models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmcoverage.cli import main
from lmcoverage.scoretable import ScoreTable
from lmcoverage.select import min_cross_entropy, simple_tournament


def _table(tmp_path: Path, k: int = 3, m: int = 40, seed: int = 0) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    ll = -rng.exponential(2.0, size=(k, m))
    ld = np.log(rng.uniform(0.05, 1.0, size=m))
    path = tmp_path / "scores.parquet"
    ScoreTable.from_matrix(ll, [f"ckpt-{i}" for i in range(k)], loglik_data=ld).write_parquet(path)
    return path, ll


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert match in err, err


@pytest.mark.parametrize("method", ["tournament", "cross-entropy", "kl", "oracle"])
def test_select_prints_ranking_pick_and_margin_and_writes_json(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], method: str) -> None:
    path, ll = _table(tmp_path)
    out = tmp_path / "sel.json"
    assert main(["select", str(path), "--method", method, "--n", "4", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    sel = json.loads(out.read_text())
    assert sel["method"] == method
    assert f"pick: {sel['pick']['name']}" in text
    assert f"runner-up: {sel['runner_up']['name']}" in text
    assert "margin" in text and "ckpt-2" in text
    if method == "tournament":
        ref = simple_tournament(ll, 4.0, names=["ckpt-0", "ckpt-1", "ckpt-2"])
        assert sel["pick"]["name"] == ref.name
        np.testing.assert_allclose([r["statistic"] for r in sel["ranking"]],
                                   ref.statistic[list(ref.ranking)])
        assert sel["pairwise"][1][1] is None
    if method == "cross-entropy":
        assert sel["pick"]["index"] == min_cross_entropy(ll).index


def test_top_limits_the_printed_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = _table(tmp_path, k=5)
    assert main(["select", str(path), "--top", "2"]) == 0
    assert "3 more not shown" in capsys.readouterr().out


def _write_raw(path: Path, rows: dict[str, list]) -> Path:
    pq.write_table(pa.table(rows), path)
    return path


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = _table(tmp_path)
    _fails(["select", str(tmp_path / "missing.parquet")], capsys, "not found")
    _fails(["select", str(path), "--n", "0.5"], capsys, "N must be >= 1")
    _fails(["select", str(path), "--method", "offset"], capsys, "--data")
    _fails(["select", str(path), "--top", "0"], capsys, "--top")
    _fails(["select", str(path), "--method", "nope"], capsys, "nope")
    one = tmp_path / "one.parquet"
    ScoreTable.from_matrix(-np.ones((1, 3)), ["only"]).write_parquet(one)
    _fails(["select", str(one)], capsys, "at least 2 candidates")
    no_data = tmp_path / "nodata.parquet"
    ScoreTable.from_matrix(-np.ones((2, 3)), ["a", "b"]).write_parquet(no_data)
    _fails(["select", str(no_data), "--method", "kl"], capsys, "loglik_data")
    nan = _write_raw(tmp_path / "nan.parquet", {
        "model": ["a", "a", "b", "b"], "example_id": [0, 1, 0, 1],
        "loglik": [-1.0, float("nan"), -1.0, -2.0]})
    _fails(["select", str(nan)], capsys, "NaN")
    different = _write_raw(tmp_path / "diff.parquet", {
        "model": ["a", "a", "b", "b"], "example_id": [0, 1, 0, 2],
        "loglik": [-1.0, -1.0, -1.0, -2.0]})
    _fails(["select", str(different)], capsys, "different example sets")
    duplicated = _write_raw(tmp_path / "dup.parquet", {
        "model": ["a", "a", "a", "a"], "example_id": [0, 1, 0, 1],
        "loglik": [-1.0, -1.0, -1.0, -2.0]})
    _fails(["select", str(duplicated)], capsys, "duplicated")


# ------------------------------------------------------------------------- tiny HF models
SLICE, ALPHA, MISS = 0.1, 0.5, 0.001
SYMBOLS = (["<pad>", "<unk>"] + [f"q{i}" for i in range(4)] + [f"r{i}" for i in range(8)]
           + [f"j{i}" for i in range(16)])
PROMPTS = [SYMBOLS.index(f"q{i}") for i in range(4)]
RESP = [SYMBOLS.index(f"r{i}") for i in range(8)]
JUNK = [SYMBOLS.index(f"j{i}") for i in range(16)]


def _targets() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pi_D, the covering target and the sharp target, each (vocab,) for every prompt.

    pi_D: r0..r6 share 1 - SLICE, the slice r7 has SLICE. ``cover``: half pi_D, half uniform on
    16 junk tokens (pi_D / cover = 2 everywhere: Cov_8 = 0, cross-entropy H + log 2).
    ``sharp``: pi_D on r0..r6 renormalised and MISS on r7 (Cov_8 = SLICE, cross-entropy about
    H + 0.37: lower than cover's).
    """
    v = len(SYMBOLS)
    data = np.zeros(v)
    data[RESP[:7]] = (1 - SLICE) / 7
    data[RESP[7]] = SLICE
    cover = (1 - ALPHA) * data
    cover[JUNK] = ALPHA / len(JUNK)
    sharp = np.zeros(v)
    sharp[RESP[:7]] = (1 - MISS) / 7
    sharp[RESP[7]] = MISS
    return data, cover, sharp


def _train(target: np.ndarray, seed: int) -> object:
    import torch

    from lmcoverage.models.gpt import build_gpt

    model = build_gpt("tiny", len(SYMBOLS), 4, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    x = torch.tensor(PROMPTS)[:, None]
    t = torch.tensor(target, dtype=torch.float32).expand(len(PROMPTS), -1)
    for _ in range(120):
        logp = torch.log_softmax(model(input_ids=x).logits[:, -1], dim=-1)
        loss = -(t * logp).sum(dim=-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/checkpoint-1000 covers the held-out responses; runs/checkpoint-2000 has lower
    cross-entropy but misses the slice r7; heldout.jsonl holds 400 draws from pi_D."""
    from lmcoverage.models.hf import save
    from lmcoverage.tasks.tokenizer import build_tokenizer

    root = tmp_path_factory.mktemp("select_e2e")
    tok = build_tokenizer(SYMBOLS)
    data, cover, sharp = _targets()
    save(_train(cover, 0), root / "runs" / "checkpoint-1000", tokenizer=tok)
    save(_train(sharp, 1), root / "runs" / "checkpoint-2000", tokenizer=tok)
    rng = np.random.default_rng(0)
    with (root / "heldout.jsonl").open("w") as fh:
        for _ in range(400):
            q = int(rng.integers(4))
            y = int(rng.choice(len(SYMBOLS), p=data))
            fh.write(json.dumps({"prompt": f"q{q}", "response": SYMBOLS[y]}) + "\n")
    assert main(["score", "--model", str(root / "runs" / "checkpoint-*"), "--data",
                 str(root / "heldout.jsonl"), "--out", str(root / "scores.parquet"),
                 "--no-progress"]) == 0
    return root


def test_end_to_end_tournament_picks_the_covering_checkpoint(
        ckpts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = str(ckpts / "scores.parquet")
    table = ScoreTable.read_parquet(scores)
    assert table.models == ["checkpoint-1000", "checkpoint-2000"]
    capsys.readouterr()
    assert main(["select", scores, "--method", "cross-entropy"]) == 0
    assert "pick: checkpoint-2000" in capsys.readouterr().out
    out = ckpts / "tournament.json"
    assert main(["select", scores, "--method", "tournament", "--n", "8", "--json",
                 str(out)]) == 0
    assert "pick: checkpoint-1000" in capsys.readouterr().out
    sel = json.loads(out.read_text())
    assert sel["pick"]["name"] == "checkpoint-1000"
    # the sharp checkpoint is beaten by a factor 8 on the slice (about SLICE of the data)
    assert 0.05 < sel["margin"] < 0.16


def test_end_to_end_offset_tournament_samples_every_checkpoint(
        ckpts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ckpts / "offset.json"
    assert main(["select", str(ckpts / "scores.parquet"), "--method", "offset", "--n", "8",
                 "--samples", "16", "--data", str(ckpts / "heldout.jsonl"),
                 "--model", str(ckpts / "runs" / "checkpoint-*"), "--no-progress",
                 "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "pick: checkpoint-1000" in captured.out
    assert "outside Thm 6.4's condition" in captured.err  # N = 8, a = 0.5: N^(1-2a) = 1
    sel = json.loads(out.read_text())
    onpolicy = np.array(sel["onpolicy"], dtype=float)
    # cover's own samples never see sharp beat it by 8; sharp's samples rarely see cover win
    assert onpolicy[0, 1] == 0.0 and 0.0 <= onpolicy[1, 0] < 0.05


def test_offset_with_the_wrong_models_or_data_fails_cleanly(
        ckpts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = str(ckpts / "scores.parquet")
    _fails(["select", scores, "--method", "offset", "--data", str(ckpts / "heldout.jsonl"),
            "--model", str(ckpts / "runs" / "checkpoint-1000")], capsys, "no directory")
    short = tmp_path / "short.jsonl"
    short.write_text('{"prompt": "q0", "response": "r0"}\n')
    _fails(["select", scores, "--method", "offset", "--data", str(short),
            "--model", str(ckpts / "runs" / "checkpoint-*")], capsys, "1 examples")


def test_score_refuses_a_row_without_response(ckpts: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q0", "response": "r0"}\n{"prompt": "q1"}\n')
    _fails(["score", "--model", str(ckpts / "runs" / "checkpoint-1000"), "--data", str(bad),
            "--out", str(tmp_path / "s.parquet")], capsys, "response")


@pytest.mark.parametrize(("n", "a", "applies"), [
    (14.0, 0.1, True), (13.0, 0.1, False), (64.0, 0.25, True), (63.0, 0.25, False),
    (2.0, 0.5, False), (1e6, 0.5, False), (1e6, 0.0, False)])
def test_offset_note_names_thm64_condition(n: float, a: float, applies: bool) -> None:
    from lmcoverage.commands.select import offset_theorem_note

    assert (offset_theorem_note(n, a) is None) == applies  # a > 0 and N^(1-2a) >= 8
