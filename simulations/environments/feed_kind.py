"""The feed's observations and actions, and how an agent handles them (interaction kinds).

``FeedPage`` -> ``PageAction`` (watch or skip each item, rate, stay or leave) asks the
brain's ``PageDecider``; ``InterviewRequest`` -> ``InterviewAction`` (satisfaction 1-10)
its ``Interviewee``. The environment itself is in feed.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

from pydantic import Field

from agents.brains.base import PageDecision, PageObservation, SessionSummary
from agents.brains.capabilities import Interviewee, PageDecider
from agents.group import AgentGroup
from agents.kinds import (
    InteractionKind,
    MemoryWrite,
    PlanRequest,
    PlanResult,
    Recalled,
    make_plan_request,
)
from agents.observations import Action, Message, Observation
from agents.seeding import user_rng

__all__ = [
    "FeedPage",
    "FeedPageKind",
    "InterviewAction",
    "InterviewKind",
    "InterviewRequest",
    "ItemChoice",
    "PageAction",
    "page_action",
]


class FeedPage(Observation):
    """One page of a feed: watch or skip each item, rate what is watched, stay or leave."""

    kind: Literal["feed_page"] = "feed_page"
    page: int  # 1-based
    max_pages: int
    items: list[int]


class InterviewRequest(Observation):
    """After a session: how satisfied was the user (1-10) and why."""

    kind: Literal["interview"] = "interview"
    pages: int
    shown: int
    watched: list[int]
    ratings: list[int]
    left_early: bool


class ItemChoice(Message):
    item: int
    watch: bool
    rating: int | None = Field(None, ge=1, le=5)
    reason: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)


class PageAction(Action):
    kind: Literal["page"] = "page"
    items: list[ItemChoice]
    leave: bool
    feeling: str
    feeling_source: Literal["model", "computed"] = "computed"
    inputs: dict[str, Any] = Field(default_factory=dict)


class InterviewAction(Action):
    kind: Literal["interview"] = "interview"
    satisfaction: int = Field(ge=1, le=10)
    reason: str
    inputs: dict[str, Any] = Field(default_factory=dict)


def page_action(d: PageDecision) -> PageAction:
    """The action of a page decision (the feed's, and any page decided like one)."""
    return PageAction(
        items=[ItemChoice(item=x.item, watch=x.watch, rating=x.rating, reason=x.reason,
                          inputs=x.inputs) for x in d.items],
        leave=d.leave, feeling=d.feeling,
        feeling_source="model" if d.inputs.get("feeling_source") == "model" else "computed",
        inputs={k: v for k, v in d.inputs.items() if k != "feeling_source"})


def _shortlist(g: AgentGroup, p: PlanResult | None) -> tuple[int, ...] | None:
    if p is None or p.shortlist is None:
        return None
    return tuple(g.world.catalog.index[i] for i in p.shortlist)


class FeedPageKind(InteractionKind[FeedPage]):
    observation = FeedPage
    needs = (PageDecider,)

    def query(self, g: AgentGroup, obs: FeedPage) -> str | None:
        cat = g.world.catalog
        return "; ".join(f"{cat.titles[i]} ({', '.join(cat.genres[i])})" for i in obs.items)

    def plan_request(self, g: AgentGroup, obs: FeedPage,
                     recalled: Recalled) -> PlanRequest | None:
        goal = (f"page {obs.page} of at most {obs.max_pages} of a movie feed: decide which "
                "of the items to watch")
        return make_plan_request(g, obs, recalled, goal, obs.items)

    async def decide(self, g: AgentGroup, obs: FeedPage, recalled: Recalled) -> Action:
        p, u = recalled.plan, obs.agent
        brain = cast(PageDecider, g.brain)  # checked at load (agents.kinds)
        d = await brain.adecide_page(PageObservation(
            profile=g.profiles[u], round=obs.round, page=obs.page, items=tuple(obs.items),
            memory=tuple(recalled.short), plan=tuple(p.steps) if p else (),
            recalled=tuple(recalled.long), guidance=recalled.guidance,
            shortlist=_shortlist(g, p)), user_rng(g.seed, u, obs.round, obs.page))
        return page_action(d)

    def remember(self, g: AgentGroup, obs: FeedPage, action: Action) -> Sequence[MemoryWrite]:
        if not isinstance(action, PageAction):
            return ()
        cat, u, rnd = g.world.catalog, obs.agent, obs.round
        out = []
        for x in action.items:
            it = x.item
            iid, title = cat.item_ids[it], cat.titles[it]
            if x.watch:
                g.note_watch(u, it, x.rating)
            genres = ", ".join(cat.genres[it])
            out.append(MemoryWrite(
                short={"action": "watch" if x.watch else "skip", "item": iid, "title": title,
                       "genres": list(cat.genres[it]), "rating": x.rating,
                       "round": rnd, "page": obs.page},
                key=iid,
                text=(f"watched '{title}' ({genres}) and rated it {x.rating}/5" if x.watch
                      else f"skipped '{title}' ({genres})"),
                rating=x.rating, watched=x.watch, meta={"item": iid},
                shared=(f"liked '{title}' ({x.rating}/5)"
                        if x.watch and (x.rating or 0) >= 4 else None)))
        return out


class InterviewKind(InteractionKind[InterviewRequest]):
    observation = InterviewRequest
    needs = (Interviewee,)

    async def decide(self, g: AgentGroup, obs: InterviewRequest,
                     recalled: Recalled) -> Action:
        u = obs.agent
        brain = cast(Interviewee, g.brain)
        a = await brain.ainterview(SessionSummary(
            profile=g.profiles[u], round=obs.round, pages=obs.pages, shown=obs.shown,
            watched=tuple(obs.watched), ratings=tuple(obs.ratings),
            left_early=obs.left_early), user_rng(g.seed, u, obs.round, 0))
        return InterviewAction(satisfaction=a.satisfaction, reason=a.reason, inputs=a.inputs)
