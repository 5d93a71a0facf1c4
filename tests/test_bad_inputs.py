"""The bad-input corpus (tests/bad_inputs.tsv, #19): every hostile command line exits with its
promised code and one stderr line that starts with the promised words.

Columns: ``id``, the command line (``{d}`` is a folder of prepared inputs, built once from one
tiny random Llama), the exit code, and words the stderr line must contain. Each case must
leave no output file (``{d}/out*``) behind.
"""

from __future__ import annotations

import csv
import os
import shlex
from pathlib import Path

import pytest

from lmcoverage.cli import main
from lmcoverage.io import write_jsonl

CORPUS = Path(__file__).with_name("bad_inputs.tsv")


def _cases() -> list[tuple[str, str, int, str]]:
    with CORPUS.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter="\t") if r and not r[0].startswith("#")]
    return [(r[0], r[1], int(r[2]), r[3]) for r in rows[1:]]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_real_models import _tiny

    d = tmp_path_factory.mktemp("bad")
    _tiny(d / "model", 0)
    write_jsonl(d / "prompts.jsonl", [{"prompt": "a b", "answer": "a"},
                                      {"prompt": "c", "answer": "b"}])
    write_jsonl(d / "dup_problem.jsonl", [{"prompt": "a b", "answer": "a", "problem": "x"},
                                          {"prompt": "c", "answer": "b", "problem": "x"}])
    write_jsonl(d / "dup_int_str.jsonl", [{"prompt": "a b", "answer": "a", "problem": 1},
                                          {"prompt": "c", "answer": "b", "problem": "1"}])
    verdict = {"model": "m", "problem": "p", "sample_index": 0, "response": "a",
               "correct": True}
    write_jsonl(d / "dup_verdicts.jsonl", [verdict, {**verdict, "correct": False}])
    write_jsonl(d / "dup_samples.jsonl", [{"problem": "p", "sample_index": 0, "correct": True},
                                          {"problem": "p", "sample_index": 0,
                                           "correct": False}])
    write_jsonl(d / "huge_n.jsonl", [{"problem": "p", "n": 10**30, "c": 3}])
    write_jsonl(d / "held_out.jsonl", [{"prompt": "a b", "response": "a"}])
    (d / "link.jsonl").symlink_to(d / "prompts.jsonl")
    os.mkfifo(d / "fifo.jsonl")  # never opened: refused as a FIFO before any read
    os.mkfifo(d / "fifo.parquet")
    (d / "dir.parquet").mkdir()
    write_jsonl(d / "counts.json", [{"problem": "p", "n": 2, "c": 1}])  # JSONL, .json name
    write_jsonl(d / "verdicts.json", [verdict])
    (d / "scores.parquet").write_bytes(b"not read: the output is refused first")
    (d / "held.parquet").write_bytes(b"an input the output must not overwrite")
    (d / "nan_field.jsonl").write_text('{"prompt": "a b", "score": NaN}\n')  # item 17
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"prompt": ["a b"], "score": [float("nan")]}),
                   d / "nan_field.parquet")  # item 17, as the JSONL NaN above
    (d / "latin1.jsonl").write_bytes(b'{"prompt": "caf\xe9", "answer": "a"}\n')
    return d


@pytest.mark.parametrize(("case", "line", "code", "words"), _cases(),
                         ids=[c[0] for c in _cases()])
def test_bad_input(inputs: Path, case: str, line: str, code: int, words: str,
                   capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.replace("{d}", str(inputs)) for a in shlex.split(line)]
    assert main(argv) == code, capsys.readouterr().err
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert err.startswith("lmcoverage: error: ") and words.replace("{d}", str(inputs)) in err, err
    assert not list(inputs.glob("out*")), case
    assert (inputs / "held.parquet").read_bytes().startswith(b"an input"), case
