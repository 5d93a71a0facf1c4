"""Task names -> tasks: ``figure1-pretrain``, ``figure1-finetune``, ``figure2-h{H}``.

``get_task(name, **options)`` builds a task; options change its size for scaled-down runs, e.g.
``get_task("figure1-finetune", layers=4, nodes_per_layer=3)``. ``task.options`` holds the options
given, so ``get_task(task.name, **task.options)`` rebuilds the same task.
"""

from __future__ import annotations

import re
from typing import Any

from lmcoverage.errors import InputError
from lmcoverage.tasks.base import Task
from lmcoverage.tasks.graph import (
    GraphClass,
    GraphTask,
    default_node_range,
    figure1_classes,
    figure2_classes,
)

#: Figure 1 mixtures (the paper's Appendix C): uniform pre-training, 0.9/0.1 fine-tuning.
FIGURE1_WEIGHTS = {
    "figure1-pretrain": {1: 1 / 3, 2: 1 / 3, 3: 1 / 3},
    "figure1-finetune": {1: 0.9, 2: 0.1},
}
#: Figure 2 class weights.
FIGURE2_WEIGHTS = {1: 0.94, 2: 0.05, 3: 0.01}
#: Figure 2's nodes per intermediate layer (Appendix C.3: 4).
FIGURE2_NODES_PER_LAYER = 4

FIGURE1_OPTIONS = ("layers", "nodes_per_layer", "node_range", "n_double", "edge_order",
                   "hidden_seed", "class_weights")
FIGURE2_OPTIONS = ("nodes_per_layer", "node_range", "uniform_layers", "edge_order",
                   "hidden_seed", "class_weights")

_FIGURE2 = re.compile(r"figure2-h(\d+)")


#: One line about each task family (``lmcoverage task list``).
TASK_DESCRIPTIONS = {
    "figure1-pretrain": "Figure 1 pre-training mixture: graph classes G1/G2/G3, uniform",
    "figure1-finetune": "Figure 1 fine-tuning mixture: G1/G2 at 0.9/0.1",
    "figure2-h{H}": "Figure 2: graphs with H intermediate layers (even H >= 4)",
}


def task_names() -> list[str]:
    """The registered names (``figure2-h{H}`` stands for any even H >= 4)."""
    return [*FIGURE1_WEIGHTS, "figure2-h{H}"]


def _check_options(name: str, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(
            f"unknown option {unknown[0]!r} for task {name!r}; choose from {', '.join(allowed)}"
        )


def _weights(options: dict[str, Any], default: dict[int, float]) -> dict[int, float]:
    raw = options.get("class_weights", default)
    if not isinstance(raw, dict):
        raise InputError(f"class_weights must be a mapping label -> weight, got {raw!r}")
    try:
        return {int(k): v for k, v in raw.items()}
    except (TypeError, ValueError):
        raise InputError(f"class_weights labels must be integers, got {list(raw)}") from None


def _graph_task(name: str, options: dict[str, Any], layers: int, per_layer: int,
                classes: tuple[GraphClass, ...], class_weights: dict[int, float]) -> GraphTask:
    """The :class:`GraphTask` of both figures, with the options they share: ``node_range``
    (default :func:`~lmcoverage.tasks.graph.default_node_range`), ``edge_order``
    (``layer``) and ``hidden_seed`` (0)."""
    return GraphTask(
        name=name,
        options=options,
        layers=layers,
        nodes_per_layer=per_layer,
        node_range=options.get("node_range") or default_node_range(layers, per_layer),
        classes=classes,
        class_weights=class_weights,
        edge_order=options.get("edge_order", "layer"),
        hidden_seed=options.get("hidden_seed", 0),
    )


def get_task(name: str, **options: Any) -> Task:
    """Build the task ``name`` with optional size/format ``options``.

    Figure 1 options: ``layers`` (8), ``nodes_per_layer`` (4), ``node_range`` (m, default
    :func:`~lmcoverage.tasks.graph.default_node_range`), ``n_double`` (decision layers per graph,
    2), ``edge_order`` (``layer`` or ``shuffled``; default ``layer``), ``hidden_seed`` (0),
    ``class_weights`` ({label: weight}). Figure 2 (``figure2-h{H}``, H intermediate layers,
    even H >= 4): ``nodes_per_layer``, ``node_range``, ``uniform_layers`` (class 3's decision
    layers, 4), ``edge_order``, ``hidden_seed``, ``class_weights``.
    """
    if name in FIGURE1_WEIGHTS:
        _check_options(name, options, FIGURE1_OPTIONS)
        return _graph_task(name, options, options.get("layers", 8),
                           options.get("nodes_per_layer", 4),
                           figure1_classes(options.get("n_double", 2)),
                           _weights(options, FIGURE1_WEIGHTS[name]))
    match = _FIGURE2.fullmatch(name)
    if match:
        horizon = int(match.group(1))
        if horizon < 4 or horizon % 2:
            raise InputError(f"task {name!r}: H must be an even integer >= 4, got {horizon}")
        _check_options(name, options, FIGURE2_OPTIONS)
        per_layer = options.get("nodes_per_layer", FIGURE2_NODES_PER_LAYER)
        uniform_layers = options.get("uniform_layers", 4)
        if uniform_layers > horizon:
            raise InputError(f"uniform_layers must be <= H={horizon}, got {uniform_layers}")
        return _graph_task(name, options, horizon, per_layer,
                           figure2_classes(horizon, uniform_layers),
                           _weights(options, FIGURE2_WEIGHTS))
    raise InputError(f"unknown task {name!r}; choose from {', '.join(task_names())}")
