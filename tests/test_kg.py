"""The knowledge graph: loading RecBole .kg/.link files, folding relations stated both ways,
neighbours, paths and shared people, on a hand-written graph and on MovieLens 100K's
Freebase triples (expected answers read off the files by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.kg import (
    ACTOR,
    DIRECTOR,
    KGError,
    Neighbour,
    kg_files,
    load_kg,
    neighbours,
    paths,
    sharing,
)

# Movies A, B, C, D (items 1-4) and E (not in the catalogue); people and a genre.
TRIPLES = """\
head_id:token\trelation_id:token\ttail_id:token
A\tfilm.film.actor\tann
B\tfilm.film.actor\tann
B\tfilm.film.actor\tbob
C\tfilm.film.actor\tbob
D\tfilm.film.actor\tann
D\tfilm.film.actor\tbob
ann\tfilm.actor.film\tA
A\tfilm.film.directed_by\tdan
dan\tfilm.director.film\tA
C\tfilm.film.directed_by\tdan
dan\tfilm.director.film\tC
B\tfilm.film.directed_by\tann
ann\tfilm.director.film\tB
A\tfilm.film.genre\tdrama
B\tfilm.film.genre\tdrama
C\tfilm.film.genre\tdrama
D\tfilm.film.genre\tdrama
drama\tfilm.film_genre.films_in_this_genre\tA
drama\tfilm.film_genre.films_in_this_genre\tB
drama\tfilm.film_genre.films_in_this_genre\tC
drama\tfilm.film_genre.films_in_this_genre\tD
E\tfilm.film.prequel\tA
A\tfilm.film.sequel\tE
"""
LINKS = "item_id:token\tentity_id:token\n1\tA\n2\tB\n3\tC\n4\tD\n"


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "t.kg").write_text(TRIPLES)
    (tmp_path / "t.link").write_text(LINKS)
    found = kg_files(tmp_path, "t")
    assert found is not None
    return found


def test_tiny_graph_folds_inverse_relations(tiny: tuple[Path, Path]) -> None:
    kg = load_kg(*tiny)
    assert kg.n_triples == 23
    # Genre and director facts are stated both ways, the actor ann-A once more backwards.
    assert kg.inverse["film.director.film"] == DIRECTOR
    assert kg.inverse["film.actor.film"] == ACTOR
    assert "film.director.film" not in kg.relations and DIRECTOR in kg.relations
    assert kg.n_facts == 6 + 3 + 4 + 1  # actors, directors, genres, sequel
    assert kg.relation("director") == DIRECTOR == kg.relation("film.director.film")
    assert kg.relation("actor") == ACTOR
    with pytest.raises(KGError, match="ambiguous"):
        kg.relation("film")
    with pytest.raises(KGError, match="not a relation"):
        kg.relation("composer")


def test_tiny_neighbours_read_from_either_end(tiny: tuple[Path, Path]) -> None:
    kg = load_kg(*tiny)
    assert neighbours(kg, "1", "director") == [Neighbour(DIRECTOR, "dan", None)]
    assert neighbours(kg, "dan") == [Neighbour("film.director.film", "A", "1"),
                                     Neighbour("film.director.film", "C", "3")]
    rels = {n.relation for n in neighbours(kg, "1")}
    assert rels == {ACTOR, DIRECTOR, "film.film.genre", "film.film.sequel"}
    assert neighbours(kg, "E") == [Neighbour("film.film.prequel", "A", "1")]
    with pytest.raises(KGError, match="neither a linked item"):
        neighbours(kg, "99")


def test_tiny_paths_prefer_specific_connections(tiny: tuple[Path, Path]) -> None:
    kg = load_kg(*tiny)
    found = paths(kg, "1", "3", k=3)
    # A and C share the director dan (2 movies) and the genre drama (4): dan first, then
    # drama, then a longer way through ann/bob, never reusing dan or drama.
    middles = [[h.target for h in p[:-1]] for p in found]
    assert middles[0] == ["dan"] and middles[1] == ["drama"]
    assert found[0][0].relations == (DIRECTOR,)
    assert found[0][1].relations == ("film.director.film",) and found[0][1].target_item == "3"
    assert len(found) == 3 and not {"dan", "drama"} & set(middles[2])
    assert paths(kg, "1", "3", relations=["actor"])[0][0].relations == (ACTOR,)
    assert paths(kg, "1", "1") == []


def test_tiny_sharing_counts_shared_people(tiny: tuple[Path, Path]) -> None:
    kg = load_kg(*tiny)
    got = sharing(kg, "2")  # B: actors ann and bob
    assert [s.item for s in got] == ["4", "1", "3"]  # D shares both; A ann; C bob
    assert got[0].via == ((ACTOR, "ann"), (ACTOR, "bob"))
    assert [s.item for s in sharing(kg, "1", ["director"])] == ["3"]
    # ann directed B but only acted in A and D: a different role is not shared.
    assert sharing(kg, "2", ["director"]) == []


def test_bad_files_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "t.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\nA\tr\n")
    (tmp_path / "t.link").write_text(LINKS)
    with pytest.raises(KGError, match=r"t\.kg:2: expected 3 non-empty"):
        load_kg(tmp_path / "t.kg", tmp_path / "t.link")
    (tmp_path / "u.kg").write_text("head\trel\ttail\n")
    with pytest.raises(KGError, match=r"u\.kg:1: header"):
        load_kg(tmp_path / "u.kg", tmp_path / "t.link")
    (tmp_path / "v.link").write_text(LINKS + "5\tA\n")
    with pytest.raises(KGError, match=r"v\.link:6: .*linked twice"):
        load_kg(tmp_path / "t.kg", tmp_path / "v.link")
    with pytest.raises(KGError, match="no such knowledge-graph file"):
        load_kg(tmp_path / "missing.kg", tmp_path / "t.link")
    assert kg_files(tmp_path, "missing") is None


def test_load_is_cached_per_file_version(tiny: tuple[Path, Path]) -> None:
    assert load_kg(*tiny) is load_kg(*tiny)


# ----------------------------------------------------------------------------- MovieLens


@pytest.fixture(scope="module")
def ml_kg(ml100k: Path):  # type: ignore[no-untyped-def]
    files = kg_files(ml100k, "ml-100k")
    if files is None:
        pytest.skip(f"no ml-100k.kg/.link at {ml100k}")
    return load_kg(*files)


def test_movielens_graph_size(ml_kg) -> None:  # type: ignore[no-untyped-def]
    assert ml_kg.n_triples == 91631
    assert len(ml_kg.entity_of) == 1598 and len(ml_kg.file_relations) == 24
    # Ten relations restate another backwards (film.actor.film only 6 times).
    assert len(ml_kg.relations) == 14
    assert ml_kg.inverse["film.film.prequel"] == "film.film.sequel"
    assert ml_kg.inverse["film.film_genre.films_in_this_genre"] == "film.film.genre"


def test_movielens_toy_story_facts(ml_kg) -> None:  # type: ignore[no-untyped-def]
    # ml-100k.link: 1 -> m.0dyb1; ml-100k.kg: m.0dyb1 film.film.directed_by m.04jspq
    # (and m.04jspq film.director.film m.0dyb1); m.01xdxy film.film.prequel m.0dyb1;
    # six "m.0dyb1 film.film.genre X" lines.
    assert ml_kg.entity_of["1"] == "m.0dyb1"
    assert neighbours(ml_kg, "1", "directed_by") == [Neighbour(DIRECTOR, "m.04jspq", None)]
    assert neighbours(ml_kg, "m.04jspq") == [Neighbour("film.director.film", "m.0dyb1", "1")]
    assert Neighbour("film.film.sequel", "m.01xdxy", None) in neighbours(ml_kg, "1", "sequel")
    genres = {n.entity for n in neighbours(ml_kg, "1", "genre")}
    assert genres == {"m.01hmnh", "m.03k9fj", "m.0556j8", "m.05p553", "m.0hcr", "m.0hqxf"}


def test_movielens_shared_actor(ml_kg) -> None:  # type: ignore[no-untyped-def]
    # grep "film.film.actor\tm.01mylz" ml-100k.kg, mapped through ml-100k.link: the
    # catalogue movies with this Toy Story actor.
    expected = {"47", "25", "1676", "1208", "1661", "370", "1170", "36", "1222", "280",
                "799", "1442", "426"}
    got = {s.item for s in sharing(ml_kg, "1", ["actor"], k=10_000)
           if (ACTOR, "m.01mylz") in s.via}
    assert got == expected


def test_movielens_paths(ml_kg) -> None:  # type: ignore[no-untyped-def]
    found = paths(ml_kg, "1", "25", k=3)  # Toy Story, The Birdcage
    assert found and found[0][-1].target_item == "25"
    first = found[0]
    common = set(ml_kg.graph["m.0dyb1"]) & set(ml_kg.graph[ml_kg.entity_of["25"]])
    assert len(first) == 2 and first[0].target in common
    # The most specific shared entity comes first.
    assert ml_kg.degree(first[0].target) == min(ml_kg.degree(c) for c in common)
    inner = [h.target for p in found for h in p[:-1]]
    assert len(inner) == len(set(inner))  # different connections
