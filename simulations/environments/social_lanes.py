"""The social world's ticks, pipelined: a user's page or post starts with its own choice.

The lock-step loop runs a tick as step "choose" (every active user's ``SocialTick`` in
flight, then drained), step "act" (pages, posts and the first chat lines, drained), then
one step per further chat line. Between "choose" and "act" no call is in flight while
the world pairs the chats, asks the recommender and builds the pages. Yet what a user
who browses, searches or posts does next depends on its own choice only:

- its page is built from its own state (watched, shown, heard) and the recommender,
  whose rows are independent (the built-in models, the cold-start policies and the
  shipped social recommenders score each user on its own, so a lane's batch gives each
  user the page the tick's one batch gives it); a post from its own recent watches;
- nobody who browses, searches or posts is ever in a chat (``SocialEnvironment._pair``
  pairs chat choosers with idle or mutual partners only), so pairing cannot change it.

So here the tick's choices run in lanes (contiguous blocks of the canonical user order,
``lane_size`` users), and each lane's pages and posts go out as soon as the lane's
choices are back, while the other lanes' choices are still in flight. The chats are
paired once every choice is back (pairing sees every choice of the tick) and their
first lines go out then. Nothing is applied before its turn: the "act" step's effects
(watches, posts heard by followers, mentions, first tellers) are applied by the lock-step
code (``SocialEnvironment._apply``) in the lock-step order, a lane's part once every
earlier part is answered and every observation of the step is built, so no page, post or
first line sees an effect the lock-step world would not show it yet, and what a user
hears reaches its next choice, as in lock-step. The further chat lines follow in
lock-step. The next tick's choices need every post of this one, so they wait until this
tick is applied; when no chat line is left they start right then, on the agents' loop,
while the run loop writes this tick and checkpoints (``_Ahead``: the world is already
where the lock-step loop leaves it; the next tick's events wait for the next
``drive_tick`` to adopt it, so the trace and the checkpoints are the lock-step ones).

The trace is the lock-step one, byte for byte: the "choose" step is written once the
chats are paired, the "act" step once it is answered, each as the lock-step loop writes
it (the observe events, the agents' events grouped by observation in the lock-step order
of the observations, then the world's events of the step, produced by the same code in
the same order). Each role's memory clock is the lock-step one
(``OrderedPopulation.alane_act`` with the step's index: 0 for the choices, 1 for the
pages, posts and first lines; whoever acts at 1 chose at 0), so memories, recalls and
metrics are the same. A resume re-executes in lock-step.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agents.aio import gather_all
from agents.observations import Action, Observation
from agents.recsys.plugins import AgentRecommender
from simulations.environments.base import TraceBuffer
from simulations.environments.social_kind import SocialChoice
from tools.recommenders import MODELS, PluginRecommender
from tools.recommenders.social import FriendsRecommender

if TYPE_CHECKING:
    from simulations.environments.pipeline import Pipelined

# The environment is a SocialEnvironment (not imported here: social.py imports this module).
SocialEnvironment = Any

__all__ = ["drive_tick", "rows_independent"]

Event = tuple[str, str, dict[str, Any]]


def rows_independent(rec: Any) -> bool:
    """Whether the recommender gives each user the same page whatever batch it is in:
    a built-in model or the shipped friends recommender (behind any cold-start policy),
    not a recommender agent (it files trace events as it recommends) or another plug-in
    (it may draw per call)."""
    base = getattr(rec, "base", rec)
    if isinstance(base, AgentRecommender):
        return False
    if isinstance(base, PluginRecommender):
        return isinstance(getattr(base, "plugin", None), FriendsRecommender)
    return isinstance(base, tuple(MODELS.values()))


@dataclasses.dataclass
class _Part:
    """Some of the "act" step's observations (a lane's pages and posts, or the first chat
    lines), their actions and their agents' events once answered."""

    observations: list[Observation] = dataclasses.field(default_factory=list)
    actions: list[Action] = dataclasses.field(default_factory=list)
    groups: list[list[Event]] = dataclasses.field(default_factory=list)
    answered: bool = False


