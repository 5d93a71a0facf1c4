"""Regenerate this folder's lm-evaluation-harness ``--log_samples`` fixture (run from the
repository root with lm-eval installed: ``.venv/bin/python tests/data/lm_eval/make_fixture.py``).

Two tiny random Llamas (``tests/tiny_llama.py``, seeds 0 and 1) with a word-level tokenizer are
saved as ``model-0/`` and ``model-1/``; lm-eval runs its ``loglikelihood`` requests of a
4-question multiple-choice task (``tiny_mc.yaml`` over ``docs.jsonl``) on each, and the
output folders are copied here as ``out-SEED/`` (lm-eval's own files, unedited: the samples
file and the results file with its config).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

WORDS = ["<unk>", "<pad>", "<s>", "</s>", *(
    "the a cat dog sat on mat red blue is what colour sky grass green which animal barks "
    "meows answer question : ?").split()]

TASK = """task: tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {docs}
test_split: test
output_type: multiple_choice
doc_to_text: "question : {{{{question}}}} answer :"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
"""


def save_model(seed: int) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from tiny_llama import tiny_llama

    vocab = {w: i for i, w in enumerate(WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token="</s>")
    out = HERE / f"model-{seed}"
    tiny_llama(len(WORDS), 64, seed, eos=vocab["</s>"], pad=vocab["<pad>"]).save_pretrained(out)
    fast.save_pretrained(out)
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tasks = Path(tmp) / "tasks"
        tasks.mkdir()
        (tasks / "tiny_mc.yaml").write_text(TASK.format(docs=HERE / "docs.jsonl"))
        for seed in (0, 1):
            model = save_model(seed)
            out = Path(tmp) / f"out-{seed}"
            subprocess.run([
                sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
                f"pretrained={model},dtype=float32", "--tasks", "tiny_mc", "--include_path",
                str(tasks), "--log_samples", "--output_path", str(out), "--device", "cpu",
                "--batch_size", "4"], check=True)
            shutil.rmtree(HERE / f"out-{seed}", ignore_errors=True)
            shutil.copytree(out, HERE / f"out-{seed}")


if __name__ == "__main__":
    main()
