"""The tools a recommender team calls, on a tiny synthetic catalogue and on MovieLens 100K:
BM25 and vector search, item info, the knowledge-graph tools (and their one-line answer
where there is no graph), user profile and history under a clock, classic candidates."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from agents.library import Library
from agents.toolbox import CATALOGUE_TOOLS, USER_TOOLS, build_tools
from memory.embedders import HashEmbedder
from memory.item_index import ItemIndex
from tools.candidates import CandidateGenerator
from tools.dataset import Dataset, load_dataset, temporal_split
from tools.history import Rating, UserHistories
from tools.search import BM25Index, item_text
from tools.synthetic import make_world

ALL = (*CATALOGUE_TOOLS, *USER_TOOLS)


def _ids(text: str) -> list[str]:
    return re.findall(r"^([^\s:]+): ", text, flags=re.M)


@pytest.fixture(scope="module")
def tiny() -> tuple[Dataset, Library]:
    ds = make_world(n_users=30, n_items=40, n_genres=6, history_mean=10, seed=1)
    hist, _ = temporal_split(ds.interactions, 0.8)
    return ds, Library.for_dataset(ds, hist, embedder="hash")


def test_bm25_finds_words_and_skips_stop_words() -> None:
    ix = BM25Index(["The Silent Harbor, a drama", "Iron Circuit: robots at war",
                    "A quiet harbor town", "Nothing here"])
    assert [i for i, _ in ix.search("harbor")] == [0, 2]
    assert ix.search("robots")[0][0] == 1
    assert ix.search("the a of") == []  # stop words only
    assert ix.search("zeppelin") == []
    assert [i for i, _ in ix.search("harbor", exclude={0})] == [2]
    assert len(ix.search("harbor", k=1)) == 1
    stemmed = BM25Index(["running dogs", "a cat"], stemmer=lambda ws: [w.rstrip("s") for w in ws])
    assert stemmed.search("dog")[0][0] == 0


def test_item_text_has_title_year_genres_and_real_descriptions(
        tiny: tuple[Dataset, Library]) -> None:
    ds, _ = tiny
    text = item_text(ds.catalog, 0)
    assert ds.catalog.titles[0] in text and ds.catalog.years[0] in text
    assert "The story of" in text  # the synthetic description is kept
    assert all(g in text for g in ds.catalog.genres[0])


def test_search_catalog_on_tiny(tiny: tuple[Dataset, Library]) -> None:
    ds, lib = tiny
    tools = build_tools(lib, ["search_catalog"])
    title = ds.catalog.titles[7]
    got = _ids(tools["search_catalog"].invoke({"query": title, "k": 3}))
    assert got[0] in {ds.catalog.item_ids[i] for i in range(ds.n_items)
                      if ds.catalog.titles[i] == title}
    assert len(got) <= 3
    assert tools["search_catalog"].invoke("qqqq") == "no movie matches 'qqqq'"


def test_vector_index_is_a_long_term_store_of_world_records() -> None:
    texts = ["space pirates fight a galactic empire", "a quiet love story in Paris",
             "detectives chase a serial killer"]
    ix = ItemIndex(HashEmbedder(64), ["a", "b", "c"], texts)
    try:
        assert ix.store.count("world") == 3
        assert ix.search("love story in Paris", k=2)[0][0] == "b"
        got = ix.search("galactic empire space", k=3)
        assert got[0][0] == "a" and len(got) == 3
        assert got[0][1] > got[1][1] and -1.0 <= got[2][1] <= 1.0
        assert ix.search("x", k=0) == []
    finally:
        ix.close()
    with pytest.raises(ValueError, match="unique"):
        ItemIndex(HashEmbedder(8), ["a", "a"], ["x", "y"])


def test_semantic_search_on_tiny_with_minilm() -> None:
    """The offline MiniLM model: a paraphrase finds the right plot."""
    ds = make_world(n_users=10, n_items=30, n_genres=10, history_mean=5, seed=2)
    hist, _ = temporal_split(ds.interactions, 0.8)
    lib = Library.for_dataset(ds, hist, embedder="minilm")
    tool = build_tools(lib, ["semantic_search"])["semantic_search"]
    got = _ids(tool.invoke({"query": "a little machine searching for whoever built it",
                            "k": 3}))
    assert len(got) == 3
    top = ds.catalog.index[got[0]]
    assert "small robot" in ds.catalog.descriptions[top]


def test_no_knowledge_graph_is_one_line(tiny: tuple[Dataset, Library]) -> None:
    _, lib = tiny
    tools = build_tools(lib, ["kg_neighbours", "kg_paths", "kg_shared"])
    for name, arg in (("kg_neighbours", "1"), ("kg_paths", "1 | 2"), ("kg_shared", "1")):
        out = tools[name].invoke(arg)
        assert out == lib.no_kg and "\n" not in out
    assert "no knowledge graph" in lib.no_kg and "synthetic" in lib.no_kg


def test_item_info_and_similar_items(tiny: tuple[Dataset, Library]) -> None:
    ds, lib = tiny
    tools = build_tools(lib, ["item_info", "similar_items"])
    info = tools["item_info"].invoke(ds.catalog.item_ids[3])
    pop = int(np.sum(lib.history.item == 3))
    assert info.startswith(f"{ds.catalog.item_ids[3]}: {ds.catalog.titles[3]}")
    assert f"from {pop} ratings" in info  # counted on the past only
    assert tools["item_info"].invoke("no such film") == "no item 'no such film' in the catalogue"
    sims = _ids(tools["similar_items"].invoke({"item": ds.catalog.item_ids[3], "k": 4}))
    assert len(sims) == 4 and ds.catalog.item_ids[3] not in sims


def test_user_tools_respect_the_clock(tiny: tuple[Dataset, Library]) -> None:
    ds, lib = tiny
    u = int(np.bincount(lib.history.user).argmax())
    rows = np.flatnonzero(lib.history.user == u)
    ts = np.sort(lib.history.ts[rows])
    cut = float(ts[len(ts) // 2])
    before_cut = {ds.catalog.item_ids[i] for i in lib.history.item[rows][
        lib.history.ts[rows] < cut]}
    tools = build_tools(lib, USER_TOOLS, user=u, before=cut)
    hist = _ids(tools["user_history"].invoke({"n": 1000}))
    assert set(hist) == before_cut and len(hist) == len(before_cut)
    prof = tools["user_profile"].invoke("")
    assert prof.startswith(f"user {ds.user_ids[u]}: {len(before_cut)} movies watched so far")
    # Candidates: never what the user rated before the cut; the model saw nothing later.
    cands = _ids(tools["candidates"].invoke({"model": "pop", "n": 10}))
    assert len(cands) == 10 and not set(cands) & before_cut
    gen = lib.candidates("pop", cut)
    assert gen.n_train == int(np.sum(lib.history.ts < cut))
    assert tools["candidates"].invoke("nope").startswith("unknown model 'nope'")
    # This run's watches count as the past too, and are not proposed again.
    run = [Rating(ds.catalog.index[cands[0]], 5.0)]
    tools = build_tools(lib, USER_TOOLS, user=u, before=cut, run=lambda: run)
    assert _ids(tools["user_history"].invoke("2"))[-1] == cands[0]
    assert cands[0] not in _ids(tools["candidates"].invoke({"model": "pop", "n": 10}))


def test_build_tools_rejects_unknown_and_userless(tiny: tuple[Dataset, Library]) -> None:
    _, lib = tiny
    with pytest.raises(ValueError, match="unknown tool 'telepathy'"):
        build_tools(lib, ["telepathy"])
    with pytest.raises(ValueError, match="need a user"):
        build_tools(lib, ["user_history"])
    tools = build_tools(lib, ALL, user=0)
    for t in tools.values():  # the model sees a one-line summary first
        assert t.description.splitlines()[0].startswith(f"{t.name}(")


def test_histories_and_candidate_generator_directly(tiny: tuple[Dataset, Library]) -> None:
    ds, lib = tiny
    h = UserHistories(lib.history, ds.n_users)
    r = h.ratings(0)
    assert [x.ts for x in r] == sorted(x.ts for x in r)
    assert h.ratings(0, before=r[0].ts) == [] and h.ratings(10_000) == []
    gen = CandidateGenerator("ease", lib.history, ds.n_users, ds.n_items, l2=10.0)
    top = gen.top(0, 5, exclude=[i for i, _ in gen.top(0, 2)])
    assert len(top) == 5 and not {i for i, _ in top} & {x.item for x in r}
    with pytest.raises(ValueError, match="unknown model"):
        CandidateGenerator("deep", lib.history, ds.n_users, ds.n_items)


# ----------------------------------------------------------------------------- MovieLens


@pytest.fixture(scope="module")
def ml(ml100k: Path) -> tuple[Dataset, Library]:
    ds = load_dataset(ml100k)
    hist, _ = temporal_split(ds.interactions, 0.8)
    return ds, Library.for_dataset(ds, hist, embedder="hash")


def test_movielens_search(ml: tuple[Dataset, Library]) -> None:
    ds, lib = ml
    tools = build_tools(lib, ["search_catalog", "semantic_search"])
    assert tools["search_catalog"].invoke("star wars").startswith("50: Star Wars (1977)")
    trek = _ids(tools["search_catalog"].invoke({"query": "star trek", "k": 6}))
    assert len(trek) == 6
    assert all(ds.catalog.titles[ds.catalog.index[i]].startswith("Star Trek") for i in trek)
    assert "50" in _ids(tools["semantic_search"].invoke({"query": "Star Wars (1977)",
                                                         "k": 5}))


def test_movielens_kg_tools(ml: tuple[Dataset, Library]) -> None:
    _, lib = ml
    if lib.kg_paths is None:
        pytest.skip("no ml-100k.kg/.link beside the data")
    tools = build_tools(lib, ["kg_neighbours", "kg_paths", "kg_shared"])
    assert tools["kg_neighbours"].invoke({"item": "Toy Story", "relation": "director"}) == \
        "film.film.directed_by: m.04jspq (1 movie)"
    assert tools["kg_neighbours"].invoke("m.04jspq") == "film.director.film: 1: Toy Story (1995)"
    assert "'x' is not a relation" in tools["kg_neighbours"].invoke({"item": "1",
                                                                      "relation": "x"})
    first = tools["kg_paths"].invoke("1 | 25").splitlines()[0]
    assert first.startswith("1: Toy Story (1995) -[") and first.endswith("25: Birdcage, The (1996)")
    shared = tools["kg_shared"].invoke({"item": "1", "relation": "actor"})
    assert "m.01mylz" in shared and "film.film.actor" in shared


def test_movielens_user_tools(ml: tuple[Dataset, Library]) -> None:
    ds, lib = ml
    tools = build_tools(lib, USER_TOOLS, user=0)
    prof = tools["user_profile"].invoke("")
    assert prof.startswith("user 1 (age 24, gender M, occupation technician")
    n = int(np.sum(lib.history.user == 0))
    assert f"{n} movies watched so far" in prof
    last = _ids(tools["user_history"].invoke("3"))
    rows = np.flatnonzero(lib.history.user == 0)
    order = rows[np.lexsort((rows, lib.history.ts[rows]))]
    assert last == [ds.catalog.item_ids[i] for i in lib.history.item[order][-3:]]
    cands = _ids(tools["candidates"].invoke({"model": "ease", "n": 20}))
    seen = {ds.catalog.item_ids[i] for i in lib.history.item[rows]}
    assert len(cands) == 20 and not set(cands) & seen
