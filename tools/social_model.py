"""The social graph's data: :class:`SocialGraph` and the array work behind it.

The public interface is tools/social_graph.py (which re-exports these names); this module
holds what building, statistics and rewiring share, so none of them imports another.

Tie strength is in (0, 1]. Weights from the data are divided by the largest. Otherwise
strength comes from structure: ``0.1 + 0.9 * J``, J the Jaccard overlap of the two ends'
other neighbours (in the undirected view): a tie inside a tight group is strong, a bridge
between groups weak (Granovetter), and 0.1 is the floor, so every tie counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from scenarios.demographics import age_band
from tools.data_model import DataError

__all__ = [
    "MIN_TIE",
    "UNKNOWN",
    "GraphError",
    "SocialGraph",
    "assemble",
    "attribute_levels",
    "block_labels",
    "components",
    "split_rows",
    "structural_strength",
]

MIN_TIE = 0.1


class GraphError(DataError):
    """A social graph cannot be built as asked: an edge-list file is missing or malformed
    (the message names file and line), a user is unknown, a parameter is impossible for
    the population, or the graph is disconnected where it must not be."""


UNKNOWN = "unknown"  # the level of a missing or unusable attribute


@dataclass(frozen=True, eq=False)
class SocialGraph:
    """Ties between the users of a population; build it with
    :func:`tools.social_graph.build_graph`.

    Attributes:
        users: Dataset user indices; node ``i`` is ``users[i]``.
        directed: Ties have a direction (``i`` follows ``j``); else every tie is mutual
            and appears in both ends' ``neighbors``.
        neighbors: Out-neighbours of each node (whom it follows / is tied to), sorted.
        weights: Tie strength in (0, 1], aligned with ``neighbors``.
        weighted: The strengths came from the data (else from structure, and rewiring
            recomputes them).
        source: Where the graph came from (the generator and seed, or the file).
        notes: What was adjusted while building or rewiring (merged ties, left-out ties,
            stray nodes tied in, ...), one line each.
    """

    users: tuple[int, ...]
    directed: bool
    neighbors: tuple[np.ndarray, ...]
    weights: tuple[np.ndarray, ...]
    weighted: bool = False
    source: str = ""
    notes: tuple[str, ...] = ()

    @property
    def n_nodes(self) -> int:
        return len(self.users)

    @cached_property
    def out_degree(self) -> np.ndarray:
        """Ties each node makes (undirected: its degree)."""
        return np.fromiter(map(len, self.neighbors), dtype=np.int64, count=self.n_nodes)

    @cached_property
    def in_degree(self) -> np.ndarray:
        """Followers of each node (undirected: its degree)."""
        if not self.directed:
            return self.out_degree
        return np.bincount(self._arcs[1], minlength=self.n_nodes).astype(np.int64)

    @property
    def degree(self) -> np.ndarray:
        """Ties per node; directed: followed plus followers (a mutual pair counts twice)."""
        return self.out_degree + self.in_degree if self.directed else self.out_degree

    @property
    def n_edges(self) -> int:
        """Ties (undirected: each once; directed: each arc)."""
        total = int(self.out_degree.sum())
        return total if self.directed else total // 2

    @cached_property
    def _arcs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.repeat(np.arange(self.n_nodes, dtype=np.int64), self.out_degree)
        dst = np.concatenate(self.neighbors) if self.n_nodes else np.zeros(0, np.int64)
        w = np.concatenate(self.weights) if self.n_nodes else np.zeros(0)
        return src, dst.astype(np.int64), w

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(src, dst, weight)`` of every tie once (undirected: ``src < dst``)."""
        src, dst, w = self._arcs
        if self.directed:
            return src, dst, w
        keep = src < dst
        return src[keep], dst[keep], w[keep]

    @cached_property
    def _followers(self) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        src, dst, w = self._arcs
        return split_rows(self.n_nodes, dst, src, w)

    def followers(self, i: int) -> np.ndarray:
        """In-neighbours of node ``i`` (who follows it), sorted; undirected: neighbors."""
        return self._followers[0][i] if self.directed else self.neighbors[i]

    def tie(self, i: int, j: int) -> float:
        """Strength of the tie ``i -> j``; 0.0 when there is none."""
        row = self.neighbors[i]
        k = int(np.searchsorted(row, j))
        return float(self.weights[i][k]) if k < len(row) and row[k] == j else 0.0

    @cached_property
    def node_of(self) -> dict[int, int]:
        """Dataset user index -> node."""
        return {u: i for i, u in enumerate(self.users)}


