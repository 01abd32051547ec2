"""The networkx seam: the one module that imports :mod:`networkx`.

Everything else reaches graphs through these small functions. The knowledge graph
(tools/kg.py) keeps a :data:`Graph` of facts and asks for weighted shortest paths; the
social graph (tools/social_graph.py) asks for random graphs as edge arrays and for
network measures of an edge array, and keeps its own tuple-of-arrays form, so no
networkx object outlives a call there.

Edge arrays are ``int64`` arrays of shape ``(E, 2)`` over nodes ``0 .. n-1``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import networkx as nx
import numpy as np

__all__ = [
    "EdgeWeight",
    "Graph",
    "barabasi_albert_edges",
    "graph_from_edges",
    "network_measures",
    "sbm_edges",
    "shortest_path",
    "watts_strogatz_edges",
]

Graph: TypeAlias = nx.Graph
"""An undirected networkx graph (the knowledge graph's store)."""

EdgeWeight: TypeAlias = Callable[[Any, Any, dict[str, Any]], float | None]
"""``weight(u, v, edge data)``: the cost of an edge, None to hide it."""


# ----------------------------------------------------------------------------- the KG


def graph_from_edges(edges: Iterable[tuple[Any, Any, dict[str, Any]]]) -> Graph:
    """An undirected graph of ``(u, v, attributes)`` edges."""
    g = nx.Graph()
    g.add_edges_from(edges)
    return g


def shortest_path(g: Graph, source: Any, target: Any, weight: EdgeWeight) -> list[Any] | None:
    """The cheapest path from ``source`` to ``target`` (both in ``g``) as a node list;
    None when none exists. ``weight(u, v, data)`` returning None hides the edge."""
    try:
        _, nodes = nx.bidirectional_dijkstra(g, source, target, weight=weight)
    except nx.NetworkXNoPath:
        return None
    return list(nodes)


# ----------------------------------------------------------------------------- generators


def _edge_array(g: Any) -> np.ndarray:
    flat = np.fromiter((x for e in g.edges() for x in e), dtype=np.int64,
                       count=2 * g.number_of_edges())
    return flat.reshape(-1, 2)


def barabasi_albert_edges(n: int, m: int, seed: int) -> np.ndarray:
    """Preferential attachment: each of ``n - m`` new nodes ties to ``m`` earlier ones.
    Node ``k`` joined ``k``-th, so low numbers are the hubs."""
    return _edge_array(nx.barabasi_albert_graph(n, m, seed=seed))


def watts_strogatz_edges(n: int, k: int, p: float, seed: int) -> np.ndarray:
    """A ring of ``n`` nodes each tied to its ``k`` nearest, each tie rewired with
    probability ``p``. Neighbours on the ring are neighbouring node numbers."""
    return _edge_array(nx.watts_strogatz_graph(n, k, p, seed=seed))


def sbm_edges(sizes: Sequence[int], probs: Sequence[Sequence[float]], seed: int) -> np.ndarray:
    """A stochastic block model: blocks of ``sizes`` consecutive nodes, a tie between
    blocks ``a`` and ``b`` with probability ``probs[a][b]`` (symmetric), no self-loops.
    Sparse sampling (geometric skips), so the cost follows the edges, not the pairs."""
    g = nx.stochastic_block_model(list(sizes), [list(r) for r in probs], seed=seed,
                                  directed=False, selfloops=False, sparse=True)
    return _edge_array(g)


# ----------------------------------------------------------------------------- measures


def _finite(x: Any) -> float | None:
    v = float(x)
    return v if math.isfinite(v) else None


def network_measures(n: int, edges: np.ndarray, directed: bool,
                     labels: Mapping[str, Sequence[str]]) -> dict[str, float | None]:
    """Average clustering, degree assortativity and, per entry of ``labels`` (one label
    per node), attribute assortativity, all of one graph built once.

    Directed graphs: clustering as networkx defines it for directed graphs (Fagiolo),
    degree assortativity out-degree of the source against in-degree of the target.
    A coefficient that is undefined (no edges, a single label, every degree equal) is None.

    Returns:
        ``{"clustering": c, "degree": r, NAME: r for each label set}``.
    """
    g: Any = nx.DiGraph() if directed else nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(map(tuple, np.asarray(edges, dtype=np.int64).tolist()))
    out: dict[str, float | None] = {"clustering": _finite(nx.average_clustering(g))
                                    if n else None}
    has_edges = g.number_of_edges() > 0
    # networkx divides by zero (and warns) when a coefficient is undefined; that is None.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        out["degree"] = _finite(nx.degree_assortativity_coefficient(g)) if has_edges else None
        for name, values in labels.items():
            nx.set_node_attributes(g, dict(enumerate(values)), "_label")
            out[name] = (_finite(nx.attribute_assortativity_coefficient(g, "_label"))
                         if has_edges else None)
    return out
