"""``lmcoverage run figure1|figure2`` end to end: the tiny ``test`` presets (mechanism, resume,
outputs) by default; the ``cpu`` presets and their effect checks behind ``-m slow``.

The ``test`` presets train for a few steps, far too few to learn anything, so the fast tests
check the machinery (schema, files, caching, CLI errors), not the effects. The effects are
checked without training in tests/test_figure1.py and tests/test_figure2.py (oracle models)
and with training by the slow tests below.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmcoverage.cli import main


def _run(name: str, preset: str, out: Path, *extra: str) -> dict:
    code = main(["run", name, "--preset", preset, "--out", str(out), "--no-progress", *extra])
    assert code == 0
    return json.loads((out / "results.json").read_text())


def test_figure2_test_preset_end_to_end_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "f2"
    res = _run("figure2", "test", out, "--seeds", "0,1")
    assert res["horizons"] == [4, 8] and res["seeds"] == [0, 1]
    assert res["iterations"] == [0, 10, 20]
    entry = res["by_horizon"]["8"]
    assert len(entry["kl"]) == 2 and len(entry["kl"][0]) == 3  # (seeds, checkpoints)
    assert set(entry["per_class"]) == {"1", "2", "3"}
    for f in ("figure2.png", "report.html", "units/h8-seed1/scores.parquet"):
        assert (out / f).is_file()
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "Effect checks" in html
    # The fixed training set (Appendix C): recorded in config.json, results.json, the report
    # and the training run of every unit.
    assert res["training_data"] == {"examples": 64, "draws": 20 * 32, "epochs": 10.0}
    assert json.loads((out / "config.json").read_text())["config"]["train_examples"] == 64
    run = json.loads((out / "units" / "h8-seed1" / "train" / "run.json").read_text())
    assert run["config"]["dataset_size"] == 64
    assert "a fixed set of 64 problems (10 epochs)" in html
    cached = out / "units" / "h4-seed0" / "metrics.json"
    stamp = cached.stat().st_mtime_ns
    assert _run("figure2", "test", out, "--seeds", "0,1") == res  # resumed: nothing recomputed
    assert cached.stat().st_mtime_ns == stamp


def test_figure1_test_preset_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "f1"
    res = _run("figure1", "test", out)
    assert res["iterations"] == [0, 10, 20]
    assert res["tournament_n"] == 4
    assert set(res["selected"]) == {"min_kl", "min_cross_entropy", "tournament",
                                    "offset_tournament", "oracle_coverage"}
    assert set(res["cov"]) == {"2", "3", "4", "4.6", "5.7", "8"} and "12" in res["pass_at"]
    # One tournament per Pass@N panel, at the panel's coverage level (non-integer N too).
    assert [(p["pass_n"], p["cov_n"]) for p in res["panels"]] == [(4, 2), (8, 4), (12, 5.7)]
    assert res["panels"][1]["tournament"] == res["selected"]["tournament"]
    assert (out / "scores.parquet").is_file() and (out / "figure1.png").is_file()
    # Pre-training on a fixed set, fine-tuning on fresh samples (Appendix C).
    assert res["training_data"] == {
        "pretrain": {"examples": 64, "draws": 20 * 32, "epochs": 10.0},
        "finetune": {"examples": None, "draws": 20 * 32, "epochs": None}}
    for stage, size in (("pretrain", 64), ("finetune", None)):
        run = json.loads((out / stage / "run.json").read_text())
        assert run["config"]["dataset_size"] == size
    html = (out / "report.html").read_text()
    assert "Pre-training used a fixed set of 64 problems (10 epochs)" in html
    # Every pick carries its margin and its tie set (pick first), as iterations.
    for method, pick in res["selected"].items():
        assert pick["ties"][0] == pick["iteration"], method
        assert set(pick["ties"]) <= set(res["iterations"])
        assert pick["margin"] is None or pick["margin"] >= 0
        assert res["selections"][method]["margin"] == pick["margin"]


def test_process_workers_give_the_sequential_results(tmp_path: Path) -> None:
    """``--workers 2`` runs Figure 2's units in two processes; results.json is identical."""
    small = ["--seeds", "0,1", "--set", "horizons=[4]", "--set", "steps=10",
             "--set", "checkpoint_every=5"]
    one = _run("figure2", "test", tmp_path / "one", *small)
    two = _run("figure2", "test", tmp_path / "two", *small, "--workers", "2")
    assert one == two and one["seeds"] == [0, 1]


