"""The default executor: every agent in this process (``agents.population``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agents.aio import EventLoop
from agents.graph import act_batch
from agents.group import AgentGroup
from agents.observations import Action, Observation
from agents.population import Population
from simulations.executors.base import (
    LANE_EVENTS,
    ClientView,
    Event,
    EventBuffer,
    group_events,
    user_ids_of,
    write_grouped,
)
from simulations.executors.spec import PopulationSpec

if TYPE_CHECKING:
    from agents.llm import CallCache
    from agents.llm.service import LLMService

__all__ = ["DefaultExecutor", "OrderedPopulation"]


@dataclass
class OrderedPopulation:
    """A population whose agents' events reach the trace in the canonical order
    (``simulations.executors.base``) once ``act`` returns.

    ``lane_size`` > 0: its agents may run a pipelined phase
    (``simulations.environments.pipeline``) in lanes of that many agents (the largest
    ``llm.concurrency`` of its roles: a lane is as many agents as the endpoint takes at
    once); 0: lock-step only (no role waits on an
    endpoint, or a role shares a store, which couples its agents).
    """

    population: Population
    buffer: EventBuffer
    emit: Callable[..., None]
    lane_size: int = 0
    _base: dict[str, int] = field(default_factory=dict, init=False)
    _acted: dict[str, int] = field(default_factory=dict, init=False)

    def act(self, observations: Sequence[Observation]) -> list[Action]:
        actions = self.population.act(observations)
        write_grouped(self.emit, group_events(self.buffer.take(), user_ids_of(observations)))
        return actions

    # ------------------------------------------------------------------ pipelined phases

    @property
    def loop(self) -> EventLoop:
        return self.population.loop

    def begin_phase(self) -> None:
        """On the population's loop, before the lanes start: note each role's memory
        clock, and let the stores write behind for the whole phase (some lane nearly
        always has calls in flight)."""
        self._acted = {}
        for role, g in self.population.groups.items():
            self._base[role] = g.long_term.step if g.long_term is not None else 0
            g.hold_writes(False)

    def end_phase(self) -> None:
        """After the lanes: each role's clock where the lock-step loop leaves it (it ticks
        once per step in which any of the role's agents acted; an agent acting at the
        phase's k-th step acted at all earlier ones, so that is the last such step)."""
        for role, g in self.population.groups.items():
            g.hold_writes(True)
            if g.long_term is not None:
                g.long_term.step = self._base[role] + self._acted.get(role, 0)

    async def alane_act(self, observations: Sequence[Observation], step: int
                        ) -> tuple[list[Action], list[list[Event]]]:
        """A lane's ``act`` at the phase's ``step`` (0-based): its actions and its agents'
        events grouped by observation, plus a last group naming none of its users."""
        pop = self.population
        by_role: dict[str, list[int]] = {}
        for k, obs in enumerate(observations):
            by_role.setdefault(pop.role_of[obs.agent], []).append(k)
        out: list[Action | None] = [None] * len(observations)
        events: list[Event] = []
        token = LANE_EVENTS.set(events)
        try:
            for role, idx in by_role.items():
                acts = await act_batch(pop.graph, self._lane_group(role, step),
                                       [observations[k] for k in idx])
                for k, a in zip(idx, acts, strict=True):
                    out[k] = a
                self._acted[role] = max(self._acted.get(role, 0), step + 1)
        finally:
            LANE_EVENTS.reset(token)
        return ([a for a in out if a is not None],
                group_events(events, user_ids_of(observations)))

    def _lane_group(self, role: str, step: int) -> AgentGroup:
        """The role's group as a lane sees it at ``step``: the same agents, memories and
        stores, with the memory clock the lock-step loop would show at that step."""
        g = self.population.groups[role]
        lane = _LaneGroup.__new__(_LaneGroup)
        lane.__dict__.update(g.__dict__)
        if g.long_term is not None:
            lane.long_term = dataclasses.replace(g.long_term, step=self._base[role] + step)
        # Tools close over their group (search_memory reads its clock): built per lane.
        lane._tools = {}
        return lane


class _LaneGroup(AgentGroup):
    """An ``AgentGroup`` copy for one lane step; writes behind for the whole phase."""

    def hold_writes(self, hold: bool) -> None:
        return None


class DefaultExecutor:
    """Agents in this process, built by one ``PopulationFactory``.

    Args:
        spec: The population.
        emit: The run's trace (``TraceWriter.emit``).
    """

    def __init__(self, spec: PopulationSpec, emit: Callable[..., None]) -> None:
        self._buffer = EventBuffer()
        self._emit = emit
        self.factory = spec.factory(self._buffer.emit)
        self.role_of = self.factory.role_of
        roles = [r.config for r in spec.roles]
        llms = [cfg for r in roles if (cfg := self.factory.llm_of(r)) is not None]
        self.lane_size = 0 if any(r.memory.shared for r in roles) else max(
            (c.concurrency for c in llms if c.concurrency > 1), default=0)

    def for_arm(self, arm: str) -> OrderedPopulation:
        return OrderedPopulation(self.factory.for_arm(arm), self._buffer, self._emit,
                                 self.lane_size)

    def shared_cache(self) -> CallCache:
        return self.factory.shared_cache()

    def llm_service(self) -> LLMService:
        return self.factory.llm_service

    def set_replay(self, on: bool) -> None:
        self.factory.set_replay(on)

    def clients(self) -> list[ClientView]:
        return list(self.factory.clients.values())

    def close(self) -> None:
        self.factory.close()
