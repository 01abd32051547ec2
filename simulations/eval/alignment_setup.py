"""The data side of the alignment protocol: leak-free origins, users and tasks.

An *origin* is one time cutoff with everything fitted before it: the history (ratings
dated before the cutoff), the item space, popularity and item means, and the profiles.
The future is every rating at or after the cutoff. With one origin (the default of
``prepare_alignment``) the cutoff is the ``history_fraction`` quantile of all timestamps
(tools.dataset.global_split).

Most MovieLens users rate in one session, so one cutoff leaves few users with both a
history and a future (on ML-100K at 0.8: 97 with >= 5 history ratings and a liked future
rating, 45 of them test users). ``prepare_origins`` pools several cutoffs (rolling
origins): every user is evaluated once, at one cutoff drawn (by a hash of the user id)
among those where the user has enough history and a liked future rating, against a world
fitted only on ratings before that cutoff. Ten cutoffs between the 0.3 and 0.95 quantiles
give 236 such users (107 test users).

Tasks: positives are a user's held-out items rated >= 4 (among items someone rated before
the cutoff: a new release has no popularity or mean to compare); negatives are drawn for
``MAX_RATIO`` per positive, keyed by (seed, user, sampler), so that the 1:k page is the
first k columns whatever ratios are evaluated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.profile import UserProfile, build_profiles
from simulations.run.sampling import (
    MAX_RATIO,
    NEGATIVE_SAMPLERS,
    USER_SPLITS,
    NegativeSampler,
    UserSplit,
    keyed_rng,
    sample_negatives,
    user_split,
)
from tools.dataset import (
    Dataset,
    Interactions,
    SplitKind,
    global_cutoff,
    rolling_cutoffs,
    split_at,
    split_interactions,
)
from tools.item_space import item_embeddings
from tools.world import World

__all__ = [
    "MIN_HISTORY",
    "ROLLING_RANGE",
    "AlignmentSetup",
    "Task",
    "make_tasks",
    "origin_owners",
    "prepare_alignment",
    "prepare_origins",
]

LIKED = 4.0
# A profile needs a few ratings to say anything about a user.
MIN_HISTORY = 5
# Quantiles of all timestamps between which rolling cutoffs are spread.
ROLLING_RANGE = (0.3, 0.95)


@dataclass(frozen=True, eq=False)
class AlignmentSetup:
    """One origin: history/held-out split, the world and profiles built from history,
    and the users evaluated at it, by split."""

    dataset: Dataset
    history: Interactions
    future: Interactions
    world: World
    profiles: list[UserProfile]
    tuning: list[int]  # evaluable users (history and a liked held-out item), tuning split
    test: list[int]  # the same, test split
    development: list[int] = field(default_factory=list)  # the same, development split
    cutoff: float = float("inf")  # inf: the per-user (leaky) split

    @property
    def available(self) -> np.ndarray:
        """Items rated by anyone in history: the only items negatives are drawn from."""
        return np.flatnonzero(self.world.popularity > 0)

    def users(self, split: UserSplit) -> list[int]:
        return {"tuning": self.tuning, "development": self.development,
                "test": self.test}[split]


def _evaluable(dataset: Dataset, history: Interactions, future: Interactions,
               min_history: int, min_liked: float = LIKED) -> np.ndarray:
    n = dataset.n_users
    has_hist = np.bincount(history.user, minlength=n) >= min_history
    # Only items someone rated before the cutoff count: new releases are not comparable.
    known = np.bincount(history.item, minlength=dataset.n_items)[future.item] > 0
    # Implicit feedback (no ratings): every interaction counts as liked.
    pos = future.rating >= min_liked if dataset.has_ratings else dataset.liked(future)
    liked = np.bincount(future.user[pos & known], minlength=n) > 0
    return has_hist & liked


def origin_owners(dataset: Dataset, cutoffs: Sequence[float], min_history: int = MIN_HISTORY,
                  min_rating: float = LIKED) -> np.ndarray:
    """Per user, the index of the one cutoff the user is evaluated at (-1: none).

    A user is eligible at a cutoff with at least ``min_history`` ratings before it and a
    rating >= ``min_rating`` (of an item rated before the cutoff) at or after it; among
    the eligible cutoffs one is chosen by a hash of the user id, never by an outcome.
    Reusable by any evaluation that pools rolling origins (``min_rating=0``: any held-out
    rating, as held-out accuracy needs).
    """
    inter = dataset.interactions
    ok = np.stack([_evaluable(dataset, *split_at(inter, t), min_history, min_rating)
                   for t in cutoffs])
    owner = np.full(dataset.n_users, -1)
    for u in np.flatnonzero(ok.any(axis=0)):
        owner[u] = _assign(dataset.user_ids[u], np.flatnonzero(ok[:, u]))
    return owner


def _world(dataset: Dataset, history: Interactions, seed: int,
           space: Mapping[str, Any] | None = None) -> tuple[World, list[UserProfile]]:
    emb = item_embeddings(dataset, history, seed=seed, **(space or {}))
    ds_hist = dataset.with_interactions(history)
    world = World(dataset.catalog, emb, ds_hist.item_mean_rating, ds_hist.item_popularity,
                  float(history.rating.mean()) if len(history) else 3.5)
    return world, build_profiles(dataset, history, emb)


def _setup(dataset: Dataset, history: Interactions, future: Interactions, seed: int,
           users: np.ndarray, cutoff: float,
           space: Mapping[str, Any] | None = None) -> AlignmentSetup:
    world, profiles = _world(dataset, history, seed, space)
    by: dict[UserSplit, list[int]] = {s: [] for s in USER_SPLITS}
    for u in np.flatnonzero(users):
        by[user_split(dataset.user_ids[u])].append(int(u))
    return AlignmentSetup(dataset, history, future, world, profiles, by["tuning"], by["test"],
                          by["development"], cutoff)


def prepare_alignment(dataset: Dataset, seed: int = 0, history_fraction: float = 0.8,
                      split: SplitKind = "global", min_history: int = MIN_HISTORY,
                      space: Mapping[str, Any] | None = None) -> AlignmentSetup:
    """One origin: split the ratings in time (``split``: tools.dataset.split_interactions);
    the item space (``space``: keyword arguments of tools.item_space.item_embeddings),
    popularity, item means and profiles come from history only."""
    history, future = split_interactions(dataset.interactions, history_fraction, split)
    cutoff = (global_cutoff(dataset.interactions, history_fraction) if split == "global"
              else float("inf"))
    ok = _evaluable(dataset, history, future, min_history)
    return _setup(dataset, history, future, seed, ok, cutoff, space)


def _assign(user_id: str, eligible: np.ndarray) -> int:
    """One of the eligible origins, by a hash of the user id (never by the outcome)."""
    h = hashlib.sha256(f"recarena-origin:{user_id}".encode()).digest()
    return int(eligible[int.from_bytes(h[:8], "big") % len(eligible)])


def prepare_origins(dataset: Dataset, cutoffs: int = 1, seed: int = 0,
                    history_fraction: float = 0.8, split: SplitKind = "global",
                    span: tuple[float, float] = ROLLING_RANGE,
                    min_history: int = MIN_HISTORY,
                    space: Mapping[str, Any] | None = None) -> list[AlignmentSetup]:
    """``cutoffs`` leak-free origins; every evaluable user is in exactly one of them.

    ``cutoffs == 1`` is ``[prepare_alignment(...)]``. Otherwise the cutoffs are spread
    over the ``span`` quantiles of all timestamps; a user is evaluable at a cutoff with at
    least ``min_history`` ratings before it and a liked (>= 4) rating at or after it, and
    is evaluated at one such cutoff chosen by a hash of the id. Origins left without users
    are dropped.

    Raises:
        ValueError: ``cutoffs < 1``, or several cutoffs with the per-user split.
    """
    if cutoffs < 1:
        raise ValueError("cutoffs must be at least 1")
    if cutoffs == 1:
        return [prepare_alignment(dataset, seed, history_fraction, split, min_history, space)]
    if split != "global":
        raise ValueError("rolling cutoffs need the global (leak-free) split")
    inter = dataset.interactions
    times = sorted(set(rolling_cutoffs(inter, cutoffs, *span)))
    parts = [split_at(inter, t) for t in times]
    owner = origin_owners(dataset, times, min_history)
    return [_setup(dataset, h, f, seed, owner == k, t, space)
            for k, ((h, f), t) in enumerate(zip(parts, times, strict=True))
            if (owner == k).any()]


@dataclass(frozen=True)
class Task:
    """One user's positives and, per positive, an ordered row of negatives."""

    user: int
    positives: np.ndarray
    negatives: np.ndarray  # (len(positives), MAX_RATIO)
    origin: int = 0  # index of the user's origin (setup)

    def page(self, m: int, seed: int) -> tuple[tuple[int, ...], frozenset[int]]:
        """The items shown at ratio 1:m (shuffled) and the positives among them."""
        items = np.concatenate([self.positives, self.negatives[:, :m].ravel()])
        items = keyed_rng(seed, self.user, m, 7).permutation(items)
        return tuple(int(i) for i in items), frozenset(int(i) for i in self.positives)


def make_tasks(setup: AlignmentSetup, users: Sequence[int], sampler: NegativeSampler, *,
               positives: int, seed: int, origin: int = 0,
               max_ratio: int = MAX_RATIO) -> list[Task]:
    """Positives (held-out items rated >= 4) and ``max_ratio`` negatives per positive
    for each user, drawn among items available in history the user never rated."""
    fut, hist = setup.future, setup.history
    code = NEGATIVE_SAMPLERS.index(sampler)
    avail = setup.available
    tasks = []
    for u in users:
        rng = keyed_rng(seed, u, 19, code)
        liked = np.intersect1d(fut.item[(fut.user == u) & setup.dataset.liked(fut)], avail)
        pos = rng.choice(liked, size=min(positives, len(liked)), replace=False)
        rated = np.union1d(hist.item[hist.user == u], fut.item[fut.user == u])
        pool = np.setdiff1d(avail, rated)
        neg = sample_negatives(sampler, rng, pos, pool, setup.world.popularity, max_ratio)
        tasks.append(Task(int(u), pos.astype(np.int64), neg, origin))
    return tasks
