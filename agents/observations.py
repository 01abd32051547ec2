"""What environments send to agents and what agents send back: typed, JSON-able messages.

An environment never touches an agent's memory or planner: it sends an observation and
receives an action. Every observation names the agent (a user index), says where in the
run it happens (``where``: the trace fields arm, round, user and page or turn) and carries
``base``, the trace-id prefix of the step (``ease/r1/u196/p2``), so that the agent's own
events (memory, plan steps, LLM calls) sit under the same step as the environment's.

``Observation`` and ``Action`` are open base classes: an environment declares its own
subclasses next to it (``simulations/environments/feed_kind.py``), each with a ``kind``
literal, and registers how an agent handles them (``agents.kinds.register_kind``).
``Failure`` is the one action every kind may get back.

Items are catalogue indices (ints) inside the run; traces show catalogue ids.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Action", "Failure", "Message", "Observation"]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Observation(Message):
    """What one agent perceives at one step. Subclasses fix ``kind`` with a literal
    default (the interaction kind registry's key)."""

    kind: str
    agent: int
    base: str
    where: dict[str, Any]
    round: int


class Action(Message):
    """What one agent answers to one observation. Subclasses fix ``kind``."""

    kind: str


class Failure(Action):
    """The agent could not produce a valid action (after its bounded repairs)."""

    kind: Literal["failure"] = "failure"
    purpose: str
    error: str
    raw: list[str]
    attempts: int
