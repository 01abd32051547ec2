"""The social world's observations and actions, and how an agent handles them.

- ``SocialTick`` -> ``SocialChoice``: an active agent picks what it does at a tick (the
  brain's ``SocialActor``).
- ``SocialPage`` -> ``PageAction``: a page from the recommender (browse) or from a
  catalogue search, decided like a feed page (``PageDecider``) with what the agent heard
  from its ties beside each item.
- ``SpeakTurn`` -> ``Spoken``: one chat line or one post (``SocialSpeaker``), with the
  catalogue items it mentions.

The environment is in social.py. What an agent hears enters its short-term memory (the
speak kind's ``remember``) and the world's heard list, which the next views carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

from pydantic import Field

from agents.brains.base import PageObservation
from agents.brains.capabilities import PageDecider
from agents.brains.social import (
    Activity,
    Heard,
    SocialActor,
    SocialSpeaker,
    SocialView,
    SpeakView,
)
from agents.group import AgentGroup
from agents.kinds import (
    InteractionKind,
    MemoryWrite,
    PlanRequest,
    Recalled,
    make_plan_request,
)
from agents.observations import Action, Message, Observation
from agents.seeding import user_rng
from simulations.environments.feed_kind import FeedPageKind, page_action

__all__ = [
    "HeardItem",
    "SocialChoice",
    "SocialPage",
    "SocialPageKind",
    "SocialTick",
    "SocialTickKind",
    "SpeakKind",
    "SpeakTurn",
    "Spoken",
]

# Step numbers of user_rng within a tick (a tick's draws never collide with another's).
_CHOOSE, _PAGE, _SPEAK = 0, 1, 2


def _step(tick: int, part: int, line: int = 0) -> int:
    return 1000 * tick + 100 * part + line


class HeardItem(Message):
    item: int
    source: int
    tie: float
    via: Literal["post", "chat"]
    tick: int


class SocialTick(Observation):
    """An active agent at a tick: what it may do, its free ties, what it heard."""

    kind: Literal["social_tick"] = "social_tick"
    tick: int
    allowed: list[Activity]
    weights: dict[str, float]
    neighbours: list[int] = Field(default_factory=list)
    ties: list[float] = Field(default_factory=list)
    heard: list[HeardItem] = Field(default_factory=list)
    recent: list[tuple[int, int]] = Field(default_factory=list)
    news: list[HeardItem] = Field(default_factory=list)  # heard since it last acted
    social_weight: float = 1.0


class SocialChoice(Action):
    kind: Literal["social_choice"] = "social_choice"
    activity: Activity
    partner: int | None = None
    item: int | None = None
    query: str = ""
    reason: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)


class SocialPage(Observation):
    """A page the agent decides like a feed page: the recommender's or a search's."""

    kind: Literal["social_page"] = "social_page"
    tick: int
    page: int = 1  # one page per browse or search (its memory reads like a feed page's)
    via: Literal["browse", "search"]
    query: str = ""
    items: list[int]
    heard_ties: list[float]  # per item: the strongest tie it was heard from, 0 if not
    social_weight: float = 0.0


class SpeakTurn(Observation):
    """One chat line (``mode`` chat: ``partner``, the transcript) or one post."""

    kind: Literal["social_speak"] = "social_speak"
    tick: int
    mode: Literal["chat", "post"]
    partner: int | None = None
    partner_id: str = ""
    tie: float = 0.0
    transcript: list[tuple[str, str]] = Field(default_factory=list)
    recent: list[tuple[int, int]] = Field(default_factory=list)
    heard: list[HeardItem] = Field(default_factory=list)
    mentioned: list[int] = Field(default_factory=list)


class Spoken(Action):
    kind: Literal["spoken"] = "spoken"
    text: str
    mentions: list[int] = Field(default_factory=list)
    inputs: dict[str, Any] = Field(default_factory=dict)


def _heard(items: Sequence[HeardItem]) -> tuple[Heard, ...]:
    return tuple(Heard(h.item, h.source, h.tie, h.via, h.tick) for h in items)


class SocialTickKind(InteractionKind[SocialTick]):
    observation = SocialTick
    needs = (SocialActor,)

    async def decide(self, g: AgentGroup, obs: SocialTick, recalled: Recalled) -> Action:
        u = obs.agent
        brain = cast(SocialActor, g.brain)  # checked at load (agents.kinds)
        d = await brain.achoose(SocialView(
            profile=g.profiles[u], round=obs.round, tick=obs.tick, allowed=tuple(obs.allowed),
            weights=dict(obs.weights), neighbours=tuple(obs.neighbours), ties=tuple(obs.ties),
            heard=_heard(obs.heard), recent=tuple(obs.recent),
            social_weight=obs.social_weight, memory=tuple(recalled.short)),
            user_rng(g.seed, u, obs.round, _step(obs.tick, _CHOOSE)))
        return SocialChoice(activity=d.activity, partner=d.partner, item=d.item,
                            query=d.query, reason=d.reason, inputs=d.inputs)

    def remember(self, g: AgentGroup, obs: SocialTick, action: Action) -> Sequence[MemoryWrite]:
        """What the agent heard since it last acted (posts of those it follows, chats)."""
        cat = g.world.catalog
        return tuple(MemoryWrite(
            short={"action": "heard", "item": cat.item_ids[h.item], "title": cat.titles[h.item],
                   "genres": list(cat.genres[h.item]), "via": h.via, "tie": h.tie,
                   "round": obs.round, "tick": h.tick},
            key=f"heard-{cat.item_ids[h.item]}-t{h.tick}",
            text=f"heard about '{cat.titles[h.item]}' in a {h.via} (tie {h.tie:.2f})",
            meta={"item": cat.item_ids[h.item]}) for h in obs.news)


class SocialPageKind(InteractionKind[SocialPage]):
    """A feed page with the heard pull beside each item; remembered like a feed page."""

    observation = SocialPage
    needs = (PageDecider,)
    _feed = FeedPageKind()

    def query(self, g: AgentGroup, obs: SocialPage) -> str | None:
        cat = g.world.catalog
        return "; ".join(f"{cat.titles[i]} ({', '.join(cat.genres[i])})" for i in obs.items)

    def plan_request(self, g: AgentGroup, obs: SocialPage,
                     recalled: Recalled) -> PlanRequest | None:
        where = f"a search for '{obs.query}'" if obs.via == "search" else "the recommender"
        return make_plan_request(g, obs, recalled, f"a page from {where} on a movie social "
                                 "network: decide which of the items to watch", obs.items)

    async def decide(self, g: AgentGroup, obs: SocialPage, recalled: Recalled) -> Action:
        u = obs.agent
        brain = cast(PageDecider, g.brain)
        d = await brain.adecide_page(PageObservation(
            profile=g.profiles[u], round=obs.round, page=1, items=tuple(obs.items),
            memory=tuple(recalled.short), recalled=tuple(recalled.long),
            plan=tuple(recalled.plan.steps) if recalled.plan else (),
            guidance=recalled.guidance, heard_ties=tuple(obs.heard_ties),
            social_weight=obs.social_weight),
            user_rng(g.seed, u, obs.round, _step(obs.tick, _PAGE)))
        return page_action(d)

    def remember(self, g: AgentGroup, obs: SocialPage, action: Action) -> Sequence[MemoryWrite]:
        return self._feed.remember(g, obs, action)  # type: ignore[arg-type]


class SpeakKind(InteractionKind[SpeakTurn]):
    observation = SpeakTurn
    needs = (SocialSpeaker,)

    async def decide(self, g: AgentGroup, obs: SpeakTurn, recalled: Recalled) -> Action:
        u = obs.agent
        brain = cast(SocialSpeaker, g.brain)
        said = await brain.aspeak(SpeakView(
            profile=g.profiles[u], round=obs.round, tick=obs.tick, mode=obs.mode,
            partner=obs.partner, tie=obs.tie, transcript=tuple(obs.transcript),
            recent=tuple(obs.recent), heard=_heard(obs.heard),
            mentioned=tuple(obs.mentioned)),
            user_rng(g.seed, u, obs.round, _step(obs.tick, _SPEAK, len(obs.transcript))))
        known = [m for m in said.mentions if 0 <= m < g.world.catalog.n_items]
        return Spoken(text=said.text, mentions=known, inputs=said.inputs)

    def remember(self, g: AgentGroup, obs: SpeakTurn, action: Action) -> Sequence[MemoryWrite]:
        if not isinstance(action, Spoken):
            return ()
        cat = g.world.catalog
        told = ", ".join(f"'{cat.titles[i]}'" for i in action.mentions) or "nothing"
        where = (f"chat with user {obs.partner_id}" if obs.mode == "chat" else "a post")
        return (MemoryWrite(
            short={"action": "said", "item": cat.item_ids[action.mentions[0]]
                   if action.mentions else "", "title": told, "mode": obs.mode,
                   "round": obs.round, "tick": obs.tick},
            key=f"t{obs.tick}-{obs.mode}-{len(obs.transcript)}",
            text=f"in {where} I said: {action.text}",
            meta={"mentions": ",".join(cat.item_ids[i] for i in action.mentions)}),)
