"""One recommender role as a LangGraph graph:

    START -> recall -> gather -> answer -> END

- ``recall``: lessons from the role's shared memory (the team's collaborative memory);
- ``gather``: tool calls, bound to the task's user and clock. ``static`` planner: each of
  the role's tools once with defaults (item tools on the task's item or its first
  candidates, search tools on the conversation); ``reactive``: ReAct over the tools with
  the planners' subgraph (chat models; base models fall back to the static path);
- ``answer``: the role's output type, as validated JSON (chat models) or read from
  next-token scores over fixed options (base models), never by parsing free text.

Every tool call (with its result), planner step and LLM call is a trace event under the
task's trace id. Failures fall back (candidate order, the item's mean rating) and say so.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field

from agents.recsys.prompts import render
from agents.recsys.runtime import RecBrain, RecRuntime
from agents.toolbox import build_tools, offered
from scenarios.recsys import RecommenderRole
from tools.data_model import item_note
from tools.history import describe_user, history_lines

if TYPE_CHECKING:
    from agents.recsys.reasoned import Reasoned

__all__ = ["NOTE_CHARS", "REPORT_CHARS", "RoleAgent", "RoleAnswer", "Task", "cand_line"]

TaskKind = Literal["rank", "rate", "explain", "consult", "interpret", "reflect"]
_ITEM_TOOLS = ("item_info", "similar_items", "kg_neighbours", "kg_shared")
_QUERY_TOOLS = ("search_catalog", "semantic_search")
_STARS = (" 1", " 2", " 3", " 4", " 5")
# Characters of one tool result in a prompt, and of a member's report to its manager.
# Base models (scored mode) get less: they read prompts as plumbing, and on a 2-core CPU a
# prompt costs about as many seconds as it has hundreds of tokens (docs/benchmarks.md,
# "Shipped scenarios on the local model").
NOTE_CHARS = {"structured": 800, "scored": 300}
REPORT_CHARS = {"structured": 1200, "scored": 400}


class Task(BaseModel):
    """What one role is asked: a protocol request, or a manager's message to a member."""

    model_config = ConfigDict(frozen=True)

    kind: TaskKind
    user: int
    base: str  # trace-id prefix
    where: dict[str, Any] = {}
    now: int | None = None
    candidates: list[int] = []
    k: int = 10
    item: int | None = None
    context: str = ""
    message: str = ""  # the task in words (a manager's message, an interpreter's task)
    notes: list[str] = []  # what others found out (members' reports)
    answer: str = ""  # a finished attempt, for a reflector


class RoleAnswer(BaseModel):
    ranking: list[int] = []
    rating: float | None = None
    text: str = ""
    reason: str = ""
    failure: str | None = None


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RankReply(_Reply):
    ranking: list[str] = Field(min_length=1)
    reason: str = ""


class RateReply(_Reply):
    rating: float = Field(ge=1, le=5)
    explanation: str = ""


class ExplainReply(_Reply):
    explanation: str = Field(min_length=1)


class ChatOut(_Reply):
    reply: str = Field(min_length=1)
    ranking: list[str] = []


class RoleState(TypedDict):
    task: Task
    lessons: list[str]
    notes: list[str]
    answer: RoleAnswer | None


@dataclass(frozen=True)
class RoleCtx:
    """The role graph's runtime context (LangGraph wants a dataclass)."""

    agent: RoleAgent


def cand_line(agent: RoleAgent, i: int) -> str:
    cat = agent.rt.library.world.catalog
    year = cat.years[i]
    title = f"{cat.titles[i]} ({year})" if year else cat.titles[i]
    line = f"{cat.item_ids[i]}: {title}, {', '.join(cat.genres[i]) or 'unclassified'}"
    note = item_note(cat, i)
    return f"{line}; {note}" if note else line


def task_text(t: Task, n: int) -> str:
    if t.message:
        return t.message
    return {"rank": f"recommend: rank the {n} candidates and keep the best {t.k}",
            "rate": "predict the user's rating of the movie",
            "explain": "explain the recommendation of the movie to the user",
            "consult": "report what you know that helps", "interpret": "state the user's "
            "request as a task", "reflect": "judge the finished attempt; give one lesson"}[t.kind]


def _ids_check(allowed: set[str]) -> Any:
    def check(v: RankReply | ChatOut) -> None:
        bad = [x for x in v.ranking if x not in allowed]
        if bad:
            raise ValueError(f"unknown ids {', '.join(bad[:5])}; use only the candidates' ids")
    return check


