"""A tiny random Llama for the tests (2 layers, hidden 32): built from a config, no download."""

from __future__ import annotations

from typing import Any

import torch


def tiny_llama(vocab_size: int, max_positions: int, seed: int, *, eos: int | None = None,
               pad: int | None = None) -> Any:
    """A seeded ``LlamaForCausalLM`` in eval mode (the global RNG is restored afterwards)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=max_positions, bos_token_id=None,
                         eos_token_id=eos, pad_token_id=pad)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return LlamaForCausalLM(config).eval()


def saved_word_llama(words: list[str], out, seed: int = 3):
    """A tiny random Llama over the word-level vocabulary ``words`` (with ``<pad>`` first and an
    ``<eos>``), saved with its tokenizer to ``out``; returns the directory."""
    from lmcoverage.models.hf import save
    from lmcoverage.tasks.tokenizer import build_tokenizer

    tok = build_tokenizer(words)
    tok.eos_token = "<eos>"
    lm = tiny_llama(len(words), 64, seed=seed, eos=words.index("<eos>"), pad=0)
    return save(lm, out, tokenizer=tok)
