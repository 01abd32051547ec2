"""Cold start: new releases that no model can rank yet still reach users.

Items released during a run have no interactions, so popularity, neighbourhood and
factor models score them at the bottom (or not at all) and never show them.
``ColdStartRecommender`` wraps any recommender and reserves a share of every page for the
new items it is told about:

* ``content``: the new items whose content (genres, title and description words) is most
  like what the user interacted with (cosine to the mean of their items' content rows);
* ``random``: new items in a seeded random order per user (pure exploration);
* ``none``: no reserve; the wrapped model alone decides.

The reserve is ``ceil(share * k)`` slots of a k-item page (at least one when share > 0),
counting new items the model picked itself. The model's own top picks keep their order;
its lowest-ranked picks make room, and the reserved items are spread over the page (never
first). Items the caller excludes are never shown, new or not.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from tools.recommenders.base import Recommender
from tools.recommenders.params import binarize

__all__ = ["POLICIES", "ColdStartRecommender", "Policy", "merge_reserved"]

Policy = Literal["none", "content", "random"]
POLICIES: tuple[Policy, ...] = ("none", "content", "random")


def merge_reserved(base: list[int], extra: list[int], k: int) -> list[int]:
    """``base`` (best first) with ``extra`` spread over a page of at most ``k`` items.

    The lowest-ranked base items make room; extra item j of m goes to position
    ``(j + 1) * n // (m + 1)`` of the n-item page, so the base's top pick stays first.
    """
    m = min(len(extra), k)
    kept = base[: max(k - m, 0)]
    n = len(kept) + m
    out = list(kept)
    for j, item in enumerate(extra[:m]):
        out.insert(max((j + 1) * n // (m + 1), 1) if n > 1 else 0, item)
    return out


class ColdStartRecommender(Recommender):
    """``base`` plus a reserved share of every page for ``new_items``.

    Args:
        base: Any recommender; fitting, scoring and the rest of the page are its own.
        content: Items x features, unit rows (``tools.item_space.content_features``).
        policy: ``content``, ``random`` or ``none`` (see the module docstring).
        share: Share of a page's slots reserved for new items, in [0, 1].
        seed: Seed of the ``random`` policy's per-user order.
    """

    def __init__(self, base: Recommender, content: sp.csr_matrix, *,
                 policy: Policy = "content", share: float = 0.25, seed: int = 0) -> None:
        if policy not in POLICIES:
            raise ValueError(f"cold_start: unknown policy {policy!r}; choose from "
                             f"{', '.join(POLICIES)}")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"cold_start: share must be in [0, 1], got {share!r}")
        super().__init__(seed)
        self.base = base
        self.name = base.name
        self.uses_ratings = base.uses_ratings
        self.incremental = base.incremental
        self.content = sp.csr_matrix(content)
        self.policy: Policy = policy
        self.share = share
        self.new_items: frozenset[int] = frozenset()

    def fit(self, matrix: sp.csr_matrix) -> None:
        self.base.fit(matrix)
        self._train = self.base.train_matrix

    def update(self, matrix: sp.csr_matrix) -> None:
        self.base.update(matrix)
        self._train = self.base.train_matrix

    def _fit(self, matrix: sp.csr_matrix) -> None:  # fit() delegates to the base model
        raise NotImplementedError

    def at(self, **where: Any) -> None:
        self.base.at(**where)

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.base.score(users)

    def reserved(self, k: int) -> int:
        """Slots of a k-item page kept for new items (0 when there is nothing to do)."""
        if self.policy == "none" or not self.new_items or self.share <= 0.0:
            return 0
        return min(k, max(1, math.ceil(self.share * k - 1e-9)))

    def new_item_scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """How much each user should see each new item (len(users) x len(items))."""
        if self.policy == "random":
            seed = int(self.seed) % 2**64
            return np.stack([np.random.default_rng([seed, int(u), 1]).random(len(items))
                             for u in users]) if len(users) else np.zeros((0, len(items)))
        seen = binarize(self.train_matrix[users])
        counts = np.asarray(seen.sum(axis=1)).ravel()
        profile = sp.diags(np.divide(1.0, counts, out=np.zeros_like(counts),
                                     where=counts > 0)) @ seen @ self.content
        return np.asarray((profile @ self.content[items].T).toarray(), dtype=np.float64)

    def recommend(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        base = self.base.recommend(users, k, exclude)
        n_res = self.reserved(k)
        if n_res == 0 or users.size == 0:
            return base
        new = np.fromiter(sorted(self.new_items), dtype=np.int64)
        scores = self.new_item_scores(users, new)
        if exclude is not None and exclude.nnz:
            scores[np.asarray(exclude[:, new].toarray()) != 0] = -np.inf
        is_new = set(new.tolist())
        out = np.full((len(users), k), -1, dtype=np.int64)
        for row in range(len(users)):
            picks = [int(i) for i in base[row] if i >= 0]
            need = n_res - sum(i in is_new for i in picks)
            extra: list[int] = []
            if need > 0:
                # Stable: ties go to the lower item index.
                for j in np.lexsort((new, -scores[row])):
                    if len(extra) == need or not np.isfinite(scores[row, j]):
                        break
                    if int(new[j]) not in picks:
                        extra.append(int(new[j]))
            # Make room among the model's own (not new) picks only.
            old = [i for i in picks if i not in is_new]
            own_new = [i for i in picks if i in is_new]
            keep_old = old[: max(k - len(own_new) - len(extra), 0)]
            kept = [i for i in picks if i in own_new or i in keep_old]
            page = merge_reserved(kept, extra, k) if extra else kept
            out[row, : len(page)] = page
        return out
