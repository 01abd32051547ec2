"""Agent4Rec-style traits and tastes from data."""

from __future__ import annotations

import numpy as np
import pytest

from agents.profile import build_profiles, tertile_scores
from scenarios.schema import TraitOverrides
from tools.dataset import Catalog, Dataset, Interactions, load_dataset, temporal_split
from tools.item_space import item_embeddings


def test_tertile_scores() -> None:
    s = tertile_scores(np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9]))
    assert s.tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]


def _toy() -> Dataset:
    cat = Catalog(
        item_ids=tuple(str(i) for i in range(1, 7)),
        titles=tuple(f"T{i}" for i in range(1, 7)),
        genres=(("Drama",), ("Drama",), ("Comedy",), ("Comedy",), ("War",), ("Drama", "War")),
    )
    # user 0: 6 items, drama lover who hates comedy, agrees with the crowd
    # user 1: 2 items; user 2: 4 items, contrarian
    rows = [
        (0, 0, 5), (0, 1, 5), (0, 2, 1), (0, 3, 1), (0, 4, 3), (0, 5, 4),
        (1, 0, 5), (1, 2, 2),
        (2, 0, 1), (2, 1, 1), (2, 2, 5), (2, 3, 5),
    ]
    inter = Interactions.from_lists(
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
        list(range(len(rows))),
    )
    return Dataset("toy", cat, ("a", "b", "c"), inter, ({}, {}, {}))


def test_traits_and_tastes_from_history() -> None:
    ds = _toy()
    emb = item_embeddings(ds, ds.interactions, factors=2)
    p = build_profiles(ds, ds.interactions, emb)
    assert [x.activity for x in p] == [3, 1, 2]
    assert p[0].liked_genres[0] == "Drama"
    assert "Comedy" in p[0].disliked_genres
    assert set(p[0].liked_items) == {"1", "2", "6"}
    assert set(p[0].disliked_items) == {"3", "4"}
    # user 2 rates against everyone else: least conformist
    assert p[2].conformity < p[0].conformity
    assert p[0].diversity >= p[1].diversity
    assert p[0].rating_mean == pytest.approx(19 / 6)
    ev = p[0].to_event()
    assert ev["traits"] == {"activity": 3, "conformity": p[0].conformity,
                            "diversity": p[0].diversity}
    assert "taste" not in ev


def test_overrides_fix_traits() -> None:
    ds = _toy()
    emb = item_embeddings(ds, ds.interactions, factors=2)
    p = build_profiles(ds, ds.interactions, emb, TraitOverrides(activity=2, conformity=1))
    assert {x.activity for x in p} == {2}
    assert {x.conformity for x in p} == {1}


def test_movielens_trait_tertiles(ml100k: object) -> None:
    ds = load_dataset(str(ml100k))
    hist, _ = temporal_split(ds.interactions, 0.8)
    emb = item_embeddings(ds, hist)
    profiles = build_profiles(ds, hist, emb)
    for trait in ("activity", "conformity", "diversity"):
        counts = np.bincount([getattr(p, trait) for p in profiles], minlength=4)[1:]
        # Each tertile holds roughly a third of 943 users.
        assert counts.min() > 943 * 0.25, (trait, counts)
    most_active = max(profiles, key=lambda p: p.n_history)
    assert most_active.activity == 3