class RoleAgent:
    """One recommender role; ``run(task)`` walks the role's graph for one task."""

    def __init__(self, role: RecommenderRole, rt: RecRuntime, agent: str) -> None:
        self.role, self.rt, self.agent = role, rt, agent
        self._brain: RecBrain | None = None
        self.graph = _build_graph()
        # reasoning: / retrieval: / ranker: (agents/recsys/reasoned.py)
        self.reasoned: Reasoned | None = None
        if role.reasoning or role.retrieval or role.ranker != "llm":
            from agents.recsys.reasoned import Reasoned

            self.reasoned = Reasoned(self)
        self.shared = (rt.shared_memory(role.memory.shared, role.memory.embedder)
                       if role.memory.shared else None)
        self._lesson_step = 0

    @property
    def brain(self) -> RecBrain:
        """The role's model, made on first use: a rule-only role never needs one."""
        if self._brain is None:
            self._brain = RecBrain(self.role, self.rt, self.agent)
        return self._brain

    def run(self, task: Task) -> RoleAnswer:
        with self.rt.filed(f"{task.base}/{self.role.name}", task.where):
            out = self.graph.invoke({"task": task, "lessons": [], "notes": [],
                                     "answer": None}, context=RoleCtx(self))
        answer: RoleAnswer = out["answer"]
        return answer

    # -------------------------------------------------------------- prompt variables

    def values(self, t: Task, notes: list[str], lessons: list[str]) -> dict[str, Any]:
        lib = self.rt.library
        past = lib.histories().ratings(t.user, t.now)
        attrs = lib.user_attrs[t.user] if t.user < len(lib.user_attrs) else {}
        cat = lib.world.catalog
        return {
            "role": self.role.name, "instructions": self.role.instructions.strip(),
            "task": task_text(t, len(t.candidates)),
            "user": describe_user(cat, lib.user_ids[t.user], attrs, past),
            "history": "\n".join(history_lines(cat, past, 10)) or "no ratings yet",
            "notes": "\n".join(notes) or "nothing yet", "lessons": "\n".join(lessons) or "none",
            "context": t.context or "", "k": t.k,
            "candidates": "\n".join(cand_line(self, i) for i in t.candidates) or "(none)",
            "candidate_ids": ", ".join(cat.item_ids[i] for i in t.candidates),
            "item": cand_line(self, t.item) if t.item is not None else "",
            "answer": t.answer, "members": "", "rationale": "", "draft": 1, "n": 1,
        }

    # -------------------------------------------------------------- answers

    def rank(self, t: Task, v: dict[str, Any], purpose: str = "rank") -> RoleAnswer:
        cat = self.rt.library.world.catalog
        if self.role.output == "rating":
            return self._rank_by_rating(t, v)
        if self.brain.scored:
            ranking = self.score_items(t, v, "scored")
            text = ""
            if self.role.output == "chat_reply":
                text = self.brain.say(render(self.role, "system", v),
                                      render(self.role, "prompt", v), "reply")[:600]
            return RoleAnswer(ranking=ranking, text=text)
        schema: type[RankReply] | type[ChatOut] = (
            ChatOut if self.role.output == "chat_reply" else RankReply)
        allowed = {cat.item_ids[i]: i for i in t.candidates}
        res = self.brain.ask(render(self.role, "system", v), render(self.role, "prompt", v),
                             schema, purpose, check=_ids_check(set(allowed)))
        if res.value is None:
            return RoleAnswer(ranking=list(t.candidates), failure=res.error or "no answer")
        ids = [allowed[x] for x in dict.fromkeys(res.value.ranking)]
        rest = [i for i in t.candidates if i not in ids]
        text = res.value.reply if isinstance(res.value, ChatOut) else ""
        reason = res.value.reason if isinstance(res.value, RankReply) else ""
        return RoleAnswer(ranking=ids + rest, text=text, reason=reason)

    def score_items(self, t: Task, v: dict[str, Any], template: str) -> list[int]:
        """Candidates by the margin log P(yes) - log P(no); ties keep candidate order."""
        margins = []
        for i in t.candidates:
            lp = self.brain.score(render(self.role, template, {**v, "item": cand_line(self, i)}),
                                  (" yes", " no"), "rank:scored")
            margins.append(lp[0] - lp[1])
        order = sorted(range(len(t.candidates)), key=lambda j: (-margins[j], j))
        return [t.candidates[j] for j in order]

    def _rank_by_rating(self, t: Task, v: dict[str, Any]) -> RoleAnswer:
        rated = [(self.rate(t.model_copy(update={"item": i}),
                            {**v, "item": cand_line(self, i)}), i) for i in t.candidates]
        order = sorted(range(len(rated)), key=lambda j: (-(rated[j][0].rating or 0), j))
        failures = [a.failure for a, _ in rated if a.failure]
        return RoleAnswer(ranking=[rated[j][1] for j in order],
                          failure=failures[0] if failures else None)

    def rate(self, t: Task, v: dict[str, Any]) -> RoleAnswer:
        if self.brain.scored:
            lp = self.brain.score(render(self.role, "scored", v), _STARS, "rate:scored")
            z = max(lp)
            w = [math.exp(x - z) for x in lp]
            # The expected stars, not the most likely: finer-grained for RMSE.
            return RoleAnswer(rating=round(sum((k + 1) * x for k, x in enumerate(w)) / sum(w), 4))
        res = self.brain.ask(render(self.role, "system", v), render(self.role, "prompt", v),
                             RateReply, "rate")
        if res.value is None:
            mean = float(self.rt.library.world.item_mean[t.item]) if t.item is not None else 3.0
            return RoleAnswer(rating=min(5.0, max(1.0, mean)), failure=res.error or "no answer")
        return RoleAnswer(rating=res.value.rating, text=res.value.explanation)

    def words(self, t: Task, v: dict[str, Any], purpose: str) -> RoleAnswer:
        """Explanation or chat reply text (base models: free text, no JSON)."""
        system, prompt = render(self.role, "system", v), render(self.role, "prompt", v)
        if self.brain.scored:
            return RoleAnswer(text=self.brain.say(system, prompt, purpose)[:600])
        schema: type[ExplainReply] | type[ChatOut] = (
            ExplainReply if self.role.output == "explanation" else ChatOut)
        res = self.brain.ask(system, prompt, schema, purpose)
        if res.value is None:
            return RoleAnswer(failure=res.error or "no answer")
        text = res.value.explanation if isinstance(res.value, ExplainReply) else res.value.reply
        return RoleAnswer(text=text)


