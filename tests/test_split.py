"""The leak-free global split, rolling cutoffs and the three user splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulations.run.sampling import (
    USER_SPLITS,
    is_tuning_user,
    split_users,
    user_split,
    users_by_split,
)
from tools.dataset import (
    Interactions,
    global_cutoff,
    global_split,
    load_dataset,
    rolling_cutoffs,
    split_at,
    split_interactions,
    temporal_split,
)


def _inter(ts: list[float], users: list[int] | None = None) -> Interactions:
    n = len(ts)
    return Interactions.from_lists(users or [k % 3 for k in range(n)], list(range(n)),
                                   [3.0] * n, ts)


def test_global_cutoff_is_the_time_quantile_and_ties_go_to_the_future() -> None:
    inter = _inter([5, 1, 3, 3, 3, 2, 4, 9, 7, 6])
    # sorted: 1 2 3 3 3 4 5 6 7 9; index ceil(0.3 * 10) = 3 -> T = 3
    assert global_cutoff(inter, 0.3) == 3.0
    hist, fut = global_split(inter, 0.3)
    assert sorted(hist.ts.tolist()) == [1.0, 2.0]  # every rating dated 3 is future
    assert sorted(fut.ts.tolist()) == [3.0, 3.0, 3.0, 4.0, 5.0, 6.0, 7.0, 9.0]
    assert global_cutoff(inter, 1.0) == np.inf
    h, f = global_split(inter, 1.0)
    assert len(h) == 10 and len(f) == 0


def test_global_split_does_not_depend_on_file_order() -> None:
    rng = np.random.default_rng(3)
    ts = rng.integers(0, 50, size=200).astype(float).tolist()
    inter = _inter(ts)
    perm = rng.permutation(200)
    shuffled = inter.select(perm)
    h1, _ = global_split(inter, 0.7)
    h2, _ = global_split(shuffled, 0.7)
    assert sorted(h1.item.tolist()) == sorted(h2.item.tolist())


def test_split_dispatcher_and_bad_kind() -> None:
    inter = _inter([float(k) for k in range(30)])
    for kind, fn in (("global", global_split), ("per_user", temporal_split)):
        a, b = split_interactions(inter, 0.8, kind)  # type: ignore[arg-type]
        c, d = fn(inter, 0.8)
        assert a.item.tolist() == c.item.tolist() and b.item.tolist() == d.item.tolist()
    with pytest.raises(ValueError, match="unknown split"):
        split_interactions(inter, 0.8, "sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        global_cutoff(inter, 0.0)


def test_rolling_cutoffs_are_increasing_and_each_leak_free() -> None:
    inter = _inter([float(k % 97) for k in range(500)])
    cuts = rolling_cutoffs(inter, 5, 0.3, 0.9)
    assert cuts == sorted(cuts) and len(cuts) == 5
    for t in cuts:
        h, f = split_at(inter, t)
        assert len(h) + len(f) == len(inter)
        assert (h.ts < t).all() and (f.ts >= t).all()


def test_global_split_on_movielens_is_leak_free(ml100k: Path) -> None:
    ds = load_dataset(ml100k)
    hist, fut = global_split(ds.interactions, 0.8)
    # No history rating is dated at or after any future rating, for every user at once.
    assert hist.ts.max() < fut.ts.min()
    assert abs(len(hist) / len(ds.interactions) - 0.8) < 0.01
    # The leaky split does not have this property: its history postdates some futures.
    lh, lf = temporal_split(ds.interactions, 0.8)
    assert lh.ts.max() > lf.ts.min()


def test_user_splits_are_disjoint_stable_and_cover_everyone() -> None:
    ids = [str(k) for k in range(1, 3001)]
    by = users_by_split(ids)
    sets = {k: set(v) for k, v in by.items()}
    assert set(sets) == set(USER_SPLITS)
    assert sum(len(s) for s in sets.values()) == len(ids)
    assert set().union(*sets.values()) == set(range(len(ids)))
    # Shares near 0.3 / 0.2 / 0.5.
    assert abs(len(sets["tuning"]) / 3000 - 0.3) < 0.03
    assert abs(len(sets["development"]) / 3000 - 0.2) < 0.03
    # By id only: a user's split does not depend on who else is in the data or the order.
    rev = users_by_split(ids[::-1])
    for k, uid in enumerate(ids[::-1]):
        assert uid in [ids[i] for i in by[user_split(uid)]]
        assert k in rev[user_split(uid)]
    # The tuning set is the earlier two-way split's; the rest is development + test.
    tuning, rest = split_users(ids)
    assert tuning == by["tuning"]
    assert sorted(rest) == sorted(by["development"] + by["test"])
    assert all(is_tuning_user(ids[i]) for i in by["tuning"])
    assert not any(is_tuning_user(ids[i]) for i in by["development"] + by["test"])
    # Pinned: a change of the hash would silently move users between splits.
    assert [user_split(str(k)) for k in range(1, 13)] == [
        "tuning", "test", "development", "tuning", "tuning", "tuning", "tuning", "test",
        "development", "tuning", "tuning", "development"]


def test_scenario_split_field_defaults_to_global_and_rejects_others() -> None:
    from pydantic import ValidationError

    from scenarios.schema import DatasetConfig

    assert DatasetConfig().split == "global"
    assert DatasetConfig(split="per_user").split == "per_user"
    with pytest.raises(ValidationError, match="split"):
        DatasetConfig(split="sideways")  # type: ignore[arg-type]
