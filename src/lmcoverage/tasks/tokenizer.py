"""A word-level Hugging Face tokenizer over a task's symbols (the paper's Appendix C).

Text is whitespace-split and each symbol maps to one id (``symbols[i]`` -> ``i``); no special
tokens are added when encoding, so ``tok(text)["input_ids"]`` equals the task's token ids. Unknown
symbols map to ``unk_token`` (callers check for its id to refuse data the task cannot encode).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lmcoverage.errors import InputError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


def build_tokenizer(symbols: Sequence[str], pad_token: str = "<pad>",
                    unk_token: str = "<unk>") -> PreTrainedTokenizerFast:
    """A ``PreTrainedTokenizerFast`` with vocabulary ``{symbols[i]: i}``.

    Args:
        symbols: the text of every token id, in id order; must contain ``pad_token`` and
            ``unk_token`` and no whitespace inside a symbol.
    """
    vocab = {s: i for i, s in enumerate(symbols)}
    if len(vocab) != len(symbols):
        raise InputError("symbols must be distinct")
    for s in symbols:
        if not s or any(c.isspace() for c in s):
            raise InputError(f"symbol {s!r} is empty or contains whitespace")
    for special in (pad_token, unk_token):
        if special not in vocab:
            raise InputError(f"special token {special!r} is not in symbols")
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel(vocab=vocab, unk_token=unk_token))
    core.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=pad_token,
        unk_token=unk_token,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