# ------------------------------------------------------------------ graph nodes


def _recall(state: RoleState, runtime: Runtime[RoleCtx]) -> dict[str, Any]:
    a, t = runtime.context.agent, state["task"]
    if a.shared is None or not a.role.memory.top_k or len(a.shared) == 0:
        return {"lessons": []}
    query = task_text(t, len(t.candidates)) + " " + t.context
    hits = a.shared.read(query, a.role.memory.top_k, now_step=a._lesson_step)
    lessons = [h.record.text for h in hits]
    a.rt.note("memory", f"{t.base}/{a.role.name}/lessons", t.where, agent=a.agent,
              op="read", kind="shared", store=a.shared.name, recalled=lessons)
    return {"lessons": lessons}


def _static_calls(a: RoleAgent, t: Task,
                  names: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    cat = a.rt.library.world.catalog
    items = [t.item] if t.item is not None else t.candidates[:3]
    query = t.context.strip()[-300:]  # what the user said (search tools need words)
    calls: list[tuple[str, dict[str, Any]]] = []
    for name in names:
        if name in _ITEM_TOOLS:
            calls += [(name, {"item": cat.item_ids[i]}) for i in items]
        elif name in _QUERY_TOOLS:
            if query:
                calls.append((name, {"query": query, "k": 5}))
        elif name != "kg_paths":
            calls.append((name, {}))
        elif len(items) >= 2:
            calls.append((name, {"source": cat.item_ids[items[0]],
                                 "target": cat.item_ids[items[1]]}))
    return calls


def _gather(state: RoleState, runtime: Runtime[RoleCtx]) -> dict[str, Any]:
    a, t = runtime.context.agent, state["task"]
    notes = list(t.notes)
    names = offered(a.rt.library, a.role.tools)  # no graph, no knowledge-graph tools
    if not names:
        return {"notes": notes}
    tools = build_tools(a.rt.library, names, user=t.user,
                        before=float(t.now) if t.now is not None else None)
    if a.role.planner.kind == "reactive" and not a.brain.scored:
        return {"notes": notes + _react(a, t, tools, state["lessons"])}
    for n, (name, args) in enumerate(_static_calls(a, t, names)):
        try:
            out, ok = str(tools[name].invoke(args)), True
        except Exception as e:  # a failing tool is an observation, not a crash
            out, ok = f"tool {name} failed: {type(e).__name__}: {e}", False
        a.rt.note("tool_call", f"{t.base}/{a.role.name}/tool{n}", t.where, agent=a.agent,
                  tool=name, input=args, ok=ok, result=out[:1500])
        cap = NOTE_CHARS[a.brain.mode]
        notes.append(f"{name}({', '.join(f'{v}' for v in args.values())}):\n{out[:cap]}")
    return {"notes": notes}


def _react(a: RoleAgent, t: Task, tools: dict[str, Any], lessons: list[str]) -> list[str]:
    from planners import PlannerRuntime, PlanRequest, build_planner, initial_state

    v = a.values(t, [], lessons)
    cat = a.rt.library.world.catalog
    req = PlanRequest(agent=a.agent, base=t.base, goal=v["task"], profile=v["user"],
                      items=[(cat.item_ids[i], cand_line(a, i)) for i in t.candidates],
                      memories=lessons, history=v["history"].splitlines())
    steps: list[dict[str, Any]] = []

    def emit(agent: str, step: dict[str, Any]) -> None:
        a.rt.note("plan", f"{t.base}/{a.role.name}/plan{len(steps)}", t.where,
                  agent=a.agent, **step)
        steps.append(step)

    rt = PlannerRuntime(think=lambda agent, purpose, prompt: a.brain.say(
        render(a.role, "system", v), prompt, purpose), tools_for=lambda agent: tools,
        emit=emit, max_steps=a.role.planner.max_steps)
    # Planners are coroutines; a recommender agent answers one request at a time from the
    # environment's (synchronous) thread, with a blocking think, so a short-lived loop
    # only drives the subgraph.
    out = asyncio.run(build_planner("reactive", ["decide"]).ainvoke(initial_state([req]),
                                                                    context=rt))
    notes = [f"{s['tool']}({s['input']}):\n{s['observation'][:800]}" for s in steps
             if s.get("step") == "tool"]
    guidance = out["results"].get(a.agent)
    if guidance is not None and guidance.guidance:
        notes.append(guidance.guidance)
    return notes


def _answer(state: RoleState, runtime: Runtime[RoleCtx]) -> dict[str, Any]:
    a, t = runtime.context.agent, state["task"]
    v = a.values(t, state["notes"], state["lessons"])
    out = a.role.output
    can = {"rank": ("ranking", "chat_reply", "rating"), "rate": ("rating",),
           "explain": ("explanation", "chat_reply")}.get(t.kind)
    if can is not None and out not in can:
        ans = RoleAnswer(failure=f"role {a.role.name!r} (output {out}) does not {t.kind}")
    elif t.kind == "rank" and a.reasoned is not None:
        ans = _reasoned_rank(a, t, v)
    elif t.kind == "rank":
        ans = a.rank(t, v)
    elif t.kind == "rate":
        ans = a.rate(t, v)
    elif out in ("explanation", "chat_reply"):
        ans = a.words(t, v, t.kind)
    else:
        ans = _report(a, t, v)
    if not ans.text and t.kind == "consult":
        ans = ans.model_copy(update={"text": "\n".join(state["notes"])[
            :REPORT_CHARS[a.brain.mode]]})
    return {"answer": ans}


def _reasoned_rank(a: RoleAgent, t: Task, v: dict[str, Any]) -> RoleAnswer:
    """A ranking through the role's reasoning / retrieval steps (agents/recsys/reasoned.py)."""
    assert a.reasoned is not None
    ranking, reason, values = a.reasoned.rank(t, v)
    if ranking is None:  # ranker: llm, with the rationale and retrieved items in its prompt
        ans = a.rank(t, values)
        return ans.model_copy(update={"reason": ans.reason or reason})
    return RoleAnswer(ranking=ranking, reason=reason)


def _report(a: RoleAgent, t: Task, v: dict[str, Any]) -> RoleAnswer:
    """A ranking or rating role consulted by a manager answers with its own output."""
    if a.role.output == "rating" and t.item is not None:
        r = a.rate(t, v)
        return r.model_copy(update={"text": f"predicted rating {r.rating}. {r.text}".strip()})
    cat = a.rt.library.world.catalog
    r = _reasoned_rank(a, t, v) if a.reasoned is not None else a.rank(t, v)
    top = ", ".join(cat.item_ids[i] for i in r.ranking[:t.k])
    return r.model_copy(update={"text": f"my ranking: {top}. {r.reason}".strip()})


def _build_graph() -> CompiledStateGraph[RoleState, RoleCtx, RoleState, RoleState]:
    g: StateGraph[RoleState, RoleCtx, RoleState, RoleState] = StateGraph(
        RoleState, context_schema=RoleCtx)
    g.add_node("recall", _recall)
    g.add_node("gather", _gather)
    g.add_node("answer", _answer)
    g.add_edge(START, "recall")
    g.add_edge("recall", "gather")
    g.add_edge("gather", "answer")
    g.add_edge("answer", END)
    return g.compile()

