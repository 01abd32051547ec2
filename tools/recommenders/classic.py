"""Non-learned and neighbourhood baselines: random, popularity, item-kNN and EASE^R.

All of them treat the training matrix as binary implicit feedback and score every item of
the catalogue; ``recommend`` (from the base class) masks what the caller excludes.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from tools.recommenders.params import ParamRecommender, binarize

__all__ = ["EASE", "ItemKNN", "Popularity", "RandomRecommender"]


class RandomRecommender(ParamRecommender):
    """Uniform random scores, reproducible per (seed, user).

    Each user's scores come from their own generator seeded with ``(seed, user index)``, so
    a user gets the same scores whatever batch they are scored in.
    """

    name = "random"
    defaults: ClassVar[dict[str, int | float]] = {}

    def _fit(self, matrix: sp.csr_matrix) -> None:
        pass  # nothing to learn; the catalogue size comes from the train matrix

    def score(self, users: np.ndarray) -> np.ndarray:
        n_items = self.train_matrix.shape[1]
        # SeedSequence entropy must be non-negative; wrap negative seeds into uint64 range.
        seed = int(self.seed) % 2**64
        out = np.empty((len(users), n_items), dtype=np.float64)
        for row, u in enumerate(np.asarray(users, dtype=np.int64)):
            out[row] = np.random.default_rng([seed, int(u)]).random(n_items)
        return out


class Popularity(ParamRecommender):
    """Scores each item by its number of interactions in the train matrix."""

    name = "pop"
    defaults: ClassVar[dict[str, int | float]] = {}

    def _fit(self, matrix: sp.csr_matrix) -> None:
        m = matrix.copy()
        m.eliminate_zeros()
        self._counts = np.bincount(m.indices, minlength=m.shape[1]).astype(np.float64)

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.tile(self._counts, (len(users), 1))


class ItemKNN(ParamRecommender):
    """Item-item cosine neighbourhood model on the binary train matrix.

    ``sim(i, j) = |U_i & U_j| / (sqrt(|U_i|) sqrt(|U_j|) + shrink)``; for every target item
    only its ``k_neighbors`` most similar items are kept (ties towards the lower index), and
    a user's score for item j is the sum of ``sim(i, j)`` over the items i they interacted
    with.
    """

    name = "itemknn"
    defaults: ClassVar[dict[str, int | float]] = {"k_neighbors": 100, "shrink": 10.0}

    def _fit(self, matrix: sp.csr_matrix) -> None:
        x = binarize(matrix)
        n_items = x.shape[1]
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        co = (x.T @ x).tocoo()
        keep = co.row != co.col
        r, c, v = co.row[keep], co.col[keep], co.data[keep]
        v = v / (norms[r] * norms[c] + self.p_float("shrink"))
        r, c, v = _top_per_row(r, c, v, self.p_int("k_neighbors"))
        # Row = target item j, column = neighbour i; transpose so that scores = X_u @ W.
        sim = sp.csr_matrix((v, (r, c)), shape=(n_items, n_items))
        self._w = sim.T.tocsr()

    def score(self, users: np.ndarray) -> np.ndarray:
        x = binarize(self.train_matrix[np.asarray(users, dtype=np.int64)])
        return np.asarray((x @ self._w).toarray())

    def contributions(self, history: np.ndarray, item: int) -> np.ndarray:
        """Each history item's term in a user's score of ``item`` (their sum is the
        score): its similarity to ``item``, 0 outside the item's neighbours."""
        return np.asarray(self._w[np.asarray(history, dtype=np.int64)][:, item].toarray()
                          ).ravel()


def _top_per_row(
    r: np.ndarray, c: np.ndarray, v: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the k largest values of each row of a COO triple (ties: lower column first)."""
    if r.size == 0:
        return r, c, v
    order = np.lexsort((c, -v, r))
    r, c, v = r[order], c[order], v[order]
    starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
    lengths = np.diff(np.r_[starts, r.size])
    pos = np.arange(r.size) - np.repeat(starts, lengths)
    keep = pos < k
    return r[keep], c[keep], v[keep]


class EASE(ParamRecommender):
    """EASE^R (Steck, 2019): a closed-form item-item linear autoencoder.

    ``P = (X^T X + l2 I)^-1``, ``B = I - P / diag(P)`` (column-wise), so ``diag(B) = 0``;
    a user's scores are ``X_u @ B``. The inverse is dense float64, which is cheap for a
    few thousand items.
    """

    name = "ease"
    defaults: ClassVar[dict[str, int | float]] = {"l2": 500.0}

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed, **params)
        if self.p_float("l2") <= 0.0:
            # Items nobody interacted with make X^T X singular; l2 > 0 keeps it invertible.
            raise ValueError(f"{self.name}: parameter 'l2' must be > 0, got {self.params['l2']!r}")

    def _fit(self, matrix: sp.csr_matrix) -> None:
        x = binarize(matrix)
        gram = np.asarray((x.T @ x).toarray(), dtype=np.float64)
        gram[np.diag_indices_from(gram)] += self.p_float("l2")
        p = np.linalg.inv(gram)
        b = p / -np.diag(p)
        np.fill_diagonal(b, 0.0)
        self._b = b

    def score(self, users: np.ndarray) -> np.ndarray:
        x = binarize(self.train_matrix[np.asarray(users, dtype=np.int64)])
        return np.asarray(x @ self._b)

    def contributions(self, history: np.ndarray, item: int) -> np.ndarray:
        """Each history item's term ``B[i, item]`` in a user's score of ``item`` (their
        sum is the score)."""
        return np.asarray(self._b[np.asarray(history, dtype=np.int64), item])
