"""Torch's intra-op thread count for one block of code, restored afterwards.

Library code sets no global state (CONTRIBUTING.md): a run's thread count lives in its
:class:`~lmcoverage.experiments.registry.RunContext` (``threads``) and in the units it hands
to workers, and is applied only inside :func:`torch_threads`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from lmcoverage.errors import InputError


def check_threads(threads: int) -> int:
    """``threads`` if it is an integer >= 1, else InputError naming it."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"--threads must be an integer >= 1, got {threads!r}")
    return threads


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``; the previous count comes back
    on exit, also when the block raises."""
    import torch

    check_threads(threads)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