# ----------------------------------------------------------------------------- arrays


def split_rows(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray
               ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Per source node, its targets sorted and their weights (read-only views)."""
    order = np.lexsort((dst, src))
    dst, w = dst[order].astype(np.int64), w[order].astype(np.float64)
    dst.flags.writeable = w.flags.writeable = False
    cuts = np.cumsum(np.bincount(src, minlength=n))[:-1]
    return tuple(np.split(dst, cuts)), tuple(np.split(w, cuts))


def structural_strength(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``MIN_TIE + (1 - MIN_TIE) * Jaccard`` of each tie's ends' other neighbours."""
    if not len(src):
        return np.zeros(0)
    a = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    a = ((a + a.T) > 0).astype(np.float64).tocsr()
    deg = np.asarray(a.sum(axis=1)).ravel()
    common = np.asarray(a[src].multiply(a[dst]).sum(axis=1)).ravel()
    # The ends know each other; neither counts as a shared or an own other neighbour.
    union = deg[src] + deg[dst] - 2.0 - common
    jac = np.divide(common, union, out=np.zeros_like(common), where=union > 0)
    return MIN_TIE + (1.0 - MIN_TIE) * jac


def assemble(users: Sequence[int], directed: bool, src: np.ndarray, dst: np.ndarray,
             w: np.ndarray | None, source: str, notes: Sequence[str]) -> SocialGraph:
    """A graph of ties ``src -> dst`` (undirected: each tie once, either way round).
    ``w`` None: structural strengths; else divided by its largest value."""
    n = len(users)
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    if w is None:
        strength = structural_strength(n, src, dst)
    else:
        strength = np.asarray(w, dtype=np.float64) / (float(np.max(w)) if len(w) else 1.0)
    if not directed:
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
        strength = np.concatenate([strength, strength])
    nbrs, ws = split_rows(n, src, dst, strength)
    return SocialGraph(users=tuple(int(u) for u in users), directed=directed, neighbors=nbrs,
                       weights=ws, weighted=w is not None, source=source, notes=tuple(notes))


def components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Component label of each node (weak components of a directed graph)."""
    a = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    return np.asarray(connected_components(a, directed=False)[1])


# ----------------------------------------------------------------------------- attributes


def attribute_levels(attrs: Sequence[Mapping[str, str]], attribute: str) -> list[str]:
    """Each user's level of ``attribute``: ``age_band`` is the MovieLens-1M band of
    ``age``; a missing or unusable value is ``"unknown"``."""
    if attribute == "age_band":
        return [age_band(a.get("age")) or UNKNOWN for a in attrs]
    return [str(a.get(attribute, "")).strip() or UNKNOWN for a in attrs]


def block_labels(attrs: Sequence[Mapping[str, str]], by: Sequence[str], what: str = "blocks"
                 ) -> list[str]:
    """Each user's block: their levels of the ``by`` attributes joined by ``|``
    (``"25-34|M"``).

    Raises:
        GraphError: No user has one of the attributes (``what`` starts the message).
    """
    cols = []
    for attribute in by:
        levels = attribute_levels(attrs, attribute)
        if all(x == UNKNOWN for x in levels):
            field = "a numeric 'age'" if attribute == "age_band" else repr(attribute)
            raise GraphError(f"{what}: no user has {field} (blocks_by: {attribute}); "
                             "the dataset has no such user attribute")
        cols.append(levels)
    return ["|".join(parts) for parts in zip(*cols, strict=True)]
