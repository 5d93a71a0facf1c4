"""Rows to token ids with a model's tokenizer: one encoding for ``score``, ``sample``,
``verify`` and ``train --data``.

A row gives its prompt as ``prompt_ids`` (used as they are), else ``messages`` (a chat,
rendered with the tokenizer's chat template and ``add_generation_prompt=True``), else
``prompt`` text (tokenized with the tokenizer's special tokens, e.g. BOS); its response as
``response_ids`` (used as they are) or ``response`` text, tokenized without special tokens
and followed by the tokenizer's EOS (the EOS convention of :mod:`lmcoverage.engine.rows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from lmcoverage.errors import InputError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def _ids(value: object, key: str, where: str) -> list[int]:
    if (not isinstance(value, list | tuple) or not value
            or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0
                       for t in value)):
        raise InputError(f"{where}: {key} must be a non-empty list of token ids")
    return list(value)


#: Characters one token spans at most in practice: a text longer than this times the
#: tokenizer's maximum length is measured on a prefix before it is tokenized whole.
MAX_CHARS_PER_TOKEN = 64
#: A ``model_max_length`` above this is transformers' "no limit" placeholder.
_NO_LIMIT = 10**8


def check_text_length(tokenizer: PreTrainedTokenizerBase, text: str, special: bool,
                      where: str) -> None:
    """InputError when ``text`` is clearly longer than the tokenizer's ``model_max_length``,
    found from its first ``model_max_length * MAX_CHARS_PER_TOKEN`` characters, so a huge
    line (a 10 MB prompt) is refused without being tokenized whole."""
    limit = getattr(tokenizer, "model_max_length", None)
    if (not isinstance(limit, int) or limit > _NO_LIMIT
            or len(text) <= limit * MAX_CHARS_PER_TOKEN):
        return
    head = tokenizer(text[: limit * MAX_CHARS_PER_TOKEN], add_special_tokens=special)
    if len(head["input_ids"]) > limit + 1:  # + 1: the cut may split one token in two
        raise InputError(f"{where}: a text of {len(text):,} characters, longer than the "
                         f"tokenizer's maximum of {limit:,} tokens")


def encode_text(tokenizer: PreTrainedTokenizerBase, text: str, special: bool,
                where: str) -> list[int]:
    """Token ids of ``text``; InputError if it encodes to nothing or to the unknown token, or
    if it is longer than the tokenizer's maximum length (:func:`check_text_length`)."""
    check_text_length(tokenizer, text, special, where)
    ids = list(tokenizer(text, add_special_tokens=special)["input_ids"])
    unk = tokenizer.unk_token_id
    if unk is not None and unk in ids and tokenizer.unk_token not in text:
        raise InputError(f"{where}: the tokenizer cannot encode {text!r} (unknown token)")
    if not ids:
        raise InputError(f"{where}: {text!r} encodes to no tokens")
    return ids


def encode_prompt(tokenizer: PreTrainedTokenizerBase, row: dict[str, Any], where: str) -> list[int]:
    """The prompt of ``row`` as token ids (``prompt_ids``, else ``messages``, else ``prompt``).

    Raises:
        InputError: no prompt, malformed ids or messages, a chat row for a tokenizer without a
            chat template.
    """
    if "prompt_ids" in row:
        return _ids(row["prompt_ids"], "prompt_ids", where)
    if "messages" in row:
        messages = row["messages"]
        if (not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str)
                and isinstance(m.get("content"), str) for m in messages)):
            raise InputError(f"{where}: messages must be a non-empty list of "
                             '{"role": ..., "content": ...} objects')
        if not getattr(tokenizer, "chat_template", None):
            raise InputError(f"{where}: a chat row (messages) needs a chat template, and the "
                             "model's tokenizer has none; give prompt text or prompt_ids")
        from jinja2 import TemplateError

        try:
            text = cast(str, tokenizer.apply_chat_template(  # tokenize=False: a str
                messages, add_generation_prompt=True, tokenize=False))
        except TemplateError as exc:  # also the sandbox's SecurityError
            raise InputError(f"{where}: the chat template of model directory "
                             f"{tokenizer.name_or_path} failed ({type(exc).__name__}: "
                             f"{exc})") from None
        return encode_text(tokenizer, text, False, where)
    if isinstance(row.get("prompt"), str) and row["prompt"].strip():
        return encode_text(tokenizer, row["prompt"], True, where)
    raise InputError(f"{where}: needs a prompt: 'prompt' text, 'messages' or 'prompt_ids'")


def end_token_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The token appended to a text response (the tokenizer's EOS), or None."""
    eos = getattr(tokenizer, "eos_token_id", None)
    return eos if isinstance(eos, int) else None


def encode_response(tokenizer: PreTrainedTokenizerBase, row: dict[str, Any], where: str,
                    stops: Sequence[int] = ()) -> list[int]:
    """The response of ``row`` as token ids: ``response_ids`` as given, else ``response`` text
    plus EOS (the module's EOS convention; ``stops``: tokens that already end a response).

    Raises:
        InputError: no response, or malformed ids.
    """
    if "response_ids" in row:
        return _ids(row["response_ids"], "response_ids", where)
    text = row.get("response")
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: 'response' must be a non-empty string (or give "
                         f"response_ids), got {text!r}")
    return complete(tokenizer, encode_text(tokenizer, text, False, where), stops)


def complete(tokenizer: PreTrainedTokenizerBase, ids: list[int],
             stops: Sequence[int] = ()) -> list[int]:
    """``ids`` with the tokenizer's EOS appended, unless they end with EOS or a stop token."""
    eos = end_token_id(tokenizer)
    if eos is None or (ids and (ids[-1] == eos or ids[-1] in stops)):
        return ids
    return [*ids, eos]
