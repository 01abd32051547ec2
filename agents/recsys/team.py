"""A MACRec-style team as a LangGraph graph:

    START -> interpret -> recall -> manage <-> delegate ; manage -> finish -> reflect -> END

- ``interpret``: members that act ``before`` (an Interpreter) turn the conversation into a
  task in words, which the manager and members then get as ``{task}``;
- ``recall``: lessons from the team's shared memory;
- ``manage``: the manager decides, as a structured answer (``Delegation``: delegate to a
  member with a message, or finish with the answer), or with a base model by scoring the
  members' names and ``finish`` as the next word. Never by parsing bracket actions;
- ``delegate``: the member runs its own role graph (tools, memory) and reports back;
  at most ``max_turns`` delegations per task;
- ``finish``: the team's answer (ranking / rating / explanation) from the manager's final
  decision; base models score each candidate with the manager's ``scored_item``;
- ``reflect``: members that act ``after`` (a Reflector) judge the attempt; their lesson is
  written to the team's shared memory, where later tasks recall it.

Delegations, members' messages and lessons are trace events (``delegation``,
``agent_message``, ``lesson``), beside the members' ``tool_call`` and ``llm_call`` events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field

from agents.recsys.prompts import render
from agents.recsys.role import (
    REPORT_CHARS,
    RoleAgent,
    RoleAnswer,
    Task,
    cand_line,
    task_text,
)
from agents.recsys.runtime import RecRuntime
from scenarios.recsys_loader import LoadedTeam

__all__ = ["Delegation", "TeamAgent"]


class Delegation(BaseModel):
    """The manager's decision at each turn."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["delegate", "finish"]
    member: str = ""
    message: str = ""
    ranking: list[str] = []
    rating: float | None = Field(None, ge=1, le=5)
    explanation: str = ""


class TeamState(TypedDict):
    task: Task
    lessons: list[str]
    notes: list[str]
    turns: int
    decision: Delegation | None
    answer: RoleAnswer | None


@dataclass(frozen=True)
class TeamCtx:
    """The team graph's runtime context (LangGraph wants a dataclass)."""

    team: TeamAgent


class TeamAgent:
    """A manager and its members; ``run(task)`` walks the team graph for one task."""

    def __init__(self, team: LoadedTeam, rt: RecRuntime) -> None:
        self.team, self.rt = team, rt
        name = team.config.name
        self.manager = RoleAgent(team.manager.config, rt, f"{name}/{team.manager.config.name}")
        self.members: dict[str, tuple[RoleAgent, str]] = {
            m.config.name: (RoleAgent(m.config, rt, f"{name}/{m.config.name}"), when)
            for m, when in team.members}
        self.consult = [n for n, (_, w) in self.members.items() if w == "consult"]
        mem = team.config.memory
        self.shared = rt.shared_memory(mem.shared, mem.embedder) if mem.shared else None
        self.graph = _build_graph()
        self.step = 0
        self._msg = 0  # messages in the current task (trace ids)

    def run(self, task: Task) -> RoleAnswer:
        self._msg = 0
        with self.rt.filed(f"{task.base}/{self.team.config.name}", task.where):
            out = self.graph.invoke({"task": task, "lessons": [], "notes": [], "turns": 0,
                                     "decision": None, "answer": None},
                                    context=TeamCtx(self))
        self.step += 1
        answer: RoleAnswer = out["answer"]
        return answer

    def members_text(self) -> str:
        return "\n".join(f"- {n}: {self.members[n][0].role.description or n}"
                         for n in self.consult)

    def values(self, state: TeamState) -> dict[str, Any]:
        t = state["task"]
        v = self.manager.values(t, state["notes"], state["lessons"])
        v["members"] = self.members_text()
        return v

    def ask_member(self, name: str, task: Task, message: str, kind: str) -> str:
        agent, _ = self.members[name]
        self._msg += 1
        base = f"{task.base}/{self.team.config.name}/m{self._msg}"
        self.rt.note("delegation", f"{base}/ask", task.where, team=self.team.config.name,
                     manager=self.manager.role.name, member=name, kind=kind, message=message)
        sub = task.model_copy(update={"kind": kind, "message": message, "base": base})
        ans = agent.run(sub)
        text = (ans.text or ans.failure or "").strip()
        self.rt.note("agent_message", f"{base}/reply", task.where, team=self.team.config.name,
                     member=name, kind=kind, text=text[:2000], failure=ans.failure)
        return text


