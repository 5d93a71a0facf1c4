"""Shards are reused only by the run they belong to (#19 item 1): a stray shard without a
manifest, or one from another seed, is never merged; a second run on the same output is
refused with one line naming the running one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lmcoverage.engine.sharded as dist
from lmcoverage.cli import main
from lmcoverage.io import write_jsonl
from lmcoverage.sharding import lock_path, shard_dir


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from test_real_models import _tiny

    root = tmp_path_factory.mktemp("integrity")
    model = _tiny(root / "m", 0)
    prompts = root / "p.jsonl"
    write_jsonl(prompts, [{"prompt": p} for p in ("a b", "c", "a", "b b", "c a", "a")])
    return model, prompts


def _sample(setup: tuple[Path, Path], out: Path, seed: int, *extra: str) -> int:
    model, prompts = setup
    return main(["sample", "--model", str(model), "--data", str(prompts), "--n", "2",
                 "--batch-size", "4", "--max-new-tokens", "4", "--seed", str(seed), "--out",
                 str(out), "--no-progress", "--device", "cpu", *extra])


def test_a_stray_shard_of_another_seed_is_never_merged(setup: tuple[Path, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    want = tmp_path / "want.jsonl"
    assert _sample(setup, want, 7) == 0
    out = tmp_path / "c.jsonl"
    real, calls = dist._sample_shard, []

    def interrupted_second(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(dist, "_sample_shard", interrupted_second)
    capsys.readouterr()
    assert _sample(setup, out, 0, "--shards", "3") == 130  # seed 0: one shard kept
    err = capsys.readouterr().err.strip()  # #19 item 8: the resume command, not "no output"
    assert "\n" not in err and "1 finished shard(s) are kept; resume with: lmcoverage sample" \
        in err and "--shards 3" in err, err
    monkeypatch.setattr(dist, "_sample_shard", real)
    kept = list(shard_dir(out).glob("shard-*"))
    assert len(kept) == 1 and not lock_path(out).exists()
    # The failure of the issue: the manifest is gone, a seed-0 shard is left behind.
    (shard_dir(out) / "manifest.json").unlink()
    assert _sample(setup, out, 7, "--shards", "3") == 0
    assert out.read_bytes() == want.read_bytes()
    # With its manifest, a seed-0 shard is not read by a seed-7 run either.
    monkeypatch.setattr(dist, "_sample_shard", interrupted_second)
    calls.clear()
    assert _sample(setup, out, 0, "--shards", "3") == 130
    monkeypatch.setattr(dist, "_sample_shard", real)
    assert _sample(setup, out, 7, "--shards", "3") == 0
    assert out.read_bytes() == want.read_bytes()
    assert not shard_dir(out).exists() and not lock_path(out).exists()


def test_a_second_run_on_the_same_output_is_refused(setup: tuple[Path, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from lmcoverage.sharding import lock_output; lock_output(Path(sys.argv[1])); "
         "print('locked', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert _sample(setup, out, 0, "--shards", "2") == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and f"pid {holder.pid}" in err and "another run" in err, err
        assert not out.exists() and not shard_dir(out).exists()
    finally:
        holder.kill()
        holder.wait()
    # The holder died (as after kill -9): its lock went with it.
    assert _sample(setup, out, 0, "--shards", "2") == 0 and out.exists()
    assert not lock_path(out).exists()
