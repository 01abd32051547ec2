"""bench/tune_utility.py fits on tuning users only and writes a valid role."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.tune_utility import tune_choice, tune_ratings, write_role
from scenarios.loader import load_role
from scenarios.schema import UtilityParams
from simulations.eval.alignment import prepare_origins
from simulations.run.sampling import user_split
from tests.shipped import shipped
from tools.dataset import Dataset, Interactions, global_split, load_dataset

REPO = Path(__file__).resolve().parents[1]


def test_write_role_round_trips(tmp_path: Path) -> None:
    params = UtilityParams(watch_threshold=1.23, popularity_weight=0.3, rating_taste=2.5)
    path = tmp_path / "role.yaml"
    write_role(params, path)
    role = load_role(path)
    assert role.brain.kind == "utility" and role.brain.params == params
    assert role.name == "utility_user"


def test_shipped_role_holds_tuned_parameters() -> None:
    params = load_role(shipped("roles", "utility_user.yaml")).brain.params
    assert params != UtilityParams()  # written by the tuner, not the schema defaults


def _scramble_test_users_future(ds: Dataset) -> Dataset:
    """Change every held-out rating of test users; tuning and development users' data
    stays as it is."""
    inter = ds.interactions
    hist, _ = global_split(inter, 0.8)
    key = set(zip(hist.user.tolist(), hist.item.tolist(), hist.ts.tolist(), strict=True))
    test_user = np.array([user_split(uid) == "test" for uid in ds.user_ids])
    change = np.array([test_user[u] and (u, i, t) not in key for u, i, t in zip(
        inter.user.tolist(), inter.item.tolist(), inter.ts.tolist(), strict=True)])
    rating = inter.rating.copy()
    rating[change] = 6 - rating[change]
    return ds.with_interactions(Interactions(inter.user, inter.item, rating, inter.ts))


def test_tuning_reads_tuning_users_only(ml100k: Path) -> None:
    ds = load_dataset(ml100k)
    [a] = prepare_origins(ds, 1, seed=0)
    [b] = prepare_origins(_scramble_test_users_future(ds), 1, seed=0)
    assert a.tuning == b.tuning and a.development == b.development
    assert not np.array_equal(a.future.rating, b.future.rating)
    base = UtilityParams()
    pa, ia = tune_choice([a], base)
    pb, ib = tune_choice([b], base)
    assert (pa, ia) == (pb, ib)
    ra, ja = tune_ratings([a], pa)
    rb, jb = tune_ratings([b], pb)
    assert (ra, ja) == (rb, jb)
    # The fit is not vacuous: taste beats chance, and the chosen ratings beat no taste.
    assert ia["tuning_auc_1to1"]["popularity-matched"] > 0.6
    # The choice among the best on tuning users was made on development users.
    assert [ia["conformity_weight"], ia["popularity_weight"]] in [
        r[:2] for r in ia["top_on_tuning"]]
    assert ra.rating_taste > 0
    curve = ja["rmse_w1_by_spread"]
    assert curve[1.0][0] == pytest.approx(min(v[0] for v in curve.values()))
