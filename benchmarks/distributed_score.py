"""Speed-up of ``lmcoverage score --executor ray`` with 2 workers over 1 (SmolLM2-135M shape).

A random Llama with SmolLM2-135M's configuration (30 layers, width 576, 9 heads, 3 KV heads,
49,152-token vocabulary; speed does not depend on the weights) scores K responses for each of
P prompts (token ids given, so no tokenizer work). Runs in one process, one Ray instance: a
warm-up (starts Ray and two worker processes; not compared), the local executor (no sharding),
Ray with one shard (one worker) and Ray with two shards (two workers, one per core); every run
loads the model in each of its workers, as a real run does. Ray binds to the host's address
unless it has none, so run it in a loopback-only network namespace:

    unshare -n sh -c 'ip link set lo up && RAY_DISABLE_USAGE_STATS=1 OMP_NUM_THREADS=1 \
        HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distributed_score.py --prompts 16'

Prints per run its wall seconds, the CPU seconds of the Ray worker processes (from /proc) and
the load average after it; then the ratios and this process's own CPU seconds (the local run's
work happens in this process).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _model(root: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    from lmcoverage.models.hf import save
    from lmcoverage.tasks.tokenizer import build_tokenizer

    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                         num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         max_position_embeddings=8192, tie_word_embeddings=True,
                         bos_token_id=None, eos_token_id=None, pad_token_id=None)
    torch.manual_seed(0)
    tokenizer = build_tokenizer(["<pad>", "<unk>", *(f"t{i}" for i in range(49150))])
    return save(LlamaForCausalLM(config), root / "smollm2-shape", tokenizer=tokenizer)


def _ray_workers_cpu() -> float:
    """CPU seconds (user + system) used so far by this machine's Ray worker processes."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if b"default_worker.py" not in cmdline and not cmdline.startswith(b"ray::"):
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--responses", type=int, default=4)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--response-tokens", type=int, default=24)
    args = parser.parse_args()

    from lmcoverage.cli import main as cli
    from lmcoverage.io import write_jsonl
    from lmcoverage.scoretable import ScoreTable

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="lmcoverage-bench-") as tmp:
        root = Path(tmp)
        model = _model(root)
        rows = []
        for _ in range(args.prompts):
            prompt = rng.integers(2, 49152, args.prompt_tokens).tolist()
            for _ in range(args.responses):
                response = rng.integers(2, 49152, args.response_tokens).tolist()
                rows.append({"prompt_ids": prompt, "response_ids": response,
                             "logp_data": -1.0})
        write_jsonl(root / "data.jsonl", rows)
        runs = {"ray warm-up": ["--executor", "ray", "--shards", "2"], "local": [],
                "ray, 1 worker": ["--executor", "ray", "--shards", "1"],
                "ray, 2 workers": ["--executor", "ray", "--shards", "2"]}
        print(f"{args.prompts} prompts x {args.responses} responses, "
              f"{args.prompt_tokens}+{args.response_tokens} tokens; load before: "
              f"{os.getloadavg()}")
        walls, tables = {}, {}
        for name, extra in runs.items():
            out = root / f"{name.replace(', ', '-').replace(' ', '')}.parquet"
            start, workers_cpu = time.perf_counter(), _ray_workers_cpu()
            assert cli(["score", "--model", str(model), "--data", str(root / "data.jsonl"),
                        "--out", str(out), "--no-progress", "--device", "cpu", *extra]) == 0
            walls[name] = time.perf_counter() - start
            tables[name] = ScoreTable.read_parquet(out).matrix("loglik")
            print(f"{name:16s} wall {walls[name]:7.1f} s   Ray workers' CPU "
                  f"{_ray_workers_cpu() - workers_cpu:7.1f} s   load {os.getloadavg()}")
        diff = max(float(np.abs(t - tables["local"]).max()) for t in tables.values())
        # The warm-up run starts Ray and its two worker processes (imports), unmeasured.
        print(f"max |loglik - local|: {diff:.2e} nats")
        print(f"speed-up, 2 workers over 1: {walls['ray, 1 worker'] / walls['ray, 2 workers']:.2f}x"
              f"; 2 Ray workers over local: {walls['local'] / walls['ray, 2 workers']:.2f}x")
        cpu = os.times()
        print(f"this process: user {cpu.user:.1f} s, system {cpu.system:.1f} s")


if __name__ == "__main__":
    main()
