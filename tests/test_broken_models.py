"""Broken model directories (#19 item 10): each exits 2 with one line that names the directory
and what is wrong, never a traceback. Each is a tiny random Llama broken in one way."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from lmcoverage.cli import main
from lmcoverage.io import write_jsonl


def _edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _auto_map(d: Path) -> None:
    _edit_json(d / "config.json", auto_map={"AutoModelForCausalLM": "modeling_x.XForCausalLM"})
    (d / "modeling_x.py").write_text("raise SystemExit('remote code ran')\n")


def _vocab_zero(d: Path) -> None:
    _edit_json(d / "config.json", vocab_size=0)


def _unknown_type(d: Path) -> None:
    _edit_json(d / "config.json", model_type="no-such-architecture")


def _shape_mismatch(d: Path) -> None:
    _edit_json(d / "config.json", hidden_size=48)


def _truncated(d: Path) -> None:
    weights = d / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _symlink_loop(d: Path) -> None:
    (d / "model.safetensors").unlink()
    os.symlink("model.safetensors", d / "model.safetensors")


def _dir_symlink_loop(d: Path) -> None:
    shutil.rmtree(d)
    os.symlink(d.name, d)


def _template(d: Path, text: str) -> None:
    """Replace the chat template (saved as chat_template.jinja by save_pretrained)."""
    assert (d / "chat_template.jinja").is_file()
    (d / "chat_template.jinja").write_text(text)


def _bad_template(d: Path) -> None:
    _template(d, "{% for m in messages %}{{ m")


def _blocked_template(d: Path) -> None:
    _template(d, "{{ ''.__class__.__mro__[1].__subclasses__() }}")


CASES: dict[str, tuple[Callable[[Path], None], str, bool]] = {
    # name: (break it, words of the reason, prompts are chat messages)
    "auto_map": (_auto_map, "--trust-remote-code", False),
    "vocab_size_0": (_vocab_zero, "vocab_size", False),
    "unknown_model_type": (_unknown_type, "no-such-architecture", False),
    "shape_mismatch": (_shape_mismatch, "shape", False),
    "truncated_safetensors": (_truncated, "truncated", False),
    "symlink_loop": (_symlink_loop, "symlink loop", False),
    "dir_symlink_loop": (_dir_symlink_loop, "symlink loop", False),
    "malformed_chat_template": (_bad_template, "chat template", True),
    "sandbox_blocked_template": (_blocked_template, "chat template", True),
}


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_real_models import _tiny

    root = tmp_path_factory.mktemp("broken")
    _tiny(root / "good", 0)
    write_jsonl(root / "prompts.jsonl", [{"prompt": "a b"}])
    write_jsonl(root / "chat.jsonl", [{"messages": [{"role": "user", "content": "a b"}]}])
    return root


@pytest.mark.parametrize("case", list(CASES))
def test_broken_model_directory_exits_2_naming_it(good: Path, tmp_path: Path, case: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    breaker, words, chat = CASES[case]
    model = tmp_path / case
    shutil.copytree(good / "good", model)
    breaker(model)
    data = good / ("chat.jsonl" if chat else "prompts.jsonl")
    out = tmp_path / "out.jsonl"
    code = main(["sample", "--model", str(model), "--data", str(data), "--n", "1",
                 "--max-new-tokens", "2", "--out", str(out), "--device", "cpu",
                 "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err and str(model) in err and words in err, err
    assert not out.exists()
