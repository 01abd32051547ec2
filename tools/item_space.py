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
alignment, docs/benchmarks.md). A small genre block sits beside the factors.

An item nobody interacted with (a new release) has no factors of its own; its factors are
predicted from its content (genres, words of title and description) by a ridge regression
fitted on the rated items, so its vector lives in the same space, and scores on the same
scale, as every other item's (see ``impute_factors`` and docs/benchmarks.md, new releases).
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from tools.dataset import Catalog, Dataset, Interactions

__all__ = ["content_features", "impute_factors", "item_embeddings"]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset({"the", "a", "an", "of", "and", "in", "on", "to", "for", "with", "by",
                   "at", "from", "is"})
_MAX_WORDS = 2000  # the most frequent words only: the ridge system is features x features
_RIDGE_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
_FOLDS = 5
# Many factors of a catalogue up to this size: the dense eigendecomposition, else svds.
_DENSE_ITEMS = 6000
_SVDS_MAX_K = 128  # svds up to this many factors (the dense path for the shipped 256)


def _unit_rows(m: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, n, out=np.zeros_like(m), where=n > 0)


def _unit_sparse_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale) @ m)


def _text_matrix(texts: tuple[str, ...]) -> sp.csr_matrix:
    """TF-IDF of words that occur in at least two texts, unit rows (items x words)."""
    docs = [[w for w in _WORD.findall(t.lower()) if w not in _STOP and len(w) > 1]
            for t in texts]
    df: dict[str, int] = {}
    for d in docs:
        for w in set(d):
            df[w] = df.get(w, 0) + 1
    # A word in one text matches nothing; rare words beyond the cap add little.
    common = sorted((w for w, c in df.items() if c >= 2), key=lambda w: (-df[w], w))
    words = sorted(common[:_MAX_WORDS])
    vocab = {w: j for j, w in enumerate(words)}
    idf = np.log(len(texts) / np.array([df[w] for w in words], dtype=np.float64))
    rows, cols = [], []
    for i, d in enumerate(docs):
        for w in d:
            j = vocab.get(w)
            if j is not None:
                rows.append(i)
                cols.append(j)
    tf = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(words)))
    tf.sum_duplicates()
    return _unit_sparse_rows(sp.csr_matrix(tf @ sp.diags(idf)))


def content_features(catalog: Catalog, text_weight: float = 0.5) -> sp.csr_matrix:
    """Items x (genres + words): what is known of an item before anyone rates it.

    The unit genre vector beside the unit TF-IDF vector of the title and description
    words (the year is one of them) at ``text_weight``, renormalised: the cosine of two
    rows is their content similarity.
    """
    genre = _unit_rows(catalog.genre_matrix.astype(np.float64))
    text = _text_matrix(tuple(d if t in d else f"{t} {d}" for t, d in
                              zip(catalog.titles, catalog.descriptions, strict=True)))
    return _unit_sparse_rows(sp.hstack([sp.csr_matrix(genre), text * text_weight]).tocsr())


def _ridge(c: sp.csr_matrix, y: np.ndarray, lam: float) -> np.ndarray:
    """Weights w minimising |c w - y|^2 + lam |w|^2 (features x outputs)."""
    gram = np.asarray((c.T @ c).toarray(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += lam
    return np.asarray(np.linalg.solve(gram, np.asarray(c.T @ y)), dtype=np.float64)


def _pick_lambda(c: sp.csr_matrix, y: np.ndarray) -> float:
    """The ridge penalty whose held-out predictions point closest to the truth (5 folds)."""
    fold = np.arange(c.shape[0]) % _FOLDS
    best, best_score = _RIDGE_GRID[0], -np.inf
    for lam in _RIDGE_GRID:
        cos = []
        for f in range(_FOLDS):
            train, test = fold != f, fold == f
            pred = _unit_rows(np.asarray(c[test] @ _ridge(c[train], y[train], lam)))
            cos.append(np.sum(pred * _unit_rows(y[test]), axis=1))
        score = float(np.mean(np.concatenate(cos)))
        if score > best_score:
            best, best_score = lam, score
    return best


def impute_factors(factors: np.ndarray, content: sp.csr_matrix, cold: np.ndarray) -> np.ndarray:
    """``factors`` with the rows of ``cold`` items predicted from their ``content``.

    A ridge regression maps content to a warm item's offset from the mean warm row (its
    penalty chosen by 5-fold cross-validation on the warm items). A cold item's row is the
    mean row plus its predicted offset, stretched to the typical length of a warm item's
    offset, then unit length (the warm rows' typical length): a plain prediction sits
    near the mean row (predictions shrink), which would look like every user's taste. A
    cold item without content features keeps its row (empty).
    """
    out = np.array(factors, dtype=np.float64, copy=True)
    cold_idx, warm_idx = np.flatnonzero(cold), np.flatnonzero(~cold)
    if not cold_idx.size or warm_idx.size < _FOLDS or not out.shape[1]:
        return out
    warm_f = out[warm_idx]
    mean = warm_f.mean(axis=0)
    offsets = warm_f - mean
    spread = float(np.linalg.norm(offsets, axis=1).mean())
    c = sp.csr_matrix(content)
    w = _ridge(c[warm_idx], offsets, _pick_lambda(c[warm_idx], offsets))
    pred = np.asarray(c[cold_idx] @ w)
    rows = _unit_rows(mean + _unit_rows(pred) * spread)
    known = np.linalg.norm(pred, axis=1) > 0
    out[cold_idx[known]] = rows[known]
    return out


def _ease_factors(x: sp.csr_matrix, factors: int, l2: float, seed: int) -> np.ndarray:
    """Items x k symmetric low-rank EASE embeddings (zero rows for unseen items).

    Scaled so that the rows of items with history have mean length 1.
    """
    k = min(factors, min(x.shape) - 1)
    if not x.nnz or k < 1:
        return np.zeros((x.shape[1], 0))
    if k > _SVDS_MAX_K and x.shape[1] <= _DENSE_ITEMS:
        # The item Gram matrix's eigenvectors are X's right singular vectors: one dense
        # eigendecomposition costs the same for any k (svds at k = 256 takes 20x longer).
        gram = np.asarray((x.T @ x).toarray(), dtype=np.float64)
        w, vecs = np.linalg.eigh(gram)
        top = np.argsort(-w, kind="stable")[:k]
        v, sig = vecs[:, top], np.clip(w[top], 0.0, None)
    else:
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
    dataset: Dataset, history: Interactions, factors: int = 256, seed: int = 0,
    genre_weight: float = 0.1, impute: bool = True, l2: float = 500.0,
) -> np.ndarray:
    """Items x (genres + factors) float32.

    The EASE block has mean row length 1 over items with history; the genre block has
    rows of length ``genre_weight``. Items without interactions in ``history`` get
    factors predicted from their content (``impute_factors``, length 1); ``impute=False``
    leaves them empty (genres only).
    """
    genre = _unit_rows(dataset.catalog.genre_matrix.astype(np.float64)) * genre_weight
    x: sp.csr_matrix = history.matrix(dataset.n_users, dataset.n_items, binary=True)
    cf = _ease_factors(x, factors, l2, seed)
    cold = np.diff(x.tocsc().indptr) == 0
    if impute and cf.shape[1] and cold.any() and (~cold).any():
        cf = impute_factors(cf, content_features(dataset.catalog), cold)
    return np.hstack([genre, cf]).astype(np.float32)
