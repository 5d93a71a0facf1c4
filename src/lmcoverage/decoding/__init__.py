"""Decoding as sequence distributions: test-time-training decoding (Eq. 22-23)."""

from lmcoverage.decoding.ttt import TTTPolicy

__all__ = ["TTTPolicy"]
