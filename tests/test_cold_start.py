"""New releases (add_items): which items are new, their embeddings, the cold-start wrapper
that lets any recommender show them, and the new-item metrics in summary and table."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from agents.brains.utility import UtilityBrain
from scenarios.loader import ScenarioError, load_scenario
from simulations.analysis.metrics import compute_metrics
from simulations.cli.main import metrics_table
from simulations.record.trace import read_trace
from simulations.run.runner import prepare, run
from tests.shipped import shipped
from tools.dataset import Catalog, Dataset, Interactions, load_dataset, newest_items
from tools.item_space import content_features, item_embeddings
from tools.recommenders import ColdStartRecommender, Popularity, make_recommender
from tools.recommenders.cold_start import merge_reserved

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = shipped("quickstart.yaml")


# ----------------------------------------------------------------------------- which items


def _tiny(years: tuple[str, ...], first_ts: list[float]) -> Dataset:
    n = len(years)
    cat = Catalog(tuple(str(i + 1) for i in range(n)), tuple(f"T{i}" for i in range(n)),
                  tuple(("Drama",) for _ in range(n)), years)
    inter = Interactions.from_lists([0] * n, list(range(n)), [4.0] * n, first_ts)
    return Dataset("tiny", cat, ("1",), inter)


def test_newest_items_by_release_year_then_first_rating() -> None:
    ds = _tiny(("1990", "1998", "1998", "", "1995"), [1.0, 5.0, 3.0, 9.0, 2.0])
    # 1998 items: first rated at 3 (item 2) then 5 (item 1); unknown year is oldest.
    assert newest_items(ds, 2).tolist() == [2, 1]
    assert newest_items(ds, 3).tolist() == [4, 2, 1]
    assert newest_items(ds, 0).tolist() == []
    with pytest.raises(ValueError, match="count"):
        newest_items(ds, 6)


def test_movielens_new_items_are_the_1998_releases(ml100k: Path) -> None:
    ds = load_dataset(ml100k)
    new = newest_items(ds, 50)
    assert {ds.catalog.years[i] for i in new} == {"1998"}
    first = np.full(ds.n_items, np.inf)
    np.minimum.at(first, ds.interactions.item, ds.interactions.ts)
    # Among the 1998 films, the ones left in the catalogue were first rated earlier.
    rest98 = [i for i in range(ds.n_items) if ds.catalog.years[i] == "1998" and i not in new]
    assert rest98 and first[rest98].max() <= first[new].min()


def test_quickstart_releases_the_newest_synthetic_items() -> None:
    prep = prepare(load_scenario(QUICKSTART), users=5)
    (released,) = prep.withheld.values()
    years = np.array([int(y) for y in prep.dataset.catalog.years])
    others = np.setdiff1d(np.arange(prep.dataset.n_items), list(released))
    assert years[list(released)].min() >= years[others].max()
    assert not np.isin(prep.history.item, list(released)).any()


# ----------------------------------------------------------------------------- embeddings


def _taste_terms(prep: Any) -> tuple[float, float]:
    brain = UtilityBrain(prep.world)
    new = np.array(sorted(set().union(*prep.withheld.values())))
    old = np.setdiff1d(np.arange(prep.dataset.n_items), new)
    tn, to = [], []
    for u in prep.population:
        prof = prep.profiles[u]
        mu, sd = brain._baseline(prof)
        t = 0.5 * (prep.world.embeddings @ prof.taste - mu) / sd
        tn.append(t[new].mean())
        to.append(t[old].mean())
    return float(np.mean(tn)), float(np.mean(to))


def test_released_items_score_on_the_catalogue_scale() -> None:
    """Before: new items had genre-only vectors and a mean taste term about -0.5 below the
    catalogue's, so utility users never watched them."""
    prep = prepare(load_scenario(QUICKSTART), users=60)
    new, old = _taste_terms(prep)
    assert abs(new - old) < 0.2
    new_ids = sorted(set().union(*prep.withheld.values()))
    # The factor block (after the genre block) of a released item has the typical length
    # of a rated item's (1 on average).
    n_genres = prep.dataset.catalog.genre_matrix.shape[1]
    norms = np.linalg.norm(prep.world.embeddings[new_ids, n_genres:], axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)
    # Without imputation (genres only) the gap is what the issue reported.
    emb0 = item_embeddings(prep.dataset, prep.history, seed=prep.scenario.seed, impute=False)
    prep0 = dataclasses.replace(prep, world=dataclasses.replace(prep.world, embeddings=emb0))
    new0, old0 = _taste_terms(prep0)
    assert old0 - new0 > 0.3


