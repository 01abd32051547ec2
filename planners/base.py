"""What every planner takes and gives, and the runtime it plans with.

A planner is a LangGraph subgraph over a *batch* of plan requests (all agents of a role
that act in the same step), so the graph's own cost is paid per step, not per agent.
It knows nothing of brains, memory stores or environments: the agent hands it

- ``think(agent, purpose, prompt) -> text``: the agent's language model, a plain or an
  async function (absent for numeric brains, which can only use the ``static`` planner's
  ``decide`` step);
- ``tools``: LangChain tools by name (memory search, item look-ups...), called with one
  string and answering with text;
- ``emit(agent, step)``: writes one planner step into the trace;
- ``on_lesson(agent, text)``: stores a lesson (reflective planner) in the agent's memory.

A plan's result changes what the agent does: ``shortlist`` (catalogue ids the plan
settled on) and ``guidance`` (text the brain's prompt receives as ``{plan}``).

Planner nodes are coroutines (run a planner with ``ainvoke``): the model steps of every
agent in the batch are gathered at once (``PlannerRuntime.map``), so they wait on the
endpoint together, up to the LLM client's limits; results are used in the batch's order,
so the trace does not depend on which answer came first.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypedDict, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

__all__ = [
    "FinalAnswer",
    "PlanRequest",
    "PlanResult",
    "PlanState",
    "PlannerRuntime",
    "Tool",
    "ToolArg",
    "describe_tools",
    "initial_state",
    "parse_reply",
    "request_text",
    "tool_input",
]

T = TypeVar("T", bound=BaseModel)

# A model may give a tool's named arguments as an object; they travel as JSON text.
ToolArg = Annotated[
    str, BeforeValidator(lambda v: json.dumps(v, sort_keys=True) if isinstance(v, dict) else v)]
R = TypeVar("R")


class Tool(Protocol):
    """The part of a LangChain tool a planner uses."""

    name: str
    description: str

    def invoke(self, input: Any, /) -> Any: ...


class PlanRequest(BaseModel):
    """One agent's planning problem for one step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: str  # key of the agent in this batch
    base: str  # trace-id prefix of the step
    goal: str  # what has to be decided, in words
    profile: str  # who the agent is, in words
    items: list[tuple[str, str]] = []  # (catalogue id, one-line description)
    memories: list[str] = []
    lessons: list[str] = []  # from earlier reflective attempts, best first
    history: list[str] = []  # lines of the agent's past (up to now)


class PlanResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    planner: str
    steps: list[str]
    guidance: str = ""
    shortlist: list[str] | None = None  # catalogue ids; None: no preference


class FinalAnswer(BaseModel):
    """The answer a language model gives at the end of planning."""

    model_config = ConfigDict(extra="ignore")

    shortlist: list[str] = Field(default_factory=list)
    note: str = ""


class PlanState(TypedDict):
    requests: list[PlanRequest]
    active: list[str]  # agents still planning
    log: dict[str, list[dict[str, Any]]]  # per agent, the steps so far
    n: int  # loop iterations so far
    notes: dict[str, dict[str, Any]]  # per agent, planner-specific working data
    results: dict[str, PlanResult]


def initial_state(requests: Sequence[PlanRequest]) -> PlanState:
    return {"requests": list(requests), "active": [r.agent for r in requests],
            "log": {r.agent: [] for r in requests}, "n": 0,
            "notes": {r.agent: {} for r in requests}, "results": {}}


