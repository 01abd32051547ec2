"""Item embeddings for taste similarity: genres plus collaborative factors.

The utility brain compares an item with what a user liked. Genres alone are too coarse
(every drama looks alike) and co-occurrence alone is blind to cold items, so each item
vector is its truncated-SVD factors of the history matrix (unit length) beside its
normalised genre vector at a smaller weight, renormalised. On MovieLens 100K this mix
separates a user's held-out items from unseen ones best among those tried (see
docs/benchmarks.md, taste alignment).

An item nobody interacted with (a new release) has no factors of its own; its factors come
from the items whose content (genres, words of title and description) is most like its
own, so its vector lives in the same space, and scores on the same scale, as every other
item's (see ``impute_factors`` and docs/benchmarks.md, new items).
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
_BLOCK = 512  # cold items per similarity block: bounds memory on large catalogues


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
    words = sorted(w for w, c in df.items() if c >= 2)  # a word in one text matches nothing
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


def impute_factors(
    factors: np.ndarray, content: sp.csr_matrix, cold: np.ndarray, neighbours: int = 20
) -> np.ndarray:
    """``factors`` with the rows of ``cold`` items replaced from content neighbours.

    A cold item's row is the mean of the (unit) factor rows of its ``neighbours`` most
    content-similar warm items, weighted by similarity, moved to the typical distance of
    a warm row from the mean warm row, and made unit length like the warm rows. With no
    content-similar warm item its row stays as it was (empty).
    """
    out = np.array(factors, dtype=np.float64, copy=True)
    cold_idx = np.flatnonzero(cold)
    warm_idx = np.flatnonzero(~cold)
    if not cold_idx.size or not warm_idx.size or not out.shape[1]:
        return out
    warm_f = out[warm_idx]
    mean = warm_f.mean(axis=0)
    spread = float(np.linalg.norm(warm_f - mean, axis=1).mean())
    warm_c = content[warm_idx].T.tocsc()
    k = min(neighbours, warm_idx.size)
    for start in range(0, cold_idx.size, _BLOCK):
        block = cold_idx[start:start + _BLOCK]
        sims = np.asarray((content[block] @ warm_c).toarray(), dtype=np.float64)
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        w = np.clip(np.take_along_axis(sims, top, axis=1), 0.0, None)
        rows = np.einsum("bk,bkd->bd", w, warm_f[top])
        wsum = w.sum(axis=1, keepdims=True)
        rows = np.divide(rows, wsum, out=np.zeros_like(rows), where=wsum > 0)
        # A weighted mean of k rows sits near the mean row (residuals shrink by about
        # 1/sqrt(k)), so it would look like every user's taste; keep its direction from
        # the mean row but restore the typical distance of an item from it.
        rows = _unit_rows(mean + _unit_rows(rows - mean) * spread)
        found = wsum[:, 0] > 0
        out[block[found]] = rows[found]
    return out


def item_embeddings(
    dataset: Dataset, history: Interactions, factors: int = 64, seed: int = 0,
    genre_weight: float = 0.3, neighbours: int = 20,
) -> np.ndarray:
    """Items x (genres + factors) float32, rows of unit length (zero for empty items).

    Items without interactions in ``history`` get factors from their content neighbours
    (``impute_factors``; ``neighbours=0`` leaves them empty, genres only).
    """
    genre = _unit_rows(dataset.catalog.genre_matrix.astype(np.float64))
    x: sp.csr_matrix = history.matrix(dataset.n_users, dataset.n_items, binary=True)
    k = min(factors, min(x.shape) - 1)
    if x.nnz and k >= 1:
        # Column-normalise so blockbusters do not dominate every factor.
        col = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        xs = x @ sp.diags(np.divide(1.0, col, out=np.zeros_like(col), where=col > 0))
        v0 = np.random.default_rng(seed).uniform(-1, 1, size=min(xs.shape))
        _, s, vt = svds(xs.astype(np.float64), k=k, v0=v0, random_state=seed)
        cf = _unit_rows((vt.T * s)[:, ::-1])
        # svds' sign per factor is arbitrary; fix it so embeddings are reproducible.
        signs = np.sign(cf.sum(axis=0))
        cf *= np.where(signs == 0, 1.0, signs)
        cold = np.diff(x.tocsc().indptr) == 0
        if neighbours > 0 and cold.any():
            cf = impute_factors(cf, content_features(dataset.catalog), cold, neighbours)
    else:
        cf = np.zeros((dataset.n_items, 0))
    emb = np.hstack([genre * genre_weight, cf]) if cf.shape[1] else genre
    return _unit_rows(emb).astype(np.float32)