def test_cold_item_factors_follow_content() -> None:
    # Items 0-2 are co-watched Sci-Fi, 3-5 co-watched Romance; 6 (Sci-Fi) and 7 (Romance)
    # are new. Their vectors must sit with their genre's items.
    genres = (("Sci-Fi",),) * 3 + (("Romance",),) * 3 + (("Sci-Fi",), ("Romance",))
    cat = Catalog(tuple(str(i) for i in range(8)), tuple(f"Film {i}" for i in range(8)),
                  genres)
    users, items = [], []
    for u in range(40):
        block = range(3) if u < 20 else range(3, 6)
        for i in block:
            users.append(u)
            items.append(i)
    ds = Dataset("t", cat, tuple(str(u) for u in range(40)),
                 Interactions.from_lists(users, items, [4.0] * len(items),
                                         [float(k) for k in range(len(items))]))
    emb = item_embeddings(ds, ds.interactions, factors=2, genre_weight=0.0)
    assert np.allclose(np.linalg.norm(emb[6:], axis=1), 1.0, atol=1e-5)
    assert emb[6] @ emb[0] > emb[6] @ emb[3]
    assert emb[7] @ emb[3] > emb[7] @ emb[0]


def test_content_features_are_unit_rows_and_match_genres() -> None:
    cat = Catalog(("1", "2", "3"), ("Star Quest", "Star Quest II", "Love Song"),
                  (("Sci-Fi",), ("Sci-Fi",), ("Romance",)), ("1990", "1992", "1990"))
    c = content_features(cat)
    assert np.allclose(sp.linalg.norm(c, axis=1), 1.0)
    sim = (c @ c.T).toarray()
    assert sim[0, 1] > sim[0, 2]


# ----------------------------------------------------------------------------- wrapper


def _pop_with_new() -> tuple[ColdStartRecommender, sp.csr_matrix]:
    # 3 users, 8 items; items 6 and 7 are new (never interacted with). Item 6 is Drama like
    # what user 0 watched, item 7 Comedy like what users 1 and 2 watched.
    genres = (("Drama",),) * 3 + (("Comedy",),) * 3 + (("Drama",), ("Comedy",))
    cat = Catalog(tuple(str(i) for i in range(8)), tuple(f"x{i}" for i in range(8)), genres)
    m = sp.csr_matrix(np.array([
        [1, 1, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 1, 1, 0, 0, 0],
        [1, 0, 0, 1, 0, 1, 0, 0],
    ], dtype=np.float32))
    rec = ColdStartRecommender(Popularity(), content_features(cat), policy="content",
                               share=0.25)
    rec.fit(m)
    return rec, m


def test_pop_alone_never_shows_new_items_the_wrapper_does() -> None:
    rec, m = _pop_with_new()
    users = np.arange(3)
    assert not np.isin(rec.base.recommend(users, 4), [6, 7]).any()
    assert rec.reserved(4) == 0  # nothing released yet: the model alone
    assert (rec.recommend(users, 4) == rec.base.recommend(users, 4)).all()
    rec.new_items = frozenset({6, 7})
    out = rec.recommend(users, 4, m)
    assert rec.reserved(4) == 1 and rec.reserved(10) == 3 and rec.reserved(1) == 1
    # One reserved slot, the item matching the user's genres, not in first position.
    assert out[0].tolist().count(6) == 1 and 7 not in out[0]
    assert out[1].tolist().count(7) == 1 and 6 not in out[1]
    assert out[0, 0] not in (6, 7)
    for row, seen in zip(out, m.toarray(), strict=True):
        assert not seen[row[row >= 0]].any()  # excluded items never shown
        assert len(set(row.tolist())) == len(row)