@dataclasses.dataclass
class _Lane:
    """One lane's part of the tick."""

    ticks: list[Observation]
    groups: list[list[Event]] = dataclasses.field(default_factory=list)  # choose step
    failed: list[Event] = dataclasses.field(default_factory=list)
    chose: dict[int, SocialChoice] = dataclasses.field(default_factory=dict)
    started: dict[int, list[Event]] = dataclasses.field(default_factory=dict)  # page events
    acts: _Part = dataclasses.field(default_factory=_Part)  # its pages and posts


@dataclasses.dataclass
class _Ahead:
    """The next tick, started on the agents' loop as soon as this one was applied, while
    the run loop writes this one and checkpoints (its "choose" step is written only once
    the next ``drive_tick`` adopts it); ``tick`` None: the round is over, ``observed`` the
    events of the observe that found it so."""

    observed: list[Event]
    tick: _Tick | None = None
    task: asyncio.Future[tuple[list[Event] | None, _Ahead | None]] | None = None


def drive_tick(env: SocialEnvironment, actor: Pipelined,
               write: Callable[[list[Event]], None], emit: Callable[..., None]) -> int | None:
    """Run the next tick's "choose" and "act" steps pipelined; the number of lock-step
    steps written (0 when the round is over: the loop then ends it), or None when the next
    step is not a tick's choices (the caller steps in lock-step).

    ``write`` writes one lock-step step's events; ``emit`` writes one event to the trace
    (the observe events of a round that ends).
    """
    ahead: _Ahead | None = env._ahead
    env._ahead = None
    if ahead is None:
        if not env.choosing_next() or not rows_independent(env.recommender):
            return None
        env._sink = env.s
        buffer = TraceBuffer()
        env.s = dataclasses.replace(env.s, trace=buffer)
        ticks = env.observe()
        ahead = _Ahead(buffer.take())
        if env.phase == "choosing":
            ahead.tick = _Tick(env, actor, ticks, buffer, ahead.observed)
    if ahead.tick is None:  # the round is over: as the lock-step loop writes it
        env.s = env._sink
        for type_, id_, fields in ahead.observed:
            emit(type_, id_, **fields)
        return 0
    try:
        second, env._ahead = actor.loop.run(ahead.tick.finish(write, ahead.task))
    finally:
        if env._ahead is None:
            env.s = env._sink
    if second is None:
        return 1
    write(second)
    return 2


