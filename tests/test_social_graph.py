"""The social graph: the ``graph:`` block, the generators on MovieLens 100K users and on
made-up attributes, edge-list files, statistics, validation errors, and the two
degree-preserving rewirings."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from scenarios.schema import AGE_BANDS, GRAPH_KINDS, age_band, graph_config
from scenarios.schema.social_world import SocialSettings
from tools.dataset import Dataset, load_dataset
from tools.social_graph import (
    GraphError,
    SocialGraph,
    block_labels,
    build_graph,
    graph_stats,
    rewire_heterophilous,
    shuffled,
)

Attrs = list[dict[str, str]]


@pytest.fixture(scope="module")
def ml(ml100k: Path) -> Dataset:
    return load_dataset(ml100k)


def ml_graph(ds: Dataset, seed: int = 1, **block: Any) -> SocialGraph:
    return build_graph(graph_config(block), range(ds.n_users), ds.user_attrs, ds.user_ids, seed)


def synthetic(n: int = 120) -> tuple[list[int], Attrs, list[str]]:
    """``n`` users: gender alternating, ages cycling through every band, two jobs."""
    ages = [15, 20, 30, 40, 47, 52, 60]
    attrs = [{"age": str(ages[k % 7]), "gender": "MF"[k % 2],
              "occupation": ("writer", "nurse")[(k // 2) % 2]} for k in range(n)]
    return list(range(n)), attrs, [f"u{k}" for k in range(n)]


def arrays(g: SocialGraph) -> list[np.ndarray]:
    return [*g.neighbors, *g.weights]


def same_graph(a: SocialGraph, b: SocialGraph) -> bool:
    return a.users == b.users and all(
        np.array_equal(x, y) for x, y in zip(arrays(a), arrays(b), strict=True))


def check_invariants(g: SocialGraph) -> None:
    """Sorted rows without self-loops, strengths in (0, 1], undirected ties mutual."""
    for i, (row, w) in enumerate(zip(g.neighbors, g.weights, strict=True)):
        assert np.all(np.diff(row) > 0) and i not in row
        assert len(row) == len(w) and np.all((w > 0) & (w <= 1))
        if not g.directed:
            for j, x in zip(row.tolist(), w.tolist(), strict=True):
                assert g.tie(j, i) == x
    assert g.n_edges == int(g.out_degree.sum()) // (1 if g.directed else 2)


# ----------------------------------------------------------------------------- the block


def test_block_kinds_defaults_and_rejections() -> None:
    assert GRAPH_KINDS == ("sbm", "barabasi_albert", "watts_strogatz", "file")
    sbm = graph_config({"kind": "sbm"})
    assert (sbm.blocks_by, sbm.mean_degree, sbm.allow_disconnected) == (
        ["age_band", "gender"], 10.0, False)
    assert graph_config({"kind": "file", "path": "e.csv"}).directed is False
    for bad, where in [({"kind": "watts_strogatz", "k": 3}, "even"),
                       ({"kind": "sbm", "homophily": 1.5}, "homophily"),
                       ({"kind": "sbm", "mean_degree": 0}, "mean_degree"),
                       ({"kind": "sbm", "blocks_by": ["gender", "gender"]}, "twice"),
                       ({"kind": "sbm", "blocks_by": ["zip_code"]}, "blocks_by"),
                       ({"kind": "barabasi_albert", "m": 0}, "m"),
                       ({"kind": "file"}, "path"),
                       ({"kind": "ring"}, "ring"),
                       ({"kind": "sbm", "colour": "red"}, "colour")]:
        with pytest.raises(ValidationError, match=where):
            graph_config(bad)


def test_age_bands_are_movielens_1m() -> None:
    got = [age_band(a) for a in (1, 17, 18, 24, 25, 44, 45, 49, 50, 55, 56, 90)]
    assert got == ["<18", "<18", "18-24", "18-24", "25-34", "35-44", "45-49", "45-49",
                   "50-55", "50-55", "56+", "56+"]
    assert set(got) == set(AGE_BANDS)
    assert age_band("x") is None and age_band(None) is None


# ----------------------------------------------------------------------------- generators


@pytest.mark.parametrize("block", [{"kind": "sbm"}, {"kind": "barabasi_albert", "m": 4},
                                   {"kind": "watts_strogatz", "k": 8, "p": 0.1}])
def test_generators_on_movielens_users(ml: Dataset, block: dict[str, Any]) -> None:
    g = ml_graph(ml, **block)
    assert g.users == tuple(range(ml.n_users)) and not g.directed and not g.weighted
    check_invariants(g)
    stats = graph_stats(g, ml.user_attrs)
    assert stats["components"] == 1 and stats["largest_component_share"] == 1.0
    assert stats["nodes"] == ml.n_users and stats["edges"] == g.n_edges
    assert g.source.startswith(block["kind"])


@pytest.mark.parametrize("block", [{"kind": "sbm", "blocks_by": ["gender", "occupation"]},
                                   {"kind": "barabasi_albert", "m": 3},
                                   {"kind": "watts_strogatz", "k": 6, "p": 0.2}])
def test_generators_on_synthetic_users(block: dict[str, Any]) -> None:
    users, attrs, ids = synthetic()
    picked = users[::2] + users[1::4]  # a population that is not the whole dataset
    g = build_graph(graph_config(block), picked, [attrs[u] for u in picked], ids, seed=3)
    assert g.users == tuple(picked) and g.node_of[picked[5]] == 5
    check_invariants(g)


def test_mean_degree_is_near_the_target(ml: Dataset) -> None:
    for target in (4.0, 12.0):
        for h in (0.0, 0.7):
            got = ml_graph(ml, kind="sbm", mean_degree=target, homophily=h,
                           allow_disconnected=True).degree.mean()
            assert abs(got - target) < 0.08 * target, (target, h, got)
    assert ml_graph(ml, kind="watts_strogatz", k=6).degree.mean() == 6
    assert abs(ml_graph(ml, kind="barabasi_albert", m=3).degree.mean() - 6) < 0.1


def test_homophily_raises_assortativity_monotonically(ml: Dataset) -> None:
    stats = [graph_stats(ml_graph(ml, kind="sbm", homophily=h, allow_disconnected=True),
                         ml.user_attrs) for h in (0.0, 0.5, 0.9)]
    for attr in ("age_band", "gender"):
        r = [s["assortativity"][attr] for s in stats]
        same = [s["same_share"][attr] for s in stats]
        assert r[0] < r[1] < r[2] and same[0] < same[1] < same[2], (attr, r, same)
    assert abs(stats[0]["assortativity"]["gender"]) < 0.05  # homophily 0 ignores blocks


def test_seeded_reproducibility(ml: Dataset) -> None:
    for block in ({"kind": "sbm"}, {"kind": "barabasi_albert"}, {"kind": "watts_strogatz"}):
        a, b, c = ml_graph(ml, 5, **block), ml_graph(ml, 5, **block), ml_graph(ml, 6, **block)
        assert same_graph(a, b) and not same_graph(a, c)
        assert same_graph(ml_graph(ml, 2, seed_offset=4, **block), ml_graph(ml, 6, **block))


def test_hubs_do_not_follow_dataset_order(ml: Dataset) -> None:
    hubs = {int(np.argmax(ml_graph(ml, s, kind="barabasi_albert", m=2).degree))
            for s in range(6)}
    assert len(hubs) > 1


def test_stray_users_are_tied_in_or_refused(ml: Dataset) -> None:
    # A sparse graph leaves a few users alone now and then: find a seed where it does.
    for seed in range(30):
        loose = ml_graph(ml, seed, kind="sbm", mean_degree=7, homophily=0.0,
                         allow_disconnected=True)
        pieces = graph_stats(loose, ml.user_attrs)["components"]
        if pieces > 1:
            break
    else:
        pytest.fail("no seed left a user alone at mean degree 7")
    tight = ml_graph(ml, seed, kind="sbm", mean_degree=7, homophily=0.0)
    assert graph_stats(tight, ml.user_attrs)["components"] == 1
    assert tight.n_edges == loose.n_edges + pieces - 1
    assert any("stray" in note for note in tight.notes)


# ----------------------------------------------------------------------------- edge lists


def write(tmp_path: Path, text: str, name: str = "edges.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def from_file(path: Path | str, n: int = 6, source: str = "", **block: Any) -> SocialGraph:
    users, attrs, ids = synthetic(n)
    return build_graph(graph_config({"kind": "file", "path": str(path), **block}),
                       users, attrs, ids, seed=0, source=source)


def test_csv_with_header_undirected(tmp_path: Path) -> None:
    g = from_file(write(tmp_path, "source,target\nu0,u1\nu1,u2\n# a comment\n\nu2,u0\n"
                                  "u3,u2\nu4,u3\nu5,u4\nu1,u0\n"))
    assert not g.directed and g.n_edges == 6
    assert g.neighbors[2].tolist() == [0, 1, 3] and g.followers(2).tolist() == [0, 1, 3]
    assert g.tie(0, 5) == 0.0 and g.tie(0, 1) == g.tie(1, 0) > 0
    assert any("1 repeated ties merged (first at line 10)" in n for n in g.notes)
    check_invariants(g)


def test_whitespace_directed_weighted_without_header(tmp_path: Path) -> None:
    text = "u0 u1 2\nu1\tu0 4\nu2 u0 1\nu0 u2 8\nu3 u2 2\nu4 u3 2\nu5 u4 2\nu0 u2 6\n"
    g = from_file(write(tmp_path, text, "edges.txt"), directed=True, weighted=True)
    assert g.directed and g.weighted and g.n_edges == 7
    assert g.neighbors[0].tolist() == [1, 2] and g.followers(0).tolist() == [1, 2]
    assert g.followers(2).tolist() == [0, 3] and g.neighbors[2].tolist() == [0]
    # Divided by the largest weight; the repeated u0->u2 keeps its larger weight.
    assert (g.tie(0, 2), g.tie(1, 0), g.tie(0, 1), g.tie(2, 0)) == (1.0, 0.5, 0.25, 0.125)
    assert list(g.in_degree) == [2, 1, 2, 1, 1, 0] and list(g.out_degree) == [2, 1, 1, 1, 1, 1]
    stats = graph_stats(g, synthetic(6)[1])
    assert stats["in_degree"]["max"] == 2 and stats["degree"]["mean"] == 14 / 6
    check_invariants(g)


def test_unweighted_file_ignores_a_weight_column_and_ties_get_structure(tmp_path: Path) -> None:
    # Two triangles and a bridge: a tie inside a triangle is stronger than the bridge.
    text = "u0,u1,5\nu1,u2,5\nu2,u0,5\nu3,u4,5\nu4,u5,5\nu5,u3,5\nu2,u3,5\n"
    g = from_file(write(tmp_path, text))
    assert g.tie(2, 3) == pytest.approx(0.1) and g.tie(0, 1) == pytest.approx(1.0)
    assert 0.1 < g.tie(0, 2) < 1.0


def test_relative_path_and_a_population_subset(tmp_path: Path) -> None:
    write(tmp_path, "u0,u1\nu1,u2\nu2,u7\nu7,u0\n")
    _, attrs, ids = synthetic(8)
    cfg = graph_config({"kind": "file", "path": "edges.csv"})
    g = build_graph(cfg, [0, 1, 2], attrs[:3], ids, seed=0, source=str(tmp_path / "s.yaml"))
    assert g.n_edges == 2 and g.source == str(tmp_path / "edges.csv")
    assert any("2 ties to users outside the population" in n for n in g.notes)


@pytest.mark.parametrize(("text", "block", "message"), [
    ("u0,u1\nu1,u9\n", {}, r"edges.csv:2: target: unknown user id 'u9'"),
    ("9,8\nu0,u1\n", {}, r"edges.csv:1: source: unknown user id '9'"),
    ("u0,u1\n\nu2,u2\n", {}, r"edges.csv:3: self-loop: user u2"),
    ("u0,u1,x\n", {"weighted": True}, r"edges.csv:1: weight: expected a positive number"),
    ("u0,u1,-2\n", {"weighted": True}, r"edges.csv:1: weight: .*'-2'"),
    ("u0,u1\nu1,u2\n", {"weighted": True}, r"edges.csv:1: expected source,target,weight"),
    ("u0,u1,1,1\n", {}, r"edges.csv:1: expected source,target\[,weight\]"),
    ("u0,\n", {}, r"edges.csv:1: expected"),
    ("source,target\n", {}, r"edges.csv: no ties"),
    ("u0,u1\nu2,u3\nu3,u4\n", {}, r"3 connected components; the largest holds 50.0% of 6"),
    ("u0,u1\nu2,u3\nu3,u4\nu5,u4\n", {"directed": True}, r"2 weakly connected components"),
])
def test_edge_list_errors_name_file_and_line(tmp_path: Path, text: str,
                                             block: dict[str, Any], message: str) -> None:
    with pytest.raises(GraphError, match=message):
        from_file(write(tmp_path, text), **block)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match=r"nope.csv: no such edge-list file"):
        from_file(tmp_path / "nope.csv")
    bad = tmp_path / "bin.csv"
    bad.write_bytes(b"u0,u1\nu1,\xff\xfe\n")
    with pytest.raises(GraphError, match=r"bin.csv:2: not UTF-8"):
        from_file(bad)


def test_disconnected_file_allowed(tmp_path: Path) -> None:
    g = from_file(write(tmp_path, "u0,u1\nu2,u3\n"), allow_disconnected=True)
    stats = graph_stats(g, synthetic(6)[1])
    assert stats["components"] == 4 and stats["largest_component_share"] == pytest.approx(2 / 6)
    assert stats["degree"]["histogram"][0] == [0, 0, 2]


# ----------------------------------------------------------------------------- parameters


def test_impossible_parameters() -> None:
    users, attrs, ids = synthetic(8)
    cases: list[tuple[dict[str, Any], Sequence[int], Sequence[Mapping[str, str]], str]] = [
        ({"kind": "barabasi_albert", "m": 8}, users, attrs, r"m=8 .* population has 8"),
        ({"kind": "watts_strogatz", "k": 8}, users, attrs, r"k=8 .* population has 8"),
        ({"kind": "sbm", "blocks_by": ["occupation"], "homophily": 1}, users,
         [{**a, "occupation": "nurse"} for a in attrs], r"one block \(nurse\)"),
        ({"kind": "sbm", "mean_degree": 8, "homophily": 0}, users, attrs,
         r"mean_degree 8 is more than the 7 other users"),
        ({"kind": "sbm", "blocks_by": ["gender"], "mean_degree": 6, "homophily": 0.9},
         users, attrs, r"within-block tie probability of \d+\.\d+ > 1"),
        ({"kind": "sbm"}, users, attrs, r"every block by age_band, gender has one user"),
        ({"kind": "sbm", "blocks_by": ["gender"]}, users,
         [{"age": a["age"]} for a in attrs], r"no user has 'gender'"),
        ({"kind": "sbm"}, users, [{"gender": "F"}] * 8, r"no user has a numeric 'age'"),
        ({"kind": "sbm"}, [0], attrs[:1], r"at least 2 users"),
        ({"kind": "sbm"}, users, attrs[:3], r"3 attribute rows for 8 users"),
        ({"kind": "sbm"}, [0, 1, 1], attrs[:3], r"appears twice"),
        ({"kind": "sbm"}, [0, 99], attrs[:2], r"user index 99 is not a user"),
    ]
    for block, us, at, message in cases:
        with pytest.raises(GraphError, match=message):
            build_graph(graph_config(block), us, at, ids, seed=0)


def test_homophily_one_is_disconnected_unless_allowed(ml: Dataset) -> None:
    with pytest.raises(GraphError, match=r"sbm: the graph has \d+ connected components; the "
                                         r"largest holds \d+\.\d% of 943 users"):
        ml_graph(ml, kind="sbm", homophily=1.0)
    g = ml_graph(ml, kind="sbm", homophily=1.0, allow_disconnected=True)
    blocks = np.asarray(block_labels(ml.user_attrs, ["age_band", "gender"]))
    src, dst, _ = g.edges()
    assert len(src) and np.all(blocks[src] == blocks[dst])


# ----------------------------------------------------------------------------- statistics


def test_stats_are_json_and_add_up(ml: Dataset) -> None:
    g = ml_graph(ml, kind="barabasi_albert", m=3)
    stats = graph_stats(g, ml.user_attrs)
    json.dumps(stats, allow_nan=False)
    hist = stats["degree"]["histogram"]
    assert sum(c for _, _, c in hist) == ml.n_users and hist[-1][1] >= stats["degree"]["max"]
    assert stats["degree"]["mean"] == pytest.approx(2 * g.n_edges / ml.n_users)
    assert set(stats["assortativity"]) == {"degree", "age_band", "gender", "occupation"}
    assert stats["assortativity"]["degree"] < 0  # preferential attachment: hubs meet leaves
    assert 0 < stats["clustering"] < 1 and 0.1 <= stats["mean_tie"] <= 1
    # Without attributes, only degree assortativity; an undefined coefficient is None.
    bare = graph_stats(g, [{}] * ml.n_users)
    assert set(bare["assortativity"]) == {"degree"} and bare["same_share"] == {}
    ring = ml_graph(ml, kind="watts_strogatz", k=4, p=0.0)
    assert graph_stats(ring, ml.user_attrs)["assortativity"]["degree"] is None
    with pytest.raises(GraphError, match="attribute rows"):
        graph_stats(g, ml.user_attrs[:5])


# ----------------------------------------------------------------------------- rewiring


def within_share(g: SocialGraph, attrs: Sequence[Mapping[str, str]]) -> float:
    blocks = np.asarray(block_labels(attrs, ["age_band", "gender"]))
    src, dst, _ = g.edges()
    return float(np.mean(blocks[src] == blocks[dst]))


def test_rewiring_toward_heterophily(ml: Dataset) -> None:
    g = ml_graph(ml, kind="sbm", homophily=0.8)
    before = graph_stats(g, ml.user_attrs)
    for share in (0.3, 0.8):
        r = rewire_heterophilous(g, ml.user_attrs, share, seed=2)
        after = graph_stats(r, ml.user_attrs)
        assert r.n_edges == g.n_edges and np.array_equal(r.degree, g.degree)
        for attr in ("age_band", "gender"):
            assert after["assortativity"][attr] < before["assortativity"][attr] - 0.1
        assert within_share(r, ml.user_attrs) == pytest.approx(
            within_share(g, ml.user_attrs) * (1 - share), abs=2 / g.n_edges)
        check_invariants(r)
        assert "moved between blocks" in r.notes[-1]
    assert same_graph(rewire_heterophilous(g, ml.user_attrs, 0.0, seed=2), g)
    with pytest.raises(GraphError, match=r"share must be in \[0, 1\], got 1.5"):
        rewire_heterophilous(g, ml.user_attrs, 1.5, seed=2)


def test_rewiring_a_directed_weighted_file_keeps_in_and_out_degrees(tmp_path: Path) -> None:
    attrs = synthetic(40)[1]
    rng = np.random.default_rng(0)
    lines = {(int(a), int(b)) for a, b in rng.integers(40, size=(300, 2)) if a != b}
    text = "".join(f"u{a} u{b} {1 + (a * b) % 7}\n" for a, b in sorted(lines))
    g = from_file(write(tmp_path, text), n=40, directed=True, weighted=True)
    r = rewire_heterophilous(g, attrs, 1.0, seed=1, by=["gender"])
    assert np.array_equal(r.in_degree, g.in_degree) and np.array_equal(r.out_degree, g.out_degree)
    assert within_share(r, attrs) < within_share(g, attrs)
    assert sorted(np.concatenate(r.weights)) == sorted(np.concatenate(g.weights))


def test_shuffled_keeps_degrees_and_forgets_ties(ml: Dataset, tmp_path: Path) -> None:
    g = ml_graph(ml, kind="sbm", homophily=0.8)
    s = shuffled(g, seed=4)
    assert np.array_equal(s.degree, g.degree) and s.n_edges == g.n_edges
    old = set(zip(*(a.tolist() for a in g.edges()[:2]), strict=True))
    new = set(zip(*(a.tolist() for a in s.edges()[:2]), strict=True))
    assert len(old & new) < 0.2 * len(old)
    assert graph_stats(s, ml.user_attrs)["assortativity"]["gender"] < 0.1
    assert same_graph(s, shuffled(g, seed=4)) and not same_graph(s, shuffled(g, seed=5))
    check_invariants(s)
    d = from_file(write(tmp_path, "u0 u1\nu1 u2\nu2 u3\nu3 u0\nu0 u2\nu1 u3\nu3 u1\n"),
                  n=4, directed=True)
    ds = shuffled(d, seed=0)
    assert np.array_equal(ds.in_degree, d.in_degree) and np.array_equal(ds.out_degree,
                                                                         d.out_degree)


def test_arrays_are_read_only(ml: Dataset) -> None:
    g = ml_graph(ml, kind="watts_strogatz", k=4)
    with pytest.raises(ValueError, match="read-only"):
        g.neighbors[0][0] = 5


def test_the_doc_blocks_validate(repo: Path) -> None:
    doc = (repo / "docs" / "social.md").read_text(encoding="utf-8")
    docs = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", doc, re.S)]
    blocks = [d["graph"] for d in docs if "graph" in d]
    assert [b["kind"] for b in blocks] == list(GRAPH_KINDS)
    for d in docs:  # whole environment blocks: their settings validate too
        if "environment" in d:
            SocialSettings.model_validate(d["environment"]["settings"])
    for b in blocks:
        assert graph_config(b).kind == b["kind"]
