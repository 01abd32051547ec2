"""The conversation's observations and actions, and how an agent handles them.

``ConversationOpen`` -> ``Utterance`` (describe the hidden target without naming it) and
``ConversationTurn`` -> ``Verdict`` (accept an item, reject with feedback, give up) ask
the brain's ``ConversationSeeker``. The user's patience and description noise are the
environment's settings (``environment.conversation``); they reach the agent here, in the
observation. The environment itself is in conversation.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

from pydantic import Field

from agents.brains.base import ConversationView
from agents.brains.capabilities import ConversationSeeker
from agents.brains.prompts import item_line
from agents.group import AgentGroup
from agents.kinds import (
    InteractionKind,
    MemoryWrite,
    PlanRequest,
    Recalled,
    make_plan_request,
)
from agents.observations import Action, Observation
from agents.seeding import user_rng

__all__ = [
    "ConversationOpen",
    "ConversationOpenKind",
    "ConversationTurn",
    "ConversationTurnKind",
    "Utterance",
    "Verdict",
]


class ConversationOpen(Observation):
    """Start of a conversation: say what you are looking for (the target, not by name)."""

    kind: Literal["conversation_open"] = "conversation_open"
    target: int
    max_turns: int
    patience: int = 3  # turns an average user tries before giving up
    noise: float = 0.2  # chance of leaving out or confusing a fact (utility brain)


class ConversationTurn(Observation):
    """The recommender answered: accept one of its items, or reject with feedback."""

    kind: Literal["conversation_turn"] = "conversation_turn"
    turn: int
    target: int
    recommended: list[int]
    said: list[str]  # what the user said so far, oldest first
    max_turns: int
    reply: str = ""  # what a recommender agent said with its recommendations
    patience: int = 3
    noise: float = 0.2


class Utterance(Action):
    """What the user says (a request, or feedback on a rejected turn)."""

    kind: Literal["say"] = "say"
    text: str
    inputs: dict[str, Any] = Field(default_factory=dict)


class Verdict(Action):
    """The user's answer to a turn: accept an item, or reject (with feedback) or give up."""

    kind: Literal["verdict"] = "verdict"
    accept: int | None = None  # the accepted item
    give_up: bool = False
    feedback: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)


def _query(g: AgentGroup, target: int) -> str:
    cat = g.world.catalog
    return f"{cat.titles[target]} ({', '.join(cat.genres[target])})"


def _view(g: AgentGroup, obs: ConversationOpen | ConversationTurn,
          recalled: Recalled) -> ConversationView:
    turn = obs.turn if isinstance(obs, ConversationTurn) else 0
    return ConversationView(
        profile=g.profiles[obs.agent], round=obs.round, turn=turn, target=obs.target,
        said=tuple(obs.said) if isinstance(obs, ConversationTurn) else (),
        recommended=tuple(obs.recommended) if isinstance(obs, ConversationTurn) else (),
        reply=obs.reply if isinstance(obs, ConversationTurn) else "",
        patience=obs.patience, noise=obs.noise, memory=tuple(recalled.short),
        guidance=recalled.guidance)


def _said(g: AgentGroup, obs: Observation, action: Action) -> Sequence[MemoryWrite]:
    """What the user said, remembered (both kinds)."""
    if isinstance(action, Utterance):
        text = action.text
    elif isinstance(action, Verdict):
        text = (f"accepted {g.world.catalog.item_ids[action.accept]}"
                if action.accept is not None else action.feedback)
    else:
        return ()
    return (MemoryWrite(short={"action": "said", "item": text[:80], "title": text[:200],
                               "round": obs.round, "turn": obs.where.get("turn")},
                        key="said", text=f"I said: {text}"),)


class ConversationOpenKind(InteractionKind[ConversationOpen]):
    observation = ConversationOpen
    needs = (ConversationSeeker,)

    def query(self, g: AgentGroup, obs: ConversationOpen) -> str | None:
        return _query(g, obs.target)

    async def decide(self, g: AgentGroup, obs: ConversationOpen,
                     recalled: Recalled) -> Action:
        brain = cast(ConversationSeeker, g.brain)  # checked at load (agents.kinds)
        s = await brain.adescribe(_view(g, obs, recalled),
                                  user_rng(g.seed, obs.agent, obs.round, 10_000))
        return Utterance(text=s.text, inputs=s.inputs)

    def remember(self, g: AgentGroup, obs: ConversationOpen,
                 action: Action) -> Sequence[MemoryWrite]:
        return _said(g, obs, action)


class ConversationTurnKind(InteractionKind[ConversationTurn]):
    observation = ConversationTurn
    needs = (ConversationSeeker,)

    def query(self, g: AgentGroup, obs: ConversationTurn) -> str | None:
        return _query(g, obs.target)

    def plan_request(self, g: AgentGroup, obs: ConversationTurn,
                     recalled: Recalled) -> PlanRequest | None:
        goal = (f"turn {obs.turn} of a conversation: find the movie you are looking for "
                f"({item_line(g.world.catalog, obs.target)}) among the suggestions")
        return make_plan_request(g, obs, recalled, goal, obs.recommended)

    async def decide(self, g: AgentGroup, obs: ConversationTurn,
                     recalled: Recalled) -> Action:
        brain = cast(ConversationSeeker, g.brain)
        v = await brain.ajudge(_view(g, obs, recalled),
                               user_rng(g.seed, obs.agent, obs.round, 10_000 + obs.turn))
        return Verdict(accept=v.accept, give_up=v.give_up, feedback=v.feedback,
                       inputs=v.inputs)

    def remember(self, g: AgentGroup, obs: ConversationTurn,
                 action: Action) -> Sequence[MemoryWrite]:
        return _said(g, obs, action)
