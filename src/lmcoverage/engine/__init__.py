"""Task-agnostic scoring and sampling for any Hugging Face causal LM (Eq. 1; Appendix C).

- :func:`score_responses`: teacher-forced ``log pi_hat(y|x)`` of many responses per prompt, the
  prompt's keys and values computed once, float64 sums, batch-invariant.
- :func:`mass_correct`: ``pi_hat(G_x|x)`` of an enumerable correct set, for exact Pass@N.
- :func:`sample_responses`: N KV-cached samples per prompt, temperature, seeded.
- :func:`load_causal_lm`: a local model directory, safetensors only.
"""

from lmcoverage.engine.sampling import sample_responses
from lmcoverage.engine.scoring import mass_correct, score_responses
from lmcoverage.models.hf import load_causal_lm, load_tokenizer

__all__ = [
    "load_causal_lm",
    "load_tokenizer",
    "mass_correct",
    "sample_responses",
    "score_responses",
]
