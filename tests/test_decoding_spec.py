"""lmcoverage.decoding.spec: validation, candidate parsing, exact truncated log-probs."""

from __future__ import annotations

import math

import pytest
import torch

from lmcoverage.decoding.spec import (
    DecodingSpec,
    decoding_logprobs,
    parse_candidate,
    token_logprobs,
)
from lmcoverage.errors import InputError


@pytest.mark.parametrize("kwargs, match", [
    ({"temperature": 0.0}, "temperature"),
    ({"temperature": -1.0}, "temperature"),
    ({"temperature": math.inf}, "temperature"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"top_k": -1}, "top_k"),
    ({"top_k": 2.5}, "top_k"),
    ({"min_p": 1.5}, "min_p"),
])
def test_invalid_values_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        DecodingSpec(**kwargs)


def test_parse_candidate_splits_only_a_trailing_spec() -> None:
    assert parse_candidate("runs/m") == ("runs/m", DecodingSpec())
    assert parse_candidate("runs/m@temperature=0.8,top_p=0.95") == (
        "runs/m", DecodingSpec(temperature=0.8, top_p=0.95))
    assert parse_candidate("a@b/m@top_k=5,min_p=0.1") == ("a@b/m", DecodingSpec(top_k=5,
                                                                              min_p=0.1))
    # Commas and '@' in a path that is not followed by key=value pairs: a plain path.
    assert parse_candidate("runs/a,b@v2,x") == ("runs/a,b@v2,x", DecodingSpec())
    assert parse_candidate("runs/a,b") == ("runs/a,b", DecodingSpec())
    assert DecodingSpec(temperature=0.8, top_p=0.95).name() == "temperature=0.8,top_p=0.95"
    assert DecodingSpec(top_k=40).name() == "top_k=40" and DecodingSpec().name() == ""


@pytest.mark.parametrize("text, match", [
    ("m@temperature=0", "temperature must be finite and > 0"),
    ("m@top_p=1.2", r"top_p must lie in \(0, 1\]"),
    ("m@topp=0.9", "unknown key 'topp'"),
    ("m@temperature=hot", "temperature must be a number"),
    ("m@top_k=1.5", "top_k must be an integer"),
    ("m@top_k=2,top_k=3", "given twice"),
    ("@temperature=0.5", "no model path"),
])
def test_bad_candidate_specs_are_one_line_errors(text: str, match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        parse_candidate(text)
    assert "\n" not in str(info.value)


def _brute_force(logits: torch.Tensor, spec: DecodingSpec) -> torch.Tensor:
    """The five steps of the module docstring, one token at a time, in float64."""
    x = logits.double() / spec.temperature
    keep = torch.ones_like(x, dtype=torch.bool)
    if spec.top_k:
        kth = sorted(x.tolist(), reverse=True)[min(spec.top_k, len(x)) - 1]
        keep &= x >= kth
    if spec.top_p < 1:
        p = torch.softmax(torch.where(keep, x, -math.inf), 0)
        for i in range(len(x)):
            keep[i] &= bool(p[p > p[i]].sum() < spec.top_p)
    if spec.min_p > 0:
        p = torch.softmax(torch.where(keep, x, -math.inf), 0)
        keep &= p >= spec.min_p * p.max()
    return torch.log_softmax(torch.where(keep, x, -math.inf), 0)


@pytest.mark.parametrize("spec", [
    DecodingSpec(), DecodingSpec(temperature=0.7), DecodingSpec(top_k=3),
    DecodingSpec(top_p=0.6), DecodingSpec(temperature=1.3, top_p=0.9, top_k=5),
    DecodingSpec(min_p=0.2), DecodingSpec(temperature=0.5, top_p=0.8, min_p=0.05),
])
def test_logprobs_match_a_brute_force_definition_and_normalise(spec: DecodingSpec) -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, 10, generator=gen) * 2
    got = decoding_logprobs(logits, spec)
    assert got.shape == logits.shape
    torch.testing.assert_close(got.exp().sum(-1), torch.ones(6, 4), atol=1e-5, rtol=0)
    for row in logits.reshape(-1, 10):
        want = _brute_force(row, spec)
        have = decoding_logprobs(row, spec).double()
        assert torch.equal(torch.isinf(have), torch.isinf(want))
        finite = torch.isfinite(want)
        torch.testing.assert_close(have[finite], want[finite], atol=1e-5, rtol=0)
    if not spec.is_plain and (spec.top_k or spec.top_p < 1 or spec.min_p):
        assert torch.isinf(got).any()  # truncation removed something


@pytest.mark.parametrize("spec", [
    DecodingSpec(), DecodingSpec(temperature=0.7), DecodingSpec(top_k=40),
    DecodingSpec(temperature=1.5, top_k=7), DecodingSpec(top_p=0.9),
    DecodingSpec(temperature=2.0, top_p=0.99), DecodingSpec(top_k=40, top_p=0.9),
    DecodingSpec(min_p=0.01),
])
def test_token_logprobs_equal_the_full_distribution_on_a_large_vocabulary(
        spec: DecodingSpec) -> None:
    """The per-token shortcuts (top-k alone, top-p alone) against the full distribution: rows
    from peaked to flat (so the nucleus search widens past 256 and 1,024 tokens), and rows
    whose top-k boundary is tied."""
    gen = torch.Generator().manual_seed(1)
    vocab = 5000
    logits = torch.randn(8, 6, vocab, generator=gen) * torch.linspace(0.05, 6, 8)[:, None, None]
    logits[0, :, :60] = 3.0  # 60 tokens tie at the top: every top-k boundary is tied
    tokens = torch.randint(0, vocab, (8, 6), generator=gen)
    tokens[:, :3] = logits.argsort(dim=-1, descending=True)[:, :3, 30]  # likely tokens too
    want = decoding_logprobs(logits, spec).gather(-1, tokens[..., None])[..., 0]
    got = token_logprobs(logits, tokens, spec)
    assert torch.equal(torch.isinf(got), torch.isinf(want))
    finite = torch.isfinite(want)
    assert finite.any()
    if spec.top_k or spec.top_p < 1:
        assert (~finite).any()  # truncation removed some of the tokens asked about
    torch.testing.assert_close(got[finite], want[finite], atol=1e-5, rtol=0)
    # Against the brute-force definition: a flat row, and the tied row where top-p is off
    # (top-p orders equal probabilities by sort position, as Hugging Face's warper does).
    for row in (0, 7) if spec.top_p == 1 else (7,):
        brute = _brute_force(logits[row, 0], spec)[tokens[row, 0]]
        assert math.isinf(brute) == math.isinf(got[row, 0]) and (
            math.isinf(brute) or abs(float(brute) - float(got[row, 0])) < 1e-4)
