"""Graph search on layered DAGs with an exactly known pi_D (the paper's Appendix C).

A problem is (G, s, t). G has ``layers + 2`` layers of distinct node ids from ``{1..m}``:
layer 1 is ``{s}``, layers 2..L+1 hold ``nodes_per_layer`` nodes each, layer L+2 is ``{t}``.
In every intermediate layer one node is passable, or two (one even, one odd) in the class's
"decision" layers; every passable node (and s) has an edge to every node of the next layer, the
others are dead ends. A valid path is ``s, v_2, .., v_{L+1}, t`` through passable nodes; the
response is the path (H = L + 2 tokens). Layer indices (used by the parity rules) count s as
layer 1, so the node at response position j (1-based) lies in layer j.

Prompt: ``u1 v1 | u2 v2 | ... | uk vk / s t =``. Tokens: node v is id v, '|' '/' '=' are
m+1, m+2, m+3; id 0 is the pad token and m+4 the unknown-symbol token.

pi_D rules of a class (``GraphClass.rule``):

- ``parity`` (Figure 1, G1): in a decision layer take the node whose parity equals the layer
  index's parity; ``antiparity`` (G2): the opposite parity.
- ``xor`` (Figure 2, class 2): take the node of parity ``parity(layer index) XOR b``, b the XOR of
  the parities of the passable nodes of the intermediate layers 2..L+1 (the paper's
  V* = union of V^i_*, Appendix C; s and t are not in V*). A decision layer holds one even and
  one odd passable node, so it adds 1 to b whichever node the path takes.
- ``uniform`` (G3, Figure 2 classes 1 and 3): uniform over the valid paths.

Figure 1's classes G1 and G2 differ only through a hidden feature: ``hidden_bit(G)`` is the
parity of the XOR of the graph's node ids that lie in a fixed random half V' of ``{1..m}``
(chosen by ``hidden_seed``). G1 graphs have bit 1, G2 graphs bit 0 (``GraphClass.hidden``), as
in the paper's Appendix C.2 (G1: XOR over V' of p(u) = 1; G2: = 0).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from lmcoverage.errors import InputError
from lmcoverage.tasks.base import Problem, Task, Tokens, normalise_weights

RULES = ("parity", "antiparity", "xor", "uniform")
EDGE_ORDERS = ("layer", "shuffled")


@dataclass(frozen=True)
class GraphClass:
    """One class of graphs and its pi_D rule.

    Attributes:
        label: group label (1, 2, 3).
        n_double: number of intermediate layers with two passable nodes (decision layers),
            placed at random in every graph.
        rule: one of :data:`RULES`.
        hidden: required value of the hidden bit (0 or 1), or None for any graph.
    """

    label: int
    n_double: int
    rule: str
    hidden: int | None = None


@dataclass(frozen=True)
class Graph:
    """A sampled layered DAG: ``layers[j]`` are the node ids of layer j+1 (s first, t last)."""

    layers: tuple[tuple[int, ...], ...]
    passable: tuple[tuple[int, ...], ...]  # passable nodes of each layer (t has none)

    @property
    def source(self) -> int:
        return self.layers[0][0]

    @property
    def target(self) -> int:
        return self.layers[-1][0]

    def edges(self) -> list[tuple[int, int]]:
        """All edges in layer order: every passable node to every node of the next layer."""
        return [(u, v) for j in range(len(self.layers) - 1)
                for u in self.passable[j] for v in self.layers[j + 1]]

    def valid_paths(self) -> list[Tokens]:
        """Every s-t path through passable nodes, in layer-node order."""
        return list(itertools.product(*self.passable[:-1], self.layers[-1]))


def default_node_range(layers: int, nodes_per_layer: int) -> int:
    """Default m: twice the number of graph nodes, rounded up to a multiple of 16."""
    n_nodes = layers * nodes_per_layer + 2
    return 16 * math.ceil(2 * n_nodes / 16)


class GraphTask(Task):
    """Layered-DAG search problems with a mixture of :class:`GraphClass` es.

    Args:
        name: registry name (for ``get_task(name, **options)``).
        options: the keyword options that rebuilt this task from the registry.
        layers: number of intermediate layers L (response length L + 2).
        nodes_per_layer: nodes in each intermediate layer (>= 2).
        node_range: m, node ids are drawn from ``{1..m}``.
        classes: the classes the task can produce.
        class_weights: label -> mixture weight for :meth:`sample` (labels of ``classes``).
        edge_order: ``layer`` (edges listed layer by layer) or ``shuffled`` (random order).
        hidden_seed: seed of the hidden half V' of node ids.
    """

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        layers: int,
        nodes_per_layer: int,
        node_range: int,
        classes: Sequence[GraphClass],
        class_weights: Mapping[int, float],
        edge_order: str = "layer",
        hidden_seed: int = 0,
    ) -> None:
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
            raise InputError(f"layers must be an integer >= 1, got {layers!r}")
        if (isinstance(nodes_per_layer, bool) or not isinstance(nodes_per_layer, int)
                or nodes_per_layer < 2):
            raise InputError(f"nodes_per_layer must be an integer >= 2, got {nodes_per_layer!r}")
        n_nodes = layers * nodes_per_layer + 2
        if isinstance(node_range, bool) or not isinstance(node_range, int) or node_range < n_nodes:
            raise InputError(
                f"node_range must be an integer >= the {n_nodes} graph nodes, got {node_range!r}"
            )
        if edge_order not in EDGE_ORDERS:
            raise InputError(f"edge_order must be one of {EDGE_ORDERS}, got {edge_order!r}")
        if not classes:
            raise InputError("classes must not be empty")
        for c in classes:
            if c.rule not in RULES:
                raise InputError(f"rule of class {c.label} must be one of {RULES}, got {c.rule!r}")
            if not 0 <= c.n_double <= layers:
                raise InputError(
                    f"n_double of class {c.label} must be in [0, layers={layers}], got {c.n_double}"
                )
            if c.n_double > min(node_range // 2, (node_range + 1) // 2):
                raise InputError(f"node_range {node_range} has too few even/odd ids")
            if c.hidden not in (None, 0, 1):
                raise InputError(f"hidden of class {c.label} must be None, 0 or 1, got {c.hidden}")
        self.name = name
        self.options = dict(options)
        self.layers = layers
        self.nodes_per_layer = nodes_per_layer
        self.node_range = node_range
        self.classes = {c.label: c for c in classes}
        if len(self.classes) != len(classes):
            raise InputError("class labels must be distinct")
        unknown = set(class_weights) - set(self.classes)
        if unknown:
            raise InputError(
                f"class_weights has labels {sorted(unknown)} not among the task's classes "
                f"{sorted(self.classes)}"
            )
        self.class_weights = normalise_weights(class_weights)
        self.edge_order = edge_order
        self.hidden_seed = hidden_seed
        m = node_range
        self.bar, self.slash, self.equals = m + 1, m + 2, m + 3
        self.symbols = (self.pad_token, *(str(v) for v in range(1, m + 1)), "|", "/", "=",
                        self.unk_token)
        hidden = np.random.default_rng(hidden_seed).permutation(np.arange(1, m + 1))[: m // 2]
        self._in_hidden = np.zeros(m + 1, dtype=bool)
        self._in_hidden[hidden] = True

    @property
    def class_groups(self) -> tuple[int, ...]:
        return tuple(self.classes)

    @property
    def response_length(self) -> int:
        """H = L + 2 tokens: s, one node per intermediate layer, t."""
        return self.layers + 2

    @cached_property
    def max_length(self) -> int:  # type: ignore[override]
        """Longest prompt over the classes (decision layers placed to maximise edges) + H."""
        longest = 0
        for c in self.classes.values():
            # Decision layers before the last intermediate layer add nodes_per_layer edges each.
            counts = [1] * self.layers
            for j in range(c.n_double):
                counts[j] = 2
            n_edges = self.nodes_per_layer + sum(
                k * self.nodes_per_layer for k in counts[:-1]) + counts[-1]
            longest = max(longest, 3 * n_edges + 3)
        return longest + self.response_length

    def hidden_bit(self, nodes: Sequence[int]) -> int:
        """Parity of the XOR of the node ids in the hidden half V' (the G1/G2 feature)."""
        acc = 0
        for v in nodes:
            if self._in_hidden[v]:
                acc ^= v
        return acc & 1

    def sample_graph(self, rng: np.random.Generator, n_double: int) -> Graph:
        """A random graph with ``n_double`` decision layers (one even + one odd passable node)."""
        L, k, m = self.layers, self.nodes_per_layer, self.node_range
        perm = (rng.permutation(m) + 1).tolist()
        evens = [v for v in perm if v % 2 == 0]
        odds = [v for v in perm if v % 2 == 1]
        double = set(rng.choice(L, size=n_double, replace=False).tolist()) if n_double else set()
        used: set[int] = set()
        inner_passable: list[tuple[int, ...]] = []
        for j in range(L):
            if j in double:
                pair = (evens.pop(), odds.pop())
                used.update(pair)
                inner_passable.append(pair)
            else:
                inner_passable.append(())
        rest = iter(v for v in perm if v not in used)
        source, target = next(rest), next(rest)
        layers: list[tuple[int, ...]] = [(source,)]
        passable: list[tuple[int, ...]] = [(source,)]
        for j in range(L):
            pas = inner_passable[j]
            nodes = list(pas) + [next(rest) for _ in range(k - len(pas))]
            order = rng.permutation(k)
            layer = tuple(nodes[i] for i in order)
            if not pas:
                pas = (layer[int(rng.integers(k))],)
            layers.append(layer)
            passable.append(tuple(v for v in layer if v in pas))
        layers.append((target,))
        passable.append(())
        return Graph(layers=tuple(layers), passable=tuple(passable))

    def encode_prompt(self, graph: Graph, rng: np.random.Generator) -> Tokens:
        """``u1 v1 | ... | uk vk / s t =`` as token ids, edges in :attr:`edge_order`."""
        edges = graph.edges()
        if self.edge_order == "shuffled":
            edges = [edges[i] for i in rng.permutation(len(edges))]
        ids: list[int] = []
        for i, (u, v) in enumerate(edges):
            if i:
                ids.append(self.bar)
            ids += (u, v)
        ids += (self.slash, graph.source, graph.target, self.equals)
        return tuple(ids)

    def support(self, graph: Graph, rule: str,
                paths: Sequence[Tokens] | None = None) -> tuple[tuple[Tokens, float], ...]:
        """pi_D(.|x) of ``rule`` on ``graph`` as (path, probability) pairs.

        ``paths``: ``graph.valid_paths()`` if already computed (only the uniform rule uses it).
        """
        if rule == "uniform":
            paths = graph.valid_paths() if paths is None else paths
            return tuple((p, 1.0 / len(paths)) for p in paths)
        if rule == "xor":
            b = 0
            for pas in graph.passable[1:-1]:  # V*: intermediate layers only (App. C)
                for v in pas:
                    b ^= v & 1
        else:
            b = 0 if rule == "parity" else 1
        path = [graph.source]
        for j, pas in enumerate(graph.passable[1:-1], start=2):
            if len(pas) == 1:
                path.append(pas[0])
            else:
                want = (j & 1) ^ b
                path.append(next(v for v in pas if v & 1 == want))
        path.append(graph.target)
        return ((tuple(path), 1.0),)

    def _sample_one(self, rng: np.random.Generator, group: int) -> Problem:
        cls = self.classes[group]
        for _ in range(10_000):
            graph = self.sample_graph(rng, cls.n_double)
            if cls.hidden is None or self.hidden_bit(
                    [v for layer in graph.layers for v in layer]) == cls.hidden:
                break
        else:
            raise InputError(f"node_range {self.node_range} is too small: no graph of class "
                             f"{group} with hidden bit {cls.hidden} in 10,000 draws")
        prompt = self.encode_prompt(graph, rng)
        paths = tuple(graph.valid_paths())
        support = self.support(graph, cls.rule, paths)
        i = int(rng.choice(len(support), p=[p for _, p in support])) if len(support) > 1 else 0
        response, prob = support[i]
        return Problem(
            prompt_ids=prompt,
            response_ids=response,
            group=group,
            logp_data=math.log(prob),
            support=support,
            valid_paths=paths,
        )


def figure1_classes(n_double: int = 2) -> tuple[GraphClass, ...]:
    """G1 (parity, hidden bit 1), G2 (antiparity, hidden bit 0), G3 (uniform, any graph)."""
    return (
        GraphClass(1, n_double, "parity", hidden=1),
        GraphClass(2, n_double, "antiparity", hidden=0),
        GraphClass(3, n_double, "uniform"),
    )


def figure2_classes(horizon: int, uniform_layers: int = 4) -> tuple[GraphClass, ...]:
    """Class 1: one path; class 2: H/2 xor-rule decisions; class 3: uniform over 2^4 paths."""
    return (
        GraphClass(1, 0, "uniform"),
        GraphClass(2, horizon // 2, "xor"),
        GraphClass(3, uniform_layers, "uniform"),
    )
