"""Each planner's control flow, with a scripted language model (the planner's seam):
paths, tool calls, step limits, re-planning on an injected failure, lessons."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.tools import StructuredTool

from planners import PlannerRuntime, PlanRequest, build_planner, initial_state


def _req(agent: str = "a1") -> PlanRequest:
    return PlanRequest(agent=agent, base=f"arm/r1/u{agent}/p1", goal="pick movies",
                       profile="likes Comedy", items=[("m1", "Film 1"), ("m2", "Film 2")],
                       memories=["watched Film 0"], lessons=[])


class Script:
    """A scripted model: answers per purpose from a list, records every prompt."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = {k: list(v) for k, v in answers.items()}
        self.prompts: list[tuple[str, str, str]] = []

    def __call__(self, agent: str, purpose: str, prompt: str) -> str:
        self.prompts.append((agent, purpose, prompt))
        todo = self.answers[purpose]
        return todo.pop(0) if len(todo) > 1 else todo[0]


def _tools(calls: list[str]) -> Callable[[str], dict[str, Any]]:
    def item_info(item: str) -> str:
        """item_info(item): facts about a movie."""
        calls.append(item)
        return f"{item} is a comedy"

    def broken(query: str) -> str:
        """broken(query): always fails."""
        raise RuntimeError("index offline")

    tools = {"item_info": StructuredTool.from_function(item_info, name="item_info"),
             "broken": StructuredTool.from_function(broken, name="broken")}
    return lambda agent: tools


def _run(kind: str, think: Any, steps: tuple[str, ...] = ("decide",),
         **limits: Any) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]], list[str],
                                 list[tuple[str, str]]]:
    emitted: list[tuple[str, dict[str, Any]]] = []
    tool_calls: list[str] = []
    lessons: list[tuple[str, str]] = []
    rt = PlannerRuntime(think=think, tools_for=_tools(tool_calls),
                        emit=lambda a, s: emitted.append((a, s)),
                        on_lesson=lambda a, t: lessons.append((a, t)), **limits)
    out = asyncio.run(build_planner(kind, steps).ainvoke(initial_state([_req()]), context=rt))
    return out["results"], emitted, tool_calls, lessons


def test_static_default_path_needs_no_model() -> None:
    results, emitted, _, _ = _run("static", None)
    assert results["a1"].steps == ["decide"] and results["a1"].shortlist is None
    assert [s["step"] for _, s in emitted] == ["decide"]


def test_static_nir_three_steps_feed_the_decision() -> None:
    think = Script({"plan:summarise_tastes": ["Loves light comedies."],
                    "plan:pick_history": ["Film 0"]})
    results, emitted, _, _ = _run("static", think,
                                  ("summarise_tastes", "pick_history", "decide"))
    r = results["a1"]
    assert r.steps == ["summarise_tastes", "pick_history", "decide"]
    assert "Loves light comedies." in r.guidance and "Film 0" in r.guidance
    assert [p for _, p, _ in think.prompts] == ["plan:summarise_tastes", "plan:pick_history"]
    # Step 2 sees step 1's answer.
    assert "Loves light comedies." in think.prompts[1][2]
    assert [s["step"] for _, s in emitted] == ["summarise_tastes", "pick_history", "decide"]


def test_reactive_calls_a_tool_then_answers() -> None:
    think = Script({"plan:react": [
        json.dumps({"thought": "check m2", "action": "item_info", "input": "m2"}),
        json.dumps({"thought": "done", "action": "final",
                    "answer": {"shortlist": ["m2", "m9"], "note": "m2 is funny"}})]})
    results, emitted, tool_calls, _ = _run("reactive", think)
    r = results["a1"]
    assert tool_calls == ["m2"]
    assert r.shortlist == ["m2"]  # m9 is not on this page
    assert "m2 is funny" in r.guidance
    assert [s["step"] for _, s in emitted] == ["tool", "final"]
    assert emitted[0][1]["observation"] == "m2 is a comedy"
    # The observation is fed back to the model.
    assert "Observation: m2 is a comedy" in think.prompts[1][2]


def test_reactive_stops_at_the_step_limit() -> None:
    think = Script({"plan:react": [json.dumps({"thought": "more", "action": "item_info",
                                               "input": "m1"})]})
    results, emitted, tool_calls, _ = _run("reactive", think, max_steps=3)
    assert len(think.prompts) == 3 and len(tool_calls) == 3
    assert results["a1"].shortlist is None and results["a1"].steps[-1] == "step_limit"
    assert emitted[-1][1] == {"planner": "reactive", "step": "step_limit", "limit": 3}


def test_reactive_invalid_reply_is_an_observation_and_uses_a_step() -> None:
    think = Script({"plan:react": ["I think m1", json.dumps(
        {"action": "final", "answer": {"shortlist": ["m1"]}})]})
    results, emitted, _, _ = _run("reactive", think, max_steps=3)
    assert [s["step"] for _, s in emitted] == ["invalid", "final"]
    assert "Your last reply was invalid" in think.prompts[1][2]
    assert results["a1"].shortlist == ["m1"]


