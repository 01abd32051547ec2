"""Shilling detectors: per-profile features, an unsupervised and a supervised detector.

Features (Chirita et al. 2005; Burke et al. 2006), per user of a rating matrix:

* ``rdma``: rating deviation from mean agreement, mean over the profile of
  ``|r_ui - mean_i| / n_i`` (n_i: the item's ratings);
* ``wdma``: the same weighted by ``1 / n_i**2`` (rare items count more);
* ``wda``: the sum (not the mean) of ``|r_ui - mean_i| / n_i``;
* ``length_var``: how far the profile's length is from the average length;
* ``degsim``: mean similarity (Pearson over mean-centred rows) to the k nearest users;
* ``mean_var``: mean squared deviation of the profile's ratings from the item means.

``pca_scores`` is PCA variable selection (Mehta 2007), unsupervised: users are the
variables; fake profiles, alike and uninformative, load little on the first principal
components. ``LogisticDetector`` is a logistic regression on the standardised features,
trained on labelled injections (other seeds and targets than the ones evaluated).
Higher scores mean more suspicious, everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from tools.data_model import Catalog, Interactions
from tools.shilling import ShillingPlan, bandwagon_items, make_profiles, segment_items

__all__ = [
    "FEATURES",
    "TRAINING_STRATEGIES",
    "LogisticDetector",
    "flag_top",
    "pca_scores",
    "profile_features",
    "train_logistic",
    "training_set",
]

FEATURES = ("rdma", "wdma", "wda", "length_var", "degsim", "mean_var")


def profile_features(ratings: sp.csr_matrix, k: int = 10) -> np.ndarray:
    """Users x ``FEATURES`` of a user x item rating matrix (0 = not rated)."""
    r = ratings.tocsr().astype(np.float64)
    n_users, _ = r.shape
    rated = (r != 0).astype(np.float64).tocsr()
    n_i = np.asarray(rated.sum(axis=0)).ravel()
    mean_i = np.asarray(r.sum(axis=0)).ravel() / np.maximum(n_i, 1)
    rows = np.repeat(np.arange(n_users), np.diff(r.indptr))
    dev = np.abs(r.data - mean_i[r.indices])
    cnt = n_i[r.indices]
    n_u = np.diff(r.indptr).astype(np.float64)
    wda = np.bincount(rows, weights=dev / cnt, minlength=n_users)
    rdma = wda / np.maximum(n_u, 1)
    wdma = np.bincount(rows, weights=dev / cnt**2, minlength=n_users) / np.maximum(n_u, 1)
    mean_var = np.bincount(rows, weights=dev**2, minlength=n_users) / np.maximum(n_u, 1)
    avg_len = n_u.mean() if n_users else 0.0
    length_var = np.abs(n_u - avg_len) / max(float(((n_u - avg_len) ** 2).sum()), 1e-12)
    return np.column_stack([rdma, wdma, wda, length_var, _degsim(r, k), mean_var])


def _centred(r: sp.csr_matrix) -> np.ndarray:
    """Dense rows centred on each user's mean over rated items (0 where not rated)."""
    n_u = np.diff(r.indptr)
    mean_u = np.asarray(r.sum(axis=1)).ravel() / np.maximum(n_u, 1)
    c = r.copy()
    c.data = c.data - np.repeat(mean_u, n_u)
    return np.asarray(c.todense())


def _degsim(r: sp.csr_matrix, k: int) -> np.ndarray:
    c = _centred(r)
    norm = np.linalg.norm(c, axis=1)
    norm[norm == 0] = 1.0
    u = c / norm[:, None]
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    kk = min(k, max(sim.shape[0] - 1, 1))
    top = -np.sort(-sim, axis=1)[:, :kk]
    top[~np.isfinite(top)] = 0.0
    return top.mean(axis=1)


def pca_scores(ratings: sp.csr_matrix, components: int = 3) -> np.ndarray:
    """PCA variable selection: minus each user's squared loadings on the first
    ``components`` principal components of the users-as-variables data (z-scored rows,
    unrated = the user's mean); higher is more suspicious."""
    r = ratings.tocsr().astype(np.float64)
    c = _centred(r)
    n_u = np.maximum(np.diff(r.indptr), 1)
    sd = np.sqrt((c**2).sum(axis=1) / n_u)
    sd[sd == 0] = 1.0
    z = c / sd[:, None]
    # Users are the variables: their loadings are the leading eigenvectors of z z^T (the
    # left singular vectors of z). eigh, not svd: LAPACK's divide-and-conquer SVD failed to
    # converge on one MovieLens injection; the symmetric eigensolver is robust.
    _, vecs = np.linalg.eigh(z @ z.T)
    load = (vecs[:, ::-1][:, :components] ** 2).sum(axis=1)
    return -load


