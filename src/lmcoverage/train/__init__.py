"""Training: next-token training on a task with checkpoints and exact resume.

``train(task, TrainConfig(...), out_dir)`` writes ``checkpoint-STEP/`` HF model directories and
``final/``; ``list_checkpoints(out_dir)`` lists the checkpoints in step order.
The coverage optimizers of the paper's Sec. 5-6 live in :mod:`lmcoverage.train.optimizers`.
"""

from lmcoverage.train.checkpoint import list_checkpoints
from lmcoverage.train.loop import TRAIN_PRESETS, TrainConfig, config_from_preset, train

__all__ = ["TRAIN_PRESETS", "TrainConfig", "config_from_preset", "list_checkpoints", "train"]
