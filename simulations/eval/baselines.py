"""Baselines printed beside every fidelity figure, fitted on history only.

Taste (which items a user picks): random, popularity only, item mean rating only, and EASE
on the same history (the reference for "knows what this user likes"). Ratings: the user's
history mean, the item's history mean, and a global + user + item bias model.
Thresholds that turn a baseline's scores into decisions are fitted on tuning users only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tools.dataset import Interactions
from tools.recommenders import make_recommender
from tools.world import World

__all__ = [
    "TASTE_BASELINES",
    "BiasModel",
    "fit_bias_model",
    "fit_threshold",
    "taste_scorers",
    "user_means",
]

TASTE_BASELINES = ("random", "popularity", "item_mean", "ease")
Scorer = Callable[[int, np.ndarray], np.ndarray]


def taste_scorers(world: World, history: Interactions, n_users: int, seed: int,
                  ease_l2: float = 500.0) -> dict[str, Scorer]:
    """``name -> (user, items) -> scores`` for the taste baselines.

    EASE's scores are turned into the item's percentile among the items outside the
    user's history, so one threshold means the same for every user.
    """
    n_items = world.catalog.n_items
    x = history.matrix(n_users, n_items, binary=True)
    ease = make_recommender("ease", seed=seed, l2=ease_l2)
    ease.fit(x)
    cache: dict[int, np.ndarray] = {}

    def ease_pct(u: int, items: np.ndarray) -> np.ndarray:
        pct = cache.get(u)
        if pct is None:
            s = np.asarray(ease.score(np.array([u])), dtype=np.float64)[0]
            seen = x[u].indices
            pool = np.delete(s, seen)
            pool.sort()
            pct = np.searchsorted(pool, s, side="right") / max(len(pool), 1)
            cache[u] = pct
        return pct[items]

    def random(u: int, items: np.ndarray) -> np.ndarray:
        return np.random.default_rng([seed, u, 31]).random(n_items)[items]

    return {
        "random": random,
        "popularity": lambda u, items: world.popularity[items].astype(np.float64),
        "item_mean": lambda u, items: world.item_mean[items].astype(np.float64),
        "ease": ease_pct,
    }


def fit_threshold(scores: Sequence[float] | np.ndarray,
                  labels: Sequence[bool] | np.ndarray) -> float:
    """The threshold t maximising accuracy of "positive iff score > t".

    Candidates are every distinct score (and one below them all: everything positive);
    ties go to the highest threshold (fewest positives).
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if s.size == 0:
        return 0.0
    cand = np.concatenate([[s.min() - 1.0], np.unique(s)])
    true_neg = np.searchsorted(np.sort(s[~y]), cand, side="right")
    true_pos = int(y.sum()) - np.searchsorted(np.sort(s[y]), cand, side="right")
    acc = (true_neg + true_pos) / s.size
    return float(cand[int(np.flatnonzero(acc == acc.max())[-1])])


def user_means(history: Interactions, n_users: int) -> np.ndarray:
    """Mean history rating per user (the global mean for users without history)."""
    g = float(history.rating.mean()) if len(history) else 3.0
    s = np.bincount(history.user, weights=history.rating, minlength=n_users)
    c = np.bincount(history.user, minlength=n_users)
    return np.where(c > 0, s / np.maximum(c, 1), g)


@dataclass(frozen=True)
class BiasModel:
    """rating = mu + b_user + b_item (Koren's baseline estimates)."""

    mu: float
    user: np.ndarray
    item: np.ndarray
    reg_user: float
    reg_item: float

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.mu + self.user[users] + self.item[items]


def fit_bias_model(history: Interactions, n_users: int, n_items: int,
                   reg_user: float = 10.0, reg_item: float = 25.0) -> BiasModel:
    """Item biases first, then user biases on what the items leave over.

    ``b_i = sum(r - mu) / (reg_item + n_i)``, ``b_u = sum(r - mu - b_i) / (reg_user + n_u)``.
    """
    mu = float(history.rating.mean()) if len(history) else 3.0
    r = history.rating.astype(np.float64)
    b_i = (np.bincount(history.item, weights=r - mu, minlength=n_items)
           / (reg_item + np.bincount(history.item, minlength=n_items)))
    b_u = (np.bincount(history.user, weights=r - mu - b_i[history.item], minlength=n_users)
           / (reg_user + np.bincount(history.user, minlength=n_users)))
    return BiasModel(mu, b_u, b_i, reg_user, reg_item)
