"""Explanations: contribution explainers on a hand-made matrix, the deletion study on
agents whose faithfulness is known, citation precision, and ``recarena eval
explanations`` with a classic model and an LLM role on the fake model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from agents.recsys.protocol import ExplainRequest, Explanation, Ranking, RankRequest
from simulations.tasks.data import prepare_tasks
from simulations.trust.explain import (
    ContributionExplainer,
    TitleFinder,
    deletion_study,
    remove_items,
)
from tests.test_cli import assert_one_line, cli
from tools.dataset import Catalog, Interactions, load_dataset
from tools.history import UserHistories
from tools.recommenders import make_recommender

REPO = Path(__file__).resolve().parents[1]


def _catalog(n: int) -> Catalog:
    return Catalog(tuple(str(i) for i in range(n)), tuple(f"Film Number {i}" for i in range(n)),
                   tuple(("Drama",) for _ in range(n)), tuple("1990" for _ in range(n)))


@pytest.mark.parametrize("model", ["itemknn", "ease"])
def test_contributions_sum_to_the_score_and_the_largest_are_cited(model: str) -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((40, 12)) < 0.35).astype(np.float32)
    m = make_recommender(model, k_neighbors=5, shrink=0.0) if model == "itemknn" \
        else make_recommender(model, l2=1.0)
    m.fit(sp.csr_matrix(x))
    user = 3
    hist = np.flatnonzero(x[user])
    scores = m.score(np.array([user]))[0]
    unseen = [j for j in range(12) if j not in hist]
    item = max(unseen, key=lambda j: scores[j])
    c = m.contributions(hist, item)  # type: ignore[attr-defined]
    assert c.sum() == pytest.approx(scores[item])
    inter = Interactions.from_lists([user] * len(hist), hist.tolist(), [5.0] * len(hist),
                                    [1.0] * len(hist))
    ex = ContributionExplainer(m, _catalog(12), UserHistories(inter, 40), n=2)
    expected = [int(hist[j]) for j in np.lexsort((hist, -c))[:2] if c[j] > 0]
    assert ex.cited(user, item, None) == expected
    text = ex(user, item, None)
    assert text.startswith(f"Film Number {item}: because you watched")
    assert TitleFinder(_catalog(12)).items(text) - {item} == set(expected)


def test_title_finder_takes_the_longest_title_and_whole_words() -> None:
    cat = Catalog(("1", "2", "3"), ("Heat", "Heat Wave", "Godfather, The"),
                  (("Drama",),) * 3, ("1995",) * 3)
    f = TitleFinder(cat)
    assert f.items("because you liked Heat Wave") == {1}
    assert f.items("as in The Godfather and heat.") == {0, 2}
    assert f.items("theatre preheated") == set()


class _KeyAgent:
    """Ranks the first candidate first only while the user's earliest history item (the
    key) is in the history it was built on; cites the key (faithful) or a title it never
    saw (``lie``)."""

    name = "key"

    def __init__(self, history: Interactions, catalog: Catalog, keys: dict[int, int],
                 lie: bool = False) -> None:
        self.have = {(int(u), int(i)) for u, i in zip(history.user, history.item, strict=True)}
        self.catalog, self.keys, self.lie = catalog, keys, lie

    def llm_usage(self) -> tuple[int, int, float]:
        return 0, 0, 0.0

    def close(self) -> None:
        pass

    def rank(self, requests: Sequence[RankRequest]) -> list[Ranking]:
        out = []
        for r in requests:
            c = sorted(r.candidates)
            ok = (r.user, self.keys[r.user]) in self.have
            out.append(Ranking(items=c if ok else c[1:] + c[:1]))
        return out

    def rate(self, requests: Sequence[Any]) -> list[Any]:
        raise TypeError

    def explain(self, requests: Sequence[ExplainRequest]) -> list[Explanation]:
        out = []
        for r in requests:
            cited = self.keys[r.user]
            if self.lie:  # a title outside the user's history
                cited = next(i for i in range(self.catalog.n_items)
                             if (r.user, i) not in self.have and i != r.item)
            out.append(Explanation(text=f"because you watched {self.catalog.titles[cited]}"))
        return out


@pytest.mark.slow
def test_deletion_separates_a_faithful_from_an_unfaithful_explainer(ml100k: Path) -> None:
    ds = load_dataset(ml100k)
    setup = prepare_tasks(ds)
    h = setup.history
    keys = {}
    for u in setup.test:
        rows = np.flatnonzero(h.user == u)
        keys[u] = int(h.item[rows[np.argmin(h.ts[rows])]])

    def faithful(history: Interactions) -> Any:
        return _KeyAgent(history, ds.catalog, keys)

    res = deletion_study(faithful, setup, users=6, samples=2, negatives=9, seed=1)
    m = res["metrics"]
    assert res["deletion_pairs"] > 0
    # Removing the key always sends the item from rank 1 to the bottom of 10.
    assert m["drop_cited"]["mean"] == pytest.approx(9.0)
    assert m["drop_random"]["mean"] < 9.0
    assert m["paired_difference"]["mean"] > 0
    assert m["citation_precision"]["mean"] == 1.0

    def liar(history: Interactions) -> Any:
        return _KeyAgent(history, ds.catalog, keys, lie=True)

    bad = deletion_study(liar, setup, users=6, samples=2, negatives=9, seed=1)
    assert bad["metrics"]["citation_precision"]["mean"] == 0.0
    assert bad["deletion_pairs"] == 0  # nothing cited from the history: nothing to delete


def test_remove_items_drops_only_the_named_rows() -> None:
    h = Interactions.from_lists([0, 0, 1, 1], [5, 6, 5, 6], [4, 4, 4, 4], [1, 2, 3, 4])
    out = remove_items(h, {0: {5}, 1: {6}})
    assert list(zip(out.user.tolist(), out.item.tolist(), strict=True)) == [(0, 6), (1, 5)]


@pytest.mark.slow
def test_cli_explanations_with_a_classic_model_and_an_llm_role(
        ml100k: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "eval", "explanations", "--data", ml100k, "--models",
                       "itemknn", "--team", REPO / "scenarios" / "roles" / "llmrank.yaml",
                       "--llm", "fake", "--users", "3", "--samples", "1", "--negatives", "9",
                       "--out", tmp_path / "e", "--json")
    assert rc == 0, err
    res = json.loads(out)
    knn = res["models"]["itemknn"]
    assert knn["metrics"]["citation_precision"]["mean"] == 1.0
    assert knn["deletion_pairs"] > 0
    llm = res["models"]["llmrank"]
    assert llm["users"] == 3
    events = [json.loads(x) for x in (tmp_path / "e" / "trace.jsonl").read_text().splitlines()]
    assert any(e["type"] == "llm_call" for e in events)
    assert (tmp_path / "e" / "explanations.json").exists()
    rc, _, err = cli(capsys, "eval", "explanations", "--data", ml100k, "--models", "pop")
    assert rc == 2 and "pop+template" in assert_one_line(err)
