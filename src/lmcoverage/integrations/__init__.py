"""Coverage inside other tools' training loops and from their outputs.

:class:`CoverageCallback` is a ``transformers.TrainerCallback`` (``pip install
'lmcoverage[train]'``); it is imported on first use, so ``import lmcoverage.integrations``
(and :mod:`lmcoverage.integrations.lm_eval`, the lm-evaluation-harness reader) does not import
transformers.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CoverageCallback"]


def __getattr__(name: str) -> Any:
    if name == "CoverageCallback":
        from lmcoverage.integrations.trainer import CoverageCallback

        return CoverageCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
