"""Poisoned memories: a compromised agent's entries are recalled by victims and flip their
choice (real chromadb store, persistent, once), never without poison; each condition's
store is fresh, so nothing leaks from one condition into the next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memory.embedders import HashEmbedder
from scenarios.schema.attack_text import MemoryAttack
from simulations.eval.attack_memory import memory_table, poison_texts, run_condition, victims
from tools.dataset import load_dataset, split_interactions
from tools.synthetic import make_world


@pytest.fixture(scope="module")
def movielens(ml100k: Path) -> Any:
    ds = load_dataset(ml100k)
    history, _ = split_interactions(ds.interactions, 0.8, "global")
    return ds, history


def test_poison_is_recalled_and_flips_choices_in_a_persistent_chromadb_store(
        movielens: Any, tmp_path: Path) -> None:
    ds, history = movielens
    vics = victims(ds, history, n=8, max_benign=10, seed=0)
    assert all(len(v.benign) == 10 and v.page[-1] == v.target for v in vics)
    emb = HashEmbedder()
    clean_hits, clean = run_condition(ds.catalog, vics, benign=10, poisoned=0,
                                      store="long_term", top_k=3, embedder=emb,
                                      path=tmp_path / "clean")
    assert clean_hits == [0] * len(vics)
    hits, chosen = run_condition(ds.catalog, vics, benign=10, poisoned=5, store="long_term",
                                 top_k=3, embedder=emb, path=tmp_path / "poisoned")
    assert (tmp_path / "poisoned" / "chroma.sqlite3").exists()  # the real chromadb store
    assert sum(hits) >= len(vics) // 2
    flips = [c == v.target and c0 != v.target for c, c0, v in zip(chosen, clean, vics,
                                                                 strict=True)]
    assert sum(flips) > 0
    # The same victims again in a fresh store: the earlier poison is gone.
    again, _ = run_condition(ds.catalog, vics, benign=10, poisoned=0, store="long_term",
                             top_k=3, embedder=emb, path=tmp_path / "fresh")
    assert again == clean_hits


def test_shared_team_memory_and_the_benign_count(movielens: Any) -> None:
    ds, history = movielens
    cells = memory_table(ds, history, MemoryAttack(store="shared", poisoned=[0, 5],
                                                   benign=[0, 100]),
                         seeds=[0], n_victims=6)
    by = {(c.benign, c.poisoned): c for c in cells}
    assert by[(0, 0)].retrieval["mean"] == 0 and by[(100, 0)].action_change["mean"] == 0
    assert by[(0, 5)].retrieval["mean"] == 1.0
    assert by[(100, 5)].retrieval["mean"] > 0


def test_poison_texts_name_the_target() -> None:
    cat = make_world(20, 30, 4, 8, 5, seed=0).catalog
    texts = poison_texts(cat, 3, 4)
    assert len(set(texts)) == 4 and all(cat.titles[3] in t for t in texts)
