"""A ratchet on ``Any`` in the public API (#21 item 10): these signatures stay typed."""

from __future__ import annotations

import importlib
import inspect

import pytest

TYPED = {
    "lmcoverage.engine.table:score_models": {"return": "ScoreTable"},
    "lmcoverage.models.hf:resolve_dtype": {"return": "torch.dtype"},
    "lmcoverage.models.hf:load_tokenizer": {"return": "PreTrainedTokenizerBase"},
    "lmcoverage.tasks.tokenizer:build_tokenizer": {"return": "PreTrainedTokenizerFast"},
    "lmcoverage.experiments.figure1:analyse": {"table": "ScoreTable"},
    "lmcoverage.select.registry:get_selector": {"return": "SelectorInfo"},
    "lmcoverage.train.optimizers:make_optimizer": {"return": "torch.optim.Optimizer"},
}


@pytest.mark.parametrize("target", sorted(TYPED))
def test_public_signature_is_typed(target: str) -> None:
    module, name = target.split(":")
    annotations = inspect.get_annotations(getattr(importlib.import_module(module), name))
    for param, expected in TYPED[target].items():
        assert annotations[param] == expected, (target, param)
