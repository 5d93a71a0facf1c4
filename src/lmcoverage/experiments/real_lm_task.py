"""The real-LM case study's verifiable task: arithmetic word problems with integer answers.

Every problem is one sentence with two whole numbers and one operation (add, take away,
groups of), asked as ``Question : ... ? Answer :``; the gold response is the answer's digits
(checked by the ``number`` verifier). Words and punctuation are separated by spaces so a
word-level tokenizer covers the whole task: :func:`tiny_llama` builds a random Llama over
exactly these words for the ``test`` preset (no download).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

NAMES = ("Ana", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gus", "Hana")
ITEMS = ("apples", "books", "coins", "pens", "shells", "stamps")
MAX_OPERAND = 20
EOS = "<eos>"


def _templates() -> list[tuple[str, Any]]:
    """``(sentence with {name} {a} {b} {item}, answer(a, b))``; take-away keeps a >= b."""
    return [
        ("{name} has {a} {item} and gets {b} more . How many {item} does {name} have now ?",
         lambda a, b: a + b),
        ("{name} has {a} {item} and gives away {b} . How many {item} does {name} have left ?",
         lambda a, b: a - b),
        ("{name} buys {a} boxes with {b} {item} in each box . How many {item} does {name} "
         "buy ?", lambda a, b: a * b),
    ]


def make_problems(n: int, seed: int, prefix: str = "p") -> list[dict[str, Any]]:
    """``n`` rows ``{"problem", "prompt", "answer", "response"}`` (response: the gold answer).

    Same seed, same problems. ``problem`` ids are ``{prefix}{i}``.
    """
    rng = np.random.default_rng(seed)
    templates = _templates()
    rows = []
    for i in range(n):
        text, answer = templates[int(rng.integers(len(templates)))]
        a, b = (int(v) for v in rng.integers(1, MAX_OPERAND + 1, size=2))
        if answer(2, 1) == 1:  # take-away: never below zero
            a, b = max(a, b), min(a, b)
        name, item = NAMES[int(rng.integers(len(NAMES)))], ITEMS[int(rng.integers(len(ITEMS)))]
        question = text.format(name=name, a=a, b=b, item=item)
        value = int(answer(a, b))
        rows.append({"problem": f"{prefix}{i}", "prompt": f"Question : {question} Answer :",
                     "answer": value, "response": str(value)})
    return rows


def vocabulary() -> list[str]:
    """Every word of the task (pad, unk and EOS first), for a word-level tokenizer."""
    words: set[str] = {"Question", ":", "Answer", ".", "?", *NAMES, *ITEMS}
    for text, _ in _templates():
        words.update(w for w in text.split() if not w.startswith("{"))
    numbers = [str(v) for v in range(MAX_OPERAND * MAX_OPERAND + 1)]
    return ["<pad>", "<unk>", EOS, *sorted(words), *numbers]


def tiny_llama(out_dir: Path, seed: int = 0) -> Path:
    """A random 2-layer Llama with a word-level tokenizer over :func:`vocabulary`, saved to
    ``out_dir`` (seconds on a CPU; the ``test`` preset's base model)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lmcoverage.models.hf import save
    from lmcoverage.tasks.tokenizer import build_tokenizer

    words = vocabulary()
    tokenizer = build_tokenizer(words)
    tokenizer.eos_token = EOS
    config = LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64, bos_token_id=None,
                         eos_token_id=words.index(EOS), pad_token_id=0)
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's RNG is untouched
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return save(model, out_dir, tokenizer=tokenizer)
