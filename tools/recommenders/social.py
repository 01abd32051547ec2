"""A social recommender arm: what a user's ties watched, weighted by tie strength.

``score(u, i) = sum_v tie(u, v) * x(v, i) + blend * pop(i)`` with ``x`` the binary
train matrix (history and what users watched in earlier rounds) and ``pop`` the item
counts scaled to [0, 1]: the "items friends watched" baseline of social recommendation,
trust-weighted. A scenario names it ``model: tools.recommenders.social:FriendsRecommender``;
the social world hands it the graph (``use_graph``) before every fit. Without a graph it
recommends by popularity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

__all__ = ["FriendsRecommender", "GraphAware"]


class GraphAware:
    """Recommenders that use the social graph (the social world calls ``use_graph``)."""

    def use_graph(self, n_users: int, users: Sequence[int],
                  neighbors: Sequence[np.ndarray], weights: Sequence[np.ndarray]) -> None:
        raise NotImplementedError


class FriendsRecommender(GraphAware):
    """Items the user's ties watched, weighted by tie strength, then by popularity.

    Args:
        blend: Weight of popularity (scaled to [0, 1]) added to every score: breaks ties
            and fills pages of users whose ties watched little.
    """

    name = "friends"
    uses_ratings = False

    def __init__(self, blend: float = 0.1) -> None:
        if not blend >= 0:
            raise ValueError(f"blend must be >= 0, got {blend}")
        self.blend = float(blend)
        self._ties: sp.csr_matrix | None = None
        self._x: sp.csr_matrix | None = None
        self._pop: np.ndarray | None = None

    def use_graph(self, n_users: int, users: Sequence[int],
                  neighbors: Sequence[np.ndarray], weights: Sequence[np.ndarray]) -> None:
        """Node ``k`` is dataset user ``users[k]``; its ties ``neighbors[k]`` (node
        indices) with strengths ``weights[k]``."""
        idx = np.asarray(users, dtype=np.int64)
        rows = np.concatenate([np.full(len(n), idx[k]) for k, n in enumerate(neighbors)]
                              or [np.zeros(0, np.int64)])
        cols = np.concatenate([idx[np.asarray(n, dtype=np.int64)] for n in neighbors]
                              or [np.zeros(0, np.int64)])
        vals = np.concatenate([np.asarray(w, dtype=np.float64) for w in weights]
                              or [np.zeros(0)])
        self._ties = sp.csr_matrix((vals, (rows, cols)), shape=(n_users, n_users))

    def fit(self, matrix: sp.csr_matrix) -> None:
        x = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
        x.data[:] = 1.0
        self._x = x
        counts = np.asarray(x.sum(axis=0)).ravel()
        self._pop = counts / counts.max() if counts.max() > 0 else counts

    def score(self, users: np.ndarray) -> np.ndarray:
        if self._x is None or self._pop is None:
            raise RuntimeError("FriendsRecommender.score before fit")
        base = np.tile(self.blend * self._pop, (len(users), 1))
        if self._ties is None:
            return base
        ties = self._ties[np.asarray(users)]
        return base + np.asarray((ties @ self._x).todense())

    def recommend(self, users: np.ndarray, k: int,
                  exclude: sp.csr_matrix | None = None) -> np.ndarray:
        scores = self.score(users)
        if exclude is not None:
            scores[exclude.nonzero()] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        taken = np.take_along_axis(scores, order, axis=1)
        return np.where(np.isfinite(taken), order, -1)
