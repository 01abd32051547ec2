"""The social world: users on a graph who browse, search, chat and post, tick by tick.

RecAgent-style. A round is ``ticks`` ticks; the recommender retrains between rounds on
what users watched (``recommenders[].retrain``). At each tick every user is active with a
chance from its activity trait (growing while it idles, if ``idle_growth``); the active
ones choose at once (``SocialTick``), then act at once: a page from the recommender
(browse) or from a catalogue search, a post to their followers, or a chat with a free
neighbour, which occupies both for its ``2 x chat_turns`` lines. Items told in chats and
posts are catalogue ids (structured output); each telling is a ``mention`` event, and
every hearer keeps the item on its heard list (strongest tie, latest ``heard_limit``),
which pulls on its page decisions and may send it searching.

Draws are seeded per (user, round, tick), never per arm, so paired arms see the same
activity and the same choices until what they were shown differs.

With LLM users the run loop pipelines a tick (``drive``, simulations/environments/
social_lanes.py): a user's page or post is asked as soon as its own choice is back (it
depends on nothing else), the chats are paired from every choice, and the "act" step's
effects are applied in the lock-step order before anyone's next choice, so it is the
same world, step for step, with the same trace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from agents.brains.social import ACTIVITIES, Activity
from agents.observations import Action, Failure, Observation
from agents.seeding import user_rng
from scenarios.schema import SwitchRecommenderEvent
from scenarios.schema.social_world import SocialSettings
from simulations.environments.base import ArmEnvironment, EnvSetup, PrepareInput, register
from simulations.environments.feed_kind import PageAction
from simulations.environments.social_kind import (
    HeardItem,
    SocialChoice,
    SocialPage,
    SocialPageKind,
    SocialTick,
    SocialTickKind,
    SpeakKind,
    SpeakTurn,
    Spoken,
)
from simulations.environments.social_lanes import Event, drive_tick
from tools.recommenders import ColdStartRecommender
from tools.recommenders.social import GraphAware
from tools.social_graph import GraphError, build_graph, graph_stats, rewire_heterophilous

if TYPE_CHECKING:
    from simulations.environments.pipeline import Pipelined

__all__ = ["SocialEnvironment"]

_ACTIVE, _RANDOM = 90, 91  # user_rng step parts of the world's own draws


@dataclass
class _Chat:
    a: int  # who asked
    b: int
    tie: float
    lines: list[tuple[int, str]] = field(default_factory=list)
    mentioned: list[int] = field(default_factory=list)


def _prepare(inp: PrepareInput) -> dict[str, Any]:
    """The graph block checked against the data and the population before any work (a
    bad edge list, a parameter the population cannot meet, a disconnected graph), with a
    relative edge-list path made absolute from the scenario's folder."""
    settings = dict(inp.settings)
    graph = dict(settings.get("graph") or {})
    if graph.get("kind") == "file" and inp.scenario_dir is not None:
        path = Path(str(graph["path"])).expanduser()
        graph["path"] = str(path if path.is_absolute() else (inp.scenario_dir / path).resolve())
        settings["graph"] = graph
    cfg = SocialSettings.model_validate(settings)
    ds = inp.dataset
    try:
        build_graph(cfg.graph, inp.users, [ds.user_attrs[u] for u in inp.users],
                    ds.user_ids, seed=inp.seed)
    except GraphError as e:
        raise ValueError(f"graph: {e}") from None
    return settings


@register("social", kinds=(SocialTickKind(), SocialPageKind(), SpeakKind()),
          settings=SocialSettings, prepare=_prepare)
