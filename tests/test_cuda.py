"""CUDA checks (``pytest -m cuda``; skipped without CUDA): scores and samples on the GPU agree
with the CPU's, in float32 and bfloat16, and ``batch_size="auto"`` fits the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmcoverage.decoding.spec import DecodingSpec
from lmcoverage.engine import score_responses
from lmcoverage.engine.sampling import sample_with_logp
from tiny_llama import tiny_llama

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

VOCAB = 50


def _problems() -> tuple[list[list[int]], list[list[list[int]]]]:
    rng = np.random.default_rng(0)
    prompts = [rng.integers(0, VOCAB, int(rng.integers(2, 30))).tolist() for _ in range(24)]
    responses = [[rng.integers(0, VOCAB, int(rng.integers(1, 12))).tolist() for _ in range(3)]
                 for _ in prompts]
    return prompts, responses


@pytest.mark.parametrize(("dtype", "atol"), [(torch.float32, 1e-3), (torch.bfloat16, 0.5)])
def test_cuda_scores_match_cpu_float32(dtype: torch.dtype, atol: float) -> None:
    cpu = tiny_llama(VOCAB, 64, seed=0)
    prompts, responses = _problems()
    want = score_responses(cpu, prompts, responses, progress=False)
    gpu = tiny_llama(VOCAB, 64, seed=0).to(device="cuda", dtype=dtype)
    got = score_responses(gpu, prompts, responses, progress=False)
    for a, b in zip(want, got, strict=True):
        assert b.dtype == np.float64
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)
    # Batch-invariant on the GPU too.
    single = score_responses(gpu, prompts, responses, batch_size=1, progress=False)
    for a, b in zip(single, got, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3 if dtype == torch.float32 else 0.1, rtol=0)


def test_cuda_samples_match_cpu_in_float32() -> None:
    cpu = tiny_llama(VOCAB, 64, seed=1)
    gpu = tiny_llama(VOCAB, 64, seed=1).cuda()
    prompts = _problems()[0][:6]
    a = sample_with_logp(cpu, prompts, 4, 8, DecodingSpec(), seed=3, progress=False)
    b = sample_with_logp(gpu, prompts, 4, 8, DecodingSpec(), seed=3, progress=False)
    same = np.mean([x.ids == y.ids for ga, gb in zip(a, b, strict=True)
                    for x, y in zip(ga, gb, strict=True)])
    assert same >= 0.9  # inverse-CDF draws: only a float32 rounding at a CDF boundary differs
    for ga, gb in zip(a, b, strict=True):
        for x, y in zip(ga, gb, strict=True):
            if x.ids == y.ids:
                assert abs(x.logp - y.logp) < 1e-3
