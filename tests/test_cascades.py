"""Cascades of item mentions: trees from hand-built traces, structural virality against
brute force, the Twitter15 reference, the Wasserstein distance, and the independent
cascade baseline with its fit and its shuffled-graph control."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from simulations.analysis.cascades import (
    CASCADES_ENV,
    CascadeDataError,
    bootstrap_interval,
    cascade_summary,
    cascades_data_path,
    cascades_from_events,
    depth_distance,
    depth_distance_interval,
    load_twitter15,
    structural_virality,
    summaries_by_arm,
)
from simulations.analysis.cascades_ic import (
    fit_ic_probability,
    ic_baseline,
    independent_cascade,
    shuffled_control,
)


def mention(user: str, to: list[str], parent: str | None, *, item: str = "i1",
            arm: str = "a", tick: int = 0, via: str = "post", rnd: int = 0) -> dict[str, Any]:
    return {"type": "mention", "arm": arm, "round": rnd, "tick": tick, "user": user,
            "item": item, "via": via, "to": to, "parent": parent}


def brute_virality(parent: dict[str, str | None]) -> float:
    """Mean shortest-path distance over all pairs, by BFS from every node."""
    adj: dict[str, list[str]] = {v: [] for v in parent}
    for v, p in parent.items():
        if p is not None:
            adj[v].append(p)
            adj[p].append(v)
    n = len(adj)
    if n < 2:
        return 0.0
    total = 0
    for s in adj:
        dist = {s: 0}
        queue = deque([s])
        while queue:
            u = queue.popleft()
            for w in adj[u]:
                if w not in dist:
                    dist[w] = dist[u] + 1
                    queue.append(w)
        total += sum(dist.values())
    return total / (n * (n - 1))  # each pair counted twice over n(n-1) ordered pairs


# --- trees from events -------------------------------------------------------------


def test_chain_is_a_path() -> None:
    users = ["r", "a", "b", "c"]
    events = [mention(u, [users[k + 1]] if k + 1 < len(users) else [],
                      users[k - 1] if k else None, tick=k) for k, u in enumerate(users)]
    (c,) = cascades_from_events(events)
    assert (c.root, c.size, c.reach, c.max_depth, c.max_breadth) == ("r", 4, 4, 4, 1)
    assert c.depth == {"r": 1, "a": 2, "b": 3, "c": 4}
    assert c.parent == {"r": None, "a": "r", "b": "a", "c": "b"}
    # Path of n: sum over its n-1 edges of k(n-k) = n(n-1)(n+1)/6, over n(n-1)/2 pairs.
    assert c.structural_virality == pytest.approx(5 / 3)
    assert (c.first_tick, c.last_tick, c.mentions, c.parent_mismatches) == (0, 3, 4, 0)


@pytest.mark.parametrize("n", range(1, 12))
def test_path_and_star_virality_formulas(n: int) -> None:
    chain = [mention(str(k), [str(k + 1)] if k + 1 < n else [], str(k - 1) if k else None)
             for k in range(n)]
    (path,) = cascades_from_events(chain)
    assert path.size == n and path.max_depth == n
    assert path.structural_virality == pytest.approx((n + 1) / 3 if n > 1 else 0.0)
    leaves = [str(k) for k in range(1, n)]
    star_events = [mention("0", leaves, None)] + [mention(v, [], "0") for v in leaves]
    (star,) = cascades_from_events(star_events)
    assert star.size == n and star.max_depth == min(n, 2) and star.max_breadth == max(1, n - 1)
    # Star of n: n-1 edges with one node below each: (n-1)^2 over n(n-1)/2 pairs.
    assert star.structural_virality == pytest.approx(2 * (n - 1) / n)


def test_star_without_re_mentions_counts_reach_not_size() -> None:
    (c,) = cascades_from_events([mention("r", ["a", "b", "c", "d"], None)])
    assert (c.size, c.reach, c.max_depth, c.reach_depth, c.max_breadth) == (1, 5, 1, 2, 1)
    assert c.structural_virality == 0.0
    assert c.nodes == ("r", "a", "b", "c", "d") and c.mentioners == ("r",)


def test_spider_by_hand() -> None:
    # r -> a, b, c; a -> d: pair distances 1+1+1+2 +2+2+1 +2+3 +3 = 18 over 10 pairs.
    events = [mention("r", ["a", "b", "c"], None), mention("a", ["d"], "r"),
              mention("b", [], "r"), mention("c", [], "r"), mention("d", [], "a")]
    (c,) = cascades_from_events(events)
    assert (c.size, c.max_depth, c.max_breadth) == (5, 3, 3)
    assert c.structural_virality == pytest.approx(1.8)


def test_two_roots_for_one_item() -> None:
    events = [
        mention("r1", ["a", "b"], None, tick=1),
        mention("r2", ["b", "c"], None, tick=2),  # b heard r1 first: stays in r1's tree
        mention("b", ["e"], "r1", tick=3),
        mention("c", ["f"], "r2", tick=4),
        mention("r1", ["b"], None, item="i2", tick=5),  # another item: its own cascade
        mention("r1", ["b"], None, arm="other", tick=6),  # another arm: its own cascade
    ]
    cs = cascades_from_events(events)
    assert [(c.arm, c.item, c.root) for c in cs] == [("a", "i1", "r1"), ("a", "i1", "r2"),
                                                     ("a", "i2", "r1"), ("other", "i1", "r1")]
    one, two = cs[0], cs[1]
    assert one.parent == {"r1": None, "a": "r1", "b": "r1", "e": "b"}
    assert two.parent == {"r2": None, "c": "r2", "f": "c"}
    assert (one.size, one.reach, one.max_depth) == (2, 4, 2)
    assert (two.size, two.reach, two.max_depth, two.last_tick) == (2, 3, 2, 4)
    assert not set(one.nodes) & set(two.nodes)


def test_repeated_hearing_first_exposure_wins() -> None:
    events = [
        mention("r", ["a", "x"], None, tick=1),
        mention("x", ["a", "y"], "r", tick=2),  # a hears again: parent stays r
        mention("r", ["a", "y"], None, tick=3),  # r repeats itself: nothing new
        mention("a", ["r", "x", "z"], "r", tick=4),  # r and x heard it long ago
        mention("y", ["a"], "x", tick=5),
    ]
    (c,) = cascades_from_events(events)
    assert c.parent == {"r": None, "a": "r", "x": "r", "y": "x", "z": "a"}
    assert c.depth == {"r": 1, "a": 2, "x": 2, "y": 3, "z": 3}
    assert c.mentioners == ("r", "x", "a", "y")
    assert (c.size, c.reach, c.mentions, c.max_breadth, c.parent_mismatches) == (4, 5, 5, 2, 0)
    assert c.last_tick == 5  # y's first mention made it grow
    assert c.structural_virality == pytest.approx(brute_virality(
        {v: c.parent[v] for v in c.mentioners}))


def test_declared_parent_checked_against_the_trace() -> None:
    events = [
        mention("r", ["a"], None),
        mention("a", [], None),  # heard it from r, says nobody: stays r's child
        mention("s", [], "ghost"),  # says ghost, heard it from nobody on record: a root
    ]
    first, second = cascades_from_events(events)
    assert first.parent == {"r": None, "a": "r"} and first.parent_mismatches == 1
    assert second.root == "s" and second.parent_mismatches == 1


def test_chat_and_post_build_the_same_tree() -> None:
    def trace(via: str) -> list[dict[str, Any]]:
        return [mention("r", ["a"], None, via=via), mention("a", ["b"], "r", via=via),
                mention("b", [], "a", via="post")]

    (post,) = cascades_from_events(trace("post"))
    (chat,) = cascades_from_events(trace("chat"))
    assert post.parent == chat.parent and post.structural_virality == chat.structural_virality
    assert post.via == {"post": 3, "chat": 0} and chat.via == {"post": 1, "chat": 2}


def test_other_events_ignored_and_ids_compared_as_strings() -> None:
    events = [{"type": "page", "arm": "a", "user": "r"},
              {"v": 1, "seq": 7, "ts": 1.0, "id": "e", **mention("1", [2, "3"], None)},
              mention("2", [], "1")]
    (c,) = cascades_from_events(events)
    assert c.parent == {"1": None, "2": "1", "3": "1"} and c.size == 2


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("via", "dm", "mention event 1: field 'via': expected 'post' or 'chat', got 'dm'"),
    ("to", "a", "mention event 1: field 'to': expected a list of user ids, got 'a'"),
    ("tick", "3", "mention event 1: field 'tick': expected an integer, got '3'"),
    ("user", None, "mention event 1: field 'user': expected an id, got None"),
])
def test_malformed_mention_is_a_one_line_error(field: str, value: Any, expected: str) -> None:
    ev = mention("r", ["a"], None)
    ev[field] = value
    with pytest.raises(ValueError) as err:
        cascades_from_events([{"type": "page"}, ev])
    assert str(err.value) == expected


def random_tree(rng: np.random.Generator, n: int) -> dict[str, str | None]:
    return {str(k): (str(int(rng.integers(k))) if k else None) for k in range(n)}


def test_virality_matches_brute_force_on_random_trees() -> None:
    rng = np.random.default_rng(19)
    for _ in range(60):
        tree = random_tree(rng, int(rng.integers(1, 40)))
        want = brute_virality(tree)
        assert structural_virality(tree) == pytest.approx(want)
        # The same tree as a trace: every node mentions the item to its children.
        children: dict[str, list[str]] = {v: [] for v in tree}
        for v, p in tree.items():
            if p is not None:
                children[p].append(v)
        events = [mention(v, children[v], tree[v]) for v in tree]
        (c,) = cascades_from_events(events)
        assert c.parent == tree and c.structural_virality == pytest.approx(want)
        assert c.max_depth == max(c.depth.values())


def test_virality_rejects_a_forest_and_a_cycle() -> None:
    with pytest.raises(ValueError, match="one root"):
        structural_virality({"a": None, "b": None})
    with pytest.raises(ValueError, match="cycle"):
        structural_virality({"r": None, "a": "b", "b": "a"})


def test_summary_is_json_and_ranks_the_largest() -> None:
    events = [mention("r", ["a", "b"], None), mention("a", [], "r"), mention("b", [], "r"),
              mention("s", ["c"], None, item="i2"), mention("t", [], None, item="i3",
                                                            arm="b")]
    cs = cascades_from_events(events)
    s = cascade_summary(cs, largest=2)
    json.dumps(s)
    assert s["count"] == 3 and s["spread_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["distributions"]["size"] == {"mean": 1.6667, "median": 1.0, "p90": 2.6,
                                          "max": 3.0}  # rounded to 4 places
    assert s["distributions"]["reach"]["max"] == 3.0
    assert s["max_depth_histogram"] == {"1": 2, "2": 1}
    assert [c["root"] for c in s["largest"]] == ["r", "s"]
    assert s["via"] == {"post": 5, "chat": 0}
    by_arm = summaries_by_arm(cs)
    assert list(by_arm) == ["a", "b"] and by_arm["b"]["count"] == 1
    empty = cascade_summary([])
    assert empty["count"] == 0 and empty["distributions"]["size"]["mean"] is None


# --- the Twitter15 reference -------------------------------------------------------


@pytest.fixture(scope="session")
def twitter15_dir() -> Path:
    p = cascades_data_path()
    if not (p / "twitter15.csv").is_file():
        pytest.skip(f"Twitter15 cascades not found at {p} (set {CASCADES_ENV})")
    return p


def test_twitter15_loads(twitter15_dir: Path) -> None:
    ref = load_twitter15(twitter15_dir)
    assert len(ref) == 134 and len({r.id for r in ref}) == 134
    assert {r.source for r in ref} == {"twitter15"} and {r.label for r in ref} == {True, False}
    # The README: 108-829 users per cascade, most 3-4 levels deep (root = depth 1).
    assert min(r.num_users for r in ref) == 108 and max(r.num_users for r in ref) == 829
    depths = [r.max_depth for r in ref]
    assert min(depths) >= 2 and sum(d in (3, 4) for d in depths) > len(depths) / 2
    assert load_twitter15(twitter15_dir / "twitter15.csv") == ref


HEADER = "id,source,label,num_users,max_depth,mean_time,median_time,max_time,topic_category," \
         "start_time\n"
GOOD = "1,twitter15,True,200,3,1.0,0.9,2.0,Politics,2014-09-22 17:37:41+00:00\n"


@pytest.mark.parametrize(("row", "message"), [
    ("2,twitter15,True,200,deep,1.0,0.9,2.0,Politics,2014-09-22 17:37:41+00:00",
     "field 'max_depth': expected an integer >= 1, got 'deep'"),
    ("2,twitter15,maybe,200,3,1.0,0.9,2.0,Politics,2014-09-22 17:37:41+00:00",
     "field 'label': expected True or False, got 'maybe'"),
    ("2,twitter15,True,200,3,1.0,0.9,2.0,Politics,yesterday",
     "field 'start_time': expected an ISO date and time, got 'yesterday'"),
    ("2,twitter15,True,200,3,1.0,0.9", "field 'max_time': expected a number, "
     "got nothing (the row is short)"),
    ("2,twitter15,True,200,3,1.0,0.9,inf,Politics,2014-09-22 17:37:41+00:00",
     "field 'max_time': expected a number, got 'inf'"),
    ("2,twitter15,True,200,3,1.0,0.9,2.0, ,2014-09-22 17:37:41+00:00",
     "field 'topic_category': expected a non-empty value, got ' '"),
    ("2,twitter15,True,2,3,1.0,0.9,2.0,Politics,2014-09-22 17:37:41+00:00",
     "field 'max_depth': 3 levels need more than num_users 2 users"),
])
def test_bad_reference_row_is_a_one_line_error(tmp_path: Path, row: str, message: str) -> None:
    f = tmp_path / "twitter15.csv"
    f.write_text(HEADER + GOOD + row + "\n")
    with pytest.raises(CascadeDataError) as err:
        load_twitter15(tmp_path)
    assert str(err.value) == f"{f}:3: {message}"


def test_reference_missing_column_and_file(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "twitter15.csv"
    f.write_text(HEADER.replace("max_depth,", "") + "1,twitter15\n")
    with pytest.raises(CascadeDataError, match=r":1: field 'max_depth': missing column"):
        load_twitter15(f)
    monkeypatch.setenv(CASCADES_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=CASCADES_ENV):
        load_twitter15()
    f.write_text(HEADER + GOOD)
    monkeypatch.setenv(CASCADES_ENV, str(tmp_path))
    (only,) = load_twitter15()
    assert (only.id, only.num_users, only.max_depth, only.label) == ("1", 200, 3, True)


def test_depth_distance() -> None:
    ref = [2, 3, 3, 3, 4, 4, 5, 6]
    assert depth_distance(ref, list(reversed(ref))) == 0.0
    assert depth_distance([d + 1 for d in ref], ref) == pytest.approx(1.0)
    assert depth_distance([3], [2, 4]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        depth_distance([], ref)
    iv = depth_distance_interval([d + 1 for d in ref], ref, resamples=200, seed=3)
    assert iv["value"] == pytest.approx(1.0) and 0 <= iv["lo"] <= iv["hi"]
    assert iv == depth_distance_interval([d + 1 for d in ref], ref, resamples=200, seed=3)


def test_bootstrap_interval_over_cascades() -> None:
    rng = np.random.default_rng(5)
    events = []
    for k in range(30):  # cascades of 1..5 mentioners, as chains
        n = int(rng.integers(1, 6))
        events += [mention(f"{k}.{j}", [f"{k}.{j + 1}"] if j + 1 < n else [],
                           f"{k}.{j - 1}" if j else None, item=str(k)) for j in range(n)]
    cs = cascades_from_events(events)

    def mean_size(xs: list[Any]) -> float:
        return float(np.mean([c.size for c in xs]))

    iv = bootstrap_interval(cs, mean_size, resamples=300, seed=1)
    assert iv["lo"] < iv["value"] < iv["hi"]
    assert iv == bootstrap_interval(cs, mean_size, resamples=300, seed=1)
    assert iv != bootstrap_interval(cs, mean_size, resamples=300, seed=2)


# --- the independent cascade baseline ----------------------------------------------


def random_graph(rng: np.random.Generator, n: int, k: int) -> list[list[int]]:
    """Each node is heard by k random other nodes."""
    return [[int(v) for v in rng.choice([u for u in range(n) if u != i], k, replace=False)]
            for i in range(n)]


def configuration_shuffle(neighbors: list[list[int]], rng: np.random.Generator,
                          swaps: int) -> list[list[int]]:
    """Directed double edge swaps (a->b, c->d to a->d, c->b): every in- and out-degree is
    kept, no self-loop or repeated edge is made."""
    edges = [(u, v) for u, row in enumerate(neighbors) for v in row]
    present = set(edges)
    for _ in range(swaps):
        i, j = (int(x) for x in rng.integers(len(edges), size=2))
        (a, b), (c, d) = edges[i], edges[j]
        if i == j or a == d or c == b or (a, d) in present or (c, b) in present:
            continue
        present -= {(a, b), (c, d)}
        present |= {(a, d), (c, b)}
        edges[i], edges[j] = (a, d), (c, b)
    out: list[list[int]] = [[] for _ in neighbors]
    for u, v in edges:
        out[u].append(v)
    return out


def bfs_levels(neighbors: list[list[int]], seed: int) -> dict[str, int]:
    level = {seed: 1}
    queue = deque([seed])
    while queue:
        u = queue.popleft()
        for v in neighbors[u]:
            if v not in level:
                level[v] = level[u] + 1
                queue.append(v)
    return {str(v): d for v, d in level.items()}


def test_ic_with_p_zero_stays_at_the_seed() -> None:
    g = random_graph(np.random.default_rng(0), 30, 3)
    cs = independent_cascade(g, [0, 5, 5, 9], 0.0, np.random.default_rng(1))
    assert [c.root for c in cs] == ["0", "5", "5", "9"]
    assert len({(c.arm, c.item) for c in cs}) == 4
    for c in cs:
        assert (c.size, c.max_depth, c.reach, c.parent_mismatches) == (1, 1, 4, 0)


def test_ic_with_p_one_reaches_everyone_along_shortest_paths() -> None:
    g = random_graph(np.random.default_rng(2), 40, 2)
    g = [[*row, (i + 1) % 40] for i, row in enumerate(g)]  # a ring: strongly connected
    for c in independent_cascade(g, [0, 17], 1.0, np.random.default_rng(3)):
        assert c.size == c.reach == 40 and c.parent_mismatches == 0
        assert c.depth == bfs_levels(g, int(c.root))
        assert c.max_depth == max(c.depth.values())
    (short,) = independent_cascade(g, [0], 1.0, np.random.default_rng(3), max_steps=2)
    assert short.max_depth == 2 and short.size == 1 + len(set(g[0]))


def test_ic_weights_scale_the_probability() -> None:
    g = [[1, 2], [0], [0]]
    (c,) = independent_cascade(g, [0], 1.0, np.random.default_rng(0), [[0.0, 1.0], [1], [1]])
    assert c.mentioners == ("0", "2") and c.reach == 3
    with pytest.raises(ValueError, match="align"):
        independent_cascade(g, [0], 1.0, np.random.default_rng(0), [[1.0], [1], [1]])
    with pytest.raises(ValueError, match="not a node"):
        independent_cascade(g, [3], 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"neighbors\[1\] holds 7"):
        independent_cascade([[1], [7]], [0], 1.0, np.random.default_rng(0))


def test_ic_runs_are_reproducible_and_monotone_in_p() -> None:
    g = random_graph(np.random.default_rng(4), 80, 3)
    seeds = list(range(0, 80, 4))
    low = independent_cascade(g, seeds, 0.2, np.random.default_rng(7))
    high = independent_cascade(g, seeds, 0.4, np.random.default_rng(7))
    assert [c.parent for c in low] == \
        [c.parent for c in independent_cascade(g, seeds, 0.2, np.random.default_rng(7))]
    # Same keys, same coin per edge: a run's active set can only grow with p.
    assert all(set(a.mentioners) <= set(b.mentioners) for a, b in zip(low, high, strict=True))
    assert sum(c.size for c in high) > sum(c.size for c in low)


def test_fitted_p_reproduces_the_target_mean_size() -> None:
    g = random_graph(np.random.default_rng(6), 300, 4)
    seeds = list(range(0, 300, 3))
    fit = fit_ic_probability(g, seeds, 3.0, np.random.default_rng(8), repeats=10)
    assert 0 < fit.p < 0.25 and fit.runs == 1000 and fit.iterations > 5
    assert fit.mean_size == pytest.approx(3.0, rel=0.01)
    fresh = independent_cascade(g, seeds * 20, fit.p, np.random.default_rng(9))
    assert np.mean([c.size for c in fresh]) == pytest.approx(3.0, rel=0.1)
    run = ic_baseline(g, seeds, 3.0, np.random.default_rng(8), repeats=2)
    assert run.fit is not None and run.fit.runs == len(run.cascades) == 200
    assert run.p == run.fit.p and run.fit.mean_size == pytest.approx(3.0, rel=0.02)
    assert json.dumps(run.summary(largest=3))
    assert fit_ic_probability(g, seeds, 1.0, np.random.default_rng(8)).p == 0.0
    with pytest.raises(ValueError, match="out of reach"):
        fit_ic_probability([[1], [0], []], [0], 2.5, np.random.default_rng(8))
    with pytest.raises(ValueError, match="at least 1"):
        fit_ic_probability(g, seeds, 0.5, np.random.default_rng(8))


def test_shuffled_control() -> None:
    n = 300
    ring = [[(i + 1) % n, (i + 2) % n] for i in range(n)]  # a directed ring lattice
    shuffled = configuration_shuffle(ring, np.random.default_rng(10), 20 * n)
    assert sorted(map(len, shuffled)) == [2] * n
    assert sum(a != b for a, b in zip(ring, shuffled, strict=True)) > n / 2
    seeds = list(range(0, n, 5))
    real = independent_cascade(ring, seeds, 0.7, np.random.default_rng(11))
    same_p = shuffled_control(shuffled, seeds, np.random.default_rng(11), p=0.7,
                              neighbors=ring)
    assert same_p.fit is None and len(same_p.cascades) == len(seeds)
    assert {c.arm for c in same_p.cascades} == {"ic-shuffled"}
    # On the ring an item creeps along one line; shuffled, the same p goes much further.
    assert np.mean([c.size for c in same_p.cascades]) > 2 * np.mean([c.size for c in real])
    refit = shuffled_control(shuffled, seeds, np.random.default_rng(12),
                             target_mean_size=float(np.mean([c.size for c in real])),
                             repeats=5)
    assert refit.fit is not None and refit.p < 0.7
    assert refit.fit.mean_size == pytest.approx(refit.fit.target_mean_size, rel=0.05)
    # At the same mean size, the ring's cascades are deeper chains, the shuffled ones bushier.
    assert np.mean([c.max_depth for c in real]) > 1.5 * np.mean(
        [c.max_depth for c in refit.cascades])
    broken = [row[:] for row in ring]
    broken[3] = [5, 7]
    with pytest.raises(ValueError, match="does not preserve degrees: node 4 has in-degree 1"):
        shuffled_control(broken, seeds, np.random.default_rng(0), p=0.5, neighbors=ring)
    with pytest.raises(ValueError, match="exactly one"):
        shuffled_control(shuffled, seeds, np.random.default_rng(0))