class SocialEnvironment(ArmEnvironment):
    kind = "social"

    def __init__(self, setup: EnvSetup) -> None:
        super().__init__(setup)
        self.cfg = SocialSettings.model_validate(setup.scenario.environment.settings)
        self.page_size = setup.scenario.environment.items_per_page
        ds, seed = setup.dataset, setup.scenario.seed
        attrs = [ds.user_attrs[u] for u in setup.users]
        graph = build_graph(self.cfg.graph, setup.users, attrs, ds.user_ids, seed=seed)
        if self.cfg.rewire_heterophily > 0:
            graph = rewire_heterophilous(graph, attrs, self.cfg.rewire_heterophily, seed)
        self.graph = graph
        self.node = {u: i for i, u in enumerate(graph.users)}
        setup.trace.emit("social_graph", f"{self.arm}/graph", arm=self.arm,
                         **graph_stats(graph, attrs))
        self.train = setup.history
        self.recommender = self._fitted(setup.fit(setup.arm, self.train, self.released))
        self.seen = setup.history.matrix(ds.n_users, ds.n_items).tolil()
        self.shown: dict[int, set[int]] = {u: set() for u in setup.users}
        self.heard: dict[int, dict[int, HeardItem]] = {u: {} for u in setup.users}
        self.news: dict[int, list[HeardItem]] = {u: [] for u in setup.users}
        self.recent: dict[int, list[tuple[int, int]]] = {u: [] for u in setup.users}
        self.origin: dict[tuple[int, int], int] = {}  # (hearer, item) -> first teller
        self.idle: dict[int, int] = dict.fromkeys(setup.users, 0)
        self.watches: list[tuple[int, int, int, int]] = []  # user, item, rating, round
        self._search: Any = None  # tools.search.BM25Index, built at the first search
        self.tick, self.phase = 0, "done"
        self.chats: list[_Chat] = []
        self._pending: list[Observation] = []
        self._recs: dict[int, list[int]] = {}
        self.line = 0
        self._ahead: Any = None  # the next tick, started early (social_lanes.drive_tick)
        self._sink: EnvSetup = setup  # the setup whose trace a driven tick buffers

    # ------------------------------------------------------------------ protocol

    def begin_round(self, round_: int) -> None:
        s = self.s
        self.round, self.tick, self.phase = round_, 0, "choose"
        if self._release(round_):
            self.recommender.new_items = self.released

        def refit(ev: SwitchRecommenderEvent) -> None:
            self.recommender = self._fitted(s.fit(ev, self.train, self.released))

        self._switch(round_, refit)
        s.trace.emit("round_start", f"{self.arm}/r{round_}", arm=self.arm, round=round_,
                     recommender=self.recommender.name, users=len(s.users),
                     environment="social", ticks=self.cfg.ticks)

    def observe(self) -> list[Observation]:
        """A tick's choices, then its pages, posts and chat lines (one batch per line)."""
        while self.phase in ("choose", "chat"):
            if self.phase == "chat":
                out = self._chat_lines()  # back to "choose" when the tick is over
            else:
                self.tick += 1
                if self.tick > self.cfg.ticks:
                    self.phase = "done"
                    return []
                out = self._ticks()
            if out:
                return out
        return []

    def step(self, observations: Sequence[Observation], actions: Sequence[Action]) -> None:
        if self.phase == "choosing":
            self._act(observations, actions)
        elif self.phase == "chat":
            self._record(observations, actions)
        self.s.trace.flush()

    def choosing_next(self) -> bool:
        """Whether the next ``observe`` starts a tick (its choices) or ends the round: no
        page, post or chat line is left in the tick (as ``_chat_lines`` sees it)."""
        if self.phase == "choose":
            return True
        lines = bool(self.chats) and self.line < 2 * self.cfg.chat_turns
        return self.phase == "chat" and not (self.line == 0 and self._pending) and not lines

    def drive(self, actor: Pipelined, write: Callable[[list[Event]], None],
              emit: Callable[..., None]) -> int | None:
        """A tick's choices and acts pipelined (``social_lanes``), or None: lock-step."""
        return drive_tick(self, actor, write, emit)

    def end_round(self, round_: int) -> None:
        s = self.s
        self._retrain(round_, self.watches)
        self._teach_items(round_, self._liked(round_, self.watches))
        s.trace.flush()
        s.on_session_end(len(s.users))

    def _fitted(self, rec: ColdStartRecommender) -> ColdStartRecommender:
        """A recommender that uses the graph (a social arm) gets it."""
        plugin = getattr(rec.base, "plugin", None)
        if isinstance(plugin, GraphAware):
            g = self.graph
            plugin.use_graph(self.s.dataset.n_users, g.users, g.neighbors, g.weights)
        return rec

    # ------------------------------------------------------------------ choosing

    def _base_t(self, u: int, step: str) -> str:
        return self._base(u, f"t{self.tick}/{step}")

    def _active(self) -> list[int]:
        c, out = self.cfg, []
        for u in self.s.users:
            trait = self._activity_trait(u)
            p = c.activity + c.activity_step * (trait - 2) + c.idle_growth * self.idle[u]
            if user_rng(self.s.scenario.seed, u, self.round,
                        1000 * self.tick + _ACTIVE).random() < p:
                out.append(u)
                self.idle[u] = 0
            else:
                self.idle[u] += 1
        return out

    def _activity_trait(self, u: int) -> int:
        return self.s.activity.get(u, 2)

    def _allowed(self) -> list[Activity]:
        if not self.cfg.social:
            return ["browse", "idle"]
        return list(ACTIVITIES)

    def _ticks(self) -> list[Observation]:
        active = self._active()
        self.s.trace.emit("tick", f"{self.arm}/r{self.round}/t{self.tick}", arm=self.arm,
                          round=self.round, tick=self.tick, active=len(active))
        if not active:
            return []
        self.phase = "choosing"
        weights = self.cfg.weights.model_dump()
        out: list[Observation] = []
        for u in active:
            i = self.node[u]
            nbrs = self.graph.neighbors[i]
            news, self.news[u] = self.news[u], []
            out.append(SocialTick(
                agent=u, base=self._base_t(u, "choose"), where=self._where(u, tick=self.tick),
                round=self.round, tick=self.tick, allowed=self._allowed(), weights=weights,
                neighbours=[self.graph.users[int(j)] for j in nbrs] if self.cfg.social else [],
                ties=[float(w) for w in self.graph.weights[i]] if self.cfg.social else [],
                heard=list(self.heard[u].values()) if self.cfg.social else [],
                recent=self.recent[u], news=news, social_weight=self.cfg.social_weight))
        return out

    def _act(self, observations: Sequence[Observation], actions: Sequence[Action]) -> None:
        """The choices of a tick: chats paired (a partner busy with anything else refuses),
        then every page, post and first chat line at once."""
        chose = self._chosen(observations, actions)
        self._recs = self._recommend([o.agent for o in observations if o.agent in chose
                                      and chose[o.agent].activity == "browse"])
        outcome = self._pair(observations, chose)
        out: list[Observation] = []
        for obs in observations:
            a = chose.get(obs.agent)
            if a is None:
                continue
            self._chose(obs, a, outcome[obs.agent])
            started = self._start(obs.agent, a)
            if started is not None:
                out.append(started)
        self._pending = out
        self.line = 0
        self.phase = "chat"

    def _chosen(self, observations: Sequence[Observation],
                actions: Sequence[Action]) -> dict[int, SocialChoice]:
        """Each user's choice (failures traced, in order, and left out)."""
        chose: dict[int, SocialChoice] = {}
        for obs, act in zip(observations, actions, strict=True):
            if isinstance(act, Failure):
                self._failure(obs, act)
                continue
            assert isinstance(act, SocialChoice)
            chose[obs.agent] = act
        return chose

    def _pair(self, observations: Sequence[Observation],
              chose: dict[int, SocialChoice]) -> dict[int, str]:
        """Chats paired in the order of the choices (``self.chats``); each chooser's
        outcome: its activity, or chat_refused. Only chat choosers and idle (or mutual)
        partners are paired, so nobody who browses, searches or posts is ever in a chat."""
        busy = {u for u, a in chose.items() if a.activity != "idle"}
        paired: set[int] = set()
        self.chats = []
        outcome: dict[int, str] = {}
        for obs in observations:
            u = obs.agent
            a = chose.get(u)
            if a is None:
                continue
            outcome[u] = a.activity
            if a.activity == "chat":
                p = a.partner
                mutual = p is not None and chose.get(p) is not None \
                    and chose[p].activity == "chat" and chose[p].partner == u
                free = p is not None and p in self.node and (p not in busy or mutual)
                if u in paired or not free or p in paired:
                    outcome[u] = "chat_refused"
                else:
                    assert p is not None
                    paired |= {u, p}
                    self.chats.append(_Chat(u, p, self.graph.tie(self.node[u], self.node[p])))
        return outcome

    def _chose(self, obs: Observation, a: SocialChoice, outcome: str) -> None:
        self.s.trace.emit("social_choice", f"{obs.base}", **obs.where, activity=a.activity,
                          outcome=outcome, partner=self.s.user_id(a.partner)
                          if a.partner is not None and a.partner in self.node else None,
                          item=self.cat.item_ids[a.item] if a.item is not None else None,
                          query=a.query, reason=a.reason, inputs=a.inputs)

    def _start(self, u: int, a: SocialChoice) -> Observation | None:
        """What a user who browses, searches or posts does next (its own state only; a
        browse reads ``self._recs``): a page (traced) or a post; None for anything else."""
        if a.activity in ("browse", "search"):
            return self._page(u, a)
        if a.activity == "post":
            return self._speak(u, "post", None)
        return None

    # ------------------------------------------------------------------ acting

    def _page(self, u: int, a: SocialChoice) -> SocialPage | None:
        watched = set(self.seen.rows[u])
        if a.activity == "search":
            if self._search is None:
                from tools.search import BM25Index  # bm25s only when someone searches

                self._search = BM25Index.for_catalog(self.cat)
            hits = self._search.search(a.query or "", self.page_size, exclude=frozenset(watched)
                                       | frozenset(self.withheld))
            items = [i for i, _ in hits]
        else:
            items = self._recs.get(u, [])
            if self.cfg.rec_random_k:
                items = self._mix_random(u, items, watched | self.shown[u] | self.withheld)
        if not items:
            return None
        self.shown[u].update(items)
        heard = self.heard[u]
        ties = [heard[i].tie if i in heard else 0.0 for i in items] if self.cfg.social \
            else [0.0] * len(items)
        base = self._base_t(u, "page")
        where = self._where(u, tick=self.tick)
        self.s.trace.emit("page", base, **where, via="search" if a.activity == "search"
                          else "browse", query=a.query if a.activity == "search" else None,
                          items=[self.cat.item_ids[i] for i in items],
                          recommender=self.recommender.name)
        return SocialPage(agent=u, base=base, where=where, round=self.round, tick=self.tick,
                          via="search" if a.activity == "search" else "browse",
                          query=a.query, items=items, heard_ties=ties,
                          social_weight=self.cfg.social_weight if self.cfg.social else 0.0)

    def _recommend(self, users: list[int]) -> dict[int, list[int]]:
        """One recommender call for every user browsing at this tick: ``items_per_page``
        items each, none watched, shown before or withheld."""
        if not users:
            return {}
        rows: list[int] = []
        cols: list[int] = []
        for k, u in enumerate(users):
            excl = set(self.seen.rows[u]) | self.shown[u] | self.withheld
            rows.extend([k] * len(excl))
            cols.extend(excl)
        mask = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)),
                             shape=(len(users), self.cat.n_items))
        self.recommender.at(arm=self.arm, round=self.round, page=self.tick)
        recs = self.recommender.recommend(np.asarray(users), self.page_size, mask)
        return {u: [int(i) for i in row if i >= 0] for u, row in zip(users, recs, strict=True)}

    def _mix_random(self, u: int, items: list[int], excl: set[int]) -> list[int]:
        rng = user_rng(self.s.scenario.seed, u, self.round, 1000 * self.tick + _RANDOM)
        pool = np.setdiff1d(np.arange(self.cat.n_items), np.fromiter(
            excl | set(items), dtype=np.int64))
        extra = [int(i) for i in rng.choice(pool, size=min(self.cfg.rec_random_k, len(pool)),
                                            replace=False)]
        out = list(items)
        for it in extra:  # each at a random position
            out.insert(int(rng.integers(len(out) + 1)), it)
        return out

    def _speak(self, u: int, mode: str, chat: _Chat | None) -> SpeakTurn:
        other = None if chat is None else (chat.b if u == chat.a else chat.a)
        step = "post" if chat is None else f"chat{self.line + 1}"
        where = self._where(u, tick=self.tick)
        return SpeakTurn(
            agent=u, base=self._base_t(u, step), where=where, round=self.round,
            tick=self.tick, mode="post" if chat is None else "chat", partner=other,
            partner_id=self.s.user_id(other) if other is not None else "",
            tie=chat.tie if chat else 0.0,
            transcript=[(self.s.user_id(w), t) for w, t in chat.lines] if chat else [],
            recent=self.recent[u], heard=list(self.heard[u].values()),
            mentioned=list(chat.mentioned) if chat else [])

    def _chat_lines(self) -> list[Observation]:
        out: list[Observation] = list(self._pending) if self.line == 0 else []
        self._pending = []
        for c in self.chats:
            if self.line < 2 * self.cfg.chat_turns:
                out.append(self._speak(c.a if self.line % 2 == 0 else c.b, "chat", c))
        if not out:
            self.phase = "choose"
        return out

    def _record(self, observations: Sequence[Observation], actions: Sequence[Action]) -> None:
        for obs, a in zip(observations, actions, strict=True):
            self._apply(obs, a)
        self.line += 1

    def _apply(self, obs: Observation, a: Action) -> None:
        """One page, post or chat line answered: its effects and events."""
        if isinstance(a, Failure):
            self._failure(obs, a)
        elif isinstance(obs, SocialPage):
            assert isinstance(a, PageAction)
            self._watch(obs, a)
        elif isinstance(obs, SpeakTurn):
            assert isinstance(a, Spoken)
            self._said(obs, a)

    def _watch(self, obs: SocialPage, a: PageAction) -> None:
        u, heard, trace = obs.agent, self.heard[obs.agent], self.s.trace
        for pos, x in enumerate(a.items, start=1):
            iid = self.cat.item_ids[x.item]
            source = ("friend" if x.item in heard else
                      "search" if obs.via == "search" else "feed")
            trace.emit("decision", f"{obs.base}/i{iid}", **obs.where, position=pos, item=iid,
                       genres=list(self.cat.genres[x.item]),
                       action="watch" if x.watch else "skip", rating=x.rating,
                       reason=x.reason, inputs=x.inputs, via=obs.via, source=source,
                       heard=x.item in heard)
            if x.watch:
                heard.pop(x.item, None)
                self.seen[u, x.item] = 1
                self.recent[u] = (self.recent[u] + [(x.item, int(x.rating or 0))])[-10:]
                self.watches.append((u, x.item, int(x.rating or 0), self.round))

    def _said(self, obs: SpeakTurn, a: Spoken) -> None:
        u, trace = obs.agent, self.s.trace
        chat = next((c for c in self.chats if u in (c.a, c.b)), None) \
            if obs.mode == "chat" else None
        to = [obs.partner] if obs.partner is not None else [
            self.graph.users[int(j)] for j in self.graph.followers(self.node[u])]
        ids = [self.cat.item_ids[i] for i in a.mentions]
        trace.emit(obs.mode, obs.base, **obs.where, text=a.text, mentions=ids,
                   partner=obs.partner_id or None, audience=len(to), inputs=a.inputs)
        if chat is not None:
            chat.lines.append((u, a.text))
            chat.mentioned.extend(a.mentions)
        else:  # a post tells the recent watches it names: they are not told again
            self.recent[u] = [r for r in self.recent[u] if r[0] not in a.mentions]
        for item in a.mentions:
            parent = self.origin.get((u, item))
            trace.emit("mention", f"{obs.base}/m{self.cat.item_ids[item]}", **obs.where,
                       item=self.cat.item_ids[item], via=obs.mode,
                       to=[self.s.user_id(h) for h in to],
                       parent=self.s.user_id(parent) if parent is not None else None)
            for h in to:
                self._hear(h, u, item, obs.mode)

    def _hear(self, h: int, teller: int, item: int, via: str) -> None:
        # Who told first is kept even for a watched item: a later post of it names them.
        self.origin.setdefault((h, item), teller)
        if self.seen[h, item]:
            return
        tie = self.graph.tie(self.node[h], self.node[teller]) or \
            self.graph.tie(self.node[teller], self.node[h])
        old = self.heard[h].get(item)
        new = HeardItem(item=item, source=teller, tie=max(tie, old.tie if old else 0.0),
                        via="chat" if via == "chat" else "post", tick=self.tick)
        heard = self.heard[h]
        heard.pop(item, None)
        heard[item] = new
        while len(heard) > self.cfg.heard_limit:
            heard.pop(next(iter(heard)))
        self.news[h].append(new)

    def _failure(self, obs: Observation, a: Failure) -> None:
        self.s.trace.emit("decision_failure", f"{obs.base}/failure", **obs.where,
                          purpose=a.purpose, error=a.error, raw=a.raw, attempts=a.attempts)
