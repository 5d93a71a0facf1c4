"""Task-agnostic scoring and sampling for any Hugging Face causal LM (Eq. 1; Appendix C).

- :func:`score_responses`: teacher-forced ``log pi_hat(y|x)`` of many responses per prompt, the
  prompt's keys and values computed once, float64 sums, batch-invariant.
- :func:`mass_correct`: ``pi_hat(G_x|x)`` of an enumerable correct set, for exact Pass@N.
- :func:`score_variants`: the same under M decoding settings (``DecodingSpec``) in one pass.
- :func:`sample_responses`, :func:`sample_with_logp`: N KV-cached samples per prompt, seeded;
  :func:`sample_rows`: the same from input rows (prompt text, chat messages or token ids).
- :func:`load_causal_lm`: a local model directory (safetensors only) or a GGUF file.
"""

from lmcoverage.engine.rows import sample_rows
from lmcoverage.engine.sampling import Sample, sample_responses, sample_with_logp
from lmcoverage.engine.scoring import mass_correct, score_responses, score_variants
from lmcoverage.models.hf import load_causal_lm, load_tokenizer

__all__ = [
    "Sample",
    "load_causal_lm",
    "load_tokenizer",
    "mass_correct",
    "sample_responses",
    "sample_rows",
    "sample_with_logp",
    "score_responses",
    "score_variants",
]
