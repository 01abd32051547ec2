"""The default executor: every agent in this process (``agents.population``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents.observations import Action, Observation
from agents.population import Population, PopulationFactory
from simulations.executors.base import (
    ClientView,
    EventBuffer,
    group_events,
    user_ids_of,
    write_grouped,
)

if TYPE_CHECKING:
    from agents.llm import CallCache
    from agents.llm.service import LLMService

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
        factory_args: ``PopulationFactory`` keyword arguments, without ``emit``.
        emit: The run's trace (``TraceWriter.emit``).
    """

    def __init__(self, factory_args: dict[str, Any], emit: Callable[..., None]) -> None:
        self._buffer = EventBuffer()
        self._emit = emit
        self.factory = PopulationFactory(**factory_args, emit=self._buffer.emit)
        self.role_of = self.factory.role_of

    def for_arm(self, arm: str) -> OrderedPopulation:
        return OrderedPopulation(self.factory.for_arm(arm), self._buffer, self._emit)

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