def test_preactive_replans_after_an_injected_failure() -> None:
    think = Script({
        "plan:preactive": [
            json.dumps({"steps": [{"tool": "broken", "input": "comedy"}],
                        "risks": ["the index may be down"]}),
            json.dumps({"steps": [{"tool": "item_info", "input": "m1"}], "risks": []})],
        "plan:decide": [json.dumps({"shortlist": ["m1"], "note": "safe pick"})]})
    results, emitted, tool_calls, _ = _run("preactive", think, max_replans=1)
    steps = [s["step"] for _, s in emitted]
    assert steps == ["plan", "execute", "replan", "execute", "decide"]
    assert emitted[0][1]["risks"] == ["the index may be down"]
    assert emitted[1][1]["ok"] is False and "index offline" in emitted[1][1]["observation"]
    assert "Your previous plan failed" in think.prompts[1][2]
    assert tool_calls == ["m1"]
    assert results["a1"].shortlist == ["m1"]
    assert "item_info(m1): m1 is a comedy" in think.prompts[2][2]


def test_preactive_replanning_is_bounded() -> None:
    think = Script({
        "plan:preactive": [json.dumps({"steps": [{"tool": "broken", "input": "x"}]})],
        "plan:decide": [json.dumps({"shortlist": [], "note": "nothing worked"})]})
    _, emitted, _, _ = _run("preactive", think, max_replans=2)
    steps = [s["step"] for _, s in emitted]
    assert steps.count("replan") == 2 and steps[-1] == "decide"
    assert sum(1 for _, p, _ in think.prompts if p == "plan:preactive") == 3


def test_reflective_retries_with_the_lesson_and_stores_it() -> None:
    think = Script({
        "plan:attempt": [json.dumps({"shortlist": ["m1"], "note": "first"}),
                         json.dumps({"shortlist": ["m2"], "note": "second"})],
        "plan:critique": [json.dumps({"ok": False, "lesson": "prefer comedies"}),
                          json.dumps({"ok": True})]})
    results, emitted, _, lessons = _run("reflective", think, max_attempts=3)
    assert [s["step"] for _, s in emitted] == ["attempt", "critique", "attempt", "critique"]
    assert lessons == [("a1", "prefer comedies")]
    second_attempt = [pr for _, p, pr in think.prompts if p == "plan:attempt"][1]
    assert "prefer comedies" in second_attempt
    assert results["a1"].shortlist == ["m2"]


def test_reflective_attempts_are_bounded() -> None:
    think = Script({"plan:attempt": [json.dumps({"shortlist": ["m1"]})],
                    "plan:critique": [json.dumps({"ok": False, "lesson": "try again"})]})
    results, emitted, _, lessons = _run("reflective", think, max_attempts=2)
    assert [s["step"] for _, s in emitted].count("attempt") == 2
    assert len(lessons) == 2 and results["a1"].shortlist == ["m1"]


def test_a_batch_plans_every_agent() -> None:
    think = Script({"plan:react": [json.dumps({"action": "final",
                                               "answer": {"shortlist": ["m1"]}})]})
    rt = PlannerRuntime(think=think)
    out = asyncio.run(build_planner("reactive").ainvoke(
        initial_state([_req("a1"), _req("a2")]), context=rt))
    assert set(out["results"]) == {"a1", "a2"}
    assert {a for a, _, _ in think.prompts} == {"a1", "a2"}


def test_unknown_planner_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown planner"):
        build_planner("psychic")


def test_tool_arguments_as_text_json_object_or_nothing() -> None:
    def paths(source: str, target: str = "", k: int = 3) -> str:
        """paths(source, target, k=3): test tool."""
        return f"{source}->{target} k={k}"

    tool = StructuredTool.from_function(paths, name="paths")
    rt = PlannerRuntime(tools_for=lambda a: {"paths": tool})
    assert rt.call_tool("a", "paths", "m1") == (True, "m1-> k=3")
    assert rt.call_tool("a", "paths", '{"source": "m1", "target": "m2", "k": 1}') == \
        (True, "m1->m2 k=1")
    assert rt.call_tool("a", "paths", "{not json") == (True, "{not json-> k=3")
    ok, obs = rt.call_tool("a", "paths", "")  # no arguments: source is missing
    assert not ok and "source" in obs
    # A model giving the arguments as an object in its JSON step is understood too.
    think = Script({"plan:react": [
        json.dumps({"thought": "t", "action": "paths", "input": {"source": "m1", "target": "m2"}}),
        json.dumps({"thought": "done", "action": "final", "answer": {"shortlist": ["m1"]}})]})
    emitted: list[dict[str, Any]] = []
    rt = PlannerRuntime(think=think, tools_for=lambda a: {"paths": tool},
                        emit=lambda a, s: emitted.append(s))
    asyncio.run(build_planner("reactive", ("decide",)).ainvoke(initial_state([_req()]),
                                                               context=rt))
    assert emitted[0]["observation"] == "m1->m2 k=3"
