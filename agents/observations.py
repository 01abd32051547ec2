"""What environments send to agents and what agents send back: typed, JSON-able messages.

An environment never touches an agent's memory or planner: it sends an observation and
receives an action. Every observation names the agent (a user index), says where in the
run it happens (``where``: the trace fields arm, round, user and page or turn) and carries
``base``, the trace-id prefix of the step (``ease/r1/u196/p2``), so that the agent's own
events (memory, plan steps, LLM calls) sit under the same step as the environment's.

Items are catalogue indices (ints) inside the run; traces show catalogue ids.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Action",
    "ConversationOpen",
    "ConversationTurn",
    "Failure",
    "FeedPage",
    "InterviewAction",
    "InterviewRequest",
    "ItemChoice",
    "Observation",
    "PageAction",
    "Utterance",
    "Verdict",
]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Obs(_Message):
    agent: int
    base: str
    where: dict[str, Any]


class FeedPage(_Obs):
    """One page of a feed: watch or skip each item, rate what is watched, stay or leave."""

    kind: Literal["feed_page"] = "feed_page"
    round: int
    page: int  # 1-based
    max_pages: int
    items: list[int]


class InterviewRequest(_Obs):
    """After a session: how satisfied was the user (1-10) and why."""

    kind: Literal["interview"] = "interview"
    round: int
    pages: int
    shown: int
    watched: list[int]
    ratings: list[int]
    left_early: bool


class ConversationOpen(_Obs):
    """Start of a conversation: say what you are looking for (the target, not by name)."""

    kind: Literal["conversation_open"] = "conversation_open"
    round: int
    target: int
    max_turns: int


class ConversationTurn(_Obs):
    """The recommender answered: accept one of its items, or reject with feedback."""

    kind: Literal["conversation_turn"] = "conversation_turn"
    round: int
    turn: int
    target: int
    recommended: list[int]
    said: list[str]  # what the user said so far, oldest first
    max_turns: int
    reply: str = ""  # what a recommender agent said with its recommendations


Observation = Annotated[
    FeedPage | InterviewRequest | ConversationOpen | ConversationTurn,
    Field(discriminator="kind"),
]


class ItemChoice(_Message):
    item: int
    watch: bool
    rating: int | None = Field(None, ge=1, le=5)
    reason: str = ""
    inputs: dict[str, Any] = {}


class PageAction(_Message):
    kind: Literal["page"] = "page"
    items: list[ItemChoice]
    leave: bool
    feeling: str
    feeling_source: Literal["model", "computed"] = "computed"
    inputs: dict[str, Any] = {}


class InterviewAction(_Message):
    kind: Literal["interview"] = "interview"
    satisfaction: int = Field(ge=1, le=10)
    reason: str
    inputs: dict[str, Any] = {}


class Utterance(_Message):
    """What the user says (a request, or feedback on a rejected turn)."""

    kind: Literal["say"] = "say"
    text: str
    inputs: dict[str, Any] = {}


class Verdict(_Message):
    """The user's answer to a turn: accept an item, or reject (with feedback) or give up."""

    kind: Literal["verdict"] = "verdict"
    accept: int | None = None  # the accepted item
    give_up: bool = False
    feedback: str = ""
    inputs: dict[str, Any] = {}


class Failure(_Message):
    """The agent could not produce a valid action (after its bounded repairs)."""

    kind: Literal["failure"] = "failure"
    purpose: str
    error: str
    raw: list[str]
    attempts: int


Action = Annotated[
    PageAction | InterviewAction | Utterance | Verdict | Failure,
    Field(discriminator="kind"),
]
