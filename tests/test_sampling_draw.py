"""``engine.sampling``: drawing a step's tokens a few rows at a time (to keep each group's float64
CDF in cache) gives the same tokens and log-probs as drawing the whole batch at once."""

from __future__ import annotations

import pytest
import torch
from tests.tiny_llama import tiny_llama

from lmcoverage.decoding.spec import DecodingSpec
from lmcoverage.engine import sampling
from lmcoverage.engine.sampling import sample_with_logp

SPECS = [DecodingSpec(), DecodingSpec(temperature=0.7, top_p=0.8), DecodingSpec(top_k=3),
         DecodingSpec(min_p=0.2)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name() or "plain")
def test_row_groups_draw_what_the_whole_batch_draws(
    spec: DecodingSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tiny_llama(12, 32, seed=1, eos=2, pad=0)
    prompts = [[3, 4, 5], [6, 7], [8, 9, 10, 11]]

    def draw(rows: int) -> list[list[sampling.Sample]]:
        monkeypatch.setattr(sampling, "_DRAW_BYTES", 8 * 12 * rows)
        return sample_with_logp(model, prompts, 5, 6, spec, seed=3, stop_token_ids=[2],
                                progress=False)

    whole = draw(15)
    for rows in (1, 2, 4):
        assert draw(rows) == whole


def test_draw_step_matches_the_one_pass_definition() -> None:
    """Tokens: inverse CDF of the float64 probabilities; log-probs: those of the drawn tokens."""
    logits = torch.randn(7, 50, generator=torch.Generator().manual_seed(0)) * 3
    uniforms = torch.rand(7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    spec = DecodingSpec(temperature=0.9, top_k=10)
    tokens, logps = sampling._draw_step(logits, spec, 1.0 - uniforms)
    logprobs = sampling.decoding_logprobs(logits, spec)
    cdf = logprobs.double().exp().cumsum(dim=-1)
    expected = torch.searchsorted(cdf, ((1.0 - uniforms) * cdf[:, -1])[:, None])[:, 0]
    assert torch.equal(tokens, expected)
    assert torch.equal(logps, logprobs.gather(1, expected[:, None])[:, 0].double())
    assert logps.dtype == torch.float64
