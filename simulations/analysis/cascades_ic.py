"""The independent cascade (IC) baseline: what cascades would look like on the same graph if
every user passed an item on by a coin flip, with no taste and no talk.

The graph is plain adjacency, nodes 0..n-1: ``neighbors[i]`` lists the out-neighbours of
i (who hears i's posts), ``weights[i][k]`` (optional) the weight of the edge to
``neighbors[i][k]``. The graph module builds both; this one imports no graph library.

The model (Kempe, Kleinberg and Tardos 2003): the seed is active at tick 1; a node that
becomes active at tick t gets one chance, at tick t, to activate each out-neighbour, with
probability p (or min(1, p * weight)); nodes activated then act at t + 1. Every active
node is a mentioner and posts to all its out-neighbours, which all hear it, so a run gives
the mention events of the social world's contract (``simulations.analysis.cascades``) and
its tree is built by ``cascades_from_events``, the same code and definitions as the
simulated world's (first exposure is the parent; size counts the active nodes, reach
everyone who heard). ``max_steps`` bounds the ticks of mentions, hence the depth.

Coin flips come from a hash of (run key, edge): the flip of an edge in a run is the same
at every p, so a run's size can only grow with p. ``fit_ic_probability`` uses this to find
p by bisection on a deterministic, non-decreasing function: the mean size over fixed runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulations.analysis.cascades import Cascade, cascade_summary, cascades_from_events

__all__ = ["ICFit", "ICRun", "fit_ic_probability", "ic_baseline", "independent_cascade",
           "shuffled_control"]

# splitmix64 (Steele, Lea and Flood 2014): the edge-th output of a generator seeded with key.
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _uniforms(key: np.uint64, edges: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = key + (edges.astype(np.uint64) + np.uint64(1)) * _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


class _Graph:
    """Adjacency as compressed rows, checked once."""

    def __init__(self, neighbors: Sequence[Sequence[int]],
                 weights: Sequence[Sequence[float]] | None) -> None:
        n = self.n = len(neighbors)
        self.deg = np.fromiter((len(row) for row in neighbors), dtype=np.int64, count=n)
        self.offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(self.deg, out=self.offsets[1:])
        self.targets = np.fromiter((int(v) for row in neighbors for v in row), dtype=np.int64,
                                   count=int(self.offsets[-1]))
        bad = np.flatnonzero((self.targets < 0) | (self.targets >= n))
        if bad.size:
            u = int(np.searchsorted(self.offsets, bad[0], side="right") - 1)
            raise ValueError(f"neighbors[{u}] holds {int(self.targets[bad[0]])}, not a node "
                             f"(0..{n - 1})")
        self.weights: np.ndarray | None = None
        if weights is not None:
            if len(weights) != n or any(len(w) != d for w, d in zip(weights, self.deg,
                                                                      strict=True)):
                raise ValueError("weights must align with neighbors: one weight per edge")
            w = np.fromiter((float(x) for row in weights for x in row), dtype=np.float64,
                            count=int(self.offsets[-1]))
            if not np.all(np.isfinite(w) & (w >= 0)):
                raise ValueError("weights must be finite and >= 0")
            self.weights = w

    def probs(self, p: float) -> float | np.ndarray:
        if not (np.isfinite(p) and p >= 0):
            raise ValueError(f"the activation probability must be >= 0, got {p}")
        if self.weights is None:
            if p > 1:
                raise ValueError(f"the activation probability must be <= 1, got {p}")
            return p
        return np.minimum(1.0, p * self.weights)

    def p_max(self) -> float:
        """The smallest p at which every edge that can fire always does."""
        if self.weights is None:
            return 1.0
        pos = self.weights[self.weights > 0]
        return max(1.0, 1.0 / float(pos.min())) if pos.size else 1.0

    def seeds(self, seeds: Sequence[int]) -> list[int]:
        out = []
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, int | np.integer) or not 0 <= s < self.n:
                raise ValueError(f"seed {s!r} is not a node of the graph (0..{self.n - 1})")
            out.append(int(s))
        return out


def _keys(rng: np.random.Generator, n: int) -> list[np.uint64]:
    return list(rng.integers(0, 2**64, size=n, dtype=np.uint64))


def _run(g: _Graph, seed: int, key: np.uint64, prob: float | np.ndarray,
         max_steps: int | None, events: list[dict[str, Any]] | None = None,
         arm: str = "ic", item: str = "0") -> int:
    """One IC run from ``seed``: the number of active nodes; its mention events appended to
    ``events`` when given."""
    active = {seed}
    heard: dict[int, int] = {}  # node -> the first active node it heard from
    frontier = [seed]
    tick = 1
    while frontier:
        f = np.asarray(frontier, dtype=np.int64)
        starts, lens = g.offsets[f], g.deg[f]
        if events is not None:
            for u, s, d in zip(frontier, starts.tolist(), lens.tolist(), strict=True):
                to = g.targets[s:s + d].tolist()
                events.append({"type": "mention", "arm": arm, "round": 0, "tick": tick,
                               "user": str(u), "item": item, "via": "post",
                               "to": [str(v) for v in to],
                               "parent": None if u == seed else str(heard[u])})
                for v in to:
                    heard.setdefault(v, u)
        total = int(lens.sum())
        if total == 0 or (max_steps is not None and tick >= max_steps):
            break
        edges = np.arange(total) + np.repeat(starts - (np.cumsum(lens) - lens), lens)
        p = prob if isinstance(prob, float | int) else prob[edges]
        fired = g.targets[edges[_uniforms(key, edges) < p]]
        frontier = []
        for v in fired.tolist():
            if v not in active:
                active.add(v)
                frontier.append(v)
        tick += 1
    return len(active)


def _check_steps(max_steps: int | None) -> None:
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1 (ticks of mentions), got {max_steps}")


def independent_cascade(neighbors: Sequence[Sequence[int]], seeds: Sequence[int], p: float,
                        rng: np.random.Generator,
                        weights: Sequence[Sequence[float]] | None = None,
                        max_steps: int | None = None, *, arm: str = "ic") -> list[Cascade]:
    """One IC run from each seed (a seed listed twice runs twice), as cascades of ``arm``
    whose item is the run's index. ``rng`` draws one key per run."""
    _check_steps(max_steps)
    g = _Graph(neighbors, weights)
    starts, prob = g.seeds(seeds), g.probs(p)
    out: list[Cascade] = []
    for r, (s, key) in enumerate(zip(starts, _keys(rng, len(starts)), strict=True)):
        events: list[dict[str, Any]] = []
        _run(g, s, key, prob, max_steps, events, arm, str(r))
        out.extend(cascades_from_events(events))
    return out


