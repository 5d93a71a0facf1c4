"""Decoding as sequence distributions: sampling settings (temperature, top-k, top-p, min-p) and
test-time-training decoding (Eq. 22-23)."""

from lmcoverage.decoding.spec import DecodingSpec, decoding_logprobs, parse_candidate
from lmcoverage.decoding.ttt import TTTPolicy

__all__ = ["DecodingSpec", "TTTPolicy", "decoding_logprobs", "parse_candidate"]
