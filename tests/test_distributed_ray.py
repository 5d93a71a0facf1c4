"""``score``/``sample --executor ray``: the same table as the local executor (same rows, same
order; with the same ``--shards``, the same bits) and the same samples file, on a local Ray
instance in a loopback-only network namespace with usage statistics off (as for the figure
executor)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("ray")

from lmcoverage.io import write_jsonl  # noqa: E402
from lmcoverage.models.gpt import build_gpt  # noqa: E402
from lmcoverage.models.hf import save  # noqa: E402
from lmcoverage.tasks import get_task  # noqa: E402
from test_ray_executor import _loopback_namespace_works  # noqa: E402
from test_real_models import _tiny  # noqa: E402

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    from lmcoverage.cli import main
    from lmcoverage.scoretable import ScoreTable
    root = Path(sys.argv[1])
    def score(name, *extra):
        assert main(["score", "--model", str(root / "checkpoint-*"), "--data",
                     str(root / "data.jsonl"), "--out", str(root / name), "--no-progress",
                     *extra]) == 0, name
        return ScoreTable.read_parquet(root / name)
    local = score("local.parquet")
    local2 = score("local2.parquet", "--shards", "2")
    ray2 = score("ray2.parquet", "--executor", "ray", "--shards", "2")
    assert not (root / "ray2.parquet.shards").exists()
    for t in (local2, ray2):
        assert t.models == local.models
        assert np.array_equal(t.example_ids, local.example_ids)
        assert np.array_equal(t.example_column("group"), local.example_column("group"))
        assert np.allclose(t.matrix("loglik"), local.matrix("loglik"), rtol=1e-6, atol=1e-6)
    def sample(name, *extra):
        out = root / name
        assert main(["sample", "--model", str(root / "llama"), "--data", str(root / "p.jsonl"),
                     "--n", "2", "--batch-size", "4", "--max-new-tokens", "4", "--out",
                     str(out), "--no-progress", "--device", "cpu", *extra]) == 0, name
        return out.read_bytes()
    assert sample("local.jsonl") == sample("ray.jsonl", "--executor", "ray", "--shards", "2")
    print("SAME-BITS" if np.array_equal(ray2.matrix("loglik"), local2.matrix("loglik"))
          and np.array_equal(ray2.matrix("mass_correct"), local2.matrix("mass_correct"))
          else "DIFFERENT-BITS")
""")


@pytest.mark.skipif(not _loopback_namespace_works(),
                    reason="needs `unshare -n` (root or user namespaces) to keep Ray's traffic "
                           "on a loopback-only network namespace")
def test_ray_executor_scores_like_the_local_one(tmp_path: Path) -> None:
    task = get_task("figure2-h4")
    for step in (10, 20):
        model = build_gpt("tiny", task.vocab_size, task.max_length, seed=step)
        save(model, tmp_path / f"checkpoint-{step}", tokenizer=task.tokenizer())
    rows = [task.to_row(p) for p in task.sample(12, seed=3)]
    write_jsonl(tmp_path / "data.jsonl", rows + rows[:4])
    _tiny(tmp_path / "llama", 0)
    write_jsonl(tmp_path / "p.jsonl", [{"prompt": p} for p in ("a b", "c", "a", "b b", "c a")])
    script = tmp_path / "compare.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "RAY_DISABLE_USAGE_STATS": "1", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg"}
    cmd = f"ip link set lo up && exec {sys.executable} {script} {tmp_path}"
    proc = subprocess.run(["unshare", "-n", "sh", "-c", cmd], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SAME-BITS" in proc.stdout, proc.stdout[-2000:]
