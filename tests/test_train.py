"""Training loop: response-only loss, data modes, checkpoints, SIGKILL + resume determinism, CLI."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lmcoverage.cli import main
from lmcoverage.errors import InputError
from lmcoverage.tasks import get_task
from lmcoverage.train import TrainConfig, config_from_preset, list_checkpoints, train
from lmcoverage.train.loop import BatchSource, batch_loss, collate, length_chunks, response_nll

TASK_OPTIONS = {"layers": 2, "nodes_per_layer": 2, "node_range": 12}


def small_task():
    """figure1-finetune at 2 layers of 2 nodes: 4 valid paths, prompts of ~20 tokens."""
    return get_task("figure1-finetune", **TASK_OPTIONS)


def tiny_config(**overrides) -> TrainConfig:
    base = {"steps": 12, "batch_size": 4, "checkpoint_every": 4, "seed": 3,
            "model_overrides": {"n_layer": 1, "n_embd": 16, "n_head": 2}}
    return config_from_preset("tiny", **{**base, **overrides})


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_collate_left_aligned_and_loss_is_response_only() -> None:
    from lmcoverage.models.gpt import build_gpt

    task = get_task("figure2-h4", nodes_per_layer=2, node_range=16)
    problems = task.sample(3, seed=0) + get_task("figure2-h4", nodes_per_layer=2, node_range=16,
                                                 class_weights={3: 1}).sample(2, seed=1)
    ids, targets, first = collate(problems, task.pad_token_id)
    assert first == min(len(p.prompt_ids) for p in problems)
    for row, p in enumerate(problems):
        k = len(p.prompt_ids)
        seq = list(p.prompt_ids) + list(p.response_ids)
        assert ids[row, :len(seq)].tolist() == seq  # positions start at 0 for every row
        assert (ids[row, len(seq):] == task.pad_token_id).all()
        tgt = targets[row].tolist()
        assert [t for t in tgt if t != -100] == list(p.response_ids)
        assert tgt[k - first] == p.response_ids[0]
    model = build_gpt("tiny", task.vocab_size, task.max_length, seed=0)
    model.eval()
    with torch.no_grad():
        n_resp = sum(len(p.response_ids) for p in problems)
        mean_loss = float(response_nll(model, ids, targets, first)) / n_resp
        # Reference: each sequence alone, full logits, mean over all response tokens.
        total, count = 0.0, 0
        for p in problems:
            seq = torch.tensor([list(p.prompt_ids) + list(p.response_ids)])
            logp = torch.log_softmax(model(seq).logits[0, :-1].double(), -1)
            k = len(p.prompt_ids)
            for pos, tok in enumerate(p.response_ids):
                total -= float(logp[k - 1 + pos, tok])
                count += 1
    assert mean_loss == pytest.approx(total / count, rel=1e-5)
    # Length-bucketed batches give the same mean loss and gradient as one padded batch.
    chunked, _ = batch_loss(model, problems, task.pad_token_id, "cpu", backward=True)
    grads = [q.grad.clone() for q in model.parameters()]
    model.zero_grad()
    whole = response_nll(model, ids, targets, first) / n_resp
    whole.backward()
    assert chunked == pytest.approx(float(whole.detach()), rel=1e-5)
    for g, q in zip(grads, model.parameters(), strict=True):
        torch.testing.assert_close(g, q.grad, rtol=1e-4, atol=1e-6)


def test_length_chunks_partition_rows() -> None:
    lengths = [112] * 28 + [150, 160, 131, 158]
    groups = length_chunks(lengths, max_chunks=4, overhead=256)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert sorted(groups[0]) == list(range(28))  # the 28 short rows ride together
    for a, b in itertools.pairwise(groups):
        assert max(lengths[i] for i in a) < min(lengths[i] for i in b)
    assert length_chunks([5, 5, 5]) == [[0, 1, 2]]
    assert len(length_chunks([10, 1000], overhead=0)) == 2
    assert len(length_chunks([10, 11], overhead=256)) == 1


def test_batch_sources_are_pure_functions_of_step() -> None:
    task = small_task()
    fresh = BatchSource(task, tiny_config())
    assert fresh(5) == BatchSource(task, tiny_config())(5)
    assert fresh(5) != fresh(6)
    fixed = BatchSource(task, tiny_config(dataset_size=10))
    epoch = [p for step in range(5) for p in fixed(step)]  # 20 draws = 2 epochs of 10
    assert len({id(p) for p in epoch[:10]}) == 10  # each problem once per epoch
    assert {id(p) for p in epoch[:10]} == {id(p) for p in epoch[10:]}
    assert [id(p) for p in epoch[:10]] != [id(p) for p in epoch[10:]]
    again = BatchSource(task, tiny_config(dataset_size=10))
    assert [again(s) for s in (4, 0)] == [fixed(4), fixed(0)]


def test_training_lowers_the_loss(tmp_path: Path) -> None:
    task = get_task("figure2-h4", nodes_per_layer=2, node_range=16)
    config = config_from_preset("tiny", steps=150, batch_size=16, checkpoint_every=0,
                                lr=1e-2, log_every=25)
    final = train(task, config, tmp_path / "run", progress=False)
    history = json.loads((final / "trainer_state.json").read_text())["history"]
    assert [h[0] for h in history] == [25, 50, 75, 100, 125, 150]
    assert history[-1][1] < 0.6 * history[0][1]
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [150]


def test_checkpoints_layout_and_tokenizer(tmp_path: Path) -> None:
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer

    task = small_task()
    out = tmp_path / "run"
    final = train(task, tiny_config(save_initial=True), out, progress=False)
    steps = [s for s, _ in list_checkpoints(out)]
    assert steps == [0, 4, 8, 12]
    # Only the newest checkpoint keeps the optimizer state; all are model directories.
    for step, path in list_checkpoints(out):
        assert (path / "optimizer.safetensors").is_file() == (step == 12)
        assert json.loads((path / "trainer_state.json").read_text())["step"] == step
        load_causal_lm(path)
    assert_same_weights(final, out / "checkpoint-12")
    assert final.is_symlink() and final.resolve() == (out / "checkpoint-12").resolve()
    assert os.readlink(final) == "checkpoint-12"  # relative: the run directory can move
    tok = load_tokenizer(final)
    p = task.sample(1, seed=9)[0]
    assert tok(task.prompt_text(p))["input_ids"] == list(p.prompt_ids)
    meta = json.loads((out / "run.json").read_text())
    assert meta["task"] == {"name": "figure1-finetune", "options": TASK_OPTIONS}
    assert meta["config"]["steps"] == 12
    assert meta["model"]["from"] == "lmcoverage GPT preset 'tiny'"
    assert meta["model"]["model_type"] == "gpt2" and meta["model"]["dtype"] == "float32"
    # Finished run + resume: returns final without training again.
    mtime = (final / "model.safetensors").stat().st_mtime_ns
    assert train(task, tiny_config(save_initial=True), out, resume=True, progress=False) == final
    assert (final / "model.safetensors").stat().st_mtime_ns == mtime


def test_fine_tuning_from_a_model_directory(tmp_path: Path) -> None:
    task = small_task()
    pre = train(get_task("figure1-pretrain", **TASK_OPTIONS), tiny_config(steps=4),
                tmp_path / "pre", progress=False)
    out = tmp_path / "ft"
    train(task, tiny_config(steps=4, save_initial=True, lr=1e-4), out, init_from=pre,
          progress=False)
    assert_same_weights(out / "checkpoint-0", pre)
    assert not torch.equal(weights(out / "final")["transformer.wte.weight"],
                           weights(pre)["transformer.wte.weight"])
    meta = json.loads((out / "run.json").read_text())
    assert meta["init_from"] == str(pre.resolve())
    assert meta["model"]["from"] == str(pre.resolve())  # the real model, not a GPT preset
    assert "model_preset" not in meta["config"]
    bigger = get_task("figure1-finetune", layers=2, nodes_per_layer=2, node_range=40)
    with pytest.raises(InputError, match="vocabulary"):
        train(bigger, tiny_config(steps=2), tmp_path / "ft2", init_from=pre, progress=False)
    # The failed start left only run.json: the same directory can be reused at once.
    train(task, tiny_config(steps=2), tmp_path / "ft2", init_from=pre, progress=False)
    with pytest.raises(InputError, match="no config.json"):
        train(task, tiny_config(steps=2), tmp_path / "ft3", init_from=tmp_path, progress=False)


_KILL_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from lmcoverage.tasks import get_task
from lmcoverage.train import config_from_preset, train
task = get_task("figure1-finetune", layers=2, nodes_per_layer=2, node_range=12)
config = config_from_preset("tiny", steps={steps}, batch_size=4, checkpoint_every=5, seed=3,
                            dataset_size=30, model_overrides={{"n_layer": 1, "n_embd": 16,
                            "n_head": 2}})
train(task, config, sys.argv[1], resume=True, progress=False)
"""


