"""The command line's promises, checked on the real ``lmcoverage`` process (issue 11).

Exit codes: 0 done, 2 bad input (one line), 1 environment (one line: path or device and the OS
reason) or a bug (traceback and a line asking to report it), 130/143 on SIGINT/SIGTERM (one line
saying what was interrupted and how to resume). No file appears under a final name unless it
is complete.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lmcoverage.scoretable import ScoreTable

EXE = str(Path(sys.executable).with_name("lmcoverage"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1", "COLUMNS": "80"}
SYMBOLS = ["<pad>", "<unk>", "q0", "q1", "r0", "r1", "r2", "r3"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """``lmcoverage ARGS`` in this process (for output checks; exit contracts use :func:`run`)."""
    from lmcoverage.cli import main

    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *parts: str) -> str:
    err = result.stderr.strip()
    assert result.returncode == code, (result.returncode, result.stdout, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("lmcoverage: error:"), err
    for part in parts:
        assert part in err, err
    return err


def scores(tmp_path: Path, models: int = 2, examples: int = 30) -> Path:
    rng = np.random.default_rng(0)
    data = np.log(rng.uniform(0.1, 1.0, examples))
    names = [f"runs/a-rather-long-checkpoint-name/checkpoint-{1000 * (i + 1)}"
             for i in range(models)]
    path = tmp_path / "s.parquet"
    ScoreTable.from_matrix(data - rng.exponential(1.0, (models, examples)), names,
                           loglik_data=data).write_parquet(path)
    return path


def pass_counts(tmp_path: Path) -> Path:
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"problem": i, "n": 10, "c": i % 5}) + "\n"
                            for i in range(20)))
    return path


# ------------------------------------------------------------------ environment errors

def test_missing_parent_under_proc_is_one_line_exit_1(tmp_path: Path) -> None:
    one_line_error(run("passk", str(pass_counts(tmp_path)), "--out", "/proc/nope/x.json"), 1,
                   "/proc/nope/x.json", "No such file or directory")


def test_a_file_under_proc_is_one_line_exit_1(tmp_path: Path) -> None:
    one_line_error(run("passk", str(pass_counts(tmp_path)), "--out", "/proc/p.csv"), 1,
                   "/proc/p.csv", os.strerror(errno.ENOENT))


def test_non_utf8_input_names_the_file_and_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"problem": "caf\xe9", "n": 2, "c": 1}\n')
    one_line_error(run("passk", str(bad)), 2, str(bad), "not UTF-8", "line 1")  # bad input


def _tmpfs(tmp_path: Path, options: str) -> Path:
    """A small tmpfs at tmp_path/mnt (root with mount rights only), unmounted by the caller."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("mount not allowed here")
    return mnt


def test_read_only_directory_is_one_line_exit_1_and_nothing_written(tmp_path: Path) -> None:
    mnt = _tmpfs(tmp_path, "ro,size=64k")
    try:
        one_line_error(run("passk", str(pass_counts(tmp_path)), "--out", str(mnt / "p.json")),
                       1, str(mnt / "p.json"), os.strerror(errno.EROFS))
        assert not any(mnt.iterdir())
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_full_disk_is_one_line_exit_1_and_no_partial_file(tmp_path: Path) -> None:
    mnt = _tmpfs(tmp_path, "size=16k")
    try:
        out = mnt / "tasks.jsonl"
        one_line_error(run("task", "export", "figure2-h8", "--n", "400", "--out", str(out)),
                       1, str(out), os.strerror(errno.ENOSPC))
        assert not any(mnt.iterdir()), list(mnt.iterdir())
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_enospc_from_a_write_names_the_output(tmp_path: Path, monkeypatch) -> None:
    """Injected (no tmpfs needed): an OSError without a file name gets the output's path."""
    from lmcoverage import io

    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError) as caught:
        io.atomic_write_text(tmp_path / "x.json", "{}")
    assert caught.value.filename == str(tmp_path / "x.json")
    assert caught.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_permission_denied_is_one_line_exit_1(tmp_path: Path) -> None:
    """A directory without write permission; as root (which ignores modes) the same OS error
    is injected where the output file is created."""
    locked = tmp_path / "locked"
    locked.mkdir()
    counts = pass_counts(tmp_path)
    out = locked / "p.json"
    if os.geteuid() != 0:
        os.chmod(locked, 0o555)
        result = run("passk", str(counts), "--out", str(out))
        os.chmod(locked, 0o755)
    else:
        code = ("import errno, os, sys, tempfile\n"
                "def denied(*a, dir=None, **k):\n"
                "    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), dir)\n"
                "tempfile.mkstemp = denied\n"
                "from lmcoverage.cli import main\n"
                f"sys.exit(main(['passk', {str(counts)!r}, '--out', {str(out)!r}]))\n")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                env=ENV, timeout=120)
    one_line_error(result, 1, str(out), os.strerror(errno.EACCES))
    assert list(locked.iterdir()) == []


