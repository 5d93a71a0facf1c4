"""Invariants of the layered-DAG tasks (the paper's Appendix C) and ``lmcoverage task export``."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcoverage.cli import main
from lmcoverage.errors import InputError
from lmcoverage.tasks import GraphClass, GraphTask, Problem, get_task


def parse_prompt(task: GraphTask, problem: Problem) -> tuple[list[tuple[int, int]], int, int]:
    """Edges, s and t read back from the prompt tokens (independently of the sampler)."""
    ids = list(problem.prompt_ids)
    assert ids[-4] == task.slash and ids[-1] == task.equals
    s, t = ids[-3], ids[-2]
    body = ids[:-4]
    groups = [body[i:i + 3] for i in range(0, len(body), 3)]
    edges = []
    for k, g in enumerate(groups):
        assert g[:2] and all(1 <= v <= task.node_range for v in g[:2])
        if k < len(groups) - 1:
            assert g[2] == task.bar
        else:
            assert len(g) == 2
        edges.append((g[0], g[1]))
    return edges, s, t


def path_ok(edges: list[tuple[int, int]], s: int, t: int, path: tuple[int, ...]) -> bool:
    """Independent verifier: starts at s, ends at t, every step is an edge of the prompt."""
    e = set(edges)
    return path[0] == s and path[-1] == t and all((a, b) in e for a, b in itertools.pairwise(path))


def layers_of(edges: list[tuple[int, int]], s: int, n_layers: int) -> list[set[int]]:
    """Node sets of layers 2..n_layers+1 recovered by breadth from s."""
    out = [{v for u, v in edges if u == s}]
    for _ in range(n_layers - 1):
        out.append({v for u, v in edges if u in out[-1]})
    return out


def walks(edges: list[tuple[int, int]], s: int, t: int) -> list[tuple[int, ...]]:
    """All paths from s to t along ``edges``."""
    out: dict[int, list[int]] = {}
    for u, v in edges:
        out.setdefault(u, []).append(v)
    if s == t:
        return [(t,)]
    return [(s, *rest) for v in out.get(s, []) for rest in walks(edges, v, t)]


ALL_TASKS = ["figure1-pretrain", "figure1-finetune", "figure2-h4", "figure2-h8", "figure2-h16"]


@pytest.mark.parametrize("name", ALL_TASKS)
def test_structure_support_and_verifier(name: str) -> None:
    task = get_task(name)
    assert isinstance(task, GraphTask)
    H = task.layers + 2
    for p in task.sample(60, seed=3):
        edges, s, t = parse_prompt(task, p)
        assert len(p.response_ids) == H
        assert p.response_ids[0] == s and p.response_ids[-1] == t
        assert len(p.prompt_ids) + len(p.response_ids) <= task.max_length
        layer_sets = [{s}, *layers_of(edges, s, task.layers), {t}]
        for layer in layer_sets[1:-1]:
            assert len(layer) == task.nodes_per_layer
        nodes = set().union(*layer_sets)
        assert len(nodes) == task.layers * task.nodes_per_layer + 2
        # Valid paths: exactly the s-t walks along the prompt's edges (found by DFS).
        assert set(walks(edges, s, t)) == set(p.valid_paths)
        for y in p.valid_paths:
            assert task.is_correct(p, y)
        rng = np.random.default_rng(0)
        for _ in range(20):  # random layer-respecting sequences: verifier == edge check
            y = tuple(int(rng.choice(sorted(layer))) for layer in layer_sets)
            assert task.is_correct(p, y) == path_ok(edges, s, t, y)
        assert not task.is_correct(p, (s, *p.response_ids[1:-2], t, t))
        # Support: probabilities sum to one, inside the valid set, response drawn from it.
        probs = dict(p.support)
        assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-12)
        assert set(probs) <= set(p.valid_paths)
        assert p.response_ids in probs
        assert p.logp_data == pytest.approx(math.log(probs[p.response_ids]), abs=1e-12)
        assert task.log_prob_data(p, p.response_ids) == p.logp_data
        assert task.log_prob_data(p, (t,) * H) == -math.inf
        # Token-level pi_D reproduces the sequence probabilities (chain rule).
        for y, q in p.support:
            chain = 1.0
            for h in range(H):
                dist = task.token_distribution(p, y[:h])
                assert dist.shape == (task.vocab_size,)
                assert math.isclose(dist.sum(), 1.0, abs_tol=1e-12)
                chain *= dist[y[h]]
            assert chain == pytest.approx(q, rel=1e-12)


def _decision_layers(p: Problem) -> list[tuple[int, tuple[int, ...]]]:
    """(layer index, the two passable nodes) for every decision layer, s being layer 1."""
    out = []
    for j in range(1, len(p.response_ids) - 1):
        nodes = tuple(sorted({y[j] for y in p.valid_paths}))
        if len(nodes) == 2:
            out.append((j + 1, nodes))
    return out


def test_figure1_parity_rules_and_hidden_feature() -> None:
    task = get_task("figure1-pretrain")
    assert isinstance(task, GraphTask)
    seen = set()
    for p in task.sample(300, seed=5):
        seen.add(p.group)
        decisions = _decision_layers(p)
        assert len(decisions) == 2 and len(p.valid_paths) == 4
        for _, (a, b) in decisions:
            assert a % 2 != b % 2  # one even, one odd passable node
        nodes = {v for y in p.valid_paths for v in y}  # at least the passable ones
        edges, s, _t = parse_prompt(task, p)
        nodes = {s} | {v for _, v in edges}
        bit = task.hidden_bit(sorted(nodes))
        if p.group == 3:
            assert len(p.support) == 4
            assert all(q == pytest.approx(0.25) for _, q in p.support)
            continue
        (y_star, q), = p.support
        assert q == 1.0
        assert bit == (1 if p.group == 1 else 0)  # Appendix C.2: G1 has XOR 1, G2 XOR 0
        flip = 0 if p.group == 1 else 1  # parity rule (G1), opposite parity (G2)
        for layer, _ in decisions:
            assert (y_star[layer - 1] % 2) == (layer % 2) ^ flip
    assert seen == {1, 2, 3}


def test_figure2_classes_and_xor_rule() -> None:
    H = 8
    task = get_task(f"figure2-h{H}")
    for group, n_double in ((1, 0), (2, H // 2), (3, 4)):
        for p in task.sample(50, seed=group, group=group):
            assert p.group == group
            decisions = _decision_layers(p)
            assert len(decisions) == n_double
            assert len(p.valid_paths) == 2 ** n_double
            if group == 3:
                assert len(p.support) == 16
                continue
            (y_star, _), = p.support
            if group == 2:
                # b = XOR of the parities of the passable nodes of layers 2..H+1 (s excluded).
                passable = {y[j] for y in p.valid_paths for j in range(1, H + 1)}
                b = 0
                for v in passable:
                    b ^= v % 2
                for layer, _ in decisions:
                    assert y_star[layer - 1] % 2 == (layer % 2) ^ b


def test_class_frequencies_follow_weights() -> None:
    task = get_task("figure2-h4")
    groups = np.array([p.group for p in task.sample(4000, seed=11)])
    for g, w in task.class_weights.items():
        freq = float(np.mean(groups == g))
        assert abs(freq - w) < 4 * math.sqrt(w * (1 - w) / len(groups)) + 1e-3
    ft = get_task("figure1-finetune")
    assert ft.class_weights == {1: 0.9, 2: 0.1}
    assert {p.group for p in ft.sample(200, seed=0)} == {1, 2}


def test_sampling_is_seeded() -> None:
    task = get_task("figure1-finetune")
    assert task.sample(20, seed=4) == task.sample(20, seed=4)
    assert task.sample(20, seed=4) != task.sample(20, seed=5)


def test_edge_order_option() -> None:
    ordered = get_task("figure2-h8")
    shuffled = get_task("figure2-h8", edge_order="shuffled")
    assert ordered.options == {} and shuffled.options == {"edge_order": "shuffled"}
    p, q = ordered.sample(1, seed=2)[0], shuffled.sample(1, seed=2)[0]
    e_p, s, _ = parse_prompt(ordered, p)
    e_q, _, _ = parse_prompt(shuffled, q)
    # Same graph (the permutation is drawn after the graph), edges in another order.
    assert sorted(e_p) == sorted(e_q) and e_p != e_q
    depth = {s: 0}
    for u, v in e_p:
        depth.setdefault(v, depth[u] + 1)
    assert [depth[u] for u, _ in e_p] == sorted(depth[u] for u, _ in e_p)


def test_smaller_variants_and_rebuild() -> None:
    task = get_task("figure1-finetune", layers=4, nodes_per_layer=3, node_range=20)
    assert isinstance(task, GraphTask)
    assert task.vocab_size == 20 + 5 and task.response_length == 6
    p = task.sample(1, seed=0)[0]
    assert len(p.valid_paths) == 4 and max(p.prompt_ids) <= 23
    again = get_task(task.name, **task.options)
    assert again.sample(5, seed=1) == task.sample(5, seed=1)
    # Class weights can be changed (e.g. a G2-only validation mixture).
    only2 = get_task("figure1-finetune", class_weights={"2": 1.0})
    assert {q.group for q in only2.sample(20, seed=0)} == {2}


def test_tokenizer_round_trip(tmp_path) -> None:
    from transformers import AutoTokenizer

    task = get_task("figure1-pretrain", layers=3)
    tok = task.tokenizer()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for p in task.sample(5, seed=0):
        for t in (tok, loaded):
            assert t(task.prompt_text(p))["input_ids"] == list(p.prompt_ids)
            assert t(task.response_text(p.response_ids))["input_ids"] == list(p.response_ids)
        assert task.text_to_ids(task.prompt_text(p)) == p.prompt_ids
    assert loaded.pad_token_id == task.pad_token_id == 0
    assert loaded("1 foo")["input_ids"][1] == loaded.unk_token_id == task.vocab_size - 1
    with pytest.raises(InputError, match="unknown symbol 'foo'"):
        task.text_to_ids("1 foo")


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("figure3", {}, "unknown task 'figure3'"),
        ("figure2-h7", {}, "even integer >= 4"),
        ("figure2-h2", {}, "even integer >= 4"),
        ("figure1-pretrain", {"colour": 1}, "unknown option 'colour'"),
        ("figure2-h8", {"layers": 3}, "unknown option 'layers'"),
        ("figure1-pretrain", {"edge_order": "random"}, "edge_order"),
        ("figure1-pretrain", {"layers": 0}, "layers must be"),
        ("figure1-pretrain", {"node_range": 10}, "node_range"),
        ("figure1-finetune", {"class_weights": {4: 1.0}}, "labels \\[4\\]"),
        ("figure1-finetune", {"class_weights": {1: -1.0}}, "non-negative"),
    ],
)
def test_bad_task_arguments(name: str, options: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        get_task(name, **options)


def test_bad_sample_arguments() -> None:
    task = get_task("figure2-h4")
    with pytest.raises(InputError, match="seed"):
        task.sample(2, seed=-1)
    with pytest.raises(InputError, match="n must be"):
        task.sample(-2, seed=0)
    with pytest.raises(InputError, match="group must be"):
        task.sample(2, seed=0, group=7)
    p = task.sample(1, seed=0)[0]
    with pytest.raises(InputError, match="probability 0"):
        task.token_distribution(p, (p.response_ids[-1],))


def test_export_cli(tmp_path, capsys) -> None:
    out = tmp_path / "data.jsonl"
    assert main(["task", "export", "figure2-h8", "--n", "40", "--seed", "1",
                 "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 40
    task = get_task("figure2-h8")
    expected = [task.to_row(p) for p in task.sample(40, seed=1)]
    assert rows == json.loads(json.dumps(expected))
    for row in rows:
        assert set(row) == {"prompt", "response", "group", "logp_data", "support", "valid_paths"}
        assert row["group"] in (1, 2, 3)
        probs = dict((y, q) for y, q in row["support"])
        assert sum(probs.values()) == pytest.approx(1.0)
        assert row["logp_data"] == pytest.approx(math.log(probs[row["response"]]))
        assert row["response"] in row["valid_paths"]
        assert row["prompt"].endswith("=")
    assert main(["task", "export", "figure1-finetune", "--n", "3", "--out",
                 str(tmp_path / "small.jsonl"), "--task-option", "layers=3"]) == 0
    small = [json.loads(line) for line in (tmp_path / "small.jsonl").read_text().splitlines()]
    assert all(len(r["response"].split()) == 5 for r in small)
    capsys.readouterr()
    assert main(["task", "export", "nope", "--n", "3", "--out", str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'nope'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.jsonl").exists()
    assert main(["task", "export", "figure2-h8", "--n", "3", "--out", str(tmp_path / "y.jsonl"),
                 "--task-option", "layers"]) == 2
    assert "--task-option 'layers': expected KEY=VALUE" in capsys.readouterr().err


@settings(max_examples=25, deadline=None)
@given(layers=st.integers(1, 5), per_layer=st.integers(2, 4), data=st.data())
def test_any_graph_layout_keeps_the_invariants(layers: int, per_layer: int, data) -> None:
    n_double = data.draw(st.integers(0, layers))
    extra = data.draw(st.integers(1, 20))
    classes = [GraphClass(1, n_double, "parity", hidden=0), GraphClass(2, n_double, "xor"),
               GraphClass(3, n_double, "uniform"), GraphClass(4, n_double, "antiparity")]
    task = GraphTask("custom", {}, layers, per_layer, layers * per_layer + 2 + extra, classes,
                     {1: 1, 2: 1, 3: 1, 4: 1},
                     edge_order=data.draw(st.sampled_from(["layer", "shuffled"])))
    for p in task.sample(12, seed=data.draw(st.integers(0, 2**32))):
        edges, s, t = parse_prompt(task, p)
        assert set(walks(edges, s, t)) == set(p.valid_paths)
        assert len(p.valid_paths) == 2 ** n_double
        assert len(p.prompt_ids) + len(p.response_ids) <= task.max_length
        assert math.isclose(sum(q for _, q in p.support), 1.0)
        assert len(p.support) == (2 ** n_double if p.group == 3 else 1)
        assert task.is_correct(p, p.response_ids)


def test_hidden_feature_needs_spare_node_ids() -> None:
    task = GraphTask("tight", {}, 2, 2, 6, [GraphClass(1, 1, "parity", hidden=0),
                                            GraphClass(2, 1, "antiparity", hidden=1)],
                     {1: 1, 2: 1})
    # With m equal to the number of graph nodes every graph uses every id: the hidden bit is
    # constant, so one of the two classes cannot be drawn.
    with pytest.raises(InputError, match="node_range 6 is too small"):
        task.sample(1, seed=0, group=1)
        task.sample(1, seed=0, group=2)
