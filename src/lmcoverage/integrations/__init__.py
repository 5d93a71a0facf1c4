"""Coverage inside other tools' training loops.

:class:`CoverageCallback` is a ``transformers.TrainerCallback`` (``pip install
'lmcoverage[train]'``); importing this package imports transformers, ``import lmcoverage``
does not.
"""

from lmcoverage.integrations.trainer import CoverageCallback

__all__ = ["CoverageCallback"]
