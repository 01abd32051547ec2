"""Classic recommenders as candidate generators: top-N unseen items for a user.

The model is fit on the interactions it is given and nothing else; pass only the past (a
simulation's history split, a task's training data) and, with ``before``, it is cut to
interactions strictly earlier than that time. Items the user rated in that data are
never proposed, nor any item in ``exclude``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tools.dataset import Interactions
from tools.recommenders import MODELS, Recommender, make_recommender, top_k

__all__ = ["CandidateGenerator"]


class CandidateGenerator:
    """A named classic model fit on the past, proposing unseen items.

    Args:
        model: A name of :data:`tools.recommenders.MODELS` (pop, ease, itemknn, ...).
        history: The interactions it may learn from.
        n_users, n_items: The index space (dataset sizes).
        seed: For models with randomness.
        before: Fit only on interactions strictly earlier than this time.
        **params: The model's hyper-parameters (else its defaults).

    Raises:
        ValueError: Unknown model or parameter.
    """

    def __init__(self, model: str, history: Interactions, n_users: int, n_items: int,
                 seed: int = 0, before: float | None = None, **params: Any) -> None:
        name = model.strip().lower()
        if name not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
        train = history if before is None else history.select(history.ts < before)
        self.name, self.before = name, before
        self.model: Recommender = make_recommender(name, seed=seed, **params)
        self.model.fit(train.matrix(n_users, n_items, binary=not self.model.uses_ratings))
        self.n_train = len(train)

    def top(self, user: int, n: int, exclude: Iterable[int] = ()) -> list[tuple[int, float]]:
        """The ``n`` best items for ``user`` as (item, score), best first, leaving out what
        the user rated in the training data and ``exclude``."""
        if n <= 0:
            return []
        scores = np.array(self.model.score(np.array([user], dtype=np.int64)), dtype=np.float64)
        seen = self.model.train_matrix[user].indices
        scores[0, seen] = -np.inf
        ex = np.fromiter((int(i) for i in exclude), np.int64)
        if ex.size:
            scores[0, ex] = -np.inf
        items = top_k(scores, n)[0]
        return [(int(i), float(scores[0, i])) for i in items if i >= 0]
