"""The run loop as a LangGraph graph whose state is a cursor, checkpointed in the run folder.

The loop (arms -> rounds -> ``begin_round`` / observe-act-step until nothing is observed /
``end_round``) is a four-node StateGraph: ``arm`` (a fresh population and environment for
the next arm, which fits its recommender), ``begin`` (``env.begin_round``), ``step`` (one
observe -> act -> step; when nothing is observed the round is over) and ``end``
(``env.end_round``, which may refit). Each node's return value is the cursor: arm index,
round, phase (the next node), steps done in the round, and the trace's byte offset and
event count after the node's events were flushed. A SqliteSaver checkpointer
(``checkpoints.sqlite`` in the run folder) stores the cursor after every node with
``durability="sync"``, so it is on disk before the next node starts.

The live objects (environment, fitted recommenders, agents' memories and stores, LLM
clients) live in the runtime context (``Loop``), not in the state: they are not cheaply
serialisable. A resume rebuilds them by re-executing the same node functions from the
start to the checkpointed cursor (``Loop.rebuild``), then hands over to LangGraph, which
continues from the checkpoint.
"""

from __future__ import annotations

import contextvars
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agents.observations import Action, Observation
from simulations.environments import Environment
from simulations.environments.base import LaneEnvironment
from simulations.environments.pipeline import Driven, Pipelined, run_driven, run_phase
from simulations.record.crash import crash_point
from simulations.record.trace import ResumeDivergedError, TraceWriter

__all__ = ["CHECKPOINT_FILENAME", "Actor", "Checkpoints", "Cursor", "Loop"]

CHECKPOINT_FILENAME = "checkpoints.sqlite"
_THREAD: RunnableConfig = {"configurable": {"thread_id": "run"},
                           "recursion_limit": 2**31 - 1}


class Cursor(TypedDict):
    """Where the run is: the next node (``phase``) and where the trace ends."""

    arm: int  # index into the scenario's recommenders
    round: int  # 1-based; 0 before the arm's first round
    phase: str  # the next node: arm, begin, step, end; done when the loop is over
    steps: int  # observe-act-step rounds done in this round
    offset: int  # trace bytes after the last completed node
    events: int  # trace events after the last completed node


def _position(cur: Cursor) -> tuple[int, int, str, int]:
    return cur["arm"], cur["round"], cur["phase"], cur["steps"]


class Actor(Protocol):
    """A population: one action per observation (agents.population.Population)."""

    def act(self, observations: Sequence[Observation]) -> list[Action]: ...


@dataclass
class Loop:
    """The runtime context of the run graph: what the nodes act on.

    ``open_arm(i)`` builds arm ``i``'s population and environment.
    """

    n_arms: int
    rounds: int
    open_arm: Callable[[int], tuple[Actor, Environment]]
    trace: TraceWriter
    pipeline: bool = True  # run independent phases in lanes (simulations.environments.pipeline)
    population: Actor | None = field(default=None, init=False)
    env: Environment | None = field(default=None, init=False)
    _rebuilding: bool = field(default=False, init=False)

    def start(self) -> Cursor:
        return Cursor(arm=0, round=0, phase="arm", steps=0, offset=self.trace.offset,
                      events=self.trace.count)

    def _mark(self, cur: Cursor, **update: Any) -> dict[str, Any]:
        # Flushed before the node returns, so the checkpoint that follows never points
        # past what is on disk.
        self.trace.flush()
        return {**update, "offset": self.trace.offset, "events": self.trace.count}

    # ------------------------------------------------------------------ nodes

    def arm(self, cur: Cursor) -> dict[str, Any]:
        self.population, self.env = self.open_arm(cur["arm"])
        return self._mark(cur, phase="begin", round=1, steps=0)

    def begin(self, cur: Cursor) -> dict[str, Any]:
        assert self.env is not None
        self.env.begin_round(cur["round"])
        return self._mark(cur, phase="step")

    def step(self, cur: Cursor) -> dict[str, Any]:
        assert self.env is not None and self.population is not None
        if (self.pipeline and not self._rebuilding and hasattr(self.env, "lanes")
                and isinstance(self.population, Pipelined) and self.population.lane_size):
            # One node for the whole independent phase (its steps counted as the lock-step
            # loop counts them); a resume rebuilds in lock-step, which passes through every
            # position this node reaches.
            done = run_phase(cast(LaneEnvironment, self.env), self.population, self.trace,
                             on_step=lambda: crash_point("step"))
            if done:
                return self._mark(cur, steps=cur["steps"] + done)
        elif (self.pipeline and not self._rebuilding and isinstance(self.env, Driven)
                and isinstance(self.population, Pipelined) and self.population.lane_size):
            # The environment's own pipelined phase (the social world's ticks), counted
            # and resumed like the lanes above.
            done = run_driven(self.env, self.population, self.trace,
                              on_step=lambda: crash_point("step"))
            if done:
                return self._mark(cur, steps=cur["steps"] + done)
        observations = self.env.observe()
        if not observations:
            return self._mark(cur, phase="end")
        self.env.step(observations, self.population.act(observations))
        crash_point("step")
        return self._mark(cur, steps=cur["steps"] + 1)

    def end(self, cur: Cursor) -> dict[str, Any]:
        assert self.env is not None
        self.env.end_round(cur["round"])
        if cur["round"] < self.rounds:
            return self._mark(cur, phase="begin", round=cur["round"] + 1, steps=0)
        if cur["arm"] + 1 < self.n_arms:
            return self._mark(cur, phase="arm", arm=cur["arm"] + 1, round=0, steps=0)
        return self._mark(cur, phase="done")

    def node(self, phase: str) -> Callable[[Cursor], dict[str, Any]]:
        return {"arm": self.arm, "begin": self.begin, "step": self.step,
                "end": self.end}[phase]

    # ------------------------------------------------------------------ driving

    def rebuild(self, target: Cursor) -> None:
        """Re-execute the nodes from the start up to ``target`` (a resume's first part:
        the trace writer checks each event against the file instead of writing it)."""
        cur = self.start()
        self._rebuilding = True
        try:
            self._rebuild(cur, target)
        finally:
            self._rebuilding = False

    def _rebuild(self, cur: Cursor, target: Cursor) -> None:
        while _position(cur) != _position(target):
            if cur["phase"] == "done" or cur["events"] > target["events"]:
                raise ResumeDivergedError(
                    f"resume diverged at event {cur['events']}: the run loop did not reach "
                    "its checkpoint; the code or data changed since the run started")
            cur = {**cur, **self.node(cur["phase"])(cur)}  # type: ignore[typeddict-item]
        if (cur["events"], cur["offset"]) != (target["events"], target["offset"]):
            raise ResumeDivergedError(
                f"resume diverged at event {cur['events']}: the trace at the checkpoint "
                f"has {target['events']} events; the code or data changed since the run "
                "started")

    def run(self, checkpoints: Checkpoints, *, resume: bool) -> None:
        """Run the graph to the end, checkpointing after every node: from the start, or
        (``resume``) from the last checkpoint."""
        graph = build_graph().compile(checkpointer=checkpoints.saver)
        graph.invoke(None if resume else self.start(), _THREAD, context=self,
                     durability="sync")


