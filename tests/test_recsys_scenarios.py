"""Recommender agents in scenarios: the shipped feed and conversation scenarios, a role and
a team member written by the test itself (YAML only), `recarena roles`, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.llm import FakeChatModel, plausible_reply
from scenarios.loader import SHIPPED_ROLES, ScenarioError, load_scenario
from simulations.cli.main import main
from simulations.record.trace import read_trace
from simulations.run.runner import prepare, run

SCENARIOS = SHIPPED_ROLES.parent
MANAGER = SHIPPED_ROLES / "manager.yaml"


def _run(path: Path, out: Path, users: int | None = None) -> tuple[Any, list[dict[str, Any]]]:
    prep = prepare(load_scenario(path), llm="openai:fake", users=users)
    res = run(prep, out, chat_model=FakeChatModel(responses=plausible_reply))
    return res, list(read_trace(out))


def test_agent_feed_llm_users_meet_agents_beside_a_classic_arm(tmp_path: Path) -> None:
    res, events = _run(SCENARIOS / "agent_feed.yaml", tmp_path / "run")
    assert res.status == "completed"
    assert set(res.metrics["arms"]) == {"ease", "llmrank", "team"}
    for arm in ("llmrank", "team"):
        pages = [e for e in events if e["type"] == "page" and e["arm"] == arm]
        answers = {(e["user"], e["page"]): e["items"] for e in events
                   if e["type"] == "agent_answer" and e.get("arm") == arm}
        assert pages and all(p["recommender"].startswith(("llmrank(ease@8", "macrec(ease@8"))
                             for p in pages)
        # What the user saw is what the agent answered for that page.
        for p in pages:
            assert p["items"] == answers[(p["user"], p["page"])]
    assert {e["member"] for e in events if e["type"] == "delegation"} >= {
        "analyst", "searcher", "reflector"}
    roles = {e["role"] for e in events if e["type"] == "decision" and e["arm"] == "team"}
    assert roles == {"llm_user", "utility_user"}  # LLM users met the team
    assert res.llm["calls"] > 0
    agent_calls = [e for e in events if e["type"] == "llm_call" and "/rec/" in e["id"]]
    # Filed where they happened: arm, round, user and page as in their trace ids.
    assert agent_calls and all(
        e["id"].startswith(f"{e['arm']}/r{e['round']}/u{e['user']}/p{e['page']}/rec/")
        for e in agent_calls)


def test_agent_conversation_same_metrics_as_the_classic_baseline(tmp_path: Path) -> None:
    res, events = _run(SCENARIOS / "agent_conversation.yaml", tmp_path / "run", users=4)
    assert res.status == "completed"
    arms = res.metrics["arms"]
    assert set(arms) == {"ease", "chatrec", "team"}
    assert all(set(m["overall"]) == set(arms["ease"]["overall"]) for m in arms.values())
    recs = [e for e in events if e["type"] == "recommendation" and e["arm"] == "chatrec"]
    assert recs and all(e["understood"]["reply"] for e in recs)
    # Named like the feed's agent arms: the agent over its candidate model, wrapped once.
    assert {e["recommender"] for e in events if e["type"] == "recommendation"} == {
        "conversational(ease)", "chatrec(ease@10)", "macrec(ease@10)"}
    # Later turns carry the conversation so far, the agent's own replies included.
    ctx = [e["context"] for e in events if e["type"] == "agent_task" and e.get("arm") ==
           "chatrec" and e.get("turn") == 2]
    assert ctx and all("You: " in c for c in ctx)
    interp = [e for e in events if e["type"] == "delegation" and e["member"] == "interpreter"]
    assert interp and all(e["arm"] == "team" for e in interp)


def test_a_role_and_a_team_member_written_in_yaml_only(tmp_path: Path) -> None:
    (tmp_path / "era_ranker.yaml").write_text(yaml.safe_dump({
        "kind": "recommender", "name": "era_ranker", "output": "ranking",
        "description": "Ranks by the decades the user liked.",
        "instructions": "Prefer movies from the decades the user rated highly.",
        "tools": ["user_history"],
        "prompts": {"prompt": "ERA RANKER. History:\n{history}\nNotes:\n{notes}\n"
                    "Candidates:\n{candidates}\nAnswer with JSON only: "
                    '{{"ranking": ["ID", "ID"], "reason": "..."}}'}}))
    (tmp_path / "taste_critic.yaml").write_text(yaml.safe_dump({
        "kind": "recommender", "name": "taste_critic", "output": "chat_reply",
        "description": "Says which candidates clash with the user's dislikes.",
        "tools": ["user_profile"]}))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({
        "kind": "scenario", "name": "yaml_only", "seed": 1,
        "dataset": {"source": "synthetic", "synthetic": {"n_users": 40, "n_items": 80}},
        "population": {"size": 3, "role": str(SHIPPED_ROLES / "synthetic_viewer.yaml")},
        "recommenders": [
            {"name": "era", "model": "agent", "agent": "era_ranker.yaml",
             "candidates": {"model": "pop", "n": 6}},
            {"name": "crew", "model": "agent", "candidates": {"model": "pop", "n": 6},
             "team": {"name": "crew", "manager": str(MANAGER),
                      "members": ["taste_critic.yaml"], "max_turns": 2}}],
        "environment": {"kind": "feed", "items_per_page": 3, "max_pages": 1},
        "llm": {"backend": "openai", "model": "fake"}}))
    prep = prepare(load_scenario(tmp_path / "s.yaml"))
    res = run(prep, tmp_path / "run", chat_model=FakeChatModel(responses=plausible_reply))
    events = list(read_trace(tmp_path / "run"))
    assert res.status == "completed" and set(res.metrics["arms"]) == {"era", "crew"}
    era_calls = [e for e in events if e["type"] == "llm_call" and e["agent"] == "era_ranker"]
    assert era_calls and all("ERA RANKER" in c["request"]["messages"][1][1] for c in era_calls)
    asked = [e for e in events if e["type"] == "delegation" and e["arm"] == "crew"]
    assert asked and {e["member"] for e in asked} == {"taste_critic"}
    assert any(e["type"] == "tool_call" and e["agent"] == "crew/taste_critic"
               and e["tool"] == "user_profile" for e in events)


def test_roles_new_scaffolds_validate_and_run(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from agents.recsys.prompts import DEFAULTS
    from scenarios.recsys_loader import load_recommender_role

    for output in ("ranking", "rating", "explanation", "chat_reply", "delegation"):
        assert main(["roles", "new", f"r_{output}", "--kind", "recommender", "--output",
                     output, "--dir", str(tmp_path)]) == 0
        role = load_recommender_role(tmp_path / f"r_{output}.yaml")
        assert role.prompts.given() == DEFAULTS[output]  # the scaffold spells the defaults
        # Its comment shows where it goes, one YAML line to copy (a manager only in a team).
        text = (tmp_path / f"r_{output}.yaml").read_text()
        use = next(line[3:] for line in text.splitlines()
                   if line.startswith(("#   - ", "#   manager: ")))
        got = yaml.safe_load(use)
        got = got[0] if isinstance(got, list) else got
        path = str(tmp_path / f"r_{output}.yaml")
        assert got == ({"manager": path} if output == "delegation" else {
            "name": "x", "model": "agent", "agent": path,
            "candidates": {"model": "ease", "n": 20}})
    assert main(["roles", "new", "viewer", "--dir", str(tmp_path)]) == 0
    assert main(["validate", *map(str, sorted(tmp_path.glob("*.yaml")))]) == 0
    assert main(["roles", "new", "viewer", "--dir", str(tmp_path)]) == 2  # no overwrite
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({
        "kind": "scenario", "name": "scaffolded", "seed": 2,
        "dataset": {"source": "synthetic", "synthetic": {"n_users": 30, "n_items": 60}},
        "population": {"size": 2, "role": "viewer.yaml"},
        "recommenders": [{"name": "new", "model": "agent", "agent": "r_ranking.yaml",
                          "candidates": {"model": "pop", "n": 5}},
                         {"name": "team", "model": "agent", "candidates": {"model": "pop"},
                          "team": {"manager": "r_delegation.yaml",
                                   "members": ["r_chat_reply.yaml", "r_rating.yaml"]}}],
        "environment": {"kind": "feed", "items_per_page": 2, "max_pages": 1},
        "llm": {"backend": "openai", "model": "fake"}}))
    res = run(prepare(load_scenario(tmp_path / "s.yaml")), tmp_path / "run",
              chat_model=FakeChatModel(responses=plausible_reply))
    assert res.status == "completed" and res.metrics["arms"]["new"]["overall"]["watch_rate"] \
        is not None
    events = list(read_trace(tmp_path / "run"))
    assert {e["member"] for e in events if e["type"] == "delegation"} == {
        "r_chat_reply", "r_rating"}


def test_roles_list_one_line_per_shipped_role(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["roles", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = {line.split()[0]: line.split()[1:3] for line in lines}
    for n in ("manager", "analyst", "searcher", "reflector", "interpreter", "llmrank",
              "chatrec", "llm_user", "utility_user", "macrec"):
        assert n in names
    assert names["llmrank"] == ["recommender", "ranking"]
    assert names["manager"] == ["recommender", "delegation"]
    assert names["macrec"][0] == "team"
    assert len(lines) == len(list(SHIPPED_ROLES.glob("*.yaml"))) + 1


@pytest.mark.parametrize(("text", "line", "msg"), [
    ("kind: recommender\nname: x\noutput: ranked\n", 3, "output: Input should be 'ranking'"),
    ("kind: recommender\nname: x\noutput: rating\nprompts:\n  prompt: 'rate {item} "
     "for {target}'\n", 5, "prompts.prompt: variable(s) target not available"),
    ("kind: recommender\nname: x\noutput: rating\nprompts:\n  scored_item: 'x'\n", 5,
     "prompts.scored_item: output 'rating' has no template 'scored_item'"),
    (f"kind: team\nmanager: {MANAGER}\nmembers:\n  - gone.yaml\n", 4,
     "members.0: role file not found"),
    # A mapping member is read as {role, when}: its own error, not "should be a string".
    (f"kind: team\nmanager: {MANAGER}\nmembers:\n  - {{role: x.yaml, when: sometimes}}\n", 4,
     "members.0.when: Input should be 'consult', 'before' or 'after'"),
    # A user role named as a member: the team's line is wrong, not the user role file.
    (f"kind: team\nmanager: {MANAGER}\nmembers:\n  - {SHIPPED_ROLES / 'utility_user.yaml'}\n",
     4, "members.0: a team member must be a recommender role (kind: recommender); "),
    ("kind: scenario\nname: s\nrecommenders:\n  - name: a\n    model: agent\n"
     f"    agent: {SHIPPED_ROLES / 'critic.yaml'}\n", 6,
     "recommenders.0.agent: expected a team (kind: team) or a recommender role"),
])
def test_bad_recommender_files_exit_2_with_file_line_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int,
        msg: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{f}:{line}: {msg}") and "\n" not in err


def test_agent_arm_needs_a_model_and_exactly_one_agent(tmp_path: Path) -> None:
    base = {"kind": "scenario", "name": "s",
            "recommenders": [{"name": "a", "model": "agent",
                              "agent": str(SHIPPED_ROLES / "llmrank.yaml")}]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(base))
    with pytest.raises(ScenarioError, match=r"s.yaml:\d+: recommenders.0.agent: recommender "
                       "role 'llmrank' has no llm: block"):
        load_scenario(tmp_path / "s.yaml")
    assert load_scenario(tmp_path / "s.yaml", llm_flag=True).agents["a"].config.name == \
        "llmrank"
    base["recommenders"][0]["team"] = {"manager": str(MANAGER), "members": []}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(base))
    with pytest.raises(ScenarioError, match="exactly one of agent"):
        load_scenario(tmp_path / "s.yaml")


def test_llm_users_hear_what_the_agent_says(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({
        "kind": "scenario", "name": "talk", "seed": 4,
        "dataset": {"source": "synthetic", "synthetic": {"n_users": 60, "n_items": 120}},
        "population": {"size": 3, "role": {"kind": "role", "name": "talker",
                                           "brain": {"kind": "llm"}}},
        "recommenders": [{"name": "chatrec", "model": "agent",
                          "agent": str(SHIPPED_ROLES / "chatrec.yaml"),
                          "candidates": {"model": "pop", "n": 6}}],
        "environment": {"kind": "conversation",
                        "conversation": {"items_per_turn": 2, "max_turns": 2}},
        "llm": {"backend": "openai", "model": "fake"}}))
    fake = FakeChatModel(responses=plausible_reply)
    res = run(prepare(load_scenario(tmp_path / "s.yaml")), tmp_path / "run", chat_model=fake)
    assert res.status == "completed"
    turns = [t[-1][1] for t in fake.transcripts if '"accept": "ID or null"' in t[-1][1]]
    assert turns and all("The recommender says: " in t for t in turns)


def test_agent_runs_replay_exactly_without_a_model(tmp_path: Path) -> None:
    res, first = _run(SCENARIOS / "agent_feed.yaml", tmp_path / "a", users=2)
    prep = prepare(load_scenario(SCENARIOS / "agent_feed.yaml"), llm="openai:fake", users=2)
    again = run(prep, tmp_path / "b", replay=str(tmp_path / "a"))
    second = list(read_trace(tmp_path / "b"))
    assert again.status == "completed" and again.llm["cached_calls"] == again.llm["calls"]

    def answers(events: list[dict[str, Any]]) -> list[Any]:
        return [(e["id"], e["items"], e["text"]) for e in events if e["type"] == "agent_answer"]

    assert answers(first) and answers(first) == answers(second)
    assert again.metrics["arms"] == res.metrics["arms"]
