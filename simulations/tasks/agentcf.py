"""AgentCF on the sr task: train item and user agents on history, then rank beside the
baselines on the same instances.

Training interactions are each training user's last ``training.per_user`` liked history
ratings (before the global cutoff: nothing of anyone's future), in time order across
users; each gets one negative the user never rated in history (popularity-sampled by
default, AgentCF's) and a seeded presentation order. The trained agents then answer the
sr task through the recommender-agent protocol, one row per inference mode, beside the
control with item updates off (the ablation) and the classic baselines, all on the same
instances (simulations/tasks/suite.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agents.items.control import TagAgents
from agents.items.loop import EpochStats, TrainStep, train
from scenarios.item_role import ItemRole
from simulations.run.sampling import keyed_rng
from simulations.tasks.baselines import ClassicRecommender
from simulations.tasks.data import TaskSetup
from tools.history import UserHistories
from tools.item_tags import item_tags

__all__ = ["control_rankers", "history_fn", "item_seeds", "train_control", "training_steps"]

Emit = Callable[..., None]


def training_steps(setup: TaskSetup, users: Sequence[int], role: ItemRole,
                   seed: int) -> list[TrainStep]:
    """Each user's last ``per_user`` liked history ratings with a sampled negative,
    oldest first (ties: user, item)."""
    h, ds = setup.history, setup.dataset
    t = role.training
    pop = np.bincount(h.item, minlength=ds.n_items)
    available = np.flatnonzero(pop > 0)
    out: list[TrainStep] = []
    for u in users:
        idx = np.flatnonzero(h.user == u)
        rated = np.unique(h.item[idx])
        liked = idx[h.rating[idx] >= t.liked]
        liked = liked[np.lexsort((liked, h.ts[liked]))][-t.per_user:]
        pool = np.setdiff1d(available, rated)
        if not len(liked) or not len(pool):
            continue
        rng = keyed_rng(seed, int(u), 67)
        p = pop[pool] / pop[pool].sum() if t.sampler == "popularity" else None
        negs = rng.choice(pool, size=len(liked), replace=True, p=p)
        swaps = rng.random(len(liked)) < 0.5
        out.extend(TrainStep(int(u), int(h.item[j]), int(n), float(h.ts[j]), bool(s))
                   for j, n, s in zip(liked, negs, swaps, strict=True))
    out.sort(key=lambda s: (s.ts, s.user, s.positive))
    return out


def item_seeds(setup: TaskSetup, role: ItemRole) -> list[dict[str, float]]:
    """Every item's seeded tags (catalogue, and the knowledge graph when the dataset has
    one)."""
    from tools.kg import kg_files, load_kg

    ds = setup.dataset
    kg = None
    if role.seed.kg_relations and ds.source is not None:
        files = kg_files(ds.source, ds.name)
        kg = load_kg(*files) if files is not None else None
    return item_tags(ds.catalog, kg, genres=role.seed.genres,
                     relations=role.seed.kg_relations if kg is not None else (),
                     kg_max=role.seed.kg_max)


def history_fn(setup: TaskSetup, liked: float) -> Callable[[int, float | None], list[int]]:
    """(user, before) -> the user's liked history items before the clock, oldest first."""
    hist = UserHistories(setup.history, setup.dataset.n_users)
    return lambda u, before: [r.item for r in hist.ratings(u, before=before)
                              if (r.rating or 0) >= liked]


def train_control(setup: TaskSetup, role: ItemRole, users: Sequence[int], seed: int, *,
                  seeds: Sequence[dict[str, float]] | None = None, emit: Emit | None = None,
                  ) -> tuple[TagAgents, list[EpochStats]]:
    """The control trained on ``users``' history interactions."""
    ds = setup.dataset
    agents = TagAgents(role, seeds if seeds is not None else item_seeds(setup, role),
                       ds.n_users, history_fn(setup, role.training.liked))
    steps = training_steps(setup, users, role, seed)
    stats = train(agents, steps, role.training.epochs, emit=emit,
                  ids=lambda i: ds.catalog.item_ids[i], users=lambda u: ds.user_ids[u])
    return agents, stats


def control_rankers(agents: TagAgents, name: str,
                    modes: Sequence[str] = ("basic",)) -> list[ClassicRecommender]:
    """One protocol recommender per inference mode (``NAME`` for basic, else
    ``NAME+MODE``)."""
    def scorer(mode: str) -> Callable[[int, np.ndarray], np.ndarray]:
        def score(u: int, items: np.ndarray) -> np.ndarray:
            # The request's clock is not passed to scorers: history mode reads every
            # history item, all of which are before any user's clock (global split).
            return np.asarray(agents.scores(u, [int(i) for i in items], None, mode))
        return score
    return [ClassicRecommender(name if m == "basic" else f"{name}+{m}", scorer=scorer(m))
            for m in modes]


def summary(stats: Sequence[EpochStats]) -> list[dict[str, Any]]:
    return [s.as_dict() for s in stats]


USER_DEFAULT = "I have not described my tastes yet."


def item_text(setup: TaskSetup) -> Callable[[int], str]:
    """``Title (year), genres``: how the loop's prompts name an item."""
    cat = setup.dataset.catalog

    def line(i: int) -> str:
        title = f"{cat.titles[i]} ({cat.years[i]})" if cat.years[i] else cat.titles[i]
        return f"{title}, {', '.join(cat.genres[i]) or 'unclassified'}"
    return line


def seeded_descriptions(setup: TaskSetup, role: ItemRole,
                        seeds: Sequence[dict[str, float]] | None = None) -> list[str]:
    """Every item's first "who likes me" text, from its seeded tags."""
    from tools.item_tags import describe_tags
    from tools.kg import kg_files, load_kg

    ds = setup.dataset
    seeds = seeds if seeds is not None else item_seeds(setup, role)
    files = kg_files(ds.source, ds.name) if ds.source is not None else None
    kg = load_kg(*files) if files is not None else None
    return [f"people who like {describe_tags(s, ds.catalog, kg) or 'movies'}"
            for s in seeds]


def train_llm(setup: TaskSetup, role: ItemRole, users: Sequence[int], seed: int,
              client: Any, *, store: Any = None, emit: Emit | None = None,
              seeds: Sequence[dict[str, float]] | None = None,
              on_step: Callable[[int], None] | None = None,
              ) -> tuple[Any, list[EpochStats]]:
    """The LLM agents (agents/items/llm_agents.py) trained on ``users``' interactions."""
    from agents.items.llm_agents import LLMItemAgents
    from agents.items.store import Descriptions

    ds = setup.dataset
    if role.memory.store == "none":
        store = None
    desc = Descriptions(seeded_descriptions(setup, role, seeds), ds.n_users,
                        user_default=USER_DEFAULT, store=store, ids=ds.catalog.item_ids)
    agents = LLMItemAgents(role, client, desc, item_text(setup),
                           history_fn(setup, role.training.liked))
    steps = training_steps(setup, users, role, seed)
    stats = train(agents, steps, role.training.epochs, emit=emit,
                  ids=lambda i: ds.catalog.item_ids[i], users=lambda u: ds.user_ids[u],
                  on_step=on_step)
    return agents, stats
