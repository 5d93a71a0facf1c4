"""The real-LM study's verifiable task: arithmetic questions asked in a chat, replied in digits.

Three kinds of question, each one sentence with two whole numbers: ``add`` (gets b more) and
``sub`` (gives away b, a >= b), operands 1..20, and ``mult`` (a boxes of b), operands 2..9.
Groups: ``add-sub`` and ``mult``. A prompt is a chat (``messages``): a system line asking for
the number only, three solved turns (one of each kind, :data:`SHOTS`), then the question; the
reply is the answer's digits followed by the end-of-turn token. The verifier
(:func:`first_line`) reads the reply's first line.

Words and punctuation are separated by spaces so a word-level tokenizer covers the whole task:
:func:`tiny_llama` builds a random Llama over exactly these words, with a chat template, for the
``test`` preset (no download).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

NAMES = ("Ana", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gus", "Hana")
ITEMS = ("apples", "books", "coins", "pens", "shells", "stamps")
KINDS = ("add", "sub", "mult")
SYSTEM = "Answer with the number only ."
#: End-of-turn token of the test preset's word-level chat template.
END_OF_TURN = "<|im_end|>"

_TEMPLATES = {
    "add": "{name} has {a} {item} and gets {b} more . How many {item} does {name} have now ?",
    "sub": "{name} has {a} {item} and gives away {b} . How many {item} does {name} have left ?",
    "mult": "{name} buys {a} boxes with {b} {item} in each box . How many {item} does {name} "
            "buy ?",
}
_OPERANDS = {"add": (1, 20), "sub": (1, 20), "mult": (2, 9)}
#: The three solved turns of every prompt: (kind, name, a, b, item).
SHOTS = (("add", "Ana", 3, 5, "apples"), ("sub", "Ben", 12, 4, "coins"),
         ("mult", "Cleo", 6, 7, "pens"))


def _answer(kind: str, a: int, b: int) -> int:
    return a + b if kind == "add" else a - b if kind == "sub" else a * b


def question(kind: str, name: str, a: int, b: int, item: str) -> str:
    """The question's sentence."""
    return _TEMPLATES[kind].format(name=name, a=a, b=b, item=item)


def messages(text: str, shots: bool = True) -> list[dict[str, str]]:
    """The chat of one question: system line, the solved turns (if ``shots``), the question."""
    chat = [{"role": "system", "content": SYSTEM}]
    if shots:
        for kind, name, a, b, item in SHOTS:
            chat += [{"role": "user", "content": question(kind, name, a, b, item)},
                     {"role": "assistant", "content": str(_answer(kind, a, b))}]
    return [*chat, {"role": "user", "content": text}]


def make_problems(counts: int | dict[str, int], seed: int, prefix: str = "p",
                  shots: bool = True, operands: dict[str, Any] | None = None
                  ) -> list[dict[str, Any]]:
    """Rows ``{"problem", "messages", "prompt", "answer", "response", "kind", "group"}``.

    ``counts``: per kind the number of questions (interleaved in a seeded order), or a total
    with kinds drawn uniformly. Same seed, same rows. ``messages`` is the chat
    (:func:`messages`), ``prompt`` the question alone (for plain-text prompts), ``response``
    the gold reply (the digits); ``problem`` ids are ``{prefix}{i}``. ``operands``: per kind
    ``(low, high)`` instead of the defaults (1..20; 2..9 for mult).
    """
    rng = np.random.default_rng(seed)
    if isinstance(counts, int):
        kinds = [KINDS[int(k)] for k in rng.integers(len(KINDS), size=counts)]
    else:
        listed = [kind for kind in KINDS for _ in range(counts.get(kind, 0))]
        kinds = [listed[int(k)] for k in rng.permutation(len(listed))]
    rows = []
    for i, kind in enumerate(kinds):
        low, high = (operands or _OPERANDS).get(kind, _OPERANDS[kind])
        a, b = (int(v) for v in rng.integers(low, high + 1, size=2))
        if kind == "sub":
            a, b = max(a, b), min(a, b)
        name, item = NAMES[int(rng.integers(len(NAMES)))], ITEMS[int(rng.integers(len(ITEMS)))]
        text, value = question(kind, name, a, b, item), _answer(kind, a, b)
        rows.append({"problem": f"{prefix}{i}", "messages": messages(text, shots),
                     "prompt": text, "answer": value, "response": str(value), "kind": kind,
                     "group": "mult" if kind == "mult" else "add-sub"})
    return rows


def first_line(row: dict[str, Any], response: str) -> bool:
    """The verifier: the reply's first line, stripped, is exactly the answer's digits."""
    lines = response.strip().splitlines()
    return bool(lines) and lines[0].strip() == str(row["answer"])


def vocabulary() -> list[str]:
    """Every word of the task's chats (pad, unk, EOS and the chat tokens first), for a
    word-level tokenizer."""
    words: set[str] = {*NAMES, *ITEMS, *SYSTEM.split(), "system", "user", "assistant"}
    for text in _TEMPLATES.values():
        words.update(w for w in text.split() if not w.startswith("{"))
    numbers = [str(v) for v in range(max(h * h for _, h in _OPERANDS.values()) + 1)]
    return ["<pad>", "<unk>", END_OF_TURN, "<|im_start|>", *sorted(words), *numbers]


#: The test preset's chat template: ChatML with words separated by spaces.
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} "
                 "<|im_end|> {% endfor %}{% if add_generation_prompt %}<|im_start|> assistant "
                 "{% endif %}")


def tiny_llama(out_dir: Path, seed: int = 0) -> Path:
    """A random 2-layer Llama with a word-level tokenizer over :func:`vocabulary` and a chat
    template, saved to ``out_dir`` (seconds on a CPU; the ``test`` preset's base model)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lmcoverage.models.hf import save
    from lmcoverage.tasks.tokenizer import build_tokenizer

    words = vocabulary()
    tokenizer = build_tokenizer(words)
    tokenizer.eos_token = END_OF_TURN
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, bos_token_id=None,
                         eos_token_id=words.index(END_OF_TURN), pad_token_id=0)
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's RNG is untouched
        torch.default_generator.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return save(model, out_dir, tokenizer=tokenizer)
