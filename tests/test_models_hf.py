"""GPT-2-style presets and HF model directories: safetensors round trip, pickle refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lmcoverage.errors import InputError
from lmcoverage.models.gpt import GPT_PRESETS, build_gpt
from lmcoverage.models.hf import load_causal_lm, load_tokenizer, save


def test_paper_preset_has_the_papers_shape_and_size() -> None:
    model = build_gpt("paper", vocab_size=105, n_positions=400, seed=0)
    cfg = model.config
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd) == (6, 4, 384)
    assert cfg.activation_function.startswith("gelu")
    n_params = sum(p.numel() for p in model.parameters())
    assert 10.6e6 < n_params < 11.0e6  # Appendix C: a 10.8M-parameter model


def test_presets_are_seeded_and_overridable() -> None:
    a = build_gpt("tiny", 10, 16, seed=3)
    b = build_gpt("tiny", 10, 16, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert build_gpt("cpu", 10, 16, n_layer=1).config.n_layer == 1
    assert set(GPT_PRESETS) >= {"paper", "cpu", "tiny"}
    with pytest.raises(InputError, match="unknown model preset 'huge'"):
        build_gpt("huge", 10, 16)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    from lmcoverage.tasks.tokenizer import build_tokenizer

    model = build_gpt("tiny", 6, 16, seed=0)
    tok = build_tokenizer(["<pad>", "<unk>", "a", "b", "c", "d"])
    out = save(model, tmp_path / "m", tokenizer=tok)
    assert (out / "model.safetensors").is_file()
    assert not list(tmp_path.glob(".m.*"))  # no temporary directory left behind
    loaded = load_causal_lm(out)
    assert not loaded.training
    ids = torch.tensor([[2, 3, 4, 5]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model.eval()(ids).logits)
    assert load_tokenizer(out)("a b c")["input_ids"] == [2, 3, 4]
    # Saving again replaces the directory in one step.
    save(build_gpt("tiny", 6, 16, seed=1), out)
    with torch.no_grad():
        assert not torch.allclose(load_causal_lm(out)(ids).logits, loaded(ids).logits)


def test_load_refuses_pickles_and_missing_weights(tmp_path: Path) -> None:
    model = build_gpt("tiny", 6, 16, seed=0)
    good = save(model, tmp_path / "good")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((good / "config.json").read_text())
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(InputError, match="pickle checkpoints.*pytorch_model.bin"):
        load_causal_lm(pickled)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((good / "config.json").read_text())
    with pytest.raises(InputError, match="no weights"):
        load_causal_lm(empty)
    with pytest.raises(InputError, match="no config.json"):
        load_causal_lm(tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_causal_lm(tmp_path / "missing")
    with pytest.raises(InputError, match="no usable tokenizer"):
        load_tokenizer(good)
    with pytest.raises(InputError, match="device"):
        load_causal_lm(good, device="gpu0")