def test_sigkill_and_resume_is_bit_identical(tmp_path: Path) -> None:
    steps = 150
    script = _KILL_SCRIPT.format(steps=steps)
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script, str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint-15").exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "training subprocess too slow"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "final").exists(), "the run finished before it was killed"
    # Every checkpoint on disk is complete; resume picks up the newest with optimizer state.
    done = [s for s, _ in list_checkpoints(killed)]
    assert done and done[-1] < steps
    (killed / ".partial-checkpoint-999").mkdir()  # as if killed while writing
    config = config_from_preset("tiny", steps=steps, batch_size=4, checkpoint_every=5, seed=3,
                                dataset_size=30,
                                model_overrides={"n_layer": 1, "n_embd": 16, "n_head": 2})
    task = small_task()
    train(task, config, killed, resume=True, progress=False)
    assert not (killed / ".partial-checkpoint-999").exists()
    whole = tmp_path / "whole"
    train(task, config, whole, progress=False)
    assert_same_weights(killed / "final", whole / "final")
    assert [s for s, _ in list_checkpoints(killed)] == [s for s, _ in list_checkpoints(whole)]
    for step in (done[-1], steps // 2):
        assert_same_weights(killed / f"checkpoint-{step}", whole / f"checkpoint-{step}")
    hist = [json.loads((d / "final" / "trainer_state.json").read_text())["history"]
            for d in (killed, whole)]
    assert hist[0] == hist[1]


def test_bad_run_directories_and_configs(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    task = small_task()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "x.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a training run directory"):
        train(task, tiny_config(), other, progress=False)
    assert (other / "x.txt").read_text() == "keep me"
    run = tmp_path / "run"
    train(task, tiny_config(steps=2), run, progress=False)
    # the same command re-run resumes (here: finished, nothing to do); another option is refused
    assert train(task, tiny_config(steps=2), run, progress=False) == run / "final"
    with pytest.raises(InputError, match="--lr differs from the run"):
        train(task, tiny_config(steps=2, lr=0.5), run, progress=False)
    with pytest.raises(InputError, match="has already trained 2 steps; give --steps >= that"):
        train(task, tiny_config(steps=1), run, resume=True, progress=False)
    import lmcoverage.train.loop as loop

    spanning = tmp_path / "spanning"
    monkeypatch.setattr(loop, "schedule_of", lambda c: {"lr": "cosine", "total_steps": c.steps})
    train(task, tiny_config(steps=2), spanning, progress=False)
    with pytest.raises(InputError, match="schedule of the run .* spans its 2 steps"):
        train(task, tiny_config(steps=3), spanning, resume=True, progress=False)
    monkeypatch.undo()
    with pytest.raises(InputError, match="unknown preset 'huge'"):
        config_from_preset("huge")
    with pytest.raises(InputError, match="unknown training option 'epochs'"):
        config_from_preset("tiny", epochs=3)
    with pytest.raises(InputError, match="batch_size must be"):
        tiny_config(batch_size=0)
    with pytest.raises(InputError, match="lr must be"):
        tiny_config(lr=-1.0)
    with pytest.raises(InputError, match="unknown model preset"):
        tiny_config(model_preset="huge")
    with pytest.raises(InputError, match="device must be"):
        train(task, tiny_config(), tmp_path / "dev", device="abacus", progress=False)


def test_train_cli(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    args = ["train", "figure1-finetune", "--preset", "tiny", "--out", str(out), "--steps", "4",
            "--checkpoint-every", "2", "--seed", "1", "--batch-size", "4", "--no-progress"]
    for k, v in TASK_OPTIONS.items():
        args += ["--task-option", f"{k}={v}"]
    assert main(args) == 0
    assert [s for s, _ in list_checkpoints(out)] == [2, 4]
    assert (out / "final" / "model.safetensors").is_file()
    assert main(args + ["--resume"]) == 0
    capsys.readouterr()
    for bad, message in (
        (["train", "figure9", "--out", str(tmp_path / "a")], "unknown task 'figure9'"),
        (["train", "figure2-h4", "--preset", "huge", "--out", str(tmp_path / "b")],
         "unknown preset 'huge'"),
        ([*args, "--lr", "0.5"], "--lr differs from the run"),
    ):
        assert main(bad) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_resume_with_more_steps_extends_a_finished_run(tmp_path: Path) -> None:
    """A finished 4-step run resumed with --steps 8 reaches the weights of an 8-step run."""
    task = small_task()
    out = tmp_path / "run"
    train(task, tiny_config(steps=4, checkpoint_every=2), out, progress=False)
    final = train(task, tiny_config(steps=8, checkpoint_every=2), out, resume=True,
                  progress=False)
    assert os.readlink(final) == "checkpoint-8"
    whole = train(task, tiny_config(steps=8, checkpoint_every=2), tmp_path / "whole",
                  progress=False)
    assert_same_weights(final, whole)
    assert json.loads((out / "run.json").read_text())["config"]["steps"] == 8
    hist = [json.loads((f / "trainer_state.json").read_text())["history"] for f in (final, whole)]
    assert hist[0] == hist[1]
    assert [s for s, _ in list_checkpoints(out)] == [2, 4, 6, 8]


def test_bfloat16_training_saves_bfloat16(tmp_path: Path) -> None:
    from safetensors import safe_open

    from lmcoverage.models.hf import checkpoint_dtype

    out = tmp_path / "run"
    final = train(small_task(), tiny_config(steps=2, dtype="bfloat16"), out, progress=False)
    with safe_open(str(final / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    assert checkpoint_dtype(final) == "bfloat16"
    assert json.loads((out / "run.json").read_text())["model"]["dtype"] == "bfloat16"
    with pytest.raises(InputError, match="dtype must be one of"):
        tiny_config(dtype="float8")
