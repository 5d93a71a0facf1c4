"""``train --data`` reads rows as every other command does: ``messages`` through the chat
template, ``response`` text plus EOS, the same ids as ``score``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmcoverage.cli import main
from lmcoverage.engine.rows import encode_prompt, encode_response
from lmcoverage.experiments.real_lm_task import make_problems, tiny_llama
from lmcoverage.io import read_jsonl_numbered, write_jsonl
from lmcoverage.models.hf import load_tokenizer
from lmcoverage.train.finetune import load_pairs


def test_train_data_messages_rows_encode_as_score(tmp_path: Path) -> None:
    llama = tiny_llama(tmp_path / "llama", seed=0)
    rows = [{"messages": r["messages"], "response": r["response"]}
            for r in make_problems(4, seed=3)]
    write_jsonl(tmp_path / "chat.jsonl", rows)
    task = load_pairs(llama, tmp_path / "chat.jsonl")
    tok = load_tokenizer(llama)
    problems = task.sample(len(rows), seed=0)
    for (line, row), problem in zip(read_jsonl_numbered(tmp_path / "chat.jsonl"), problems,
                                    strict=True):
        assert list(problem.prompt_ids) == encode_prompt(tok, row, str(line))
        assert list(problem.response_ids) == encode_response(tok, row, str(line))
    rendered = tok.apply_chat_template(rows[0]["messages"], add_generation_prompt=True,
                                       tokenize=False)
    assert tok.decode(list(problems[0].prompt_ids)).split() == rendered.split()
    assert main(["train", "--model", str(llama), "--data", str(tmp_path / "chat.jsonl"),
                 "--out", str(tmp_path / "run"), "--steps", "2", "--batch-size", "2",
                 "--no-progress"]) == 0
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "run" / "run.json").read_text())


def test_train_data_bad_messages_exit_2(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    llama = tiny_llama(tmp_path / "llama", seed=0)
    write_jsonl(tmp_path / "bad.jsonl", [{"messages": "hello", "response": "3"}])
    assert main(["train", "--model", str(llama), "--data", str(tmp_path / "bad.jsonl"),
                 "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "bad.jsonl:1" in err and "messages" in err, err
    assert not (tmp_path / "run").exists()
