"""What item agents are trained on and seeded from, over a dataset and its history split.

Shared by the sr task (simulations/tasks/agentcf.py) and runs whose scenario names
``item_agents:`` (simulations/run/prepare.py): training interactions are each training
user's last ``training.per_user`` liked history ratings (nothing after the cutoff), oldest
first across users, each with one negative the user never rated in history and a seeded
presentation order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from agents.items.control import TagAgents
from agents.items.loop import EpochStats, TrainStep, train
from scenarios.item_role import ItemRole
from tools.dataset import Dataset, Interactions
from tools.history import UserHistories
from tools.item_tags import Tags, describe_tags, item_tags
from tools.kg import KnowledgeGraph, kg_files, load_kg

__all__ = ["USER_DEFAULT", "dataset_kg", "history_fn", "item_seeds", "sample_negatives",
           "seeded_descriptions", "train_tags", "training_steps"]

USER_DEFAULT = "I have not described my tastes yet."
Emit = Callable[..., None]


def training_steps(ds: Dataset, history: Interactions, users: Sequence[int],
                   role: ItemRole, seed: int) -> list[TrainStep]:
    """Each user's last ``per_user`` liked history ratings with a sampled negative,
    oldest first (ties: user, item)."""
    h, t = history, role.training
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
        rng = np.random.default_rng(np.random.SeedSequence([seed, int(u), 67]))
        negs, swaps = sample_negatives(rng, pool, pop, len(liked), t.sampler)
        out.extend(TrainStep(int(u), int(h.item[j]), int(n), float(h.ts[j]), bool(s))
                   for j, n, s in zip(liked, negs, swaps, strict=True))
    out.sort(key=lambda s: (s.ts, s.user, s.positive))
    return out


def sample_negatives(rng: np.random.Generator, pool: np.ndarray, pop: np.ndarray, n: int,
                     sampler: str) -> tuple[np.ndarray, np.ndarray]:
    """``n`` negatives drawn from ``pool`` (by history popularity ``pop`` with the
    ``popularity`` sampler, else uniformly) and, per step, whether the negative is shown
    first: the draws of training (``training_steps``) and of a run's rounds
    (agents/items/live.py)."""
    p = pop[pool] / pop[pool].sum() if sampler == "popularity" else None
    negs = rng.choice(pool, size=n, replace=True, p=p)
    return negs, rng.random(n) < 0.5


def dataset_kg(ds: Dataset) -> KnowledgeGraph | None:
    """The dataset's knowledge graph (NAME.kg + NAME.link), or None."""
    files = kg_files(ds.source, ds.name) if ds.source is not None else None
    return load_kg(*files) if files is not None else None


def item_seeds(ds: Dataset, role: ItemRole) -> list[Tags]:
    """Every item's seeded tags (catalogue, and the knowledge graph when there is one)."""
    kg = dataset_kg(ds) if role.seed.kg_relations else None
    return item_tags(ds.catalog, kg, genres=role.seed.genres,
                     relations=role.seed.kg_relations if kg is not None else (),
                     kg_max=role.seed.kg_max)


def seeded_descriptions(ds: Dataset, role: ItemRole,
                        seeds: Sequence[Tags] | None = None) -> list[str]:
    """Every item's first "who likes me" text, from its seeded tags."""
    seeds = seeds if seeds is not None else item_seeds(ds, role)
    kg = dataset_kg(ds)
    return [f"people who like {describe_tags(s, ds.catalog, kg) or 'movies'}"
            for s in seeds]


def history_fn(ds: Dataset, history: Interactions,
               liked: float) -> Callable[[int, float | None], list[int]]:
    """(user, before) -> the user's liked history items before the clock, oldest first."""
    hist = UserHistories(history, ds.n_users)
    return lambda u, before: [r.item for r in hist.ratings(u, before=before)
                              if (r.rating or 0) >= liked]


def train_tags(ds: Dataset, history: Interactions, role: ItemRole, users: Sequence[int],
               seed: int, *, seeds: Sequence[Tags] | None = None,
               emit: Emit | None = None) -> tuple[TagAgents, list[EpochStats]]:
    """The deterministic control trained on ``users``' history interactions."""
    agents = TagAgents(role, seeds if seeds is not None else item_seeds(ds, role),
                       ds.n_users, history_fn(ds, history, role.training.liked))
    steps = training_steps(ds, history, users, role, seed)
    stats = train(agents, steps, role.training.epochs, emit=emit,
                  ids=lambda i: ds.catalog.item_ids[i], users=lambda u: ds.user_ids[u])
    return agents, stats
