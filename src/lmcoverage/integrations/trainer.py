"""Coverage during Hugging Face ``Trainer`` runs: :class:`CoverageCallback`.

At each evaluation (or checkpoint) the callback scores a fixed set of reference rows
``(x, y)`` with ``y ~ pi_D`` under the model being trained, with the project's engine (prompt
computed once per distinct prompt), and logs ``coverage/cov_N`` (Eq. 1), ``coverage/kl`` and
``coverage/cross_entropy`` through ``Trainer.log``, so every reporting integration (TensorBoard,
W&B, ...) receives them. Each checkpoint folder gets its ScoreTable (``coverage.parquet``); at
the end of training ``OUTPUT_DIR/coverage/`` holds all tables and the picks of the simple
tournament (Eq. 29) and of minimum cross-entropy. TRL trainers subclass ``Trainer`` and work
the same way.

**Precision.** By default the callback scores in float32, outside the Trainer's mixed
precision (``bf16=True``, TRL's default): autocast is off and weights stored in a lower
precision are scored through a float32 copy, so its numbers equal ``lmcoverage score`` of the
saved checkpoint. ``dtype="auto"`` scores as the Trainer computes (its autocast, the weights'
own dtype) and says so in its log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from lmcoverage.engine.scorer import HFScorer, score_table
from lmcoverage.engine.scoring import DEFAULT_BATCH_SIZE
from lmcoverage.engine.table import Examples, encode_examples
from lmcoverage.errors import InputError
from lmcoverage.integrations.reference import load_reference
from lmcoverage.metrics._validate import as_ns_list
from lmcoverage.models.hf import DTYPES
from lmcoverage.scoretable import ScoreTable

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

#: File name of a checkpoint's ScoreTable inside its checkpoint folder.
TABLE_NAME = "coverage.parquet"
#: Folder (inside the Trainer's output directory) for all tables and the final picks.
SUMMARY_DIR = "coverage"


class CoverageCallback(TrainerCallback):  # type: ignore[misc]
    """Log the coverage profile of the model being trained on reference rows.

    Args:
        reference: JSONL of reference rows: a samples file from ``lmcoverage sample``
            (``prompt_ids``, ``response_ids``, ``logp``) or ``prompt``/``response`` texts with
            ``logp_data`` (tokenized with the Trainer's ``processing_class``).
        ns: the thresholds N of ``coverage/cov_N``.
        every: ``"eval"`` scores at each evaluation (and any checkpoint saved at a step not
            evaluated); ``"save"`` scores at each checkpoint only.
        tournament_n: N of the final tournament (Eq. 29); default: the largest of ``ns``.
        batch_size: continuation rows per forward pass when scoring.
        dtype: ``"float32"`` (default: the numbers of ``lmcoverage score`` of the checkpoint,
            whatever the Trainer's mixed precision), ``"bfloat16"``/``"float16"`` (weights
            cast to it, no autocast) or ``"auto"`` (as the Trainer computes: its autocast and
            the weights' own dtype).
        trainer: the Trainer, so that the metrics go through ``trainer.log`` to every
            ``report_to`` integration (``trainer.add_callback(CoverageCallback(...,
            trainer=trainer))``); without it they are appended to ``state.log_history``
            (``trainer.state.log_history``, ``trainer_state.json``) only.

    Scoring runs on the main process only (``state.is_world_process_zero``), on the model's
    own device, in eval mode under ``torch.inference_mode`` (the train mode is restored).
    The model, tokenizer and arguments come from the Trainer's callback events.
    """

    def __init__(
        self,
        reference: str | os.PathLike[str],
        ns: Sequence[float] = (2, 4, 8, 16),
        every: Literal["eval", "save"] = "eval",
        tournament_n: float | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        dtype: str = "float32",
        trainer: Trainer | None = None,
    ) -> None:
        if every not in ("eval", "save"):
            raise InputError(f"every must be 'eval' or 'save', got {every!r}")
        if str(dtype).lower() not in DTYPES:
            raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.dtype = str(dtype).lower()
        self.ns = [float(n) for n in as_ns_list(ns, "ns")]
        self.tournament_n = max(self.ns) if tournament_n is None else float(tournament_n)
        if not self.tournament_n >= 1:
            raise InputError(f"tournament_n must be >= 1, got {tournament_n!r}")
        self.every = every
        self.batch_size = batch_size
        self.examples = load_reference(reference)
        self.tables: dict[int, ScoreTable] = {}
        self._trainer = trainer
        self._warned = False
        self._tokens: (tuple[list[list[int]], list[list[int]], list[list[list[int]]] | None]
                       | None) = None

    # ------------------------------------------------------------------ Trainer events
    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl,
                       processing_class: PreTrainedTokenizerBase | None = None,
                       **kwargs: Any) -> None:
        self._tokens = _encode_with(self.examples, processing_class)  # bad rows: before step 1
        say = logger.warning if self.dtype == "auto" else logger.info
        say("CoverageCallback: %s", precision_note(args, self.dtype))

    def on_evaluate(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, model: PreTrainedModel | None = None,
                    processing_class: PreTrainedTokenizerBase | None = None, **kwargs: Any) -> None:
        if self.every == "eval":
            self._score(args, state, model, processing_class)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                model: PreTrainedModel | None = None,
                processing_class: PreTrainedTokenizerBase | None = None, **kwargs: Any) -> None:
        if state.global_step not in self.tables:
            self._score(args, state, model, processing_class)
        folder = _checkpoint_dir(args, state.global_step)
        if state.global_step in self.tables and folder.is_dir():
            self.tables[state.global_step].write_parquet(folder / TABLE_NAME)

    def on_train_end(self, args: TrainingArguments, state: TrainerState,
                     control: TrainerControl, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        tables = {**self._saved_tables(args), **self.tables}
        if not tables:
            return
        from lmcoverage.io import atomic_write_json
        from lmcoverage.select.registry import SELECTORS

        table = ScoreTable.concat([tables[step] for step in sorted(tables)])
        out = _output_dir(args) / SUMMARY_DIR
        table.write_parquet(out / "scores.parquet")
        steps = sorted(tables)
        picks = {"cross_entropy": SELECTORS["cross-entropy"](table)}
        if len(steps) > 1:
            picks["tournament"] = SELECTORS["tournament"](table, n=self.tournament_n)
        atomic_write_json(out / "selection.json", {
            "reference": self.examples.source,
            "candidates": table.models,
            "steps": steps,
            **{key: {**sel.to_dict(), "step": steps[sel.index]} for key, sel in picks.items()},
        })
        self._log(args, state, {f"coverage/{key}_pick_step": float(steps[sel.index])
                                for key, sel in picks.items()})

    # ------------------------------------------------------------------ scoring
    def _score(self, args: TrainingArguments, state: TrainerState, model: PreTrainedModel | None,
               tokenizer: PreTrainedTokenizerBase | None) -> None:
        """Score the reference under ``model`` at this step; keep the table, log the metrics."""
        if not state.is_world_process_zero or model is None:
            return
        from lmcoverage.metrics.summary import summarize_scores

        if self._tokens is None:  # evaluate() or save without train()
            self._tokens = _encode_with(self.examples, tokenizer)
        step = state.global_step
        with scoring_precision(model, self.dtype):
            table = score_table(HFScorer(model, batch_size=self.batch_size), self.examples,
                                f"{PREFIX_CHECKPOINT_DIR}-{step}", encoded=self._tokens)
        self.tables[step] = table.with_provenance(
            reference=self.examples.source, dtype=_dtype_label(model, args, self.dtype))
        row = summarize_scores(self.tables[step], self.ns)[0]
        metrics = {f"coverage/cov_{n}": v for n, v in row["cov"].items()}
        metrics["coverage/kl"] = row["kl"]
        metrics["coverage/cross_entropy"] = row["cross_entropy"]
        metrics.update({f"coverage/pass_at_{n}": v for n, v in row.get("pass_at", {}).items()})
        self._log(args, state, metrics)

    def _log(self, args: TrainingArguments, state: TrainerState,
             metrics: dict[str, float]) -> None:
        """``trainer.log(metrics)`` when the callback was given the Trainer, else the entry
        ``Trainer.log`` would append to ``state.log_history``."""
        if self._trainer is not None:
            self._trainer.log(metrics)
            return
        if not self._warned and _integrations(args):
            logger.warning("CoverageCallback: coverage/* go to trainer.state.log_history only; "
                           "pass trainer=... (trainer.add_callback(CoverageCallback(..., "
                           "trainer=trainer))) for the report_to integrations %s",
                           _integrations(args))
            self._warned = True
        entry: dict[str, Any] = dict(metrics)
        if state.epoch is not None:
            entry["epoch"] = state.epoch
        state.log_history.append({**entry, "step": state.global_step})

    def _saved_tables(self, args: TrainingArguments) -> dict[int, ScoreTable]:
        """Tables of this reference already in the output directory's checkpoint folders (a
        resumed run's earlier checkpoints)."""
        found: dict[int, ScoreTable] = {}
        for path in _output_dir(args).glob(f"{PREFIX_CHECKPOINT_DIR}-*/{TABLE_NAME}"):
            step = path.parent.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-")
            if not step.isdigit():
                continue
            table = ScoreTable.read_parquet(path)
            data = self.examples.loglik_data
            if (table.num_examples == len(self.examples) and data is not None
                    and np.array_equal(table.example_column("loglik_data"), data)):
                found[int(step)] = table
        return found


def _encode_with(
    examples: Examples, tokenizer: PreTrainedTokenizerBase | None
) -> tuple[list[list[int]], list[list[int]], list[list[list[int]]] | None]:
    """``(prompts, responses, correct sets)`` as token ids, encoded with the Trainer's
    tokenizer exactly as ``lmcoverage score`` encodes them for a checkpoint (ids in the rows
    used as they are)."""
    if tokenizer is None:
        raise InputError(f"{examples.source}: CoverageCallback needs the Trainer's "
                         "processing_class (the tokenizer) to encode the reference rows")
    return encode_examples(examples, None, tokenizer=tokenizer)


@contextmanager
def scoring_precision(model: torch.nn.Module, dtype: str) -> Iterator[None]:
    """Run the block with ``model`` computing in ``dtype`` and no mixed precision.

    ``"auto"`` changes nothing (the Trainer's autocast and the weights' dtype). Otherwise
    autocast is switched off (torch's context and the forward wrapper accelerate installs for
    ``bf16``/``fp16`` training) and floating-point parameters and buffers in another dtype are
    replaced by copies in ``dtype`` (the originals are put back afterwards, bit for bit; peak
    memory: the originals plus the copies).

    Raises:
        InputError: ``dtype`` unknown or not computable on the model's device.
    """
    if dtype == "auto":
        yield
        return
    import torch

    from lmcoverage.models.hf import resolve_dtype

    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    target = resolve_dtype(dtype, str(device))
    saved = [(t, t.data) for t in (*model.parameters(), *model.buffers())
             if t.is_floating_point() and t.dtype != target]
    wrapped = model.__dict__.get("forward") if "_original_forward" in model.__dict__ else None
    try:
        for tensor, data in saved:
            tensor.data = data.to(target)
        if wrapped is not None:
            model.forward = model.__dict__["_original_forward"]
        with torch.autocast(device.type, enabled=False):
            yield
    finally:
        for tensor, data in saved:
            tensor.data = data
        if wrapped is not None:
            model.forward = wrapped


def _mixed_precision(args: TrainingArguments) -> str | None:
    return "bf16" if getattr(args, "bf16", False) else (
        "fp16" if getattr(args, "fp16", False) else None)


def _weights_dtype(model: torch.nn.Module | None) -> str:
    first = next(model.parameters(), None) if model is not None else None
    return str(first.dtype).removeprefix("torch.") if first is not None else "unknown"


def _dtype_label(model: torch.nn.Module | None, args: TrainingArguments, dtype: str) -> str:
    """The dtype the scores were computed in (the tables' ``dtype`` provenance)."""
    if dtype != "auto":
        return dtype
    mixed = _mixed_precision(args)
    return _weights_dtype(model) + (f" with {mixed} autocast" if mixed else "")


def precision_note(args: TrainingArguments, dtype: str) -> str:
    """One line saying how the callback scores under these Trainer arguments."""
    mixed = _mixed_precision(args)
    if dtype == "auto":
        how = f"the Trainer's {mixed} mixed precision" if mixed else "the Trainer's precision"
        return (f"dtype='auto': scoring as the Trainer computes ({how}); coverage/* can differ "
                "from `lmcoverage score` of the checkpoints (float32)")
    outside = f", outside the Trainer's {mixed} autocast" if mixed else ""
    return f"scoring in {dtype}{outside}"


def _integrations(args: TrainingArguments) -> list[str]:
    report = getattr(args, "report_to", None) or []
    names = [report] if isinstance(report, str) else list(report)
    return [n for n in names if n not in ("none", "")]


def _output_dir(args: TrainingArguments) -> Path:
    return Path(args.output_dir or "trainer_output")


def _checkpoint_dir(args: TrainingArguments, step: int) -> Path:
    return _output_dir(args) / f"{PREFIX_CHECKPOINT_DIR}-{step}"
