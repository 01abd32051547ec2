"""What every executor shares: the protocol the runner drives, and the order in which the
agents' trace events reach the run's single trace.

An executor schedules the agents of a run (``agents.population``); the driver keeps the
environment, the recommender and the trace. Its contract:

- ``for_arm(arm)``: fresh agents for one arm, as an ``Actor`` (``simulations.environments.loop``);
- ``set_replay(on)``: every agent LLM client answers from the cache only (or records again);
- ``clients()``: the agents' LLM clients (or snapshots of them) for the run's usage lines;
- ``shared_cache()``: the run's LLM cache, for callers in the driver (recommender agents);
- ``close()``: release stores and caches (a sharded executor merges its cache shards here).

Trace order: whatever the scheduling (a thread pool, asyncio, Ray workers), the events an
agent emits while acting are written after ``act`` returns, grouped by agent in the order
of the observations (each agent's own events in the order it emitted them). Every event of
an agent's step names its user (``user``), so the grouping needs no knowledge of the agent
graph, and the trace of a step is the same however the agents were spread over workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from agents.observations import Observation
from simulations.environments.loop import Actor

if TYPE_CHECKING:
    from agents.llm import CallCache, CallRecord
    from agents.llm.service import LLMService
    from agents.llm.usage import Usage
    from scenarios.schema import LLMConfig

__all__ = ["LANE_EVENTS", "NO_RAY", "ClientView", "Event", "EventBuffer", "Executor",
           "ExecutorError", "UsageView", "group_events", "user_ids_of", "write_grouped"]

Event = tuple[str, str, dict[str, Any]]  # TraceWriter.emit(type, id, **fields)


class ExecutorError(RuntimeError):
    """An executor cannot start (missing extra, unreachable cluster); one line for the user."""


NO_RAY = ("the ray executor needs the 'ray' extra: pip install 'recarena[ray]' (or use "
          "executor kind default)")


class UsageView(Protocol):
    """Charged usage (``agents.llm.UsageMeter`` or a snapshot of one)."""

    @property
    def total(self) -> Usage: ...

    @property
    def per_agent(self) -> dict[str, Usage]: ...


class ClientView(Protocol):
    """What the run's usage lines read from an agent LLM client (``agents.llm.LLMClient``
    or a snapshot of one from a worker)."""

    @property
    def cfg(self) -> LLMConfig: ...

    @property
    def replay(self) -> bool: ...

    @property
    def records(self) -> list[CallRecord]: ...

    @property
    def usage(self) -> UsageView: ...


class Executor(Protocol):
    """Schedules the population's agents (see the module docstring)."""

    role_of: dict[int, str]

    def for_arm(self, arm: str) -> Actor: ...

    def shared_cache(self) -> CallCache: ...

    def llm_service(self) -> LLMService | None:
        """The run's LLM service, when the user agents' clients live in this process
        (recommender agents then share their limits and budget); else None."""
        ...

    def set_replay(self, on: bool) -> None: ...

    def clients(self) -> list[ClientView]: ...

    def close(self) -> None: ...


# A pipelined phase's lane collects its agents' events on its own
# (simulations.environments.pipeline): the lane's task sets this, and every task it
# starts inherits it.
LANE_EVENTS: ContextVar[list[Event] | None] = ContextVar("recarena_lane_events",
                                                         default=None)


class EventBuffer:
    """Collects ``emit`` calls (the agents' ``Emit``) until they are put in trace order
    (into the current lane's list inside a pipelined phase: ``LANE_EVENTS``)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, type_: str, id_: str, **fields: Any) -> None:
        lane = LANE_EVENTS.get()
        (self.events if lane is None else lane).append((type_, id_, fields))

    def take(self) -> list[Event]:
        out, self.events = self.events, []
        return out


def group_events(events: Sequence[Event], user_ids: Sequence[str]) -> list[list[Event]]:
    """``events`` split by the user they name, one list per entry of ``user_ids`` (the
    observations' users, in order) plus a last list for events naming none of them.

    The split is stable: each user's events keep the order they were emitted in.
    """
    slot = {u: k for k, u in enumerate(user_ids)}
    out: list[list[Event]] = [[] for _ in range(len(user_ids) + 1)]
    for ev in events:
        out[slot.get(str(ev[2].get("user")), len(user_ids))].append(ev)
    return out


def write_grouped(emit: Callable[..., None], groups: Sequence[Sequence[Event]]) -> None:
    """Emit grouped events (``group_events``) into the trace, group after group."""
    for group in groups:
        for type_, id_, fields in group:
            emit(type_, id_, **fields)


def user_ids_of(observations: Sequence[Observation]) -> list[str]:
    """The trace's user id of each observation (``where["user"]``, as agents emit it)."""
    return [str(o.where.get("user")) for o in observations]
