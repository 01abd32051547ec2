"""The world's item facts every brain and environment may consult (read-only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.dataset import Catalog

__all__ = ["World"]


@dataclass(frozen=True, eq=False)
class World:
    """Item facts every brain may consult (read-only, shared by all agents)."""

    catalog: Catalog
    embeddings: np.ndarray  # items x d, unit rows
    item_mean: np.ndarray  # shrunk mean rating per item
    popularity: np.ndarray  # interaction counts per item
    global_mean: float

    def popularity_score(self, items: np.ndarray) -> np.ndarray:
        top = float(np.log1p(self.popularity.max())) or 1.0
        return np.log1p(self.popularity[items]) / top