def test_wrapper_respects_exclusions_and_policies() -> None:
    rec, m = _pop_with_new()
    rec.new_items = frozenset({6, 7})
    ex = m.tolil()
    ex[0, 6] = 1  # user 0 has already been shown item 6
    out = rec.recommend(np.arange(3), 4, ex.tocsr())
    assert 6 not in out[0] and 7 in out[0]
    rec.policy = "none"
    assert (rec.recommend(np.arange(3), 4, m) == rec.base.recommend(np.arange(3), 4, m)).all()
    assert not np.isin(rec.recommend(np.arange(2), 4, m[:2]), [6, 7]).any()
    rec.policy = "random"
    a = rec.recommend(np.arange(3), 4, m)
    assert (a == rec.recommend(np.arange(3), 4, m)).all()  # seeded
    assert all(np.isin(row, [6, 7]).sum() == 1 for row in a[:2])
    with pytest.raises(ValueError, match="policy"):
        ColdStartRecommender(Popularity(), rec.content, policy="magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="share"):
        ColdStartRecommender(Popularity(), rec.content, share=1.5)


def test_new_items_the_model_picks_count_towards_the_reserve() -> None:
    rec, m = _pop_with_new()
    base = make_recommender("random", seed=3)
    rec.base = base
    rec.fit(m)
    rec.new_items = frozenset({6, 7})
    plain = base.recommend(np.arange(3), 6, m)
    out = rec.recommend(np.arange(3), 6, m)
    assert rec.reserved(6) == 2
    for p, o in zip(plain, out, strict=True):
        if np.isin(p, [6, 7]).sum() == 2:  # the model already filled the reserve
            assert (p == o).all()
        assert np.isin(o, [6, 7]).sum() == 2
        assert set(p[~np.isin(p, [6, 7])][:6 - 2]) <= set(o)  # its best old picks stay


def test_merge_reserved_spreads_extras_and_keeps_the_top_pick() -> None:
    assert merge_reserved([1, 2, 3], [9], 4) == [1, 2, 9, 3]
    assert merge_reserved([1, 2, 3, 4], [9], 4) == [1, 2, 9, 3]
    assert merge_reserved([1, 2, 3, 4, 5, 6, 7], [8, 9, 10], 10) == [1, 2, 8, 3, 4, 9, 5,
                                                                      10, 6, 7]
    assert merge_reserved([], [9, 8], 2) == [9, 8]
    assert merge_reserved([1], [9], 1) == [9]


# ----------------------------------------------------------------------------- schema


def test_cold_start_schema_default_and_errors(tmp_path: Path) -> None:
    loaded = load_scenario(QUICKSTART)
    cs = loaded.scenario.recommenders[0].cold_start
    assert (cs.policy, cs.share) == ("content", 0.25)
    (tmp_path / "roles").mkdir()
    (tmp_path / "roles" / "r.yaml").write_text("kind: role\nname: r\n")
    head = "kind: scenario\nname: t\npopulation: {role: roles/r.yaml}\nrecommenders:\n"
    cases = [
        ("  - name: a\n    model: pop\n    cold_start:\n      policy: magic\n", 8,
         "recommenders.0.cold_start.policy"),
        ("  - name: a\n    model: pop\n    cold_start: {policy: content, share: 0}\n", 7,
         "recommenders.0.cold_start"),
        ("  - name: a\n    model: pop\n    cold_start:\n      share: 2\n", 8,
         "recommenders.0.cold_start.share"),
    ]
    for body, line, field in cases:
        p = tmp_path / "s.yaml"
        p.write_text(head + body)
        with pytest.raises(ScenarioError) as ei:
            load_scenario(p)
        assert str(ei.value).startswith(f"{p}:{line}: {field}: "), str(ei.value)
    p.write_text(head + "  - name: a\n    model: pop\n    cold_start: {policy: none, share: 0}\n")
    assert load_scenario(p).scenario.recommenders[0].cold_start.policy == "none"


# ----------------------------------------------------------------------------- metrics


def test_new_item_metrics_from_the_trace() -> None:
    def dec(rnd: int, item: str, action: str) -> dict[str, Any]:
        return {"type": "decision", "arm": "a", "round": rnd, "user": "1", "item": item,
                "action": action, "rating": 4 if action == "watch" else None,
                "genres": ["Drama"]}

    events: list[dict[str, Any]] = [
        {"type": "run_start", "n_items": 10},
        dec(1, "1", "watch"), dec(1, "2", "skip"),
        {"type": "event", "arm": "a", "round": 2, "action": "add_items", "items": ["9", "8"]},
        dec(2, "9", "watch"), dec(2, "8", "skip"), dec(2, "1", "skip"), dec(2, "9", "skip"),
    ]
    m = compute_metrics(events)["arms"]["a"]
    assert m["overall"]["new_item_impressions"] == 3
    assert m["overall"]["new_item_watches"] == 1
    assert m["rounds"]["1"]["new_item_impressions"] is None  # nothing released yet
    assert m["rounds"]["2"]["new_item_watches"] == 1
    no_release = compute_metrics(events[:3])["arms"]["a"]["overall"]
    assert no_release["new_item_impressions"] is None


# ----------------------------------------------------------------------------- end to end


def test_quickstart_new_items_are_watched_in_their_arrival_round(tmp_path: Path) -> None:
    """Before: 318 impressions and 0 watches of new items (random arm), none at all from
    pop and EASE."""
    # The shipped quickstart as a user runs it (its synthetic_viewer role).
    loaded = load_scenario(QUICKSTART)
    prep = prepare(loaded, users=40)
    res = run(prep, tmp_path / "r")
    events = list(read_trace(tmp_path / "r"))
    at = {ev.at_round for ev in loaded.scenario.events}
    assert at == {3}
    for arm in ("random", "pop", "ease"):
        rel = next(e for e in events if e["type"] == "event" and e["arm"] == arm)
        new = set(rel["items"])
        watched = [e for e in events if e["type"] == "decision" and e["arm"] == arm
                   and e["round"] == 3 and e.get("item") in new and e["action"] == "watch"]
        assert watched, arm
        r3 = res.metrics["arms"][arm]["rounds"]["3"]
        assert r3["new_item_watches"] == len(watched)
        assert r3["new_item_impressions"] >= len(watched)
        assert res.metrics["arms"][arm]["rounds"]["1"]["new_item_watches"] is None
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["metrics"]["arms"]["pop"]["overall"]["new_item_watches"] > 0
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(metrics_table(res.metrics))
    text = console.export_text()
    assert "new shown" in text and "new watched" in text


def test_table_hides_new_item_columns_without_releases(tmp_path: Path) -> None:
    loaded = load_scenario(QUICKSTART)
    loaded = dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(
        update={"events": [], "environment": loaded.scenario.environment.model_copy(
            update={"rounds": 1, "max_pages": 1})}))
    res = run(prepare(loaded, users=4), tmp_path / "r")
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(metrics_table(res.metrics))
    assert "new shown" not in console.export_text()