class _Tick:
    """One tick's "choose" and "act" steps, pipelined."""

    def __init__(self, env: SocialEnvironment, actor: Pipelined, ticks: list[Observation],
                 buffer: TraceBuffer, observed: list[Event]) -> None:
        self.env, self.actor, self.ticks, self.buffer = env, actor, ticks, buffer
        self.observed = observed  # the observe events of the "choose" step
        self.write: Callable[[list[Event]], None] | None = None  # set when adopted
        self.adopted = asyncio.Event()
        size = max(1, actor.lane_size)
        self.lanes = [_Lane(ticks[lo:lo + size]) for lo in range(0, len(ticks), size)]
        self.chats = _Part()
        self.chosen = asyncio.Event()
        self.left = len(self.lanes)
        self.built = False  # every observation of the "act" step is built
        self.applied: list[Event] = []  # the "act" step's world events so far
        self.cursor = 0  # parts applied, in the lock-step order (lanes, then chats)

    async def finish(self, write: Callable[[list[Event]], None],
                     task: asyncio.Future[tuple[list[Event] | None, _Ahead | None]] | None
                     ) -> tuple[list[Event] | None, _Ahead | None]:
        """Adopted by a ``drive_tick`` (its ``write``): run, or if started ahead wait."""
        self.write = write
        self.adopted.set()
        return await (task if task is not None else self.run())

    async def run(self) -> tuple[list[Event] | None, _Ahead | None]:
        """Both steps; the "choose" step is written as soon as the chats are paired (and
        the tick adopted), the "act" step's events are returned (None: the step is empty),
        with the next tick started ahead when no chat line is left."""
        self.actor.begin_phase()
        try:
            await gather_all([*(self._lane(x) for x in self.lanes), self._chat()])
        finally:
            self.actor.end_phase()
        env = self.env
        env._pending, env.phase = [], "chat"  # as after the "act" step's observe
        parts = self._parts()
        second = None
        if any(p.observations for p in parts):
            env.line += 1  # as the lock-step "act" step leaves it (its effects applied)
            second = ([e for p in parts for g in p.groups[:-1] for e in g]
                      + [e for p in parts if p.groups for e in p.groups[-1]] + self.applied)
        return second, self._ahead()

    def _ahead(self) -> _Ahead | None:
        """The next tick's observe, now (the world is where the lock-step loop leaves it
        after this tick), and its lanes started; None when chat lines are left."""
        env = self.env
        if not env.choosing_next():
            return None
        ticks = env.observe()
        ahead = _Ahead(self.buffer.take())
        if env.phase == "choosing":
            ahead.tick = _Tick(env, self.actor, ticks, self.buffer, ahead.observed)
            ahead.task = asyncio.ensure_future(ahead.tick.run())
        return ahead

    def _parts(self) -> list[_Part]:
        return [x.acts for x in self.lanes] + [self.chats]

    def _advance(self) -> None:
        """Apply the answered parts in the lock-step order, as far as they are answered,
        once every observation of the step is built (nothing reads what they change)."""
        parts = self._parts()
        while self.built and self.cursor < len(parts) and parts[self.cursor].answered:
            p = parts[self.cursor]
            for o, a in zip(p.observations, p.actions, strict=True):
                self.env._apply(o, a)
            self.applied += self.buffer.take()
            self.cursor += 1

    async def _act(self, part: _Part) -> None:
        if part.observations:
            part.actions, part.groups = await self.actor.alane_act(part.observations, 1)
        part.answered = True
        self._advance()

    async def _lane(self, x: _Lane) -> None:
        env, buffer = self.env, self.buffer
        actions, x.groups = await self.actor.alane_act(x.ticks, 0)
        x.chose = env._chosen(x.ticks, actions)  # failures traced here, kept apart
        x.failed = buffer.take()
        self.left -= 1
        if not self.left:
            self.chosen.set()
        env._recs = env._recommend([o.agent for o in x.ticks if o.agent in x.chose
                                    and x.chose[o.agent].activity == "browse"])
        for o in x.ticks:
            a = x.chose.get(o.agent)
            if a is None:
                continue
            started = env._start(o.agent, a)
            x.started[o.agent] = buffer.take()
            if started is not None:
                x.acts.observations.append(started)
        await self._act(x.acts)

    async def _chat(self) -> None:
        """Once every choice is back (and so every page and post built): the chats paired,
        the "choose" step written, the first lines asked."""
        await self.chosen.wait()
        env, buffer = self.env, self.buffer
        outcome = env._pair(self.ticks, {u: a for x in self.lanes for u, a in x.chose.items()})
        first = [e for x in self.lanes for g in x.groups[:-1] for e in g]
        first += [e for x in self.lanes for e in x.groups[-1]]
        first += [e for x in self.lanes for e in x.failed]
        for x in self.lanes:
            for o in x.ticks:
                a = x.chose.get(o.agent)
                if a is not None:
                    env._chose(o, a, outcome[o.agent])
                    first += buffer.take() + x.started[o.agent]
        env.line = 0
        self.chats.observations = [env._speak(c.a, "chat", c) for c in env.chats]
        self.built = True
        self._advance()
        await gather_all([self._act(self.chats), self._write_first(first)])

    async def _write_first(self, first: list[Event]) -> None:
        await self.adopted.wait()  # the run loop wrote the previous tick and moved on
        assert self.write is not None
        self.write(self.observed + first)
