"""Offline accuracy of the classic recommenders: leave-last-out, full-catalogue ranking.

For every user with at least two interactions the latest one (by time, then file order) is
held out; models train on the rest as a binary implicit matrix. Each test user's held-out
item is ranked against the whole catalogue with the user's train items masked out (the
held-out item itself is never masked, even if the user had also interacted with it
earlier).

Rank of the held-out item t: ``1 + #{eligible i : s_i > s_t} + #{eligible i < t : s_i == s_t}``
-- ties break towards the lower item index, exactly as ``top_k`` does, so HR@k agrees with
``Recommender.recommend(..., exclude=train)``. NaN scores count as -inf.

Metrics, averaged over test users: HR@k (rank <= k), NDCG@k (``1 / log2(rank + 1)`` when
rank <= k, else 0; one relevant item so IDCG = 1) and MRR (``1 / rank``, not truncated).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from rich.table import Table

from tools.dataset import Dataset, leave_last_out
from tools.recommenders import Recommender, make_recommender

__all__ = ["PROTOCOL", "evaluate_offline", "format_offline_table", "rank_targets"]

PROTOCOL = "leave-last-out, full ranking, seen items masked"
TIES = "ties broken towards the lower item index (as top_k does)"

# Users scored per batch: bounds the dense (batch x n_items) score matrix.
_BATCH = 512


def rank_targets(
    rec: Recommender,
    train: sp.csr_matrix,
    users: np.ndarray,
    targets: np.ndarray,
    batch_size: int = _BATCH,
) -> np.ndarray:
    """Full-catalogue rank (1 = best) of each user's target item, train items masked.

    Args:
        rec: A fitted recommender.
        train: User x item matrix whose non-zeros are masked (the target never is).
        users: User indices, one per target.
        targets: Item index to rank for each user.
        batch_size: Users scored at once.

    Returns:
        int64 ranks, aligned with ``users``.
    """
    users = np.asarray(users, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    ranks = np.empty(users.size, dtype=np.int64)
    n_items = train.shape[1]
    cols = np.arange(n_items)
    for start in range(0, users.size, batch_size):
        ub = users[start:start + batch_size]
        tb = targets[start:start + batch_size]
        rows = np.arange(ub.size)
        s = np.array(rec.score(ub), dtype=np.float64)
        s[np.isnan(s)] = -np.inf
        eligible = train[ub].toarray() == 0
        eligible[rows, tb] = True
        st = s[rows, tb][:, None]
        higher = ((s > st) & eligible).sum(axis=1)
        tied_before = ((s == st) & eligible & (cols[None, :] < tb[:, None])).sum(axis=1)
        ranks[start:start + batch_size] = 1 + higher + tied_before
    return ranks


def _metrics(ranks: np.ndarray, k: int) -> dict[str, float]:
    r = ranks.astype(np.float64)
    hit = r <= k
    return {
        f"hr@{k}": float(hit.mean()),
        f"ndcg@{k}": float(np.where(hit, 1.0 / np.log2(r + 1.0), 0.0).mean()),
        "mrr": float((1.0 / r).mean()),
    }


def evaluate_offline(
    dataset: Dataset,
    models: Sequence[str],
    k: int = 10,
    seed: int = 0,
    on_model: Callable[[str], None] | None = None,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Leave-last-out accuracy of each named model on ``dataset``.

    Args:
        dataset: Users, items and their interactions.
        models: Registry names (see ``tools.recommenders.MODELS``), evaluated in order.
        k: Cut-off for HR and NDCG.
        seed: Seed passed to every model.
        on_model: Called with each model name just before it is fitted (progress hook).
        model_params: Optional per-model hyper-parameters overriding the defaults.

    Returns:
        A JSON-able dict: dataset facts (``n_test_users`` is how many users were averaged
        over), the protocol and, under ``"models"``, per model
        ``hr@k``, ``ndcg@k``, ``mrr``, ``fit_seconds``, ``score_seconds`` and ``params``.

    Raises:
        ValueError: ``k < 1``, an unknown model or parameter (checked before any fitting),
            or no user with at least two interactions.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    params = model_params or {}
    # Build every model up front so a typo fails before minutes of fitting.
    recs = {name: make_recommender(name, seed=seed, **params.get(name, {})) for name in models}
    unused = set(params) - set(models)
    if unused:
        raise ValueError(f"model_params given for models not evaluated: {sorted(unused)}")

    train, test = leave_last_out(dataset.interactions)
    if len(test) == 0:
        raise ValueError(f"{dataset.name}: no user has two interactions; nothing to test")
    x = train.matrix(dataset.n_users, dataset.n_items, binary=True)
    order = np.argsort(test.user, kind="stable")
    users, targets = test.user[order].astype(np.int64), test.item[order].astype(np.int64)

    results: dict[str, dict[str, Any]] = {}
    for name, rec in recs.items():
        if on_model is not None:
            on_model(name)
        t0 = time.perf_counter()
        rec.fit(x)
        t1 = time.perf_counter()
        ranks = rank_targets(rec, x, users, targets)
        t2 = time.perf_counter()
        results[name] = {
            **_metrics(ranks, k),
            "fit_seconds": round(t1 - t0, 4),
            "score_seconds": round(t2 - t1, 4),
            "params": dict(rec.params),
        }
    return {
        "dataset": dataset.name,
        "protocol": PROTOCOL,
        "ties": TIES,
        "k": k,
        "n_users": dataset.n_users,
        "n_test_users": int(users.size),
        "n_items": dataset.n_items,
        "n_train_interactions": int(x.nnz),
        "seed": seed,
        "models": results,
    }


def format_offline_table(result: Mapping[str, Any]) -> Table:
    """A rich table of an ``evaluate_offline`` result, one row per model."""
    k = result["k"]
    table = Table(
        title=f"{result['dataset']}: {result['protocol']} "
              f"({result['n_test_users']} test users, {result['n_items']} items)",
    )
    table.add_column("model")
    for col in (f"HR@{k}", f"NDCG@{k}", "MRR", "fit (s)", "score (s)"):
        table.add_column(col, justify="right")
    for name, m in result["models"].items():
        table.add_row(
            name,
            f"{m[f'hr@{k}']:.4f}",
            f"{m[f'ndcg@{k}']:.4f}",
            f"{m['mrr']:.4f}",
            f"{m['fit_seconds']:.2f}",
            f"{m['score_seconds']:.2f}",
        )
    return table
