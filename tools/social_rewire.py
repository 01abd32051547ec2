"""Interventions on a social graph that keep every user's number of ties exactly.

Both work by swaps: two ties ``a-b`` and ``c-d`` become ``a-d`` and ``c-b`` (for directed
ties ``a->b, c->d`` become ``a->d, c->b``), so every user keeps their degree (directed:
their in- and out-degree), and a swap that would make a self-loop or a tie that exists is
not made.

* :func:`rewire_heterophilous` swaps two within-block ties of *different* blocks, so both
  new ties cross blocks: the "rewiring toward heterophily" intervention. The share of
  within-block ties falls by ``share`` (rounded to an even count, two per swap); attribute
  assortativity cannot rise, since the attribute mix at the ties' ends is kept.
* :func:`shuffled` swaps random pairs of ties (Maslov-Sneppen): the degree-preserving
  random control, which keeps who is popular and forgets who is tied to whom.

A weighted graph's tie keeps its weight (the tie ``a-d`` has ``a-b``'s); structural
strengths are recomputed on the new graph. Both add a line to the graph's notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tools.social_model import GraphError, SocialGraph, assemble, block_labels

__all__ = ["rewire_heterophilous", "shuffled"]


class _Ties:
    """Mutable ties of a graph: ``src[k] -> dst[k]`` (undirected: ``src < dst``)."""

    def __init__(self, g: SocialGraph) -> None:
        src, dst, w = g.edges()
        self.g = g
        self.src, self.dst, self.w = src.copy(), dst.copy(), w.copy()
        self.present = set(zip(self.src.tolist(), self.dst.tolist(), strict=True))

    def key(self, a: int, b: int) -> tuple[int, int]:
        return (a, b) if self.g.directed or a < b else (b, a)

    def swap(self, e: int, f: int, rng: np.random.Generator) -> bool:
        """Swap ties ``e`` and ``f`` if that makes no self-loop and no existing tie
        (an undirected ``f`` is tried both ways round, in random order)."""
        a, b = int(self.src[e]), int(self.dst[e])
        c, d = int(self.src[f]), int(self.dst[f])
        ways = [(c, d)]
        if not self.g.directed:
            ways.insert(int(rng.integers(2)), (d, c))
        for c2, d2 in ways:
            k1, k2 = self.key(a, d2), self.key(c2, b)
            if a == d2 or c2 == b or k1 == k2 or k1 in self.present or k2 in self.present:
                continue
            self.present -= {(a, b), (c, d)}
            self.present |= {k1, k2}
            (self.src[e], self.dst[e]), (self.src[f], self.dst[f]) = k1, k2
            return True
        return False

    def graph(self, note: str) -> SocialGraph:
        g = self.g
        return assemble(g.users, g.directed, self.src, self.dst,
                        self.w if g.weighted else None, g.source, (*g.notes, note))


def rewire_heterophilous(g: SocialGraph, attrs: Sequence[Mapping[str, str]], share: float,
                         seed: int, by: Sequence[str] = ("age_band", "gender")
                         ) -> SocialGraph:
    """Move ``share`` of the within-block ties between blocks, keeping every degree.

    Args:
        g: The graph.
        attrs: ``attrs[i]`` is the attribute mapping of node ``i`` (user ``g.users[i]``).
        share: Of the ties inside a block (by ``by``), the share to turn into ties across
            blocks, in [0, 1]. Each swap turns two, so the count is rounded to even; when
            one block holds most within-block ties, fewer may be possible (the note says).
        seed: Which ties are swapped.
        by: The attributes whose combination is a block (as an sbm's ``blocks_by``).

    Raises:
        GraphError: ``share`` is outside [0, 1], ``attrs`` does not match the graph, or no
            user has one of the ``by`` attributes.
    """
    if not 0.0 <= share <= 1.0:
        raise GraphError(f"rewire: share must be in [0, 1], got {share:g}")
    if len(attrs) != g.n_nodes:
        raise GraphError(f"rewire: {len(attrs)} attribute rows for {g.n_nodes} users")
    blocks = np.asarray(block_labels(attrs, by, "rewire"))
    ties = _Ties(g)
    within = np.flatnonzero(blocks[ties.src] == blocks[ties.dst])
    target = round(share * len(within) / 2.0)
    rng = np.random.default_rng(seed)
    waiting: dict[str, list[int]] = {}  # unswapped within-block ties seen so far, by block
    done = 0
    for e in rng.permutation(within).tolist():
        if done >= target:
            break
        bx = str(blocks[ties.src[e]])
        others = [b for b, stack in waiting.items() if stack and b != bx]
        if others:
            stack = waiting[others[int(rng.integers(len(others)))]]
            if ties.swap(e, stack[-1], rng):
                stack.pop()
                done += 1
                continue
        waiting.setdefault(bx, []).append(e)
    note = (f"rewire: {2 * done} of {len(within)} within-block ties (by {', '.join(by)}) "
            f"moved between blocks, seed {seed}; degrees unchanged")
    if done < target:
        note += f" (asked for {2 * target}; the rest found no tie of another block to swap)"
    return ties.graph(note)


def shuffled(g: SocialGraph, seed: int, swaps_per_edge: float = 5.0) -> SocialGraph:
    """The degree-preserving random control: ``swaps_per_edge`` times as many attempted
    swaps of two random ties as there are ties (about that many succeed in a sparse
    graph), so every user keeps their degree and loses their particular ties."""
    ties = _Ties(g)
    m = len(ties.src)
    rng = np.random.default_rng(seed)
    attempts = int(swaps_per_edge * m) if m >= 2 else 0
    pairs = rng.integers(m, size=(attempts, 2)) if attempts else np.zeros((0, 2), np.int64)
    made = sum(1 for e, f in pairs.tolist() if e != f and ties.swap(e, f, rng))
    return ties.graph(f"shuffled: {made} of {attempts} degree-preserving swaps made, "
                      f"seed {seed}")
