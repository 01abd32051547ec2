"""Agents as graphs: the planner changes what an agent does, populations mix roles,
shared memory crosses agents, environments stay out of memory and planning, and the
feed's metrics did not move when it was ported to the environment protocol."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from agents.llm import FakeChatModel
from agents.population import assign_roles
from scenarios.loader import LoadedRole, load_scenario
from scenarios.schema import RoleConfig, Scenario
from simulations.record.trace import read_trace
from simulations.run.runner import prepare, run

REPO = Path(__file__).resolve().parents[1]
Transcript = list[tuple[str, str]]


def _scenario(tmp_path: Path, roles: list[dict[str, Any]], *, users: int = 4,
              env: dict[str, Any] | None = None, llm: bool = True) -> Path:
    """A small synthetic scenario file with inline roles."""
    body: dict[str, Any] = {
        "kind": "scenario", "name": "t", "seed": 3,
        "dataset": {"source": "synthetic",
                    "synthetic": {"n_users": 60, "n_items": 80, "history_mean": 15}},
        "population": {"size": users, "roles": roles},
        "recommenders": [{"name": "pop", "model": "pop"}],
        "environment": env or {"kind": "feed", "items_per_page": 3, "max_pages": 2,
                               "rounds": 1},
    }
    if llm:
        body["llm"] = {"backend": "fake", "model": "fake"}
    tmp_path.mkdir(parents=True, exist_ok=True)
    p = tmp_path / "s.yaml"
    p.write_text(json.dumps(body))  # JSON is YAML
    return p


def _llm_role(name: str, planner: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"kind": "role", "name": name, "brain": {"kind": "llm", "decision_mode":
                                                   "structured"},
            "planner": planner, **more}


def _ids_in(prompt: str) -> list[str]:
    m = re.search(r"by their id \(([^)]*)\)", prompt)
    return [x.strip() for x in m.group(1).split(",")] if m else []


def responder(transcript: Transcript) -> str:
    """A scripted user: watches exactly what its plan shortlisted (nothing without a plan)."""
    prompt = transcript[-1][1]
    if "either a tool call" in prompt:  # ReAct: one look-up, then pick the first item
        if "Observation:" not in prompt:
            first = re.search(r"Items:\n- ([^:]+):", prompt)
            return json.dumps({"thought": "look", "action": "item_info",
                               "input": first.group(1) if first else "?"})
        first = re.search(r"Items:\n- ([^:]+):", prompt)
        return json.dumps({"thought": "ok", "action": "final",
                           "answer": {"shortlist": [first.group(1)] if first else [],
                                      "note": "the first fits"}})
    if "Refer to items only by their id" in prompt:
        plan = re.search(r"the best candidates are ([^.]*)\.", prompt)
        keep = {x.strip() for x in plan.group(1).split(",")} if plan else set()
        return json.dumps({"items": [{"item_id": i, "watch": i in keep,
                                      "rating": 4 if i in keep else None, "reason": "plan"}
                                     for i in _ids_in(prompt)],
                           "feeling": "fine", "leave": False})
    if "How satisfied" in prompt:
        return json.dumps({"satisfaction": 6, "reason": "fine"})
    return "I like what I like."


def _run(path: Path, out: Path, fake: FakeChatModel | None = None) -> list[dict[str, Any]]:
    res = run(prepare(load_scenario(path)), out, chat_model=fake)
    assert res.status == "completed", res
    return list(read_trace(out))


def test_same_agent_same_seed_different_planner_acts_differently(tmp_path: Path) -> None:
    runs = {}
    for kind in ("static", "reactive"):
        scn = _scenario(tmp_path / kind, [{"role": _llm_role("viewer", {"kind": kind}),
                                           "share": 1.0}])
        runs[kind] = _run(scn, tmp_path / kind / "run", FakeChatModel(responses=responder))
    steps = {k: [(e["user"], e["step"]) for e in ev if e["type"] == "plan"]
             for k, ev in runs.items()}
    assert {s for _, s in steps["static"]} == {"decide"}
    assert {s for _, s in steps["reactive"]} == {"tool", "final"}
    watched = {k: sorted((e["user"], e["item"]) for e in ev
                         if e["type"] == "decision" and e["action"] == "watch")
               for k, ev in runs.items()}
    assert watched["static"] == []  # no plan: this scripted user watches nothing
    pages = [e for e in runs["reactive"] if e["type"] == "page"]
    assert watched["reactive"] == sorted((p["user"], p["items"][0]) for p in pages)
    # Planner steps are trace events under the step they belong to.
    tool = next(e for e in runs["reactive"] if e["type"] == "plan" and e["step"] == "tool")
    assert re.fullmatch(r"pop/r1/u\w+/p\d/plan0", tool["id"]) and tool["ok"] is True
    # Tool calls and planner thoughts cost LLM calls, recorded under the same step.
    assert any(e["type"] == "llm_call" and e["purpose"] == "plan:react"
               for e in runs["reactive"])


def test_reflective_lesson_is_remembered_and_used_next_time(tmp_path: Path) -> None:
    prompts: list[str] = []

    def reflective(transcript: Transcript) -> str:
        prompt = transcript[-1][1]
        prompts.append(prompt)
        if "Critique it" in prompt:
            return json.dumps({"ok": False, "lesson": "favour short films"})
        if "Pick the items that fit" in prompt:
            return json.dumps({"shortlist": [], "note": "none"})
        return responder(transcript)

    scn = _scenario(tmp_path, [{"role": _llm_role("viewer", {"kind": "reflective",
                                                             "max_attempts": 1}),
                                "share": 1.0}], users=1)
    events = _run(scn, tmp_path / "run", FakeChatModel(responses=reflective))
    attempts = [p for p in prompts if "Pick the items that fit" in p]
    assert len(attempts) == 2  # two pages, one attempt each
    assert "favour short films" not in attempts[0]
    assert "favour short films" in attempts[1]  # page 2 recalls page 1's lesson
    crit = [e for e in events if e["type"] == "plan" and e["step"] == "critique"]
    assert crit and crit[0]["lesson"] == "favour short films"


def test_mixed_population_roles_shares_and_per_role_metrics(tmp_path: Path) -> None:
    utility = {"kind": "role", "name": "plain"}
    scn = _scenario(tmp_path, [{"role": utility, "share": 0.5},
                               {"role": _llm_role("chatty", {"kind": "static"}),
                                "share": 0.5}], users=6)
    events = _run(scn, tmp_path / "run", FakeChatModel(responses=responder))
    pop = next(e for e in events if e["type"] == "population")
    assert pop["roles"] == {"plain": 3, "chatty": 3}
    role_of = {e["user"]: e["role"] for e in events if e["type"] == "profile"}
    assert sorted(role_of.values()) == ["chatty"] * 3 + ["plain"] * 3
    callers = {e["user"] for e in events if e["type"] == "llm_call"}
    assert callers and all(role_of[u] == "chatty" for u in callers)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    roles = summary["metrics"]["arms"]["pop"]["roles"]
    assert set(roles) == {"plain", "chatty"}
    assert roles["chatty"]["watch_rate"] == 0.0  # the scripted LLM users watch nothing
    assert roles["plain"]["watch_rate"] > 0.0


def test_role_assignment_follows_shares_and_counts() -> None:
    r = [LoadedRole(RoleConfig(name="a"), None, 0.7), LoadedRole(RoleConfig(name="b"), None,
                                                                 0.3)]
    got = assign_roles(list(range(10)), r, seed=1)
    assert sorted(got.values()).count("a") == 7
    assert assign_roles(list(range(10)), r, seed=1) == got  # seeded
    c = [LoadedRole(RoleConfig(name="a"), None, None, 2),
         LoadedRole(RoleConfig(name="b"), None, None, 1)]
    with pytest.raises(ValueError, match="counts sum to 3"):
        assign_roles(list(range(4)), c, seed=1)


def test_shared_memory_is_read_by_another_agent(tmp_path: Path) -> None:
    role = {"kind": "role", "name": "club",
            "memory": {"shared": "club", "long_term": {"embedder": "hash"}}}
    scn = _scenario(tmp_path, [{"role": role, "share": 1.0}], users=6, llm=False,
                    env={"kind": "feed", "items_per_page": 4, "max_pages": 3, "rounds": 1})
    events = _run(scn, tmp_path / "run")
    reads = [e for e in events if e["type"] == "memory" and e["kind"] == "shared"]
    assert reads
    # Somebody read a note somebody else wrote.
    assert any(not note.startswith(f"{e['user']}:") for e in reads for note in e["recalled"])


def test_planners_needing_a_model_are_rejected_for_numeric_brains(tmp_path: Path) -> None:
    from scenarios.loader import ScenarioError

    role = {"kind": "role", "name": "x", "planner": {"kind": "reactive"}}
    scn = _scenario(tmp_path, [{"role": role, "share": 1.0}], llm=False)
    with pytest.raises(ScenarioError, match=r"needs brain\.kind: llm"):
        load_scenario(scn)


def test_shares_must_sum_to_one() -> None:
    with pytest.raises(ValueError, match=r"shares sum to 0\.9"):
        Scenario.model_validate({"name": "x", "recommenders": [{"name": "p", "model": "pop"}],
                                 "population": {"roles": [{"role": "a.yaml", "share": 0.5},
                                                          {"role": "b.yaml", "share": 0.4}]}})


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


# The memory-poisoning measurement (issue 21) attacks the stores themselves, and the
# poisoned-text measurement embeds item texts as the memory stores do; nothing else in
# the engine may reach memory or planning except through the agents.
MEASURES_MEMORY = {"simulations/eval/attack_memory.py", "simulations/eval/attack_text.py"}


def test_environments_never_touch_memory_or_planning() -> None:
    for path in (REPO / "simulations").rglob("*.py"):
        if path.relative_to(REPO).as_posix() in MEASURES_MEMORY:
            assert not _imports(path) & {"planners"}, path
            continue
        assert not _imports(path) & {"memory", "planners"}, path
    for pkg, banned in (("planners", {"agents", "memory", "tools", "simulations"}),
                        ("memory", {"agents", "planners", "tools", "simulations"}),
                        ("tools", {"agents", "planners", "memory", "simulations"})):
        for path in (REPO / pkg).rglob("*.py"):
            assert not _imports(path) & banned, path
    agents = set().union(*(_imports(p) for p in (REPO / "agents").rglob("*.py")))
    assert {"memory", "planners"} <= agents


@pytest.mark.parametrize("name", ["feed_regression", "feed_regression_global"])
def test_feed_metrics_unchanged_by_the_port(name: str, tmp_path: Path) -> None:
    """Same scenario, same seed, same metrics: first those of the pre-port feed (fc0d227),
    re-pinned when issue 9 changed the utility brain (see feed_regression.yaml); the
    per-user split keeps that pin, the default global split has its own (issue 16)."""
    events = _run(REPO / f"tests/data/{name}.yaml", tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    want = json.loads((REPO / f"tests/data/{name}_metrics.json").read_text())
    for arm, m in want["arms"].items():
        assert summary["arms"][arm]["overall"] == m["overall"], arm
        assert summary["arms"][arm]["rounds"] == m["rounds"], arm
    assert {e["type"] for e in events} >= {"page", "decision", "interview", "plan"}


def _pop_error(population: dict[str, Any]) -> str:
    from pydantic import ValidationError

    try:
        Scenario.model_validate({"name": "x", "recommenders": [{"name": "p", "model": "pop"}],
                                 "population": population})
    except ValidationError as e:
        return str(e)
    return ""


def test_mixed_population_inputs_that_cannot_mean_anything_are_errors(tmp_path: Path) -> None:
    both = _pop_error({"role": "a.yaml", "roles": [{"role": "b.yaml", "share": 1.0}]})
    assert "not both" in both
    assert "at least 1 item" in _pop_error({"roles": []})
    # A share too small for the population leaves a role empty: an error at prepare time.
    scn = _scenario(tmp_path, [{"role": {"kind": "role", "name": "a"}, "share": 0.9},
                               {"role": {"kind": "role", "name": "b"}, "share": 0.1}],
                    users=3, llm=False)
    from scenarios.loader import ScenarioError

    with pytest.raises(ScenarioError, match="role 'b' gets none of the 3 users"):
        prepare(load_scenario(scn))


def test_counts_set_the_population_size(tmp_path: Path) -> None:
    body = json.loads(_scenario(tmp_path, [{"role": {"kind": "role", "name": "a"}, "count": 2},
                                           {"role": {"kind": "role", "name": "b"}, "count": 3}],
                                llm=False).read_text())
    del body["population"]["size"]
    p = tmp_path / "counts.yaml"
    p.write_text(json.dumps(body))
    prep = prepare(load_scenario(p))
    assert len(prep.population) == 5
