"""The one small interface every recommender implements, classic model or agent team."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["RECOMMEND_CHUNK", "Recommender", "top_k"]


RECOMMEND_CHUNK = 4096  # users scored at once by ``Recommender.recommend``


def top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Row-wise top-k item indices of ``scores`` (users x items), best first.

    Items set in ``exclude`` (same shape, any non-zero) are never returned. Ties break
    towards the lower item index so results are deterministic. Rows with fewer than k
    eligible items are padded with -1.
    """
    s = np.array(scores, dtype=np.float64, copy=True)
    s[np.isnan(s)] = -np.inf
    if exclude is not None and exclude.nnz:
        r, c = exclude.nonzero()
        s[r, c] = -np.inf
    n_users, n_items = s.shape
    k_eff = min(k, n_items)
    if k_eff < n_items:
        # Which items tie at the k-th score is decided here, not by argpartition: its
        # choice among equal scores depends on the CPU (numpy uses SIMD selection where
        # the CPU has it), so the same run gave other pages on another machine. The k-th
        # value is the same everywhere; of the items tied at it, take the lowest indices.
        kth = -np.partition(-s, k_eff - 1, axis=1)[:, k_eff - 1:k_eff]
        above = s > kth
        tied = s == kth
        need = k_eff - above.sum(axis=1, keepdims=True)
        chosen = above | (tied & (np.cumsum(tied, axis=1, dtype=np.int32) <= need))
        part = np.nonzero(chosen)[1].reshape(n_users, k_eff)  # row-major: ascending index
    else:
        part = np.tile(np.arange(n_items), (n_users, 1))
    ps = np.take_along_axis(s, part, axis=1)
    # Best first; equal scores by index.
    order = np.lexsort((part, -ps), axis=1)
    out = np.take_along_axis(part, order, axis=1)
    out_s = np.take_along_axis(ps, order, axis=1)
    out = np.where(np.isneginf(out_s), -1, out)
    if k > k_eff:
        out = np.hstack([out, -np.ones((out.shape[0], k - k_eff), dtype=out.dtype)])
    return out.astype(np.int64)


class Recommender(ABC):
    """Scores items for users. Subclasses implement ``fit`` and ``score``.

    ``fit`` receives the user x item interaction matrix (CSR, float32; values are 1.0 for
    implicit models or ratings when ``uses_ratings`` is true) plus the item popularity.
    ``recommend`` returns the top-k unseen items per user.
    """

    name: str = "base"
    uses_ratings: bool = False
    # True: ``update`` learns from new interactions without a new instance (plug-ins with
    # an ``update`` method); retraining arms then call it instead of fitting afresh.
    incremental: bool = False

    def __init__(self, seed: int = 0, **params: Any) -> None:
        self.seed = seed
        self.params = params
        self._train: sp.csr_matrix | None = None

    @property
    def train_matrix(self) -> sp.csr_matrix:
        if self._train is None:
            raise RuntimeError(f"{self.name}: call fit() before recommend()")
        return self._train

    def fit(self, matrix: sp.csr_matrix) -> None:
        self._train = matrix.tocsr().astype(np.float32)
        self._fit(self._train)

    def update(self, matrix: sp.csr_matrix) -> None:
        """Learn from ``matrix`` (all interactions so far); by default a full ``fit``."""
        self.fit(matrix)

    def at(self, **where: Any) -> None:
        """Where the next ``recommend`` call serves (arm, round, page): recommender agents
        file their trace events there; models ignore it."""
        return None

    @abstractmethod
    def _fit(self, matrix: sp.csr_matrix) -> None: ...

    @abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores (len(users) x n_items), higher is better."""

    def recommend(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Top-k item indices per user (len(users) x k), -1 where nothing is left."""
        users = np.asarray(users, dtype=np.int64)
        if users.size == 0:
            return np.zeros((0, k), dtype=np.int64)
        if users.size <= RECOMMEND_CHUNK:
            return top_k(self.score(users), k, exclude)
        # Scores are users x items (float64) and top_k makes a few copies: a hundred
        # thousand users at once would need gigabytes. Rows are independent, so chunks
        # give the same pages.
        return np.vstack([
            top_k(self.score(users[lo:lo + RECOMMEND_CHUNK]), k,
                  exclude[lo:lo + RECOMMEND_CHUNK] if exclude is not None else None)
            for lo in range(0, users.size, RECOMMEND_CHUNK)])
