"""The social world: users on a graph who browse, search, chat and post, tick by tick."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from scenarios.loader import ScenarioError, load_scenario
from simulations.cli.main import main
from simulations.record.trace import read_trace
from simulations.run.runner import prepare, run
from tools.recommenders.social import FriendsRecommender

ROLE = {"name": "social_user", "brain": {"kind": "utility"},
        "memory": {"short_term_window": 6}}


def _scenario(folder: Path, settings: dict[str, Any] | None = None, *, rounds: int = 2,
              role: dict[str, Any] | None = None, **more: Any) -> Path:
    base = {"graph": {"kind": "barabasi_albert", "m": 3}, "ticks": 6, "activity": 0.6,
            "weights": {"browse": 1.0, "chat": 1.0, "post": 1.0, "idle": 0.2}}
    scn = {"kind": "scenario", "name": "social-test", "seed": 5,
           "dataset": {"source": "synthetic",
                       "synthetic": {"n_users": 120, "n_items": 150, "n_genres": 6,
                                     "history_mean": 20}},
           "population": {"size": 40, "role": role or ROLE},
           "recommenders": [{"name": "pop", "model": "pop", "retrain": True},
                            {"name": "friends",
                             "model": "tools.recommenders.social:FriendsRecommender",
                             "retrain": True}],
           "environment": {"kind": "social", "items_per_page": 4, "rounds": rounds,
                           "settings": {**base, **(settings or {})}},
           "output": {"dir": str(folder / "runs")}, **more}
    path = folder / "social.yaml"
    path.write_text(json.dumps(scn, indent=2))
    return path


def _run(path: Path, out: Path) -> list[dict[str, Any]]:
    run(prepare(load_scenario(path)), out)
    return list(read_trace(out))


def test_a_social_run_chats_posts_and_mentions(tmp_path: Path) -> None:
    events = _run(_scenario(tmp_path), tmp_path / "run")
    types = Counter(e["type"] for e in events)
    assert types["social_graph"] == 2  # one per arm
    for t in ("tick", "social_choice", "page", "decision", "chat", "post", "mention"):
        assert types[t] > 0, t
    # A chat occupies both agents: nobody is in two chats, or chats and acts, at a tick.
    lines: dict[tuple[str, int, int], set[tuple[str, str]]] = defaultdict(set)
    acting: dict[tuple[str, int, int], Counter[str]] = defaultdict(Counter)
    for e in events:
        key = (e.get("arm"), e.get("round"), e.get("tick"))
        if e["type"] == "chat":
            lines[key].add(tuple(sorted((e["user"], e["partner"]))))  # type: ignore[arg-type]
        if e["type"] == "social_choice" and e["outcome"] in ("browse", "search", "post"):
            acting[key][e["user"]] += 1
    for key, pairs in lines.items():
        people = [u for p in pairs for u in p]
        assert len(people) == len(set(people)), key
        assert not set(people) & set(acting[key]), key
    # Every mention reaches its audience: a chat's partner, or the speaker's followers.
    chats = {(e["arm"], e["round"], e["tick"], e["user"]): e for e in events
             if e["type"] == "chat"}
    for m in (e for e in events if e["type"] == "mention" and e["via"] == "chat"):
        assert m["to"] == [chats[(m["arm"], m["round"], m["tick"], m["user"])]["partner"]]
    # A user who passes on an item heard first from someone names that someone.
    heard_from: dict[tuple[str, str, str], str] = {}
    for m in (e for e in events if e["type"] == "mention"):
        if m["parent"] is not None:
            assert heard_from[(m["arm"], m["user"], m["item"])] == m["parent"]
        for h in m["to"]:
            heard_from.setdefault((m["arm"], h, m["item"]), m["user"])
    # Heard items get watched, and those watches are counted as from friends.
    decisions = [e for e in events if e["type"] == "decision"]
    friend = [d for d in decisions if d["action"] == "watch" and d["source"] == "friend"]
    assert friend and all(d["heard"] for d in friend)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    arm = summary["metrics"]["arms"]["pop"]["overall"]
    watches = sum(d["action"] == "watch" for d in decisions if d["arm"] == "pop")
    assert arm["watch_rate"] == pytest.approx(
        watches / sum(d["arm"] == "pop" for d in decisions), abs=1e-6)
    assert arm["friend_share"] == pytest.approx(
        sum(d["arm"] == "pop" for d in friend) / watches, abs=1e-6)
    assert arm["mentions"] == sum(e["type"] == "mention" and e["arm"] == "pop"
                                  for e in events)
    assert set(summary["metrics"]["arms"]["pop"]["rounds"]) == {"1", "2"}


def test_paired_arms_draw_the_same_activity_and_runs_replay(tmp_path: Path) -> None:
    path = _scenario(tmp_path)
    a = _run(path, tmp_path / "a")
    b = _run(path, tmp_path / "b")
    strip = [{k: v for k, v in e.items() if k not in ("ts", "elapsed_s", "volatile")}
             for e in a]
    assert strip == [{k: v for k, v in e.items() if k not in ("ts", "elapsed_s", "volatile")}
                     for e in b]
    active = defaultdict(dict)
    for e in a:
        if e["type"] == "tick":
            active[e["arm"]][(e["round"], e["tick"])] = e["active"]
    assert active["pop"] == active["friends"]


def test_social_features_off_leaves_browsing_only(tmp_path: Path) -> None:
    events = _run(_scenario(tmp_path, {"social": False}), tmp_path / "run")
    types = Counter(e["type"] for e in events)
    assert types["chat"] == types["post"] == types["mention"] == 0
    assert {e["activity"] for e in events if e["type"] == "social_choice"} <= {"browse",
                                                                                 "idle"}
    assert types["page"] > 0


def test_random_items_are_mixed_into_pages(tmp_path: Path) -> None:
    events = _run(_scenario(tmp_path, {"rec_random_k": 2}, rounds=1), tmp_path / "run")
    pages = [e for e in events if e["type"] == "page" and e["via"] == "browse"]
    assert pages and all(len(p["items"]) == 6 for p in pages)
    assert all(len(set(p["items"])) == 6 for p in pages)


def test_bad_settings_are_load_time_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"environment\.settings.*ticks"):
        load_scenario(_scenario(tmp_path, {"ticks": 0}))
    with pytest.raises(ScenarioError, match=r"environment\.settings"):
        load_scenario(_scenario(tmp_path, {"no_such_field": 1}))


def test_trace_agent_tells_a_users_chats_and_posts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    events = _run(_scenario(tmp_path), out)
    talker = next(e["user"] for e in events if e["type"] == "chat" and e["mentions"])
    assert main(["trace", "agent", str(out), f"u{talker}", "--no-pager"]) == 0
    text = capsys.readouterr().out
    assert "says to user" in text and "chats with user" in text
    assert main(["trace", "summary", str(out), "--no-pager"]) == 0
    text = capsys.readouterr().out
    assert "from friends" in text and "social" in text


def test_friends_recommender_ranks_what_close_ties_watched() -> None:
    x = sp.csr_matrix(np.array([[0, 0, 0, 0, 1],   # user 0: watched 4
                                [1, 0, 0, 0, 1],   # user 1 (tie 0.9 of user 0)
                                [0, 1, 0, 0, 1],   # user 2 (tie 0.2 of user 0)
                                [0, 0, 1, 0, 1]], dtype=np.float32))
    rec = FriendsRecommender(blend=0.01)
    rec.fit(x)
    assert list(rec.recommend(np.array([0]), 2, x[[0]])[0]) == [0, 1]  # unwired: popularity
    rec.use_graph(4, [0, 1, 2, 3], [np.array([1, 2]), np.array([0]), np.array([0]),
                                    np.array([], dtype=np.int64)],
                  [np.array([0.9, 0.2]), np.array([0.9]), np.array([0.2]), np.array([])])
    assert list(rec.recommend(np.array([0]), 3, x[[0]])[0]) == [0, 1, 2]
    assert list(rec.recommend(np.array([3]), 1, x[[3]])[0]) == [0]  # no ties: popularity
    with pytest.raises(ValueError, match="blend"):
        FriendsRecommender(blend=-1)


def test_llm_users_choose_chat_and_post_with_the_fake_model(tmp_path: Path) -> None:
    """LLM brains decide the tick and write chats and posts as structured output: the
    items they mention are catalogue ids the fake model read from the prompt."""
    role = {"name": "llm_social", "brain": {"kind": "llm", "decision_mode": "structured"},
            "memory": {"short_term_window": 6}}
    path = _scenario(tmp_path, {"ticks": 4, "activity": 1.0}, rounds=1, role=role,
                     population={"size": 8, "role": role})
    out = tmp_path / "run"
    run(prepare(load_scenario(path, llm_flag=True), llm="fake"), out)
    events = list(read_trace(out))
    purposes = Counter(e["purpose"] for e in events if e["type"] == "llm_call")
    assert purposes["social_choice"] > 0 and purposes["page"] > 0
    said = [e for e in events if e["type"] in ("chat", "post")]
    assert said and any(e["mentions"] for e in said)
    items = {json.loads(line)["id"] for line in (out / "items.jsonl").read_text().splitlines()}
    assert all(m in items for e in said for m in e["mentions"])
    assert not [e for e in events if e["type"] == "decision_failure"]


def test_a_bad_graph_is_a_load_time_error(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """An edge list naming an unknown user, or a missing file, is refused when the run is
    prepared, in one line naming the scenario and environment.settings, before any work."""
    (tmp_path / "edges.csv").write_text("source,target\n1,2\n1,nobody\n")
    path = _scenario(tmp_path, {"graph": {"kind": "file", "path": "edges.csv"}})
    out = tmp_path / "never"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "environment.settings" in err and "nobody" in err and str(path) in err
    assert not (out / "trace.jsonl").exists()
    path = _scenario(tmp_path, {"graph": {"kind": "file", "path": "missing.csv"}})
    assert main(["run", str(path), "--out", str(out), "--quiet"]) != 0
    assert "missing.csv" in capsys.readouterr().err


def test_the_shipped_social_scenario_runs_a_few_seeded_ticks(
        ml100k: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """scenarios/social.yaml on MovieLens users (fewer users, one round of its ticks)."""
    from tests.shipped import shipped

    path = shipped("social.yaml")
    code = main(["run", str(path), "--data", str(ml100k), "--users", "40", "--out",
                 str(tmp_path / "run"), "--json", "--quiet"])
    assert code == 0, capsys.readouterr().err
    res = json.loads(capsys.readouterr().out)
    assert res["status"] == "completed"
    assert set(res["metrics"]["arms"]) == {"pop", "ease", "friends"}
    graphs = [e for e in read_trace(tmp_path / "run") if e["type"] == "social_graph"]
    assert len(graphs) == 3 and graphs[0]["nodes"] == 40
