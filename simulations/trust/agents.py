"""The recommenders the trust evaluations ask: classic models behind the recommender-agent
protocol, and LLM roles or teams built over a given history.

LLM recommenders are built over a library whose users carry no attributes: a probe states
one attribute in the request, and nothing else may tell the agent who the user is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simulations.tasks.baselines import ClassicRecommender
from simulations.tasks.data import TaskSetup, rank_instances
from simulations.trust.explain import AgentFactory
from simulations.trust.probing import ProbeInstance
from tools.dataset import Dataset, Interactions
from tools.recommenders import MODELS, make_recommender

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agents.group import Emit
    from agents.recsys.protocol import RecommenderAgent
    from scenarios.schema import LLMConfig

__all__ = ["classic_ranker", "is_model", "llm_factory", "probe_instances", "where_of",
           "without_attrs"]


def is_model(spec: str) -> bool:
    return spec.strip().lower() in MODELS


def without_attrs(dataset: Dataset) -> Dataset:
    return dataclasses.replace(dataset, user_attrs=tuple({} for _ in dataset.user_ids))


def classic_ranker(model: str, history: Interactions, dataset: Dataset,
                   seed: int = 0) -> RecommenderAgent:
    """A classic model as a protocol ranker (it ignores a request's context)."""
    m = make_recommender(model, seed=seed)
    m.fit(history.matrix(dataset.n_users, dataset.n_items, binary=not m.uses_ratings))

    def scorer(u: int, items: np.ndarray) -> np.ndarray:
        return np.asarray(m.score(np.array([u])), dtype=np.float64)[0][items]

    return ClassicRecommender(model, scorer=scorer)


def llm_factory(path: Path, dataset: Dataset, *, seed: int, run_dir: Path,
                llm: LLMConfig | None, chat_model: BaseChatModel | None, emit: Emit,
                replay: str | None = None) -> AgentFactory:
    """Builds the role or team in ``path`` over a given history (no user attributes)."""
    from agents.library import Library
    from agents.recsys.factory import AgentEnv, make_recommender_agent

    blank = without_attrs(dataset)

    def build(history: Interactions) -> RecommenderAgent:
        library = Library.for_dataset(blank, history, seed=seed)
        env = AgentEnv(library=library, seed=seed, run_dir=run_dir, llm=llm, replay=replay,
                       chat_model=chat_model, emit=emit)
        return make_recommender_agent(path, env)

    return build


def probe_instances(setup: TaskSetup, users: Sequence[int], negatives: int,
                    seed: int) -> list[ProbeInstance]:
    """Each user's sr candidates (next liked item and ``negatives`` never-rated items) at
    the user's clock."""
    return [ProbeInstance(x.user, x.candidates, x.now)
            for x in rank_instances(setup, users, negatives, seed)]


def where_of(name: str, setup: TaskSetup) -> Any:
    """The trace location of a probe request (the agent files its events under it)."""
    def where(label: str, x: Any) -> dict[str, Any]:
        uid = setup.dataset.user_ids[x.user]
        return {"eval_task": "trust", "sample": 0, "base": f"{name}/{label}/u{uid}"}
    return where