def flag_top(scores: np.ndarray, share: float, among: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``share`` most suspicious rows (among ``among`` if given)."""
    idx = np.arange(scores.size) if among is None else np.asarray(among, np.int64)
    n = round(share * idx.size)
    order = idx[np.lexsort((idx, -scores[idx]))]  # ties: lower index first, explicitly
    return np.sort(order[:n])


@dataclass
class LogisticDetector:
    """Logistic regression (L2, Newton's method) on standardised profile features."""

    l2: float = 1.0
    iterations: int = 50
    coef: np.ndarray | None = None
    mu: np.ndarray | None = None
    sd: np.ndarray | None = None

    def _x(self, feats: np.ndarray) -> np.ndarray:
        assert self.mu is not None and self.sd is not None
        z = (np.log1p(np.maximum(feats, 0)) - self.mu) / self.sd
        return np.column_stack([np.ones(len(z)), z])

    def fit(self, feats: np.ndarray, labels: np.ndarray) -> LogisticDetector:
        """Fit on features (rows) and 0/1 labels (1 = fake); returns self."""
        logf = np.log1p(np.maximum(feats, 0))
        self.mu, self.sd = logf.mean(axis=0), logf.std(axis=0)
        self.sd[self.sd == 0] = 1.0
        x = self._x(feats)
        y = labels.astype(np.float64)
        # Balance the classes: a few dozen fakes among a thousand real profiles.
        pos = max(y.sum(), 1.0)
        w = np.where(y == 1, len(y) / (2 * pos), len(y) / (2 * max(len(y) - pos, 1.0)))
        b = np.zeros(x.shape[1])
        reg = self.l2 * np.eye(x.shape[1])
        reg[0, 0] = 0.0
        for _ in range(self.iterations):
            p = 1.0 / (1.0 + np.exp(-(x @ b)))
            grad = x.T @ (w * (p - y)) + reg @ b
            hess = (x * (w * p * (1 - p))[:, None]).T @ x + reg
            step = np.linalg.solve(hess, grad)
            b -= step
            if np.abs(step).max() < 1e-8:
                break
        self.coef = b
        return self

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """P(fake) per row."""
        if self.coef is None:
            raise RuntimeError("LogisticDetector: fit() first")
        return 1.0 / (1.0 + np.exp(-(self._x(feats) @ self.coef)))


TRAINING_STRATEGIES = ("random", "average", "bandwagon", "segment")


def training_set(history: Interactions, n_users: int, n_items: int, catalog: Catalog,
                 negatives: np.ndarray, *, avoid: Sequence[int], count: int, seed: int,
                 fillers: Sequence[int] = (10, 30, 60)) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels for a supervised detector: injections of every classic strategy
    with their own seed and their own targets (never ``avoid``, the evaluated targets)
    and several filler sizes, against the real profiles ``negatives``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4243]))
    pop = np.bincount(history.item, minlength=n_items)
    pool = np.setdiff1d(np.flatnonzero(pop >= 5), np.asarray(list(avoid), np.int64))
    feats: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    genres = [g for g in catalog.genre_names if sum(g in gs for gs in catalog.genres) >= 10]
    for k, strategy in enumerate(TRAINING_STRATEGIES):
        targets = tuple(int(x) for x in rng.choice(pool, size=min(5, pool.size),
                                                   replace=False))
        selected: tuple[int, ...] = ()
        if strategy == "bandwagon":
            selected = tuple(bandwagon_items(history, n_items, 10))
        elif strategy == "segment" and genres:
            selected = tuple(segment_items(history, catalog, genres[int(rng.integers(
                len(genres)))], 10))
        # Several profile lengths: the attacker's filler size is not known in advance.
        fakes = Interactions.empty()
        first = n_users
        for j, size in enumerate(fillers):
            fp = make_profiles(ShillingPlan(strategy, max(count, 10), targets,
                                            "promote", size, tuple(
                                                i for i in selected if i not in targets),
                                            seed + 10 * k + j),
                               history, first, n_items, seed)
            fakes = fakes.concat(fp.interactions)
            first += fp.count
        m = history.concat(fakes).matrix(first, n_items, binary=False)
        f = profile_features(m)
        feats += [f[n_users:first], f[np.asarray(negatives, np.int64)]]
        labels += [np.ones(first - n_users), np.zeros(len(negatives))]
    return np.vstack(feats), np.concatenate(labels)


def train_logistic(history: Interactions, n_users: int, n_items: int, catalog: Catalog,
                   negatives: np.ndarray, *, avoid: Sequence[int], count: int,
                   seed: int) -> LogisticDetector:
    """A ``LogisticDetector`` fitted on ``training_set``."""
    x, y = training_set(history, n_users, n_items, catalog, negatives, avoid=avoid,
                        count=count, seed=seed)
    return LogisticDetector().fit(x, y)
