"""Shilling profiles: fake users who rate target items to push (or bury) them.

The classic strategies (Lam & Riedl 2004; Mobasher et al. 2007), each a profile of
``filler`` randomly chosen items plus the targets:

* ``random``: filler ratings drawn around the global mean rating (needs little knowledge);
* ``average``: filler ratings drawn around each item's own mean (needs item means);
* ``bandwagon``: the most popular items rated highest, filler as random;
* ``segment``: the items of a segment (e.g. a genre's favourites) rated highest, filler
  rated lowest, so the profiles look like the segment's fans.

Targets get the highest rating (promote) or the lowest (demote). Fake users take the user
indices ``n_users .. n_users + count - 1``: they never collide with a real user, and the
training matrix simply grows by ``count`` rows. Everything here is pure numpy and seeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tools.data_model import Catalog, Interactions

__all__ = [
    "FakeProfiles",
    "ShillingPlan",
    "bandwagon_items",
    "least_popular_targets",
    "make_profiles",
    "profiles_from_lists",
    "rating_scale",
    "segment_items",
]


@dataclass(frozen=True)
class ShillingPlan:
    """A resolved fake-user attack: everything is item indices of the catalogue."""

    strategy: str
    count: int
    targets: tuple[int, ...]
    intent: str = "promote"  # promote | demote
    filler: int = 30
    selected: tuple[int, ...] = ()  # bandwagon's popular items or segment's items
    seed: int = 0


@dataclass(frozen=True)
class FakeProfiles:
    """The fake users' ratings (users ``first_user ..``) and how many there are."""

    interactions: Interactions
    first_user: int
    count: int

    @property
    def users(self) -> np.ndarray:
        return np.arange(self.first_user, self.first_user + self.count, dtype=np.int64)


def rating_scale(history: Interactions) -> tuple[float, float]:
    """Lowest and highest rating of the history (1, 1 for implicit data)."""
    if len(history) == 0:
        return 1.0, 1.0
    return float(history.rating.min()), float(history.rating.max())


def _popularity(history: Interactions, n_items: int) -> np.ndarray:
    return np.bincount(history.item, minlength=n_items)


def least_popular_targets(history: Interactions, n_items: int, k: int,
                          min_ratings: int) -> list[int]:
    """The k least popular items with at least ``min_ratings`` ratings (ties: lower index)."""
    pop = _popularity(history, n_items)
    ok = np.flatnonzero(pop >= min_ratings)
    if ok.size < k:
        raise ValueError(f"only {ok.size} items have at least {min_ratings} ratings; "
                         f"cannot pick {k} targets")
    order = np.lexsort((ok, pop[ok]))
    return [int(i) for i in ok[order[:k]]]


def bandwagon_items(history: Interactions, n_items: int, k: int) -> list[int]:
    """The k most popular items (ties: lower index)."""
    pop = _popularity(history, n_items)
    order = np.lexsort((np.arange(n_items), -pop))
    return [int(i) for i in order[:k] if pop[i] > 0]


def segment_items(history: Interactions, catalog: Catalog, genre: str, k: int) -> list[int]:
    """The k most popular items of a genre."""
    pop = _popularity(history, catalog.n_items)
    of_genre = np.asarray([i for i, gs in enumerate(catalog.genres) if genre in gs], np.int64)
    if of_genre.size == 0:
        raise ValueError(f"no item has genre {genre!r}; genres: "
                         + ", ".join(catalog.genre_names))
    order = np.lexsort((of_genre, -pop[of_genre]))
    return [int(i) for i in of_genre[order[:k]]]


def _item_stats(history: Interactions, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    n = np.bincount(history.item, minlength=n_items).astype(np.float64)
    s = np.bincount(history.item, weights=history.rating, minlength=n_items)
    s2 = np.bincount(history.item, weights=history.rating.astype(np.float64) ** 2,
                     minlength=n_items)
    g = float(history.rating.mean()) if len(history) else 1.0
    mean = np.where(n > 0, s / np.maximum(n, 1), g)
    var = np.where(n > 1, s2 / np.maximum(n, 1) - mean**2, 0.0)
    return mean, np.sqrt(np.maximum(var, 0.0))


def make_profiles(plan: ShillingPlan, history: Interactions, n_users: int, n_items: int,
                  run_seed: int) -> FakeProfiles:
    """Fake users' ratings for a classic strategy (``llm`` profiles: ``profiles_from_lists``).

    Args:
        plan: The resolved attack.
        history: The training history the attacker may know (item means and popularity).
        n_users: Real users in the data: fake users start at this index.
        n_items: Catalogue size.
        run_seed: The run's seed (with ``plan.seed``, the profiles' seed).
    """
    if plan.strategy not in ("random", "average", "bandwagon", "segment"):
        raise ValueError(f"make_profiles: no classic strategy {plan.strategy!r}")
    rng = np.random.default_rng(np.random.SeedSequence([run_seed, plan.seed, 2107]))
    lo, hi = rating_scale(history)
    target_r = hi if plan.intent == "promote" else lo
    mean, std = _item_stats(history, n_items)
    g_mean = float(history.rating.mean()) if len(history) else 1.0
    g_std = float(history.rating.std()) if len(history) else 0.0
    rated = np.flatnonzero(_popularity(history, n_items) > 0)
    fixed = set(plan.targets) | set(plan.selected)
    pool = np.asarray([i for i in rated if int(i) not in fixed], np.int64)
    ts = float(history.ts.max()) if len(history) else 0.0
    users: list[int] = []
    items: list[int] = []
    ratings: list[float] = []
    for k in range(plan.count):
        u = n_users + k
        n_fill = min(plan.filler, pool.size)
        fill = rng.choice(pool, size=n_fill, replace=False) if n_fill else pool[:0]
        if plan.strategy == "average":
            r = rng.normal(mean[fill], std[fill])
        elif plan.strategy == "segment":
            r = np.full(fill.size, lo)
        else:  # random, bandwagon
            r = rng.normal(g_mean, g_std, size=fill.size)
        r = np.clip(np.rint(r), lo, hi)
        prof_items = [*fill.tolist(), *plan.selected, *plan.targets]
        prof_r = [*r.tolist(), *([hi] * len(plan.selected)), *([target_r] * len(plan.targets))]
        users += [u] * len(prof_items)
        items += [int(i) for i in prof_items]
        ratings += [float(x) for x in prof_r]
    inter = Interactions.from_lists(users, items, ratings, [ts] * len(users))
    return FakeProfiles(inter, n_users, plan.count)


def profiles_from_lists(profiles: Sequence[Sequence[tuple[int, float]]], n_users: int,
                        ts: float) -> FakeProfiles:
    """Fake users from written profiles (lists of (item index, rating)), e.g. an LLM's."""
    users: list[int] = []
    items: list[int] = []
    ratings: list[float] = []
    for k, prof in enumerate(profiles):
        for i, r in prof:
            users.append(n_users + k)
            items.append(int(i))
            ratings.append(float(r))
    return FakeProfiles(Interactions.from_lists(users, items, ratings, [ts] * len(users)),
                        n_users, len(profiles))
