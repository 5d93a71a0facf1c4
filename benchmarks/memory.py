"""Peak memory of ``lmcoverage score --data`` against the number of input rows (issue: it must not
grow with the input).

Run from the repository root (numbers in ``memory.md``)::

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/memory.py \\
        --rows 2000,20000,200000

Each size is one ``lmcoverage score`` process on a tiny random Llama (Figure 2 task tokenizer)
over Figure 2 rows (text prompt and response, cycled from 2,000 drawn problems); peak RSS and CPU
seconds and wall seconds are those ``/usr/bin/time`` reports for that process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from lmcoverage.io import write_jsonl
    from lmcoverage.models.hf import save
    from lmcoverage.tasks import get_task
    from tiny_llama import tiny_llama

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="2000,20000,200000")
    args = parser.parse_args()
    task = get_task("figure2-h4")
    base = [task.to_row(p) for p in task.sample(2000, seed=0)]
    base = [{"prompt": r["prompt"], "response": r["response"]} for r in base]
    print(f"load: {os.getloadavg()}  {time.strftime('%H:%M:%S')}")
    print("| rows | JSONL MB | peak RSS MiB | wall s | CPU s | KiB per row above the first |")
    print("|---|---|---|---|---|---|")
    first = None
    peaks: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        model = save(tiny_llama(task.vocab_size, task.max_length, seed=0), Path(tmp) / "m",
                     tokenizer=task.tokenizer())
        for n in (int(x) for x in args.rows.split(",")):
            data = Path(tmp) / f"rows{n}.jsonl"
            write_jsonl(data, [base[i % len(base)] for i in range(n)])
            cmd = [sys.executable, "-m", "lmcoverage", "score", "--model", str(model), "--data",
                   str(data), "--out", str(Path(tmp) / f"s{n}.parquet"), "--no-progress",
                   "--device", "cpu"]
            code = subprocess.run(["/usr/bin/time", "-f", "%M %U %S %e", *cmd],
                                  capture_output=True, text=True)
            if code.returncode != 0:
                print(code.stderr[-2000:])
                raise SystemExit(1)
            rss_kb, user, system, wall = code.stderr.strip().splitlines()[-1].split()
            rss = int(rss_kb) / 1024
            first = first or (n, rss)
            per_row = ("" if n == first[0] else
                       f"{(rss - first[1]) * 1024 / (n - first[0]):.2f}")
            peaks.append(rss)
            print(f"| {n:,} | {data.stat().st_size / 1e6:.1f} | {rss:.0f} | {float(wall):.1f} | "
                  f"{float(user) + float(system):.1f} | {per_row} |", flush=True)
            data.unlink()
    print(f"load after: {os.getloadavg()}  {time.strftime('%H:%M:%S')}")
    if len(peaks) > 2:
        print(f"peak RSS, largest / second size: {peaks[-1] / peaks[1]:.2f}x")


if __name__ == "__main__":
    main()