def test_a_training_set_size_of_null_means_fresh_samples(tmp_path: Path) -> None:
    res = _run("figure2", "test", tmp_path / "fresh", "--set", "horizons=[4]",
               "--set", "steps=4", "--set", "checkpoint_every=2", "--set", "train_examples=null")
    assert res["training_data"] == {"examples": None, "draws": 4 * 32, "epochs": None}
    run = json.loads((tmp_path / "fresh" / "units" / "h4-seed0" / "train" / "run.json"
                      ).read_text())
    assert run["config"]["dataset_size"] is None


@pytest.mark.parametrize(("name", "setting", "message"), [
    ("figure2", "train_examples=1.5", "--set train_examples: expected an integer > 0 or null"),
    ("figure2", "train_examples=true", "--set train_examples: expected an integer > 0 or null"),
    ("figure2", "train_examples=0", "--set train_examples: expected an integer > 0 or null"),
    ("figure1", "pretrain_examples=\"many\"", "--set pretrain_examples: expected an integer"),
])
def test_a_training_set_size_is_an_integer_or_null(tmp_path: Path, capsys, name: str,
                                                    setting: str, message: str) -> None:
    out = tmp_path / "x"
    assert main(["run", name, "--preset", "test", "--out", str(out), "--set", setting]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_the_paper_preset_runs_16_seeds_by_default() -> None:
    """Appendix C.3: 16 seeds, their median and 1/16-15/16 band; other presets run seed 0."""
    from lmcoverage.experiments import figure1, figure2
    from lmcoverage.experiments.registry import default_seeds

    assert default_seeds(figure2, "paper") == list(range(16))
    assert default_seeds(figure2, "cpu") == [0] and default_seeds(figure1, "paper") == [0]


def test_bad_runs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "figure1", "--preset", "test", "--out", str(tmp_path / "a"),
                 "--seeds", "0,1"]) == 2
    assert "figure1 runs one seed" in capsys.readouterr().err
    assert main(["run", "figure2", "--preset", "nope", "--out", str(tmp_path / "b")]) == 2
    assert "unknown preset" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["figure1", "figure2"])
def test_cpu_preset_shows_the_effect(name: str, tmp_path: Path) -> None:
    res = _run(name, "cpu", tmp_path / name)
    failed = [c for c in res["effect_checks"] if not c["ok"]]
    assert not failed, failed


@pytest.mark.parametrize("name", ["figure1", "figure2"])
def test_every_preset_builds_its_tasks_and_training_config(name: str) -> None:
    """Paper presets cannot be run here; check that each one at least builds (no training)."""
    from lmcoverage.experiments import figure1, figure2
    from lmcoverage.tasks import get_task
    from lmcoverage.train import TrainConfig

    module = figure1 if name == "figure1" else figure2
    assert {"test", "cpu", "paper"} <= set(module.PRESETS)
    for preset, cfg in module.PRESETS.items():
        if name == "figure1":
            tasks = [get_task(t, **cfg["task_options"])
                     for t in ("figure1-pretrain", "figure1-finetune")]
            steps, lr = cfg["finetune_steps"], cfg["finetune_lr"]
        else:
            tasks = [get_task(f"figure2-h{h}", edge_order=cfg["edge_order"],
                              node_range=figure2.node_range(cfg)) for h in cfg["horizons"]]
            steps, lr = cfg["steps"], cfg["lr"]
            # m (and so the vocabulary) is the same at every H (Appendix C.1)
            assert len({t.vocab_size for t in tasks}) == 1, preset
        assert all(t.sample(1, seed=0) for t in tasks), preset
        if preset == "paper":  # the paper's fixed set of 8 x 64,000 problems (Appendix C)
            if name == "figure1":
                assert (cfg["pretrain_examples"], cfg["finetune_examples"]) == (512_000, None)
            else:
                assert cfg["train_examples"] == 512_000
                assert figure2.node_range(cfg) == 208  # twice the 98 nodes at H = 24
        TrainConfig(steps=steps, batch_size=cfg["batch_size"], lr=lr,
                    weight_decay=cfg["weight_decay"], model_preset=cfg["model"],
                    checkpoint_every=cfg["checkpoint_every"])
