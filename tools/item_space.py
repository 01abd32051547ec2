"""Item embeddings for taste similarity: a low-rank EASE item-item model plus genres.

The utility brain scores an item by its similarity to what the user watched. Plain
co-occurrence cosine behaves like ItemKNN (and made simulated users prefer ItemKNN's
recommendations although held-out data ranks it below EASE and ALS), so the collaborative
part here is EASE's closed form written in embedding form. With ``G = X^T X = V S^2 V^T``
(binary history ``X``) and ``P = (G + l2 I)^-1``, EASE scores an unseen item ``i`` as
``sum_j x_uj P_ji / P_ii`` up to sign, and

    P = I / l2 - V diag(c) V^T,   c_k = s_k^2 / (l2 (s_k^2 + l2)),

so for ``i`` outside the history the score is ``sum_k c_k (x_u . v_k) v_ik / P_ii``. The
top ``factors`` components carry nearly all of it (``c_k`` shrinks with ``s_k``). Splitting
``1 / P_ii`` evenly between the two sides (``e_i = sqrt(c) * v_i / sqrt(P_ii)``) makes
the model symmetric, so a user's taste is simply the sum of the embeddings of the items in
their history, and ``e_i . taste`` ranks items almost exactly as EASE does (taste
alignment, docs/benchmarks.md). A small genre block keeps items nobody has rated yet
(new releases) from being featureless.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from tools.dataset import Dataset, Interactions

__all__ = ["item_embeddings"]


def _unit_rows(m: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, n, out=np.zeros_like(m), where=n > 0)


def _ease_factors(x: sp.csr_matrix, factors: int, l2: float, seed: int) -> np.ndarray:
    """Items x k symmetric low-rank EASE embeddings (zero rows for unseen items)."""
    k = min(factors, min(x.shape) - 1)
    if not x.nnz or k < 1:
        return np.zeros((x.shape[1], 0))
    v0 = np.random.default_rng(seed).uniform(-1, 1, size=min(x.shape))
    _, s, vt = svds(x.astype(np.float64), k=k, v0=v0, random_state=seed)
    v = vt.T
    sig = np.clip(s, 0.0, None) ** 2
    c = sig / (l2 * (sig + l2))
    # Truncated diagonal of P; the dropped components have c_k near 0, P_ii stays > 0.
    diag_p = np.clip(1.0 / l2 - (v**2 * c).sum(axis=1), 1e-12, None)
    emb = v * np.sqrt(c) / np.sqrt(diag_p)[:, None]
    # svds' sign and order per factor are arbitrary; fix both so results are reproducible.
    emb = emb[:, np.argsort(-c, kind="stable")]
    signs = np.sign(emb.sum(axis=0))
    emb *= np.where(signs == 0, 1.0, signs)
    seen = np.asarray(x.sum(axis=0)).ravel() > 0
    emb[~seen] = 0.0
    norms = np.linalg.norm(emb, axis=1)
    scale = float(np.mean(norms[norms > 0])) if (norms > 0).any() else 1.0
    return emb / scale


def item_embeddings(
    dataset: Dataset, history: Interactions, factors: int = 64, seed: int = 0,
    genre_weight: float = 0.1, l2: float = 500.0,
) -> np.ndarray:
    """Items x (genres + factors) float32.

    The EASE block has mean row norm 1 over items with history; the genre block has rows
    of length ``genre_weight``. Items without history or genres are zero rows.
    """
    genre = _unit_rows(dataset.catalog.genre_matrix.astype(np.float64)) * genre_weight
    x: sp.csr_matrix = history.matrix(dataset.n_users, dataset.n_items, binary=True)
    cf = _ease_factors(x, factors, l2, seed)
    return np.hstack([genre, cf]).astype(np.float32)
