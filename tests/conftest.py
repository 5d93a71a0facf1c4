"""Shared test set-up: one thread, offline, headless plotting."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

from hypothesis import HealthCheck, settings  # noqa: E402

# Shared 2-core machines are noisy: no per-example deadline, no "too slow" health check.
settings.register_profile(
    "lmcoverage", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("lmcoverage")
