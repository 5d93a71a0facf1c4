"""``--dtype``: resolving names, loading weights in a dtype, float32 log-probs, provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lmcoverage.cli import main
from lmcoverage.engine import score_responses
from lmcoverage.errors import InputError
from lmcoverage.io import read_jsonl, write_jsonl
from lmcoverage.models.hf import checkpoint_dtype, load_causal_lm, resolve_dtype, save
from lmcoverage.scoretable import ScoreTable
from lmcoverage.tasks import get_task
from tiny_llama import tiny_llama

TASK = "figure2-h4"


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama directory (float32 weights) with the task's tokenizer, and rows."""
    root = tmp_path_factory.mktemp("dtype")
    task = get_task(TASK)
    save(tiny_llama(task.vocab_size, task.max_length, seed=0), root / "llama",
         tokenizer=task.tokenizer())
    write_jsonl(root / "data.jsonl", [task.to_row(p) for p in task.sample(8, seed=3)])
    return root / "llama"


def test_names_resolve_and_auto_follows_the_checkpoint() -> None:
    assert resolve_dtype("float32", "cpu") is torch.float32
    assert resolve_dtype("BFloat16", "cpu") is torch.bfloat16
    assert resolve_dtype("auto", "cpu", "bfloat16") is torch.bfloat16
    assert resolve_dtype("auto", "cpu", torch.float16) is torch.float16
    assert resolve_dtype("auto", "cpu", None) is torch.float32  # nothing recorded: exact
    with pytest.raises(InputError, match="--dtype 'half': use one of float32, bfloat16"):
        resolve_dtype("half", "cpu")


def test_a_dtype_the_device_cannot_compute_in_is_one_line(monkeypatch) -> None:
    real = torch.nn.functional.linear

    def no_half(a: torch.Tensor, *args, **kwargs):
        if a.dtype == torch.float16:
            raise RuntimeError('"addmm_impl_cpu_" not implemented for \'Half\'\nmore detail')
        return real(a, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "linear", no_half)
    with pytest.raises(InputError) as info:
        resolve_dtype("float16", "cpu")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("--dtype float16: not supported on cpu")
    assert resolve_dtype("bfloat16", "cpu") is torch.bfloat16


def test_weights_load_in_the_dtype_asked_and_auto_reads_the_config(llama: Path,
                                                                    tmp_path: Path) -> None:
    assert next(load_causal_lm(llama).parameters()).dtype == torch.float32
    assert next(load_causal_lm(llama, dtype="bfloat16").parameters()).dtype == torch.bfloat16
    half = save(load_causal_lm(llama, dtype="bfloat16"), tmp_path / "bf16")
    assert checkpoint_dtype(half) == "bfloat16"
    assert next(load_causal_lm(half, dtype="auto").parameters()).dtype == torch.bfloat16
    # The default stays float32 (exact numbers) whatever the checkpoint was saved in.
    assert next(load_causal_lm(half).parameters()).dtype == torch.float32


def test_bfloat16_scores_are_float64_sums_of_float32_log_probs(llama: Path) -> None:
    task = get_task(TASK)
    problems = task.sample(16, seed=1)
    prompts = [list(p.prompt_ids) for p in problems]
    responses = [[list(p.response_ids)] for p in problems]
    exact = score_responses(load_causal_lm(llama), prompts, responses, progress=False)
    model = load_causal_lm(llama, dtype="bfloat16")
    low = score_responses(model, prompts, responses, progress=False)
    assert all(s.dtype == np.float64 for s in low)
    err = np.abs(np.concatenate(low) - np.concatenate(exact))
    assert err.max() < 0.05 * max(len(p.response_ids) for p in problems), err
    assert err.max() > 0  # really computed in bfloat16
    # Batch-invariant in bfloat16 too: each response scored alone gives the same numbers.
    alone = [score_responses(model, [p], [r], progress=False)[0] for p, r in
             zip(prompts[:4], responses[:4], strict=True)]
    np.testing.assert_allclose(np.concatenate(alone), np.concatenate(low[:4]), atol=0.02)


