"""Recommenders: the common interface, the classic baselines and a name registry.

``make_recommender("ease", seed=0, l2=200.0)`` builds a model by name; its parameters are
validated against the model's ``defaults`` (unknown names raise ``ValueError``).
``ColdStartRecommender`` wraps any of them to reserve page slots for new releases.
A model may also be a plug-in: an import path (``mypkg.module:Class``) or an installed
entry point of the group ``recarena.recommenders`` (tools/recommenders/plugin.py).
"""

from __future__ import annotations

from typing import Any

from tools.recommenders.base import Recommender, top_k
from tools.recommenders.classic import EASE, ItemKNN, Popularity, RandomRecommender
from tools.recommenders.cold_start import ColdStartRecommender
from tools.recommenders.mf import ALS, BPR
from tools.recommenders.params import ParamRecommender
from tools.recommenders.plugin import (
    PluginError,
    PluginRecommender,
    RecommenderPlugin,
    is_plugin_spec,
    load_plugin,
)

__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "MODELS",
    "ColdStartRecommender",
    "ItemKNN",
    "ParamRecommender",
    "PluginError",
    "PluginRecommender",
    "Popularity",
    "RandomRecommender",
    "Recommender",
    "RecommenderPlugin",
    "check_model",
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
        model: One of the keys of ``MODELS`` (case-insensitive), or a plug-in: an import
            path ``module:Class`` or an entry point of ``recarena.recommenders``.
        seed: Seed for any randomness in fitting or scoring.
        **params: Model hyper-parameters; see each class's ``defaults``.

    Raises:
        ValueError: Unknown model name, or a parameter the model does not take (or a bad
            value); the message names it.
    """
    cls = MODELS.get(model.strip().lower())
    if cls is None:
        if not is_plugin_spec(model):
            raise ValueError(f"unknown model '{model}'; choose from {', '.join(MODELS)}, "
                             "or give an import path module:Class")
        return PluginRecommender(model, seed=seed, **params)
    return cls(seed=seed, **params)


def check_model(model: str) -> None:
    """Raise ``ValueError`` (one line) unless ``model`` is a built-in or loadable plug-in."""
    if model.strip().lower() in MODELS:
        return
    if not is_plugin_spec(model):
        raise ValueError(f"unknown model '{model}'; choose from {', '.join(MODELS)}, or "
                         "give an import path module:Class")
    load_plugin(model)