# ------------------------------------------------------------------ nodes


def _interpret(state: TeamState, runtime: Runtime[TeamCtx]) -> dict[str, Any]:
    tm, t = runtime.context.team, state["task"]
    before = [n for n, (_, w) in tm.members.items() if w == "before"]
    if not before or not t.context.strip():
        return {}
    task = t
    for name in before:
        text = tm.ask_member(name, task, "turn the conversation into a recommendation task "
                             "in one sentence", "interpret")
        if text:
            task = task.model_copy(update={"message": f"{task_text(t, len(t.candidates))}. "
                                                      f"The user wants: {text[:400]}"})
    return {"task": task}


def _recall(state: TeamState, runtime: Runtime[TeamCtx]) -> dict[str, Any]:
    tm, t = runtime.context.team, state["task"]
    top_k = tm.team.config.memory.top_k
    if tm.shared is None or not top_k or len(tm.shared) == 0:
        return {}
    hits = tm.shared.read(task_text(t, len(t.candidates)) + " " + t.context, top_k,
                          now_step=tm.step)
    lessons = [h.record.text for h in hits]
    tm.rt.note("memory", f"{t.base}/{tm.team.config.name}/lessons", t.where,
               team=tm.team.config.name, op="read", kind="shared", store=tm.shared.name,
               recalled=lessons)
    return {"lessons": lessons}


def _manage(state: TeamState, runtime: Runtime[TeamCtx]) -> dict[str, Any]:
    tm, t = runtime.context.team, state["task"]
    mgr = tm.manager
    v = tm.values(state)
    if state["turns"] >= tm.team.config.max_turns:
        return {"decision": None}
    if mgr.brain.scored:
        left = [n for n in tm.consult if f"[{n}]" not in "\n".join(state["notes"])]
        options = [f" {n}" for n in left] + [" finish"]
        lp = mgr.brain.score(render(mgr.role, "scored", v), options, "delegate:scored")
        pick = options[max(range(len(options)), key=lambda j: (lp[j], -j))].strip()
        if pick == "finish":
            return {"decision": Delegation(action="finish")}
        return {"decision": Delegation(action="delegate", member=pick, message=v["task"])}
    cat = tm.rt.library.world.catalog
    allowed = {cat.item_ids[i] for i in t.candidates}

    def check(d: Delegation) -> None:
        if d.action == "delegate" and d.member not in tm.consult:
            raise ValueError(f"member {d.member!r} is not in the team; members: "
                             f"{', '.join(tm.consult)}")
        bad = [x for x in d.ranking if x not in allowed]
        if d.action == "finish" and bad:
            raise ValueError(f"unknown ids {', '.join(bad[:5])}; use only the candidates' ids")

    res = mgr.brain.ask(render(mgr.role, "system", v), render(mgr.role, "prompt", v),
                        Delegation, "delegate", check=check)
    if res.value is None:
        tm.rt.note("decision_failure", f"{t.base}/{tm.team.config.name}/manage"
                   f"{state['turns']}", t.where, team=tm.team.config.name,
                   purpose="delegate", error=res.error, raw=res.raw, attempts=res.attempts)
    return {"decision": res.value}


def _route(state: TeamState, runtime: Runtime[TeamCtx]) -> str:
    d = state["decision"]
    return "delegate" if d is not None and d.action == "delegate" else "finish"


def _delegate(state: TeamState, runtime: Runtime[TeamCtx]) -> dict[str, Any]:
    tm, d = runtime.context.team, state["decision"]
    assert d is not None
    text = tm.ask_member(d.member, state["task"], d.message or "report what helps", "consult")
    cap = REPORT_CHARS[tm.manager.brain.mode]
    return {"notes": [*state["notes"], f"[{d.member}] {text[:cap]}"],
            "turns": state["turns"] + 1}


