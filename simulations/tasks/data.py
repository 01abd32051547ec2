"""Who and what the offline tasks ask about: the split, the clock and the instances.

The ratings are split in time at one global cutoff (the 0.8 quantile of all timestamps;
``split="global"``, the default, tools.dataset.global_split): history is every rating
before it, the future every rating at or after it. History is everything any model or
tool may see; the user's clock is the time of their first future rating (never before the
cutoff), and every request about the user carries it, so a clock-bounded tool reveals
nothing from it on. Users are those with history and a liked (>= 4) future rating;
tuning, development and test users are split by id (simulations/run/sampling.py) and figures
are reported on disjoint samples of test users only. Negatives are drawn only among items
someone rated before the cutoff.

``split="per_user"`` is the per-user split MACRec and leave-one-out evaluations use (each
user's earliest 80%): other users' history may then be later than one user's clock.

* rp: the user's next ``per_user`` future ratings, in time order.
* sr: the user's next liked item (first future rating >= 4) among ``negatives`` items the
  user never rated (uniform, as MACRec), or among a classic model's top-N unseen items
  (the positive is then a candidate only if the model proposed it: its recall).
  Candidates are shown in a seeded random order so position says nothing.
* gen: the sr candidates; the agent recommends one item and explains it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from simulations.run.sampling import keyed_rng, sample_negatives, users_by_split
from tools.candidates import CandidateGenerator
from tools.dataset import Dataset, Interactions, SplitKind, split_interactions

__all__ = [
    "HISTORY_FRACTION",
    "LIKED",
    "RankInstance",
    "RatingInstance",
    "TaskSetup",
    "prepare_tasks",
    "rank_instances",
    "rating_instances",
]

HISTORY_FRACTION = 0.8
LIKED = 4.0


@dataclass(frozen=True, eq=False)
class TaskSetup:
    """The history/future split, each user's clock, and the eligible users by split."""

    dataset: Dataset
    history: Interactions
    future: Interactions
    clock: np.ndarray  # per user: time of the first future rating (inf: no future)
    tuning: list[int]
    test: list[int]
    development: list[int] = field(default_factory=list)

    def future_of(self, user: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The user's future (items, ratings, times), oldest first (ties: file order)."""
        f = self.future
        idx = np.flatnonzero(f.user == user)
        idx = idx[np.lexsort((idx, f.ts[idx]))]
        return f.item[idx].astype(np.int64), f.rating[idx].astype(np.float64), f.ts[idx]


def prepare_tasks(dataset: Dataset, history_fraction: float = HISTORY_FRACTION,
                  split: SplitKind = "global") -> TaskSetup:
    """The split (``global``: leak-free, the default), each user's clock and the users."""
    history, future = split_interactions(dataset.interactions, history_fraction, split)
    n = dataset.n_users
    clock = np.full(n, np.inf)
    np.minimum.at(clock, future.user, future.ts)
    has_hist = np.bincount(history.user, minlength=n) > 0
    liked = np.zeros(n, dtype=bool)
    liked[future.user[future.rating >= LIKED]] = True
    ok = has_hist & liked
    by = users_by_split(dataset.user_ids)
    return TaskSetup(dataset, history, future, clock,
                     [u for u in by["tuning"] if ok[u]], [u for u in by["test"] if ok[u]],
                     [u for u in by["development"] if ok[u]])


@dataclass(frozen=True)
class RatingInstance:
    user: int
    item: int
    rating: float
    now: float


@dataclass(frozen=True)
class RankInstance:
    user: int
    positive: int
    candidates: tuple[int, ...]  # in presented order
    now: float


def rating_instances(setup: TaskSetup, users: Sequence[int],
                     per_user: int) -> list[RatingInstance]:
    """Each user's next ``per_user`` future ratings."""
    out: list[RatingInstance] = []
    for u in users:
        items, ratings, _ = setup.future_of(u)
        now = float(setup.clock[u])
        out.extend(RatingInstance(int(u), int(i), float(r), now)
                   for i, r in zip(items[:per_user], ratings[:per_user], strict=True))
    return out


def rank_instances(setup: TaskSetup, users: Sequence[int], negatives: int, seed: int,
                   generator: CandidateGenerator | None = None, *,
                   sampler: str = "uniform") -> list[RankInstance]:
    """One instance per user: the next liked item and its candidates.

    ``sampler`` draws the negatives among never-rated items available before the cutoff:
    ``uniform``, or ``popularity`` (in proportion to history counts, AgentCF's hard
    negatives: popularity alone no longer finds the positive).

    Raises:
        ValueError: A user has fewer unrated items than ``negatives``.
    """
    ds, hist = setup.dataset, setup.history
    pop = np.bincount(hist.item, minlength=ds.n_items)
    out = []
    for u in users:
        items, ratings, _ = setup.future_of(u)
        pos = int(items[np.flatnonzero(ratings >= LIKED)[0]])
        rng = keyed_rng(seed, u, 53)
        if generator is None:
            rated = np.union1d(hist.item[hist.user == u], items)
            # Negatives only among items someone rated before the cutoff (available then).
            pool = np.setdiff1d(np.flatnonzero(pop > 0), rated)
            if sampler == "popularity":
                if len(pool) < negatives:
                    raise ValueError(f"user {u}: {len(pool)} candidate negatives cannot "
                                     f"give {negatives}")
                w = pop[pool].astype(np.float64)
                neg = rng.choice(pool, size=negatives, replace=False, p=w / w.sum())
            else:
                neg = sample_negatives("uniform", rng, np.array([pos]), pool, pop,
                                       negatives)[0]
            cand = np.concatenate([[pos], neg])
        else:
            cand = np.array([i for i, _ in generator.top(u, negatives + 1)], dtype=np.int64)
        cand = rng.permutation(cand)
        out.append(RankInstance(int(u), pos, tuple(int(i) for i in cand),
                                float(setup.clock[u])))
    return out
