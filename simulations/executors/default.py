"""The default executor: every agent in this process (``agents.population``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agents.observations import Action, Observation
from agents.population import Population
from simulations.executors.base import (
    ClientView,
    EventBuffer,
    group_events,
    user_ids_of,
    write_grouped,
)
from simulations.executors.spec import PopulationSpec

if TYPE_CHECKING:
    from agents.llm import CallCache

__all__ = ["DefaultExecutor", "OrderedPopulation"]


@dataclass
class OrderedPopulation:
    """A population whose agents' events reach the trace in the canonical order
    (``simulations.executors.base``) once ``act`` returns."""

    population: Population
    buffer: EventBuffer
    emit: Callable[..., None]

    def act(self, observations: Sequence[Observation]) -> list[Action]:
        actions = self.population.act(observations)
        write_grouped(self.emit, group_events(self.buffer.take(), user_ids_of(observations)))
        return actions


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

    def for_arm(self, arm: str) -> OrderedPopulation:
        return OrderedPopulation(self.factory.for_arm(arm), self._buffer, self._emit)

    def shared_cache(self) -> CallCache:
        return self.factory.shared_cache()

    def set_replay(self, on: bool) -> None:
        self.factory.set_replay(on)

    def clients(self) -> list[ClientView]:
        return list(self.factory.clients.values())

    def close(self) -> None:
        self.factory.close()