@dataclass(frozen=True)
class ICFit:
    """A fitted activation probability: the mean size it gives over ``runs`` fixed runs."""

    p: float
    mean_size: float
    target_mean_size: float
    runs: int
    iterations: int

    def to_dict(self) -> dict[str, Any]:
        return {"p": round(self.p, 6), "mean_size": round(self.mean_size, 4),
                "target_mean_size": round(self.target_mean_size, 4), "runs": self.runs,
                "iterations": self.iterations}


def fit_ic_probability(neighbors: Sequence[Sequence[int]], seeds_per_cascade: Sequence[int],
                       target_mean_size: float, rng: np.random.Generator, *,
                       weights: Sequence[Sequence[float]] | None = None, repeats: int = 1,
                       max_steps: int | None = None, tol: float = 1e-4) -> ICFit:
    """The p at which IC's mean cascade size matches ``target_mean_size``.

    Pass the roots of the simulated world's cascades as ``seeds_per_cascade`` (as graph
    nodes) and their mean ``size`` as the target, so that both worlds start from the same
    users. Each seed runs ``repeats`` times with keys drawn once from ``rng``; bisection on
    [0, p_max] (p_max = 1, or 1 / the smallest positive weight) narrows p to ``tol`` and
    returns the end of the last bracket whose mean size is nearer the target.

    Raises:
        ValueError: a target below 1 or above what p_max reaches from these seeds.
    """
    _check_steps(max_steps)
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    g = _Graph(neighbors, weights)
    runs = [s for s in g.seeds(seeds_per_cascade) for _ in range(repeats)]
    if not runs:
        raise ValueError("fit_ic_probability needs at least one seed")
    keys = _keys(rng, len(runs))

    def mean_size(p: float) -> float:
        prob = g.probs(p)
        return float(np.mean([_run(g, s, k, prob, max_steps)
                              for s, k in zip(runs, keys, strict=True)]))

    if not target_mean_size >= 1:
        raise ValueError(f"a mean cascade size is at least 1, got {target_mean_size}")
    lo, hi = 0.0, g.p_max()
    f_lo, f_hi = 1.0, mean_size(hi)
    if f_hi < target_mean_size:
        raise ValueError(f"target mean size {target_mean_size:g} is out of reach on this graph "
                         f"from these seeds: p={hi:g} gives {f_hi:g}")
    it = 0
    if target_mean_size == 1:
        hi, f_hi = 0.0, 1.0
    while hi - lo > tol:
        mid = (lo + hi) / 2
        f = mean_size(mid)
        it += 1
        if f < target_mean_size:
            lo, f_lo = mid, f
        else:
            hi, f_hi = mid, f
    p, m = (lo, f_lo) if abs(f_lo - target_mean_size) < abs(f_hi - target_mean_size) \
        else (hi, f_hi)
    return ICFit(p=p, mean_size=m, target_mean_size=float(target_mean_size), runs=len(runs),
                 iterations=it)


