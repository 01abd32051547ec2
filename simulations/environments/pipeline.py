"""Pipelined phases: no agent waits for the slowest.

The lock-step loop runs a step as observe (everyone) -> act (everyone) -> step
(everyone), so an LLM phase ends with a partly empty last wave of calls and the CPU work
between steps (memory writes, the trace, the recommender's next page) runs while no call
is in flight. When the environment's agents are independent within a phase
(``simulations.environments.base.LaneEnvironment``: the feed's pages) and the population
can run lanes (``Pipelined``: the default executor with a role whose LLM calls overlap),
the loop runs the phase here instead: the agents are cut into lanes (contiguous blocks of
the canonical order, ``lane_size`` agents each), and each lane loops observe -> act ->
step on its own, all lanes on the population's event loop, so a lane's next page starts
as soon as its own actions are applied while the others' calls are still in flight.

The trace is the lock-step loop's, byte for byte: each lane keeps its events per step (the
environment's observe events, its agents' events grouped by agent, the environment's step
events), and step k is written once every lane has done it (or finished earlier), in the
lock-step order: all lanes' observe events, then all their agents' groups, then the
groups naming no observed agent, then all step events. Each role's memory clock is the
lock-step one (``OrderedPopulation``), so memories, recalls and metrics are the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agents.aio import EventLoop, gather_all
from agents.observations import Action, Observation
from simulations.environments.base import Lane, LaneEnvironment
from simulations.record.trace import TraceWriter

__all__ = ["LOCKSTEP_ENV", "Driven", "Pipelined", "lockstep_forced", "run_driven", "run_phase"]

Event = tuple[str, str, dict[str, Any]]  # as simulations.executors.base.Event

# RECARENA_LOCKSTEP=1: never pipeline (the same trace, the old timing; benchmarks, tests).
LOCKSTEP_ENV = "RECARENA_LOCKSTEP"


def lockstep_forced() -> bool:
    return os.environ.get(LOCKSTEP_ENV, "").strip() not in ("", "0")


@runtime_checkable
class Pipelined(Protocol):
    """A population that can run a phase in lanes (``OrderedPopulation``)."""

    lane_size: int

    @property
    def loop(self) -> EventLoop: ...

    def begin_phase(self) -> None: ...

    def end_phase(self) -> None: ...

    async def alane_act(self, observations: Sequence[Observation], step: int
                        ) -> tuple[list[Action], list[list[Event]]]: ...


@runtime_checkable
class Driven(Protocol):
    """An environment that pipelines a phase its agents are not independent in (the
    social world's ticks, simulations/environments/social_lanes.py) with its own driver.

    ``drive(actor, write, emit)``: run the next phase on the actor's loop and hand each
    lock-step step's events to ``write`` in the lock-step order; the number of steps
    written (0: nothing was stepped, the events of the observe that found nothing went to
    ``emit``), or None before touching anything when the next step is not such a phase.
    Afterwards the environment is where the lock-step loop would have left it.
    """

    def drive(self, actor: Pipelined, write: Callable[[list[Event]], None],
              emit: Callable[..., None]) -> int | None: ...


@dataclass
class _Step:
    """One lane's part of one step of the phase."""

    observed: list[Event]
    groups: list[list[Event]]  # per observation
    rest: list[Event]  # agents' events naming none of the lane's agents
    applied: list[Event]


@dataclass
class _Phase:
    lanes: Sequence[Lane]
    write: Callable[[list[Event]], None]
    done: dict[int, dict[int, _Step]] = field(default_factory=dict)  # step -> lane -> part
    ended: dict[int, int] = field(default_factory=dict)  # lane -> steps it did
    written: int = 0

    def flush(self) -> None:
        """Write every step that all lanes have done (or finished before)."""
        n = len(self.lanes)
        while True:
            k = self.written
            parts = self.done.get(k, {})
            if not parts or any(j not in parts and not (j in self.ended
                                                        and self.ended[j] <= k)
                                for j in range(n)):
                return
            order = [parts[j] for j in sorted(parts)]
            self.write([e for p in order for e in p.observed]
                       + [e for p in order for g in p.groups for e in g]
                       + [e for p in order for e in p.rest]
                       + [e for p in order for e in p.applied])
            del self.done[k]
            self.written += 1


async def _lane(phase: _Phase, j: int, lane: Lane, actor: Pipelined) -> None:
    k = 0
    while True:
        observations = lane.observe()
        observed = lane.trace.take()
        if not observations:
            if observed:  # the contract: an empty observe writes nothing
                raise RuntimeError("a lane wrote trace events but observed nobody")
            phase.ended[j] = k
            phase.flush()
            return
        actions, groups = await actor.alane_act(observations, k)
        lane.step(observations, actions)
        phase.done.setdefault(k, {})[j] = _Step(observed, groups[:-1], groups[-1],
                                                lane.trace.take())
        k += 1
        phase.flush()


def run_phase(env: LaneEnvironment, actor: Pipelined, trace: TraceWriter,
              on_step: Callable[[], None] = lambda: None) -> int | None:
    """Run the environment's current phase in lanes; the number of (lock-step) steps it
    wrote, or None when the phase is not independent (the caller steps in lock-step).

    ``on_step`` runs after each step is written (the loop's ``step`` crash point).
    """
    lanes = env.lanes(actor.lane_size)
    if not lanes:
        return None
    phase = _Phase(lanes, _step_writer(trace, on_step))

    async def drive() -> None:
        actor.begin_phase()
        try:
            await gather_all([_lane(phase, j, lane, actor) for j, lane in enumerate(lanes)])
        finally:
            actor.end_phase()

    actor.loop.run(drive())
    env.join(lanes)
    return phase.written


def run_driven(env: Driven, actor: Pipelined, trace: TraceWriter,
               on_step: Callable[[], None] = lambda: None) -> int | None:
    """``env.drive`` with the run's trace: each step written and flushed, then ``on_step``
    (the loop's ``step`` crash point), as ``run_phase`` does."""
    return env.drive(actor, _step_writer(trace, on_step), trace.emit)


def _step_writer(trace: TraceWriter, on_step: Callable[[], None]
                 ) -> Callable[[list[Event]], None]:
    """Writes one lock-step step's events to the run's trace, flushes, then ``on_step``."""

    def write(events: list[Event]) -> None:
        for type_, id_, fields in events:
            trace.emit(type_, id_, **fields)
        trace.flush()
        on_step()

    return write