@dataclass
class PlannerRuntime:
    """Runtime context of a planner subgraph (never checkpointed)."""

    think: Callable[[str, str, str], str | Awaitable[str]] | None = None
    tools_for: Callable[[str], Mapping[str, Tool]] = lambda agent: {}
    emit: Callable[[str, dict[str, Any]], None] = lambda agent, step: None
    on_lesson: Callable[[str, str], None] = lambda agent, text: None
    concurrent: bool = True  # gather the batch's model steps (False: one after another)
    max_steps: int = 4
    max_replans: int = 1
    max_attempts: int = 2

    async def map(self, fn: Callable[[str], Awaitable[R]], agents: Iterable[str]) -> list[R]:
        """``fn`` for every agent, all at once (``concurrent``); results in order."""
        items = list(agents)
        if not self.concurrent or len(items) < 2:
            return [await fn(a) for a in items]
        tasks = [asyncio.ensure_future(fn(a)) for a in items]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:  # one failed: stop the others' calls too
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def ask(self, agent: str, purpose: str, prompt: str) -> str:
        if self.think is None:
            raise RuntimeError(f"planner step {purpose!r} needs a language model")
        out = self.think(agent, purpose, prompt)
        return await out if inspect.isawaitable(out) else out

    async def ask_json(self, agent: str, purpose: str, prompt: str,
                       schema: type[T]) -> tuple[str, T | str]:
        """Ask, then read the reply's JSON: (raw text, the parsed reply or what is wrong).

        An unreadable reply is a step the planner records, not a crash.
        """
        raw = await self.ask(agent, purpose, prompt)
        try:
            return raw, parse_reply(raw, schema)
        except ValueError as e:
            return raw, str(e)

    def call_tool(self, agent: str, name: str, arg: str) -> tuple[bool, str]:
        """Run one of ``agent``'s tools; (ok, observation). Unknown tools and tool errors
        are observations the planner can react to, not crashes.

        ``arg`` is the tool's first argument, or a JSON object of named arguments
        (``{"source": "1", "target": "50"}``); empty means every argument's default.
        """
        tools = self.tools_for(agent)
        tool = tools.get(name)
        if tool is None:
            return False, f"unknown tool {name!r}; tools: {', '.join(tools) or 'none'}"
        try:
            out = tool.invoke(tool_input(arg))
        except Exception as e:  # a tool failing is an observation for the planner
            return False, f"tool {name} failed: {type(e).__name__}: {e}"
        text = str(out)
        return bool(text.strip()), text[:1500] or "(no result)"


def tool_input(arg: str) -> str | dict[str, Any]:
    """A planner's tool input: a JSON object becomes named arguments, "" no arguments."""
    text = arg.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            return arg
        if isinstance(obj, dict):
            return obj
    return arg


def by_agent(state: PlanState) -> dict[str, PlanRequest]:
    return {r.agent: r for r in state["requests"]}


def describe_tools(tools: Mapping[str, Tool]) -> str:
    """The tools as the model sees them: name and docstring."""
    return "\n".join(f"- {t.name}: {t.description.strip().splitlines()[0]}"
                     for t in tools.values()) or "- (none)"


def request_text(req: PlanRequest) -> str:
    """The common part of every planning prompt."""
    items = "\n".join(f"- {iid}: {line}" for iid, line in req.items) or "- (none)"
    mems = "\n".join(f"- {m}" for m in req.memories) or "- nothing yet"
    lessons = ("\nLessons from earlier attempts:\n" + "\n".join(f"- {x}" for x in req.lessons)
               if req.lessons else "")
    return (f"You are planning for this person: {req.profile}\n"
            f"Goal: {req.goal}\nItems:\n{items}\nWhat they remember:\n{mems}{lessons}\n")


def parse_reply(text: str, schema: type[T]) -> T:
    """The first JSON object in ``text``, validated by ``schema``.

    Raises:
        ValueError: One line saying what is wrong (the planner records it as a step).
    """
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in the reply")
    try:
        return schema.model_validate(json.loads(text[start:end + 1]))
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e.msg}") from None
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ValueError(f"{where}: {err['msg']}") from None


def known_ids(req: PlanRequest, ids: Iterable[str]) -> list[str]:
    """The ids of the shortlist that are items of this step, in order, once each."""
    allowed = {iid for iid, _ in req.items}
    out: list[str] = []
    for i in ids:
        s = str(i)
        if s in allowed and s not in out:
            out.append(s)
    return out


def guidance_of(answer: FinalAnswer, req: PlanRequest) -> tuple[str, list[str]]:
    ids = known_ids(req, answer.shortlist)
    text = answer.note.strip()
    if ids:
        text = (text + "\n" if text else "") + f"Plan: the best candidates are {', '.join(ids)}."
    return text, ids
