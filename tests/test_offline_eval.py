"""Offline evaluation: hand-computed metrics on a toy dataset, and a MovieLens sanity run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from rich.table import Table

from simulations.eval.offline_eval import evaluate_offline, format_offline_table, rank_targets
from tools.dataset import Catalog, Dataset, Interactions, load_dataset
from tools.recommenders import Recommender, make_recommender


def _dataset(rows: list[tuple[int, int, float]], n_users: int, n_items: int) -> Dataset:
    """(user, item, timestamp) rows, rating 4 everywhere."""
    ids = tuple(f"i{i}" for i in range(n_items))
    catalog = Catalog(item_ids=ids, titles=ids, genres=((),) * n_items)
    inter = Interactions.from_lists(
        [r[0] for r in rows], [r[1] for r in rows], [4.0] * len(rows), [r[2] for r in rows]
    )
    return Dataset("toy", catalog, tuple(f"u{u}" for u in range(n_users)), inter)


# Test items (the latest per user): u0 -> 2, u1 -> 3, u2 -> 4, u4 -> 3 (u4's rows are out of
# time order on purpose); u3 has one interaction, so it only trains.
# Train popularity: item 0: 4, item 1: 2, item 2: 2, items 3 and 4: 0.
TOY = _dataset(
    [
        (0, 0, 1), (0, 1, 2), (0, 2, 3),
        (1, 0, 1), (1, 2, 2), (1, 3, 5),
        (2, 1, 1), (2, 0, 2), (2, 4, 3),
        (3, 2, 1),
        (4, 3, 2), (4, 0, 1),
    ],
    n_users=5,
    n_items=5,
)
# Pop ranks, masking train items, ties towards the lower index:
# u0: eligible {2, 3, 4}, target 2 scores highest              -> 1
# u1: eligible {1, 3, 4}, item 1 beats target 3 (tie with 4)   -> 2
# u2: eligible {2, 3, 4}, item 2 beats 4, item 3 ties and is lower -> 3
# u4: eligible {1, 2, 3, 4}, items 1 and 2 beat target 3       -> 3
TOY_POP_RANKS = [1, 2, 3, 3]


def test_pop_metrics_match_hand_computation() -> None:
    seen: list[str] = []
    res = evaluate_offline(TOY, ["pop"], k=2, seed=5, on_model=seen.append)
    assert seen == ["pop"]
    m = res["models"]["pop"]
    assert m["hr@2"] == pytest.approx(2 / 4)
    assert m["ndcg@2"] == pytest.approx((1.0 + 1.0 / math.log2(3)) / 4)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 3) / 4)
    assert m["fit_seconds"] >= 0.0 and m["score_seconds"] >= 0.0
    assert res["dataset"] == "toy"
    assert res["protocol"] == "leave-last-out, full ranking, seen items masked"
    assert (res["k"], res["seed"]) == (2, 5)
    assert (res["n_users"], res["n_test_users"], res["n_items"]) == (5, 4, 5)
    assert res["n_train_interactions"] == 8
    json.dumps(res)  # JSON-able


def test_rank_targets_on_toy_pop() -> None:
    x = sp.csr_matrix(
        (np.ones(8, np.float32), ([0, 0, 1, 1, 2, 2, 3, 4], [0, 1, 0, 2, 1, 0, 2, 0])),
        shape=(5, 5),
    )
    rec = make_recommender("pop")
    rec.fit(x)
    ranks = rank_targets(rec, x, np.array([0, 1, 2, 4]), np.array([2, 3, 4, 3]), batch_size=3)
    assert ranks.tolist() == TOY_POP_RANKS


class _Fixed(Recommender):
    name = "fixed"

    def __init__(self, scores: np.ndarray) -> None:
        super().__init__()
        self._scores = scores

    def _fit(self, matrix: sp.csr_matrix) -> None:
        pass

    def score(self, users: np.ndarray) -> np.ndarray:
        return self._scores[users]


def test_rank_ties_nan_and_masked_target() -> None:
    scores = np.array([
        [0.5, 0.5, 0.5, 0.9],      # target 2 ties items 0, 1 (lower) -> rank 1 + 1 + 2
        [np.nan, 0.1, 0.2, 0.3],   # NaN target counts as -inf         -> last of 4
        [0.9, 0.8, 0.1, 0.0],      # target 0 was also in train: still ranked, item 0 unmasked
    ])
    train = sp.csr_matrix(np.array([[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]], np.float32))
    rec = _Fixed(scores)
    rec.fit(train)
    ranks = rank_targets(rec, train, np.array([0, 1, 2]), np.array([2, 0, 0]))
    assert ranks.tolist() == [4, 4, 1]


def test_hr_agrees_with_recommend() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 25
    rows = [
        (u, int(i), float(t))
        for u in range(n_users)
        for t, i in enumerate(rng.choice(n_items, size=int(rng.integers(2, 10)), replace=False))
    ]
    ds = _dataset(rows, n_users, n_items)
    res = evaluate_offline(ds, ["itemknn", "random"], k=5, seed=1)
    for model in ("itemknn", "random"):
        rec = make_recommender(model, seed=1)
        last = {u: i for u, i, _ in rows}  # rows are in time order per user
        train_rows = [(u, i) for u, i, _ in rows if last[u] != i]
        x = sp.csr_matrix(
            (np.ones(len(train_rows), np.float32),
             ([u for u, _ in train_rows], [i for _, i in train_rows])),
            shape=(n_users, n_items),
        )
        rec.fit(x)
        users = np.arange(n_users)
        top = rec.recommend(users, 5, exclude=x)
        hr = np.mean([last[int(u)] in top[u] for u in users])
        assert res["models"][model]["hr@5"] == pytest.approx(hr)


def test_bad_input_fails_before_fitting() -> None:
    seen: list[str] = []
    with pytest.raises(ValueError, match="unknown model 'svd'"):
        evaluate_offline(TOY, ["pop", "svd"], on_model=seen.append)
    with pytest.raises(ValueError, match="'l3'"):
        evaluate_offline(TOY, ["ease"], model_params={"ease": {"l3": 1.0}})
    with pytest.raises(ValueError, match="k must be"):
        evaluate_offline(TOY, ["pop"], k=0)
    assert seen == []


def test_model_params_and_table() -> None:
    res = evaluate_offline(TOY, ["random", "ease"], model_params={"ease": {"l2": 3.0}})
    assert res["models"]["ease"]["params"] == {"l2": 3.0}
    assert list(res["models"]) == ["random", "ease"]
    table = format_offline_table(res)
    assert isinstance(table, Table)
    assert table.row_count == 2
    assert [c.header for c in table.columns][:4] == ["model", "HR@10", "NDCG@10", "MRR"]


@pytest.mark.slow
def test_movielens_models_beat_popularity_beat_random(ml100k: Path) -> None:
    # ml100k (conftest): RECARENA_DATA or ../shared/data/ml-100k; skips when absent.
    ds = load_dataset(ml100k)
    res = evaluate_offline(
        ds,
        ["random", "pop", "ease", "als"],
        model_params={"als": {"factors": 32, "iterations": 8}},
    )
    hr = {name: m["hr@10"] for name, m in res["models"].items()}
    assert res["n_test_users"] == 943
    assert hr["random"] < 0.02
    assert hr["pop"] > 2 * hr["random"]
    assert hr["ease"] > hr["pop"] + 0.03
    assert hr["als"] > hr["pop"] + 0.03
