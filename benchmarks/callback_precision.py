"""CoverageCallback under TRL SFTTrainer defaults (bf16=True) on SmolLM2-135M: its tables
against `lmcoverage score` of the saved checkpoint, with the default dtype="float32" and with
dtype="auto" (scoring under the Trainer's autocast, as the callback did before it scored in
float32).

Usage: python benchmarks/callback_precision.py MODEL_DIR OUT_DIR (MODEL_DIR: SmolLM2-135M as a
float32 safetensors directory, e.g. from `lmcoverage convert`). One SFT step (lr 1e-5, batch
4) on 16 factual pairs, evaluated and saved at step 1.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

FACTS = [("The capital of France is", " Paris."), ("Water freezes at", " zero degrees Celsius."),
         ("The largest planet is", " Jupiter."), ("Two plus two equals", " four."),
         ("The sun rises in the", " east."), ("Bees make", " honey."),
         ("The opposite of hot is", " cold."), ("A week has", " seven days."),
         ("Shakespeare wrote", " Hamlet and Macbeth."),
         ("The chemical symbol for gold is", " Au."),
         ("Light travels faster than", " sound."), ("The Pacific is an", " ocean."),
         ("Penguins live mostly in the", " southern hemisphere."),
         ("A triangle has", " three sides."), ("Ice is the solid form of", " water."),
         ("The heart pumps", " blood through the body.")]


def main(model_dir: Path, tmp: Path) -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from lmcoverage.cli import main as cli
    from lmcoverage.integrations import CoverageCallback
    from lmcoverage.io import write_jsonl
    from lmcoverage.scoretable import ScoreTable

    torch.set_num_threads(1)
    tmp.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(model_dir)
    ref = tmp / "reference.jsonl"
    write_jsonl(ref, [{"prompt": p, "response": r, "logp_data": -1.0} for p, r in FACTS])
    rows = []
    for p, r in FACTS:
        pi = tok(p)["input_ids"]
        ri = tok(r, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        rows.append({"input_ids": pi + ri, "completion_mask": [0] * len(pi) + [1] * len(ri)})
    data = Dataset.from_list(rows)
    args = SFTConfig(output_dir=str(tmp / "run"), max_steps=1, per_device_train_batch_size=4,
                     learning_rate=1e-5, eval_strategy="steps", eval_steps=1, save_steps=1,
                     logging_steps=1, report_to=[], use_cpu=True, disable_tqdm=True, seed=0)
    print("SFTConfig bf16 =", args.bf16)
    exact = CoverageCallback(ref, ns=(2, 4))
    auto = CoverageCallback(ref, ns=(2, 4), dtype="auto")
    t0, c0 = time.time(), time.process_time()
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir,
                                                                    dtype=torch.float32),
                         args=args, train_dataset=data, eval_dataset=data.select(range(4)),
                         processing_class=tok, callbacks=[exact, auto])
    trainer.train()
    print(f"train + callbacks: wall {time.time() - t0:.1f} s, CPU {time.process_time() - c0:.1f} s")
    scores = tmp / "s.parquet"
    assert cli(["score", "--model", str(tmp / "run" / "checkpoint-1"), "--data", str(ref),
                "--out", str(scores), "--no-progress", "--device", "cpu"]) == 0
    want = ScoreTable.read_parquet(scores).matrix()[0]
    for name, cb in (("float32 (default)", exact), ("auto (under the autocast)", auto)):
        d = np.abs(cb.tables[1].matrix()[0] - want)
        print(f"{name}: max |callback - score| {d.max():.3g} nats, mean {d.mean():.3g}, "
              f"rows > 1e-4: {(d > 1e-4).sum()}/{len(d)}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