def _route(cur: Cursor) -> str:
    return END if cur["phase"] == "done" else cur["phase"]


def _isolated(node: Callable[[Cursor], dict[str, Any]], cur: Cursor) -> dict[str, Any]:
    # The agents' own graphs run inside this node. Invoked in the run graph's context they
    # would become its subgraphs (inheriting its checkpointer, config and callbacks) and
    # behave differently from a resume's re-execution, which runs outside any graph: in an
    # empty context they are top-level graphs both times.
    return contextvars.Context().run(node, cur)


def _arm(state: Cursor, runtime: Runtime[Loop]) -> dict[str, Any]:
    return _isolated(runtime.context.arm, state)


def _begin(state: Cursor, runtime: Runtime[Loop]) -> dict[str, Any]:
    return _isolated(runtime.context.begin, state)


def _step(state: Cursor, runtime: Runtime[Loop]) -> dict[str, Any]:
    return _isolated(runtime.context.step, state)


def _end(state: Cursor, runtime: Runtime[Loop]) -> dict[str, Any]:
    return _isolated(runtime.context.end, state)


def build_graph() -> StateGraph[Cursor, Loop, Cursor, Cursor]:
    """The run graph (uncompiled): nodes arm, begin, step, end, routed by ``phase``."""
    g: StateGraph[Cursor, Loop, Cursor, Cursor] = StateGraph(Cursor, context_schema=Loop)
    names = ("arm", "begin", "step", "end")
    for name, fn in (("arm", _arm), ("begin", _begin), ("step", _step), ("end", _end)):
        g.add_node(name, fn)
    for name in (START, *names):
        g.add_conditional_edges(name, _route, [*names, END])
    return g


class _Saver(SqliteSaver):
    """SqliteSaver with the ``checkpoint`` crash point of simulations.record.crash."""

    def put(self, config: RunnableConfig, *args: Any, **kwargs: Any) -> RunnableConfig:
        crash_point("checkpoint")
        return super().put(config, *args, **kwargs)


class Checkpoints:
    """The run's checkpoint store: ``RUN_DIR/checkpoints.sqlite``."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / CHECKPOINT_FILENAME
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False)
        self.saver = _Saver(self._conn)
        self.saver.setup()

    def cursor(self) -> Cursor | None:
        """The cursor of the last checkpoint, with the writes of a node that finished
        after it (a kill between a node's end and its checkpoint), or None if the loop
        never started."""
        tup = self.saver.get_tuple(_THREAD)
        if tup is None:
            return None
        values = dict(tup.checkpoint["channel_values"])
        for _task, channel, value in tup.pending_writes or ():
            if channel in Cursor.__annotations__:
                values[channel] = value
        if not all(k in values for k in Cursor.__annotations__):
            return None
        return Cursor(**{k: values[k] for k in Cursor.__annotations__})  # type: ignore[typeddict-item]

    def close(self) -> None:
        self._conn.close()
