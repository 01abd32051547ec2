"""How the trace views describe recommender agents' events (delegations, members' replies,
tool calls, lessons, tasks and answers): one readable line each, tool names before their
(long, clipped) results; a step opened at a team event names the user's role."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulations.cli.main import main
from simulations.inspection.index import open_index
from simulations.inspection.render import describe
from simulations.inspection.step import step_detail
from simulations.record.trace import TraceWriter

TITLES = {"45": "The Crimson Lantern (1995)", "2": "The Distant Kingdom (1996)"}


def _line(**ev: Any) -> str:
    return describe({"v": 1, "seq": 1, "id": "team/r1/u19/p1/rec/x", "arm": "team", **ev},
                    lambda i: TITLES.get(str(i), str(i)), markup=False)


def test_tool_call_names_the_tool_before_a_long_result() -> None:
    line = _line(type="tool_call", agent="macrec/analyst", tool="user_profile", input={},
                 ok=True, result="user 19: " + "likes comedies; " * 40)
    assert line.startswith("macrec/analyst calls user_profile {} -> user 19: likes comedies")
    assert len(line) < 300  # the result is clipped, the tool name is not
    failed = _line(type="tool_call", agent="a", tool="kg_paths", input={"a": "1", "b": "2"},
                   ok=False, result="no path")
    assert failed == 'a calls kg_paths {"a": "1", "b": "2"} -> failed: no path'


def test_delegation_reply_and_lesson_say_who_talks_to_whom() -> None:
    assert _line(type="delegation", kind="consult", manager="manager", member="analyst",
                 message="What do you know?", team="macrec") == (
        "manager asks analyst (consult): “What do you know?”")
    assert _line(type="agent_message", kind="consult", member="analyst", team="macrec",
                 failure=None, text="Candidates 2, 12 fit.") == (
        "analyst replies: “Candidates 2, 12 fit.”")
    assert _line(type="agent_message", member="searcher", failure="invalid JSON twice",
                 text="") == "searcher replies (failed: invalid JSON twice): “”"
    assert _line(type="lesson", member="reflector", store="macrec_lessons",
                 record="shared:macrec_lessons/1", text="Check favourites.") == (
        "reflector writes a lesson to macrec_lessons: Check favourites.")


def test_task_and_answer_with_titles() -> None:
    assert _line(type="agent_task", agent="macrec", kind="team", task="rank",
                 candidates=["45", "2", "9"], context="User: a comedy", item=None,
                 now=None) == (
        "macrec gets task rank: 3 candidates; with the conversation so far")
    assert _line(type="agent_task", agent="r", kind="role", task="rate", candidates=["45"],
                 context=None, item="45", now=5) == (
        "r gets task rate about The Crimson Lantern (1995): 1 candidates")
    assert _line(type="agent_answer", agent="llmrank", task="rank", items=["2", "45"],
                 rating=None, text=None, failure=None) == (
        "llmrank answers rank: The Distant Kingdom (1996); The Crimson Lantern (1995)")
    assert _line(type="agent_answer", agent="r", task="rate", items=[], rating=4.0,
                 text="It fits.", failure="fallback: mean rating") == (
        "r answers rate (failed: fallback: mean rating): rating 4.0, “It fits.”")


def test_step_of_a_team_event_names_the_users_role(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with TraceWriter(tmp_path / "trace.jsonl") as tw:
        where = {"arm": "team", "round": 1, "user": "19", "page": 1}
        tw.emit("delegation", "team/r1/u19/p1/rec/macrec/m1/ask", **where, kind="consult",
                manager="manager", member="analyst", message="What do you know?",
                team="macrec")
        tw.emit("page", "team/r1/u19/p1", **where, role="utility_user", items=["45"],
                recommender="macrec(ease@8)")
        tw.emit("run_end", "run/end", status="completed", reason=None)
    got = step_detail(open_index(tmp_path), "team/r1/u19/p1/rec/macrec/m1/ask")
    assert got["role"] == "utility_user"  # from the page, not None from the delegation
    assert main(["trace", "step", str(tmp_path), "team/r1/u19/p1/rec/macrec/m1/ask"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head == "step team/r1/u19/p1 — agent 19 (utility_user), team round 1"