@dataclass(frozen=True)
class ICRun:
    """IC cascades at ``p``, with the fit that chose p (None when p was given)."""

    p: float
    fit: ICFit | None
    cascades: list[Cascade]

    def summary(self, largest: int = 10) -> dict[str, Any]:
        return {"p": round(self.p, 6), "fit": self.fit.to_dict() if self.fit else None,
                **cascade_summary(self.cascades, largest)}


def ic_baseline(neighbors: Sequence[Sequence[int]], seeds_per_cascade: Sequence[int],
                target_mean_size: float, rng: np.random.Generator, *,
                weights: Sequence[Sequence[float]] | None = None, repeats: int = 1,
                max_steps: int | None = None, arm: str = "ic") -> ICRun:
    """Fit p to the target mean size, then run IC from each seed ``repeats`` times afresh."""
    fit = fit_ic_probability(neighbors, seeds_per_cascade, target_mean_size, rng,
                             weights=weights, repeats=repeats, max_steps=max_steps)
    seeds = [s for s in seeds_per_cascade for _ in range(repeats)]
    return ICRun(fit.p, fit, independent_cascade(neighbors, seeds, fit.p, rng, weights,
                                                 max_steps, arm=arm))


def _check_degrees(neighbors: Sequence[Sequence[int]], shuffled: _Graph) -> None:
    g = _Graph(neighbors, None)
    if g.n != shuffled.n:
        raise ValueError(f"the shuffled graph has {shuffled.n} nodes, the original {g.n}")
    for name, a, b in (("out", g.deg, shuffled.deg),
                       ("in", np.bincount(g.targets, minlength=g.n),
                        np.bincount(shuffled.targets, minlength=g.n))):
        diff = np.flatnonzero(a != b)
        if diff.size:
            u = int(diff[0])
            raise ValueError(f"the shuffled graph does not preserve degrees: node {u} has "
                             f"{name}-degree {int(b[u])}, {int(a[u])} in the original")


def shuffled_control(shuffled_neighbors: Sequence[Sequence[int]],
                     seeds_per_cascade: Sequence[int], rng: np.random.Generator, *,
                     p: float | None = None, target_mean_size: float | None = None,
                     neighbors: Sequence[Sequence[int]] | None = None,
                     weights: Sequence[Sequence[float]] | None = None, repeats: int = 1,
                     max_steps: int | None = None, arm: str = "ic-shuffled") -> ICRun:
    """IC on a degree-preserving shuffle of the graph (made by the graph module).

    Give ``p`` (the p fitted on the real graph: does the structure change how far items
    go?) or ``target_mean_size`` (refit p there: at the same size, does the structure
    change the cascades' shape?). With the original ``neighbors`` the out- and in-degrees
    of every node are checked to match. ``weights`` align with the shuffled adjacency.
    """
    if (p is None) == (target_mean_size is None):
        raise ValueError("shuffled_control needs exactly one of p and target_mean_size")
    if neighbors is not None:
        _check_degrees(neighbors, _Graph(shuffled_neighbors, None))
    if target_mean_size is not None:
        return ic_baseline(shuffled_neighbors, seeds_per_cascade, target_mean_size, rng,
                           weights=weights, repeats=repeats, max_steps=max_steps, arm=arm)
    assert p is not None
    seeds = [s for s in seeds_per_cascade for _ in range(repeats)]
    return ICRun(p, None, independent_cascade(shuffled_neighbors, seeds, p, rng, weights,
                                              max_steps, arm=arm))
