"""``engine.sampling.sample_variants``: several decoding settings from one run of each prompt
give the same samples as one setting at a time."""

from __future__ import annotations

from tests.tiny_llama import tiny_llama

from lmcoverage.decoding.spec import DecodingSpec
from lmcoverage.engine.sampling import sample_variants, sample_with_logp


def test_variants_sampled_together_equal_variants_sampled_alone() -> None:
    model = tiny_llama(12, 32, seed=1, eos=2, pad=0)
    prompts = [[3, 4, 5], [6, 7], [8, 9, 10, 11], [4]]
    specs = [DecodingSpec(temperature=0.5), DecodingSpec(top_k=3), None,
             DecodingSpec(min_p=0.2), DecodingSpec()]
    together = sample_variants(model, prompts, 5, 4, specs, seed=7, stop_token_ids=[2],
                               batch_size=10, progress=False)
    assert len(together) == len(specs)
    for spec, drawn in zip(specs, together, strict=True):
        alone = sample_with_logp(model, prompts, 5, 4, spec, seed=7, stop_token_ids=[2],
                                 batch_size=10, progress=False)
        assert drawn == alone
    assert together[0] != together[1]  # the settings do differ
