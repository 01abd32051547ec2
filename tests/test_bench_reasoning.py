"""bench/reasoning.py: item-kNN and BPR rows beside the controls on the same sr instances,
and ``--offline``'s merge of rows that need no model into stored LLM tables (only when
the rows both have agree exactly)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from bench.reasoning import _table, context, merge_offline, run_sr


@pytest.fixture(scope="module")
def small(ml100k: Path) -> dict[str, Any]:
    ctx = context(str(ml100k), 0)
    return run_sr(ctx, "uniform", ["rationale_ablation"], users=2, samples=2, seed=0)


def test_tables_have_item_knn_and_bpr_on_the_same_instances(small: dict[str, Any]) -> None:
    assert {"itemknn", "bpr", "ease", "pop", "rationale_ablation"} <= set(small["models"])
    n = small["instances"]
    for name in ("itemknn", "bpr", "rationale_ablation"):
        assert len(small["per_sample"][name]) == 2
        assert small["models"][name]["instances"] == n
    rows = _table(small, cost=False)[2:]
    labels = [r.split("|")[1].strip() for r in rows]
    # The role first, then the baselines in their fixed order.
    assert labels == ["rationale_ablation", "popularity", "item mean", "item-kNN", "EASE",
                      "BPR", "random"]


def test_offline_merge_adds_missing_rows_and_refuses_other_instances(
        small: dict[str, Any]) -> None:
    stored = copy.deepcopy(small)
    for name in ("itemknn", "bpr"):  # a table from before these baselines
        del stored["models"][name], stored["per_sample"][name]
    assert merge_offline(stored, small) == ["itemknn", "bpr"]
    assert stored["per_sample"]["bpr"] == small["per_sample"]["bpr"]
    assert merge_offline(stored, small) == []
    other = copy.deepcopy(small)
    other["per_sample"]["pop"] = [{**m, "ndcg@10": m["ndcg@10"] + 0.5}
                                  for m in other["per_sample"]["pop"]]
    with pytest.raises(ValueError, match="pop's per-sample metrics differ"):
        merge_offline(copy.deepcopy(stored), other)
    with pytest.raises(ValueError, match="seed"):
        merge_offline(copy.deepcopy(stored), {**small, "seed": 1})
