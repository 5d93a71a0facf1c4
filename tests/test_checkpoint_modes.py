"""Every file and folder of a ``train`` run directory gets the mode a plain ``open``/``mkdir``
would give (umask-respecting, :func:`lmcoverage.io.usual_mode`), the optimizer state too:
safetensors writes 0600 files, the rest of the directory 0644."""

from __future__ import annotations

from pathlib import Path

from lmcoverage.cli import main
from lmcoverage.experiments.real_lm_task import make_problems, tiny_llama
from lmcoverage.io import usual_mode, write_jsonl
from lmcoverage.train.checkpoint import STATE_TENSORS


def test_a_run_directory_has_one_file_mode(tmp_path: Path) -> None:
    llama = tiny_llama(tmp_path / "llama", seed=0)
    rows = [{"prompt": r["prompt"], "response": r["response"]} for r in make_problems(4, seed=3)]
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    out = tmp_path / "run"
    assert main(["train", "--model", str(llama), "--data", str(tmp_path / "pairs.jsonl"),
                 "--out", str(out), "--steps", "2", "--batch-size", "2", "--checkpoint-every", "1",
                 "--no-progress"]) == 0
    entries = [p for p in out.rglob("*") if not p.is_symlink()]
    assert any(p.name == STATE_TENSORS for p in entries), sorted(map(str, entries))
    odd = {str(p.relative_to(out)): oct(p.stat().st_mode & 0o777) for p in entries
           if p.stat().st_mode & 0o777 != usual_mode(directory=p.is_dir())}
    assert odd == {}, odd