def _finish(state: TeamState, runtime: Runtime[TeamCtx]) -> dict[str, Any]:
    tm, t, d = runtime.context.team, state["task"], state["decision"]
    mgr, cat = tm.manager, tm.rt.library.world.catalog
    v = tm.values(state)
    why = ("the manager gave no usable answer within "
           f"{tm.team.config.max_turns} turns") if d is None or d.action != "finish" else None
    if t.kind == "rank":
        if mgr.brain.scored:
            return {"answer": RoleAnswer(ranking=mgr.score_items(t, v, "scored_item"))}
        ids = [cat.index[x] for x in dict.fromkeys(d.ranking if d and not why else [])]
        rest = [i for i in t.candidates if i not in ids]
        fail = why or (None if ids else "the manager finished without a ranking")
        return {"answer": RoleAnswer(ranking=ids + rest, text=d.explanation if d else "",
                                     failure=fail)}
    if t.kind == "rate":
        if mgr.brain.scored and t.item is not None:
            lp = mgr.brain.score(render(mgr.role, "scored_item", v), (" yes", " no"),
                                 "rate:scored")
            p_yes = 1.0 / (1.0 + math.exp(lp[1] - lp[0]))
            # A base model cannot be asked for stars reliably: its yes-probability is
            # mapped linearly onto 1-5 (documented, a plumbing path).
            return {"answer": RoleAnswer(rating=round(1.0 + 4.0 * p_yes, 4))}
        if d is not None and not why and d.rating is not None:
            return {"answer": RoleAnswer(rating=d.rating, text=d.explanation)}
        mean = float(tm.rt.library.world.item_mean[t.item]) if t.item is not None else 3.0
        return {"answer": RoleAnswer(rating=min(5.0, max(1.0, mean)),
                                     failure=why or "the manager finished without a rating")}
    if mgr.brain.scored:
        text = mgr.brain.say(render(mgr.role, "system", v), render(mgr.role, "prompt", v),
                             "explain")
        return {"answer": RoleAnswer(text=text[:600])}
    text = d.explanation if d is not None and not why else ""
    return {"answer": RoleAnswer(text=text, failure=None if text else
                                 (why or "the manager finished without an explanation"))}


def _reflect(state: TeamState, runtime: Runtime[TeamCtx]) -> dict[str, Any]:
    tm, t, ans = runtime.context.team, state["task"], state["answer"]
    after = [n for n, (_, w) in tm.members.items() if w == "after"]
    if not after or ans is None:
        return {}
    said = (f"ranked {', '.join(cand_line(tm.manager, i) for i in ans.ranking[:t.k])}"
            if t.kind == "rank" else f"rating {ans.rating}" if t.kind == "rate" else ans.text)
    attempt = f"{said}{'; failure: ' + ans.failure if ans.failure else ''}"
    for name in after:
        sub = t.model_copy(update={"answer": attempt, "notes": state["notes"]})
        lesson = tm.ask_member(name, sub, "judge this attempt and give one lesson for next "
                               "time", "reflect")
        if lesson and tm.shared is not None:
            rec = tm.shared.write(name, lesson[:500], step=tm.step,
                                  round=int(t.where.get("round", 0) or 0), kind="lesson")
            tm.rt.note("lesson", f"{t.base}/{tm.team.config.name}/{name}_lesson{tm.step}",
                       t.where, team=tm.team.config.name, member=name,
                       store=tm.shared.name, record=rec.id, text=lesson[:500])
    return {}


def _build_graph() -> CompiledStateGraph[TeamState, TeamCtx, TeamState, TeamState]:
    g: StateGraph[TeamState, TeamCtx, TeamState, TeamState] = StateGraph(
        TeamState, context_schema=TeamCtx)
    for name, fn in (("interpret", _interpret), ("recall", _recall), ("manage", _manage),
                     ("delegate", _delegate), ("finish", _finish), ("reflect", _reflect)):
        g.add_node(name, fn)
    g.add_edge(START, "interpret")
    g.add_edge("interpret", "recall")
    g.add_edge("recall", "manage")
    g.add_conditional_edges("manage", _route, ["delegate", "finish"])
    g.add_edge("delegate", "manage")
    g.add_edge("finish", "reflect")
    g.add_edge("reflect", END)
    return g.compile()
