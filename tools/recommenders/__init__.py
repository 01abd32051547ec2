"""Recommenders: the common interface, the classic baselines and a name registry.

``make_recommender("ease", seed=0, l2=200.0)`` builds a model by name; its parameters are
validated against the model's ``defaults`` (unknown names raise ``ValueError``).
``ColdStartRecommender`` wraps any of them to reserve page slots for new releases.
"""

from __future__ import annotations

from typing import Any

from tools.recommenders.base import Recommender, top_k
from tools.recommenders.classic import EASE, ItemKNN, Popularity, RandomRecommender
from tools.recommenders.cold_start import ColdStartRecommender
from tools.recommenders.mf import ALS, BPR
from tools.recommenders.params import ParamRecommender

__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "MODELS",
    "ColdStartRecommender",
    "ItemKNN",
    "ParamRecommender",
    "Popularity",
    "RandomRecommender",
    "Recommender",
    "make_recommender",
    "top_k",
]

MODELS: dict[str, type[Recommender]] = {
    "random": RandomRecommender,
    "pop": Popularity,
    "itemknn": ItemKNN,
    "ease": EASE,
    "als": ALS,
    "bpr": BPR,
}


def make_recommender(model: str, seed: int = 0, **params: Any) -> Recommender:
    """Build the recommender registered as ``model``.

    Args:
        model: One of the keys of ``MODELS`` (case-insensitive).
        seed: Seed for any randomness in fitting or scoring.
        **params: Model hyper-parameters; see each class's ``defaults``.

    Raises:
        ValueError: Unknown model name, or a parameter the model does not take (or a bad
            value); the message names it.
    """
    cls = MODELS.get(model.strip().lower())
    if cls is None:
        raise ValueError(f"unknown model '{model}'; choose from {', '.join(MODELS)}")
    return cls(seed=seed, **params)