def test_cuda_without_cuda_is_one_line_exit_1(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run("train", "figure1-finetune", "--preset", "tiny", "--out", str(tmp_path / "r"),
                 "--device", "cuda", "--steps", "2")
    one_line_error(result, 1, "--device cuda", "CUDA is not available")
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ bad input and bugs

def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    one_line_error(run("profile", str(scores(tmp_path)), "--n", "0.5"), 2, "N must be >= 1")
    one_line_error(run("profile", str(scores(tmp_path)), "--out", str(tmp_path / "p.txt")), 2,
                   ".csv, .tsv or .json")


def profile_with_broken_summary(tmp_path: Path, boom: str) -> subprocess.CompletedProcess[str]:
    """``lmcoverage profile`` in a fresh process whose summary function is ``boom`` (Python
    source defining ``boom``)."""
    code = ("import sys, lmcoverage.metrics.summary as s\n" + boom +
            "s.summarize_scores = boom\n"
            "from lmcoverage.cli import main\n"
            f"sys.exit(main(['profile', {str(scores(tmp_path))!r}]))\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=ENV, timeout=120)


def test_an_internal_bug_prints_the_traceback_and_asks_for_a_report(tmp_path: Path) -> None:
    result = profile_with_broken_summary(
        tmp_path, "def boom(*a, **k):\n    return {}['no such key']\n")
    assert result.returncode == 1, result.stderr
    assert "Traceback" in result.stderr and "KeyError" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("lmcoverage: internal error:") and "please report" in last


def test_an_interrupt_wrapped_in_another_exception_is_still_an_interrupt(tmp_path: Path) -> None:
    # Ctrl-C during a cold `import transformers` arrives inside a class body's __set_name__,
    # which Python re-raises as RuntimeError with the interrupt as its cause.
    result = profile_with_broken_summary(
        tmp_path, "from lmcoverage.errors import Interrupted\n"
        "class Field:\n    def __set_name__(self, owner, name):\n"
        "        raise Interrupted(2)\n"
        "def boom(*a, **k):\n    class Endpoint:\n        name = Field()\n")
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("lmcoverage: ")


def test_a_value_error_from_a_library_bug_is_not_bad_input() -> None:
    from lmcoverage.cli import is_input_error
    from lmcoverage.errors import InputError

    def caught(fn: Callable[[], object]) -> BaseException:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001
            return exc
        raise AssertionError("no exception")

    assert is_input_error(InputError("x"))
    assert not is_input_error(ValueError("x"))  # only the project's own input-error type
    assert not is_input_error(caught(lambda: int("x")))          # a builtin: a bug
    assert not is_input_error(caught(lambda: np.zeros(2).reshape(3)))  # numpy: a bug


def test_select_refuses_a_bad_offset_exponent_before_any_work(tmp_path: Path) -> None:
    result = run("select", str(tmp_path / "not-read.parquet"), "--method", "offset",
                 "--a", "-1", "--model", str(tmp_path / "m"), "--data", str(tmp_path / "d"))
    one_line_error(result, 2, "--a", ">= 0")
    assert "device" not in result.stdout


# ------------------------------------------------------------------ options and output

def test_options_before_or_after_the_file_and_several_values(tmp_path: Path, capsys) -> None:
    path = scores(tmp_path)
    outs = []
    for args in (["--n", "2", "4", str(path)], [str(path), "--n", "2", "4"],
                 [str(path), "--n", "2,4"], ["--n", "2", "--n", "4", str(path)]):
        result = cli(capsys, "profile", *args, "--format", "json")
        assert result.returncode == 0, result.stderr
        outs.append(json.loads(result.stdout))
    assert all(o == outs[0] for o in outs) and outs[0]["ns"] == [2.0, 4.0]


def test_a_path_with_a_comma_is_never_split(tmp_path: Path, capsys) -> None:
    comma = tmp_path / "a,b"
    comma.mkdir()
    path = scores(comma)
    result = cli(capsys, "profile", str(path), "--n", "2", "--out", str(comma / "p,q.csv"))
    assert result.returncode == 0, result.stderr
    assert (comma / "p,q.csv").read_text().startswith("model,")


@pytest.mark.parametrize(("fmt", "check"), [
    ("csv", lambda t: t.splitlines()[0].startswith("model,group,examples")),
    ("tsv", lambda t: t.splitlines()[0].startswith("model\tgroup\texamples")),
    ("json", lambda t: json.loads(t)["ns"] == [2.0]),
])
def test_format_prints_data_and_out_takes_the_suffix(tmp_path: Path, fmt: str, capsys,
                                                     check: Callable[[str], bool]) -> None:
    path = scores(tmp_path)
    out = tmp_path / f"p.{fmt}"
    result = cli(capsys, "profile", str(path), "--n", "2", "--format", fmt, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert check(result.stdout) and check(out.read_text())
    assert f"wrote {out}" in result.stderr


def columns_text(table: str) -> list[str]:
    """Each column of a rich table, its cell fragments joined line after line (names wrap)."""
    joined: list[str] = []
    for line in table.splitlines():
        cells = line.replace("┃", "│").split("│")[1:-1]
        joined += [""] * (len(cells) - len(joined))
        for i, cell in enumerate(cells):
            joined[i] += cell.strip()
    return joined


def test_tables_fit_80_columns_with_full_names_and_whole_numbers(
        tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    path = scores(tmp_path, models=3)
    names = ScoreTable.read_parquet(path).models
    for args in (["profile", str(path), "--n", "2", "4", "8", "16"],
                 ["select", str(path), "--n", "4"],
                 ["passk", str(pass_counts(tmp_path)), "--k", "1", "2", "5"]):
        result = cli(capsys, *args)
        assert result.returncode == 0, result.stderr
        assert max(len(line) for line in result.stdout.splitlines()) <= 80, result.stdout
        assert "…" not in result.stdout and "..." not in result.stdout
        if args[0] != "passk":
            text = "".join(columns_text(result.stdout))
            assert all(name in text for name in names), result.stdout
    profile = cli(capsys, "profile", str(path), "--n", "2", "--format", "json")
    cov = json.loads(profile.stdout)["models"][0]["cov"]["2"]
    shown = cli(capsys, "profile", str(path), "--n", "2").stdout
    assert f"{cov:.4f}" in "".join(columns_text(shown))  # the whole number, not cut


def test_select_json_and_deprecated_alias_agree(tmp_path: Path, capsys) -> None:
    path = scores(tmp_path)
    assert cli(capsys, "select", str(path), "--out", str(tmp_path / "a.json")).returncode == 0
    assert cli(capsys, "select", str(path), "--json", str(tmp_path / "b.json")).returncode == 0
    assert (json.loads((tmp_path / "a.json").read_text())
            == json.loads((tmp_path / "b.json").read_text()))


def test_run_list_task_list_and_run_help_name_existing_presets(capsys, monkeypatch) -> None:
    from lmcoverage.experiments.registry import available, load_experiment

    monkeypatch.setenv("COLUMNS", "80")
    listing = cli(capsys, "run", "--list")
    assert listing.returncode == 0, listing.stderr
    flat = " ".join(listing.stdout.split())
    help_text = " ".join(cli(capsys, "run", "--help").stdout.replace("│", " ").split())
    for name in available():
        presets = list(load_experiment(name).PRESETS)
        assert name in flat
        assert f"{name}: {', '.join(presets)}" in help_text
    assert "paper (the paper's sizes" not in help_text
    tasks = cli(capsys, "task", "list")
    assert tasks.returncode == 0 and "figure1-finetune" in tasks.stdout
    assert "figure2-h{H}" in tasks.stdout


def test_progress_bars_say_what_they_count_and_stay_silent_off_a_terminal(
        tmp_path: Path) -> None:
    from lmcoverage.train.loop import _progress_bar

    with _progress_bar(10, 0, True, "fine-tune") as bar:
        assert bar.tasks[0].description == "fine-tune steps"
        assert bar.disable  # pytest's stdout is not a terminal
    result = run("train", "figure1-finetune", "--preset", "tiny", "--out", str(tmp_path / "r"),
                 "--steps", "3", "--batch-size", "2", "--task-option", "layers=2",
                 "--task-option", "nodes_per_layer=2")
    assert result.returncode == 0, result.stderr
    assert "━" not in result.stdout + result.stderr and "steps" not in result.stderr


def test_train_summary_resume_step_and_changed_option(tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["train", "figure1-finetune", "--preset", "tiny", "--out", str(out),
            "--batch-size", "2", "--checkpoint-every", "2", "--task-option", "layers=2",
            "--task-option", "nodes_per_layer=2"]
    first = run(*args, "--steps", "2")
    assert first.returncode == 0, first.stderr
    assert "device: cpu" in first.stdout
    summary = first.stdout.strip().splitlines()[-1]
    assert summary.startswith("trained 2 steps; final loss ") and " s; weights: " in summary
    assert summary.endswith(str(out / "final" / "model.safetensors"))
    (out / "final").unlink()  # (a link to checkpoint-2) as if stopped after checkpoint-2
    changed = run(*args, "--steps", "2", "--lr", "0.5", "--resume")
    one_line_error(changed, 2, "--lr", "differs")
    again = run(*args, "--steps", "2", "--resume")
    assert again.returncode == 0, again.stderr
    assert "resumed from step 2" in again.stdout


# ------------------------------------------------------------------ signals

@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two untrained tiny GPTs, their held-out data and their ScoreTable."""
    from lmcoverage.cli import main
    from lmcoverage.models.gpt import build_gpt
    from lmcoverage.models.hf import save
    from lmcoverage.tasks.tokenizer import build_tokenizer

    root = tmp_path_factory.mktemp("tiny_models")
    tok = build_tokenizer(SYMBOLS)
    for i in range(2):
        save(build_gpt("tiny", len(SYMBOLS), 64, seed=i), root / f"m{i}", tokenizer=tok)
    with (root / "data.jsonl").open("w") as fh:
        for k in range(8):
            fh.write(json.dumps({"prompt": f"q{k % 2}", "response": f"r{k % 4}"}) + "\n")
    assert main(["score", "--model", str(root / "m0"), str(root / "m1"), "--data",
                 str(root / "data.jsonl"), "--out", str(root / "s.parquet"),
                 "--no-progress"]) == 0
    return root


def interrupt(args: list[str], ready: Callable[[str], bool], signum: int = signal.SIGINT,
              timeout: float = 240) -> tuple[int, str]:
    """Start ``lmcoverage ARGS``, wait until ``ready(stdout so far)``, send ``signum``."""
    import threading

    proc = subprocess.Popen([EXE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    seen: list[str] = []  # stdout and stderr lines as they come
    errors: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None
    for stream, sink in ((proc.stdout, seen), (proc.stderr, errors)):
        threading.Thread(target=lambda s=stream, k=sink: k.extend(s), daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready("".join(seen + errors)):
        assert proc.poll() is None, f"exited early: {''.join(seen + errors)}"
        assert time.monotonic() < deadline, "".join(seen + errors)
        time.sleep(0.2)
    proc.send_signal(signum)
    proc.wait(timeout=timeout)
    time.sleep(0.5)  # let the reader threads drain the pipes
    return proc.returncode, "".join(errors)


def test_ctrl_c_during_train_exits_130_with_the_resume_command(tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["train", "figure1-finetune", "--preset", "tiny", "--out", str(out), "--steps",
            "100000", "--batch-size", "2", "--checkpoint-every", "2", "--task-option",
            "layers=2", "--task-option", "nodes_per_layer=2"]
    code, err = interrupt(args, lambda s: "device:" in s and (out / "checkpoint-2").is_dir())
    assert code == 130, err
    line = err.strip().splitlines()[-1]
    assert "train interrupted by SIGINT" in line and "resume with: lmcoverage train" in line
    assert line.endswith("--resume")
    assert not (out / "final").exists()
    for ckpt in out.glob("checkpoint-*"):
        assert (ckpt / "trainer_state.json").is_file()  # complete, or not there


def test_sigterm_during_train_exits_143(tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["train", "figure1-finetune", "--preset", "tiny", "--out", str(out), "--steps",
            "100000", "--batch-size", "2", "--task-option", "layers=2", "--task-option",
            "nodes_per_layer=2"]
    code, err = interrupt(args, lambda s: "device:" in s, signal.SIGTERM)
    assert code == 143, err
    assert "interrupted by SIGTERM" in err.strip().splitlines()[-1]
    assert not (out / "final").exists()


def test_ctrl_c_during_run_exits_130_and_run_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, err = interrupt(["run", "figure1", "--preset", "demo", "--out", str(out)],
                          lambda s: (out / "config.json").is_file())
    assert code == 130, err
    line = err.strip().splitlines()[-1]
    assert "run interrupted by SIGINT" in line
    assert f"resume with: lmcoverage run figure1 --preset demo --out {out}" in line
    assert not (out / "results.json").exists() and not (out / "report.html").exists()


def test_ctrl_c_during_score_exits_130_and_writes_nothing(tiny_models: Path,
                                                         tmp_path: Path) -> None:
    data = tmp_path / "data" / "many.jsonl"
    data.parent.mkdir()
    rng = np.random.default_rng(0)
    words = np.array(SYMBOLS[2:])
    data.write_text("".join(json.dumps({"prompt": " ".join(rng.choice(words, 24)),
                                        "response": " ".join(rng.choice(words, 24))}) + "\n"
                            for _ in range(8_000)))
    out = tmp_path / "s.parquet"
    code, err = interrupt(["score", "--model", str(tiny_models / "m0"), "--data", str(data),
                           "--out", str(out)], lambda s: "scoring" in s)
    assert code == 130, err
    assert "score interrupted by SIGINT; no output file was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_ctrl_c_during_select_exits_130(tiny_models: Path, tmp_path: Path) -> None:
    out = tmp_path / "sel.json"
    code, err = interrupt(["select", str(tiny_models / "s.parquet"), "--method", "offset",
                           "--samples", "100000", "--data", str(tiny_models / "data.jsonl"),
                           "--model", str(tiny_models / "m0"), str(tiny_models / "m1"),
                           "--out", str(out)], lambda s: "device:" in s)
    assert code == 130, err
    assert "select interrupted by SIGINT" in err.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_demo_ends_with_trend_picks_checks_and_report_path(tmp_path: Path, capsys) -> None:
    from lmcoverage.commands.run import print_summary

    pick = {"iteration": 40, "kl": 0.67, "cov": {"4": 0.05}, "pass_at": {"4": 0.9, "8": 0.98,
            "12": 0.99}, "margin": 0.01, "ties": [40]}
    results = {
        "iterations": [0, 40, 80], "kl": [1.0, 0.5, 0.3],
        "cov": {"2": [0.7, 0.1, 0.1], "8": [0.04, 0.004, 0.08]},
        "selected": {"tournament": pick, "min_kl": {**pick, "iteration": 80}},
        "effect_checks": [
            {"check": "Spearman(KL, iteration) <= -0.8", "value": -0.95, "threshold": -0.8,
             "ok": True},
            {"check": "Pass@8 gain >= 0.01", "value": 0.004, "threshold": 0.01, "ok": False}],
    }
    print_summary("figure1", results, tmp_path)
    out = capsys.readouterr().out
    assert "KL     1 -> 0.3" in out and "Cov_8  0.04 -> min 0.004 -> 0.08" in out
    assert "tournament" in out and "min_kl" in out
    assert "effect checks: 1/2 hold" in out
    assert "[pass] Spearman(KL, iteration) <= -0.8: value -0.95, threshold -0.8" in out
    assert "[FAIL] Pass@8 gain >= 0.01: value 0.004, threshold 0.01" in out
    assert out.strip().splitlines()[-1] == f"report:  {tmp_path / 'report.html'}"


def test_profile_checks_n_before_reading_the_table(tmp_path: Path, capsys) -> None:
    result = cli(capsys, "profile", str(tmp_path / "never-read.parquet"), "--n", "0.5")
    assert result.returncode == 2 and "N must be >= 1" in result.stderr, result.stderr


def test_a_candidate_with_decoding_settings_does_not_end_the_model_list() -> None:
    import typer

    from lmcoverage.commands._options import use_multi_value_options

    app = typer.Typer()
    seen: dict[str, list[str]] = {}

    @app.command()
    def pick(model: list[str] = typer.Option(..., "--model"),
             set_: list[str] = typer.Option([], "--set")) -> None:
        seen.update(model=model, set=set_)

    @app.command()
    def other() -> None:  # two commands, so `pick` is a subcommand as in the real CLI
        pass

    command = use_multi_value_options(typer.main.get_command(app))
    command.main(["pick", "--model", "m1@temperature=0.5,top_p=0.9", "m2", "m3@top_k=4",
                  "--set", "steps=3", "lr=0.1"], standalone_mode=False)
    assert seen == {"model": ["m1@temperature=0.5,top_p=0.9", "m2", "m3@top_k=4"],
                    "set": ["steps=3", "lr=0.1"]}