def test_score_records_the_dtype_and_sample_runs_in_bfloat16(llama: Path, tmp_path: Path) -> None:
    data = llama.parent / "data.jsonl"
    exact, low = tmp_path / "f32.parquet", tmp_path / "bf16.parquet"
    for out, dtype in ((exact, "float32"), (low, "bfloat16")):
        assert main(["score", "--model", str(llama), "--data", str(data), "--out", str(out),
                     "--dtype", dtype, "--no-progress"]) == 0
    assert ScoreTable.read_parquet(exact).provenance["dtype"] == "float32"
    assert ScoreTable.read_parquet(low).provenance["dtype"] == "bfloat16"
    np.testing.assert_allclose(ScoreTable.read_parquet(low).matrix("loglik"),
                               ScoreTable.read_parquet(exact).matrix("loglik"), atol=0.5)
    samples = tmp_path / "s.jsonl"
    assert main(["sample", "--model", str(llama), "--data", str(data), "--n", "2",
                 "--max-new-tokens", "4", "--out", str(samples), "--dtype", "bfloat16",
                 "--no-progress"]) == 0
    assert len(read_jsonl(samples)) == 16


@pytest.mark.parametrize("command", ["score", "sample", "verify"])
def test_unknown_dtype_exits_2_with_one_line_and_no_output(llama: Path, tmp_path: Path,
                                                           command: str, capsys) -> None:
    data = llama.parent / "data.jsonl"
    out = tmp_path / ("o.parquet" if command == "score" else "o.jsonl")
    extra = {"score": [], "sample": ["--n", "2"],
             "verify": ["--samples", "2", "--verifier", "exact"]}[command]
    assert main([command, "--model", str(llama), "--data", str(data), "--out", str(out),
                 *extra, "--dtype", "int8", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--dtype 'int8'" in err, err
    assert not out.exists()


def test_profile_notes_a_table_scored_below_float32(llama: Path, tmp_path: Path,
                                                    capsys) -> None:
    data = llama.parent / "data.jsonl"
    for dtype in ("float32", "bfloat16"):
        out = tmp_path / f"{dtype}.parquet"
        assert main(["score", "--model", str(llama), "--data", str(data), "--out", str(out),
                     "--dtype", dtype, "--no-progress"]) == 0
        capsys.readouterr()
        assert main(["profile", str(out), "--n", "2,4"]) == 0
        err = capsys.readouterr().err
        noted = [line for line in err.splitlines() if line.startswith("note: scored in")]
        assert len(noted) == (dtype == "bfloat16"), err
        if noted:
            assert "bfloat16, not float32" in noted[0] and "--dtype float32" in noted[0]
            assert "float16's error was not measured" not in noted[0]


def test_a_float16_table_does_not_pass_off_bfloat16_numbers_as_its_own() -> None:
    from lmcoverage.metrics.warnings import precision_warning

    table = ScoreTable.from_matrix(np.zeros((1, 2)), ["m"]).with_provenance(dtype="float16")
    note = precision_warning(table)
    assert note is not None and note.startswith("note: scored in float16, not float32: "
                                                "float16's error was not measured; ")
    assert precision_warning(table.with_provenance(dtype="float32")) is None


def test_compare_notes_a_table_scored_below_float32(llama: Path, tmp_path: Path,
                                                    capsys) -> None:
    """compare prints (and records in results.json) the same note as profile."""
    import json

    data = llama.parent / "data.jsonl"
    scores = tmp_path / "bf16.parquet"
    assert main(["score", "--model", str(llama), f"{llama}@temperature=0.5", "--data",
                 str(data), "--out", str(scores), "--dtype", "bfloat16", "--no-progress"]) == 0
    names = ScoreTable.read_parquet(scores).models
    verdicts = tmp_path / "v.jsonl"
    write_jsonl(verdicts, [{"model": name, "problem": str(i), "sample_index": k,
                            "response": "x", "correct": k <= j}
                           for j, name in enumerate(names)
                           for i in range(len(read_jsonl(data))) for k in range(4)])
    capsys.readouterr()
    report = tmp_path / "report.html"
    assert main(["compare", str(scores), "--verdicts", str(verdicts), "--out", str(report)]) == 0
    err = capsys.readouterr().err
    assert any(line.startswith("note: scored in bfloat16, not float32")
               for line in err.splitlines()), err
    results = json.loads((tmp_path / "results.json").read_text())
    assert any("scored in bfloat16" in w for w in results["warnings"]), results["warnings"]
