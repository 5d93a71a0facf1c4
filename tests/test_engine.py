"""lmcoverage.engine: batch-invariant scoring, exact mass_correct, seeded KV-cached sampling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lmcoverage.engine import mass_correct, sample_responses, score_responses
from lmcoverage.errors import InputError
from lmcoverage.metrics import pass_at_k, pass_at_n_exact
from lmcoverage.models.gpt import build_gpt
from tiny_llama import tiny_llama

VOCAB = 12


@pytest.fixture(scope="module")
def gpt() -> torch.nn.Module:
    return build_gpt("tiny", VOCAB, 40, seed=0).eval()


@pytest.fixture(scope="module")
def llama() -> torch.nn.Module:
    return tiny_llama(VOCAB, 40, seed=1)


def _random_problem_set(seed: int) -> tuple[list[list[int]], list[list[list[int]]]]:
    """Prompts of lengths 1..9 with 0..5 responses of lengths 0..7 each."""
    rng = np.random.default_rng(seed)
    prompts, responses = [], []
    for _ in range(7):
        prompts.append(rng.integers(0, VOCAB, rng.integers(1, 10)).tolist())
        responses.append([rng.integers(0, VOCAB, rng.integers(0, 8)).tolist()
                          for _ in range(rng.integers(0, 6))])
    return prompts, responses


def _naive_score(model: torch.nn.Module, prompt: list[int], response: list[int]) -> float:
    """log pi(response | prompt) from one full-sequence forward pass, no cache, no padding."""
    if not response:
        return 0.0
    with torch.no_grad():
        logits = model(torch.tensor([prompt + response])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    return float(sum(logp[len(prompt) - 1 + t, tok] for t, tok in enumerate(response)))


@pytest.mark.parametrize("name", ["gpt", "llama"])
def test_scores_match_a_naive_full_sequence_pass(name: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(name)
    prompts, responses = _random_problem_set(0)
    got = score_responses(model, prompts, responses, batch_size=4, progress=False)
    for p, rs, scores in zip(prompts, responses, got, strict=True):
        assert scores.dtype == np.float64 and scores.shape == (len(rs),)
        want = [_naive_score(model, p, r) for r in rs]
        np.testing.assert_allclose(scores, want, atol=1e-4, rtol=0)
        assert np.all(scores <= 0)


@pytest.mark.parametrize("name", ["gpt", "llama"])
def test_scores_do_not_depend_on_batch_size_or_grouping(
    name: str, request: pytest.FixtureRequest
) -> None:
    model = request.getfixturevalue(name)
    prompts, responses = _random_problem_set(1)
    reference = score_responses(model, prompts, responses, batch_size=1, progress=False)
    for batch_size in (2, 3, 7, 64):
        got = score_responses(model, prompts, responses, batch_size=batch_size, progress=False)
        for a, b in zip(reference, got, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    # Regroup: every (prompt, response) pair as its own prompt entry, in reverse order.
    pairs = [(p, r, s) for p, rs, ss in zip(prompts, responses, reference, strict=True)
             for r, s in zip(rs, ss, strict=True)][::-1]
    single = score_responses(model, [p for p, _, _ in pairs], [[r] for _, r, _ in pairs],
                             batch_size=5, progress=False)
    np.testing.assert_allclose([s[0] for s in single], [s for _, _, s in pairs], atol=1e-4, rtol=0)


def test_logits_budget_splits_batches_without_changing_scores(
    gpt: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmcoverage.engine import scoring

    lengths = [1, 2, 2, 4, 9]
    assert [len(b) for b in scoring._row_batches(list("abcde"), lengths, scoring.Budget(64),
                                                 10)] == [5]
    # Each batch keeps (rows x longest length x vocab) <= 40, one item at least.
    assert [len(b) for b in scoring._row_batches(list("abcde"), lengths,
                                                 scoring.Budget(64, logits=40), 10)] == [
        2, 1, 1, 1]
    # A token budget: rows x longest length <= 4.
    assert [len(b) for b in scoring._row_batches(list("abcde"), lengths,
                                                 scoring.Budget(64, tokens=4), 10)] == [
        2, 1, 1, 1]
    monkeypatch.setattr(scoring, "AUTO_BUDGETS", {"cpu": (6, 40)})
    prompts, responses = _random_problem_set(2)
    small = score_responses(gpt, prompts, responses, progress=False)
    monkeypatch.undo()
    default = score_responses(gpt, prompts, responses, progress=False)
    for a, b in zip(small, default, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)


def test_mass_correct_is_the_sum_of_probabilities(gpt: torch.nn.Module) -> None:
    prompts = [[1, 2, 3], [4], [5, 6]]
    sets = [[[1, 2], [3, 4], [1, 2]], [], [[7], [8, 9, 10]]]
    mass = mass_correct(gpt, prompts, sets, batch_size=2, progress=False)
    distinct = [[[1, 2], [3, 4]], [], [[7], [8, 9, 10]]]
    scores = score_responses(gpt, prompts, distinct, batch_size=2, progress=False)
    want = [float(np.exp(s).sum()) for s in scores]
    np.testing.assert_allclose(mass, want, rtol=1e-12, atol=0)
    assert mass[1] == 0.0
    # The full support of length-2 responses has mass one.
    every = [list(y) for y in itertools.product(range(VOCAB), repeat=2)]
    total = mass_correct(gpt, [[1, 2, 3]], [every], progress=False)
    np.testing.assert_allclose(total, [1.0], atol=1e-5)


def test_sampling_is_seeded_and_batch_invariant(gpt: torch.nn.Module) -> None:
    prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9]]
    a = sample_responses(gpt, prompts, n=6, max_new_tokens=5, seed=3, progress=False)
    b = sample_responses(gpt, prompts, n=6, max_new_tokens=5, seed=3, batch_size=1,
                         progress=False)
    c = sample_responses(gpt, prompts, n=6, max_new_tokens=5, seed=4, progress=False)
    assert a == b
    assert a != c
    assert [len(s) for s in a] == [6, 6, 6]
    assert all(len(r) == 5 and all(0 <= t < VOCAB for t in r) for s in a for r in s)


def test_greedy_and_stop_token(gpt: torch.nn.Module) -> None:
    prompt = [3, 1, 4]
    greedy = sample_responses(gpt, [prompt], n=2, max_new_tokens=6, temperature=0.0,
                              progress=False)[0]
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(6):
            seq.append(int(gpt(torch.tensor([seq])).logits[0, -1].argmax()))
    assert greedy == [seq[3:], seq[3:]]
    stop = seq[4]
    stopped = sample_responses(gpt, [prompt], n=1, max_new_tokens=6, temperature=0.0,
                               stop_token_id=stop, progress=False)[0][0]
    assert stopped == seq[3 : 3 + seq[3:].index(stop) + 1]


def test_samples_follow_the_model_and_match_exact_pass_at_n(llama: torch.nn.Module) -> None:
    """Sampled Pass@N (unbiased estimator) agrees with exact Pass@N from mass_correct."""
    prompts = [[1, 2], [3], [4, 5, 6], [7, 8]]
    every = [list(y) for y in itertools.product(range(VOCAB), repeat=2)]
    scores = score_responses(llama, prompts, [every] * len(prompts), progress=False)
    rng = np.random.default_rng(0)
    # A correct set per prompt of moderate mass: the responses starting with 3 chosen tokens.
    firsts = [set(rng.choice(VOCAB, 3, replace=False).tolist()) for _ in prompts]
    correct = [[y for y in every if y[0] in f] for f in firsts]
    mass = mass_correct(llama, prompts, correct, progress=False)
    n_samples, n = 4000, 4
    samples = sample_responses(llama, prompts, n=n_samples, max_new_tokens=2, seed=7,
                               batch_size=4000, progress=False)
    counts = np.array([sum(r[0] in f for r in s) for s, f in zip(samples, firsts, strict=True)])
    # Frequencies of each full response agree with exp(score) (chi-square, 143 dof).
    for s, sc in zip(samples, scores, strict=True):
        observed = np.bincount([r[0] * VOCAB + r[1] for r in s], minlength=VOCAB**2)
        expected = n_samples * np.exp(sc)
        chi2 = float(((observed - expected) ** 2 / expected).sum())
        assert chi2 < 143 + 6 * np.sqrt(2 * 143)
    sampled = pass_at_k(n_samples, counts, n)
    exact = pass_at_n_exact(mass, [n])
    per_prompt_exact = 1 - (1 - mass) ** n
    se = np.sqrt(per_prompt_exact * (1 - per_prompt_exact) / n_samples * n)  # generous bound
    assert np.all(np.abs(sampled - per_prompt_exact) < 4 * se + 1e-3)
    assert abs(sampled.mean() - float(np.atleast_1d(exact)[0])) < 4 * se.mean() + 1e-3


def test_temperature_sharpens(gpt: torch.nn.Module) -> None:
    prompt = [2, 7]
    with torch.no_grad():
        top = int(gpt(torch.tensor([prompt])).logits[0, -1].argmax())
    cold = sample_responses(gpt, [prompt], n=400, max_new_tokens=1, temperature=0.2, seed=1,
                            progress=False)[0]
    warm = sample_responses(gpt, [prompt], n=400, max_new_tokens=1, temperature=1.0, seed=1,
                            progress=False)[0]
    assert sum(r[0] == top for r in cold) > sum(r[0] == top for r in warm)


def test_engine_runs_in_eval_mode_and_restores_the_mode() -> None:
    model = build_gpt("tiny", VOCAB, 40, seed=0, resid_pdrop=0.5, attn_pdrop=0.5)
    model.train()
    a = score_responses(model, [[1, 2]], [[[3, 4, 5]]], progress=False)
    b = score_responses(model, [[1, 2]], [[[3, 4, 5]]], progress=False)
    assert model.training
    assert a[0][0] == b[0][0]
    model.eval()
    np.testing.assert_allclose(a[0], [_naive_score(model, [1, 2], [3, 4, 5])], atol=1e-4)
    sample_responses(model, [[1]], n=2, max_new_tokens=2, progress=False)
    assert not model.training


@pytest.mark.parametrize(
    ("prompts", "responses", "match"),
    [
        ([[1]], [[[1]], [[2]]], "same length"),
        ([[]], [[[1]]], "prompt 0 is empty"),
        ([[1, VOCAB]], [[[1]]], "token id 12 outside"),
        ([[1]], [[[1, -1]]], "prompt 0 response 0: token id -1"),
        ([[1] * 30], [[[1] * 11]], "longer than the model's context of 40"),
        ([[1]], [[["a"]]], "integers"),
    ],
)
def test_score_rejects_bad_input(gpt: torch.nn.Module, prompts: list, responses: list,
                                 match: str) -> None:
    with pytest.raises(InputError, match=match):
        score_responses(gpt, prompts, responses, progress=False)


def test_bad_arguments(gpt: torch.nn.Module) -> None:
    with pytest.raises(InputError, match="batch_size"):
        score_responses(gpt, [[1]], [[[2]]], batch_size=0, progress=False)
    with pytest.raises(InputError, match="n must"):
        sample_responses(gpt, [[1]], n=0, max_new_tokens=2, progress=False)
    with pytest.raises(InputError, match="temperature"):
        sample_responses(gpt, [[1]], n=1, max_new_tokens=2, temperature=-1, progress=False)
    with pytest.raises(InputError, match="context"):
        sample_responses(gpt, [[1] * 35], n=1, max_new_tokens=6, progress=False)
    with pytest.raises(InputError, match="stop_token_id"):
        sample_responses(gpt, [[1]], n=1, max_new_tokens=2, stop_token_id=VOCAB, progress=False)


@pytest.mark.parametrize("name", ["gpt", "llama"])
def test_preallocated_cache_decodes_like_the_dynamic_one(
    name: str, request: pytest.FixtureRequest
) -> None:
    from lmcoverage.engine._hf import forward, preallocate, run_prompts, select_rows

    model = request.getfixturevalue(name)
    with torch.inference_mode():
        batch = run_prompts(model, [[1, 2, 3, 4], [5, 6]])
        rows = torch.tensor([0, 0, 1])
        caches = [select_rows(batch.cache, rows), preallocate(select_rows(batch.cache, rows), 3)]
        mask = batch.mask[rows]
        for t, token in enumerate(([7], [8], [9])):
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            ids = torch.tensor(token * 3)[:, None]
            positions = batch.lengths[rows][:, None] + t
            outs = [forward(model, ids, mask, positions, cache) for cache in caches]
            caches = [cache for _, cache in outs]
            torch.testing.assert_close(outs[0][0], outs[1][0])
        with pytest.raises(RuntimeError, match="full"):
            forward(model, ids, torch.cat([mask, mask[:, :1]], dim=1), positions + 1, caches[1])


@pytest.mark.slow
def test_paper_model_on_figure2_matches_naive_scores_at_any_batch_size() -> None:
    """Paper shape (6 layers, 4 heads, width 384) on real Figure 2 problems of each class."""
    from lmcoverage.tasks import get_task

    task = get_task("figure2-h8")
    model = build_gpt("paper", task.vocab_size, task.max_length, seed=0).eval()
    problems = [task.sample(1, seed=g, group=g)[0] for g in (1, 2, 3)]
    prompts = [list(p.prompt_ids) for p in problems]
    responses = [[list(p.response_ids), *map(list, p.valid_paths)] for p in problems]
    reference = score_responses(model, prompts, responses, batch_size=64, progress=False)
    for batch_size in (1, 5):
        got = score_responses(model, prompts, responses, batch_size=batch_size, progress=False)
        for a, b in zip(reference, got, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    for p, rs, scores in zip(prompts, responses, reference, strict=True):
        np.testing.assert_allclose(scores[:3], [_naive_score(model, p, r) for r in rs[:3]],
                                   atol=1e-4, rtol=0)
