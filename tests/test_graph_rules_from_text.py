"""pi_D re-derived from the prompt TEXT alone, with the paper's rules (Appendix C).

For every class of ``figure1-*`` and ``figure2-h{8,16,24}`` and at least 500 prompts each, the
prompt text ``u1 v1 | ... | uk vk / s t =`` is parsed into an edge list, the layers are found
from s (layer 1 = {s}; layer i+1 = the heads of the edges leaving layer i's passable nodes;
a node is passable when it has an outgoing edge), and pi_D(.|x) is rebuilt from the paper's
rule of the class:

- Figure 1 G1 / G2: in every layer with two passable nodes take the node whose parity equals
  (G1) or differs from (G2) the layer index's parity; G3: uniform over the valid paths;
- Figure 2 class 2: take the node of parity ``parity(i) XOR b``, b the XOR of the parities of
  the passable nodes of the intermediate layers 2..H+1 (V*; s and t excluded); classes 1 and 3:
  uniform over the valid paths.

The rebuilt support (response text -> probability) must equal the task's ``support``.
"""

from __future__ import annotations

import itertools

import pytest

from lmcoverage.tasks import get_task

N_PROMPTS = 500


def parse_edges(prompt: str) -> tuple[dict[int, list[int]], int, int]:
    """Adjacency (tail -> heads), s and t from the prompt text."""
    body, query = prompt.split(" / ")
    s_text, t_text, eq = query.split()
    assert eq == "="
    adjacency: dict[int, list[int]] = {}
    for edge in body.split(" | "):
        u, v = edge.split()
        adjacency.setdefault(int(u), []).append(int(v))
    return adjacency, int(s_text), int(t_text)


def passable_layers(adjacency: dict[int, list[int]], s: int, t: int) -> list[list[int]]:
    """Passable nodes of the intermediate layers 2, 3, ... (in layer order) found from s."""
    layers: list[list[int]] = []
    frontier = [s]
    while True:
        heads = sorted({v for u in frontier for v in adjacency[u]})
        if heads == [t]:
            return layers
        frontier = [v for v in heads if v in adjacency]
        assert frontier, "a layer without a passable node"
        layers.append(frontier)


def rule_support(prompt: str, rule: str) -> dict[str, float]:
    """pi_D(.|x) as response text -> probability, from the prompt text and the class's rule."""
    adjacency, s, t = parse_edges(prompt)
    inner = passable_layers(adjacency, s, t)
    if rule == "uniform":
        paths = list(itertools.product(*inner))
        return {" ".join(map(str, (s, *p, t))): 1.0 / len(paths) for p in paths}
    if rule == "xor":
        b = 0
        for layer in inner:  # V*: layers 2..H+1 only
            for v in layer:
                b ^= v & 1
    else:
        b = {"parity": 0, "antiparity": 1}[rule]
    path = [s]
    for i, layer in enumerate(inner, start=2):  # s is layer 1
        if len(layer) == 1:
            path.append(layer[0])
        else:
            (pick,) = [v for v in layer if v & 1 == (i & 1) ^ b]
            path.append(pick)
    return {" ".join(map(str, (*path, t))): 1.0}


CASES = [
    ("figure1-pretrain", 1, "parity"), ("figure1-pretrain", 2, "antiparity"),
    ("figure1-pretrain", 3, "uniform"),
    ("figure1-finetune", 1, "parity"), ("figure1-finetune", 2, "antiparity"),
    *[(f"figure2-h{h}", g, rule) for h in (8, 16, 24)
      for g, rule in ((1, "uniform"), (2, "xor"), (3, "uniform"))],
]


@pytest.mark.parametrize(("name", "group", "rule"), CASES)
def test_support_matches_the_paper_rule_read_from_text(name: str, group: int, rule: str) -> None:
    task = get_task(name)
    problems = task.sample(N_PROMPTS, seed=1000 + group, group=group)
    for p in problems:
        want = rule_support(task.prompt_text(p), rule)
        got = {task.response_text(y): q for y, q in p.support}
        assert got.keys() == want.keys()
        assert all(abs(got[y] - want[y]) <= 1e-12 for y in want)
        assert task.response_text(p.response_ids) in want


def test_source_parity_is_not_part_of_the_class2_bit() -> None:
    """The rule above differs from XOR-ing s in too: about half the graphs have an odd s."""
    task = get_task("figure2-h8")
    odd = sum(int(task.prompt_text(p).split(" / ")[1].split()[0]) & 1
              for p in task.sample(200, seed=3, group=2))
    assert 60 < odd < 140
