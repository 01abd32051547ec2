"""End to end: every shipped scenario runs a few seeded steps; runs are deterministic;
retraining, scripted events and failures show up in the trace."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from agents.graph import build_agent_graph
from agents.llm import FakeChatModel, plausible_reply
from agents.setup import missing_extra
from scenarios.loader import LoadedScenario, load_scenario
from simulations.record.trace import read_trace, strip_volatile
from simulations.run.runner import RunError, prepare, run
from tests.shipped import shipped

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(shipped().glob("*.yaml"))


def small(loaded: LoadedScenario, **env: Any) -> LoadedScenario:
    scn = loaded.scenario
    env = {"rounds": 2, "max_pages": 2, **env}
    new = scn.model_copy(update={
        "environment": scn.environment.model_copy(update=env),
        "events": [e for e in scn.events if e.at_round <= env["rounds"]],
    })
    return dataclasses.replace(loaded, scenario=new)


def run_small(loaded: LoadedScenario, out: Path, users: int = 6, data: str | None = None,
              seed: int | None = None, llm: str | None = None,
              chat_model: Any = None) -> list[dict[str, Any]]:
    prep = prepare(loaded, users=users, data=data, seed=seed, llm=llm)
    res = run(prep, out, chat_model=chat_model)
    assert res.status == "completed"
    return list(read_trace(out))


def test_agent_graph_has_the_design_nodes() -> None:
    nodes = set(build_agent_graph().get_graph().nodes)
    assert {"perceive", "recall", "plan", "act", "remember"} <= nodes


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenarios_run(path: Path, tmp_path: Path, ml100k: Path) -> None:
    loaded = load_scenario(path)
    for r in loaded.roles:
        missing = missing_extra(r.config, r.config.llm or loaded.scenario.llm)
        if missing:
            pytest.skip(missing)
    is_llm = any(r.config.brain.kind == "llm" for r in loaded.roles)
    # LLM roles run the real local model (and MiniLM memory): keep them to a few steps.
    loaded = small(loaded, rounds=1 if is_llm else 2, max_pages=1 if is_llm else 2)
    data = str(ml100k) if loaded.scenario.dataset.source == "files" else None
    users = 1 if is_llm else 6
    if loaded.scenario.environment.kind == "social":  # a graph needs a few users to tie
        users = 4 if is_llm else 40
    llm, fake = None, None
    if loaded.agents:
        # Recommender agents answer through the fake model here (a page of a team on the
        # local model takes minutes; tests/test_recsys_agents.py runs it once), and mixed
        # populations need a user per role.
        llm, fake = "openai:fake", FakeChatModel(responses=plausible_reply)
        users = max(users, len(loaded.roles))
    events = run_small(loaded, tmp_path / "run", users=users, data=data, llm=llm,
                       chat_model=fake)
    types = {e["type"] for e in events}
    assert events[-1]["type"] == "run_end" and events[-1]["status"] == "completed"
    assert {"run_start", "profile", "metric", "run_end"} <= types
    if loaded.scenario.environment.kind == "social":  # tests/test_social.py checks the rest
        assert {"social_graph", "tick", "social_choice"} <= types
        assert "plan" in types or "page" not in types  # pages are planned, choices not
        return
    assert "plan" in types
    if loaded.scenario.environment.kind == "conversation":
        assert {"conversation_start", "utterance", "recommendation", "verdict",
                "conversation_end"} <= types
        return
    assert {"page", "decision", "interview", "session_end"} <= types
    ipp = loaded.scenario.environment.items_per_page
    shown: dict[tuple[str, str], list[str]] = {}
    for e in (e for e in events if e["type"] == "page"):
        assert 1 <= len(e["items"]) <= ipp
        assert e["page"] <= loaded.scenario.environment.max_pages
        shown.setdefault((e["arm"], e["user"]), []).extend(e["items"])
    # Never the same item twice to one user within an arm, across pages and rounds.
    for items in shown.values():
        assert len(items) == len(set(items))
    arms = {r.name for r in loaded.scenario.recommenders}
    assert {e["arm"] for e in events if e["type"] == "page"} == arms
    metrics = [e for e in events if e["type"] == "metric" and e["round"] is None]
    for m in metrics:
        if m["value"] is not None and m["name"] in ("watch_rate", "coverage", "gini"):
            assert 0.0 <= m["value"] <= 1.0
    for f in ("manifest.json", "summary.json"):
        assert json.loads((tmp_path / "run" / f).read_text())["seed"] == loaded.scenario.seed


def test_profiles_in_trace_have_traits_and_tastes(tmp_path: Path) -> None:
    events = run_small(small(load_scenario(shipped("quickstart.yaml"))), tmp_path / "r")
    prof = [e for e in events if e["type"] == "profile"]
    assert len(prof) == 6
    for p in prof:
        assert set(p["traits"]) == {"activity", "conformity", "diversity"}
        assert all(1 <= v <= 3 for v in p["traits"].values())
        assert set(p["tastes"]) >= {"liked_genres", "disliked_genres", "liked_items"}


def test_same_seed_same_trace_other_seed_differs(tmp_path: Path) -> None:
    loaded = small(load_scenario(shipped("quickstart.yaml")))

    def lines(out: Path, seed: int) -> list[str]:
        run_small(loaded, out, seed=seed)
        return [json.dumps(strip_volatile(json.loads(x)), sort_keys=True)
                for x in (out / "trace.jsonl").read_text().splitlines()]

    a, b, c = lines(tmp_path / "a", 1), lines(tmp_path / "b", 1), lines(tmp_path / "c", 2)
    assert a == b
    assert a != c


def test_retraining_adds_simulated_watches(tmp_path: Path) -> None:
    loaded = small(load_scenario(shipped("quickstart.yaml")), rounds=3)
    events = run_small(loaded, tmp_path / "r", users=20)
    retrains = [e for e in events if e["type"] == "retrain"]
    assert [e["round"] for e in retrains] == [1, 2]  # ease only, not after the last round
    assert all(e["arm"] == "ease" for e in retrains)
    watched_r1 = sum(1 for e in events if e["type"] == "decision" and e["arm"] == "ease"
                     and e["round"] == 1 and e["action"] == "watch")
    assert retrains[0]["added"] == watched_r1 > 0
    assert retrains[1]["interactions"] > retrains[0]["interactions"]


def test_add_items_withholds_until_release(tmp_path: Path) -> None:
    loaded = load_scenario(shipped("quickstart.yaml"))  # 20 items arrive in round 3
    loaded = small(loaded, rounds=3, max_pages=5)
    events = run_small(loaded, tmp_path / "r", users=30)
    released = next(e for e in events if e["type"] == "event" and e["arm"] == "random")
    assert released["round"] == 3 and len(released["items"]) == 20
    new = set(released["items"])
    before = {i for e in events if e["type"] == "page" and e["round"] < 3 for i in e["items"]}
    after = {i for e in events if e["type"] == "page" and e["round"] == 3
             and e["arm"] == "random" for i in e["items"]}
    assert not before & new
    assert after & new  # the random arm does show some new arrivals


def test_switch_recommender_event(tmp_path: Path) -> None:
    loaded = small(load_scenario(shipped("quickstart.yaml")))
    scn = loaded.scenario.model_validate({
        **loaded.scenario.model_dump(),
        "events": [{"action": "switch_recommender", "at_round": 2, "recommender": "pop",
                    "model": "random"}],
    })
    events = run_small(dataclasses.replace(loaded, scenario=scn), tmp_path / "r")
    recs = {(e["round"], e["recommender"]) for e in events
            if e["type"] == "page" and e["arm"] == "pop"}
    assert recs == {(1, "pop"), (2, "random")}


def test_failure_leaves_readable_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.recommenders import base

    calls = {"n": 0}
    original = base.Recommender.recommend

    def flaky(self: base.Recommender, *a: Any, **k: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("boom")
        return original(self, *a, **k)

    monkeypatch.setattr(base.Recommender, "recommend", flaky)
    loaded = small(load_scenario(shipped("quickstart.yaml")))
    with pytest.raises(RunError, match="boom"):
        run(prepare(loaded, users=4), tmp_path / "r")
    events = read_trace(tmp_path / "r")
    assert events[0]["type"] == "run_start"
    assert events[-1]["type"] == "run_end" and events[-1]["status"] == "failed"
    assert any(e["type"] == "page" for e in events)
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["status"] == "failed"
