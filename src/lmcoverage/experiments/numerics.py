"""What a run's floating-point results depend on besides its inputs, for ``results.json``.

A training run amplifies last-bit differences step by step, so the same code and seed give
the same numbers only with the same thread count (:mod:`lmcoverage.experiments.threads`), the
same library builds and the same CPU kernels (docs/experiments/figures.md, Reproducibility).
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

_PACKAGES = ("torch", "transformers", "numpy")


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else the platform's processor)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numeric_environment() -> dict[str, str]:
    """``{"torch", "transformers", "numpy"}`` versions, ``cpu_kernels`` (torch's CPU kernel
    set: ``AVX512``, ``AVX2``, ...) and ``cpu`` (the model name) of this process."""
    import torch

    out = {}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    out["cpu_kernels"] = torch.backends.cpu.get_cpu_capability()
    out["cpu"] = _cpu_model()
    return out
