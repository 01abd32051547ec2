"""The feed: page after page of recommendations, Agent4Rec-style.

Per round every user browses up to ``max_pages`` pages of ``items_per_page`` unseen
items from the arm's recommender, deciding per item watch or skip (and a rating), then
stay or leave; after leaving, an interview. Between rounds the recommender may retrain
on what users watched; scripted events release new items or switch the model.

All users still browsing are served in one batch per page (one recommender call), and
their observations go to the agents together, so per-page costs are paid once.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from agents.observations import Action, Failure, Observation
from agents.recsys.plugins import AgentRecommender
from scenarios.schema import SwitchRecommenderEvent
from simulations.environments.base import ArmEnvironment, EnvSetup, TraceBuffer, register
from simulations.environments.feed_kind import (
    FeedPage,
    FeedPageKind,
    InterviewAction,
    InterviewKind,
    InterviewRequest,
    PageAction,
)

__all__ = ["FeedEnvironment"]


@dataclass
class _Session:
    pages: int = 0
    shown: int = 0
    watched: list[int] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)
    left_early: bool = False
    ended: bool = False
    reason: str = ""


@register("feed", kinds=(FeedPageKind(), InterviewKind()))
class FeedEnvironment(ArmEnvironment):
    kind = "feed"

    def __init__(self, setup: EnvSetup) -> None:
        super().__init__(setup)
        self.env = setup.scenario.environment
        self.train = setup.history
        self.recommender = setup.fit(setup.arm, self.train, self.released)
        n_users, n_items = setup.dataset.n_users, setup.dataset.n_items
        self.seen = setup.history.matrix(n_users, n_items)
        self.shown: dict[int, list[int]] = {}
        self.watches: list[tuple[int, int, int, int]] = []  # user, item, rating, round
        self.page = 0
        self.phase = "done"
        self.active: list[int] = []
        self.sessions: dict[int, _Session] = {}

    # ------------------------------------------------------------------ protocol

    def begin_round(self, round_: int) -> None:
        s, trace = self.s, self.s.trace
        self.round, self.page, self.phase = round_, 0, "pages"
        if self._release(round_):
            # The cold-start policy reserves page slots for items released so far.
            self.recommender.new_items = self.released

        def refit(ev: SwitchRecommenderEvent) -> None:
            self.recommender = s.fit(ev, self.train, self.released)

        self._switch(round_, refit)
        trace.emit("round_start", f"{self.arm}/r{round_}", arm=self.arm, round=round_,
                   recommender=self.recommender.name, users=len(s.users), environment="feed")
        self.active = list(s.users)
        self.sessions = {u: _Session() for u in s.users}

    def observe(self) -> list[Observation]:
        if self.phase == "pages":
            if self.active and self.page < self.env.max_pages:
                return self._pages()
            self.phase = "interview"
        if self.phase == "interview":
            return [
                InterviewRequest(agent=u, base=self._base(u, "interview"),
                                 where=self._where(u), round=self.round, pages=x.pages,
                                 shown=x.shown, watched=x.watched, ratings=x.ratings,
                                 left_early=x.left_early)
                for u, x in sorted(self.sessions.items()) if x.pages > 0]
        return []

    def step(self, observations: Sequence[Observation], actions: Sequence[Action]) -> None:
        if self.phase == "pages":
            self._record_pages(observations, actions)
        elif self.phase == "interview":
            self._record_interviews(observations, actions)
            self.phase = "done"

    def end_round(self, round_: int) -> None:
        if self.phase == "interview":  # nobody was interviewed: close the sessions anyway
            self._record_interviews([], [])
        self._retrain(round_, self.watches)
        self._teach_items(round_, self._liked(round_, self.watches))
        self.s.trace.flush()

    # ------------------------------------------------------------------ lanes

    def lanes(self, size: int) -> list[_PageLane] | None:
        """Sessions are independent: the pages phase in lanes of ``size`` browsing users
        (``simulations.environments.base.LaneEnvironment``). Not for a recommender agent,
        which files its events in the run's trace as it recommends."""
        if (self.phase != "pages" or not self.active or self.page >= self.env.max_pages
                or isinstance(self.recommender.base, AgentRecommender)):
            return None
        out = []
        for lo in range(0, len(self.active), max(1, size)):
            # A shallow copy: its own cursor (page, active), trace and watches; sessions,
            # shown items and the recommender are shared (each lane touches its users').
            view, buffer = copy.copy(self), TraceBuffer()
            view.s = dataclasses.replace(self.s, trace=buffer)
            view.active, view.watches = self.active[lo:lo + size], []
            out.append(_PageLane(view, buffer))
        return out

    def join(self, lanes: Sequence[object]) -> None:
        """After the lanes: the cursor and the watches (in page, then user order) the
        lock-step loop would have left."""
        done = [x for x in lanes if isinstance(x, _PageLane)]
        for k in range(max((len(x.watched) for x in done), default=0)):
            for x in done:
                self.watches.extend(x.watched[k] if k < len(x.watched) else ())
        last = max(x.env.page for x in done)
        self.page, self.active = last, []
        if not any(x.served == last for x in done):
            # Every user still browsing got an empty page: the lock-step loop observed
            # nothing and ended the round without interviews.
            self.phase = "done"

    # ------------------------------------------------------------------ pages

    def _exclusion(self, users: list[int]) -> sp.csr_matrix:
        """Rows: users; non-zero where an item must not be shown (seen, shown, withheld)."""
        n_items = self.cat.n_items
        hist = self.seen[users]
        rows = [np.repeat(np.arange(len(users)), np.diff(hist.indptr))]
        cols = [hist.indices]
        for k, u in enumerate(users):
            sh = self.shown.get(u)
            if sh:
                rows.append(np.full(len(sh), k))
                cols.append(np.asarray(sh))
        if self.withheld:
            w = np.fromiter(sorted(self.withheld), dtype=np.int64)
            rows.append(np.repeat(np.arange(len(users)), len(w)))
            cols.append(np.tile(w, len(users)))
        r, c = np.concatenate(rows), np.concatenate(cols)
        m = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(users), n_items))
        m.sum_duplicates()
        return m

    def _pages(self) -> list[Observation]:
        self.page += 1
        users = self.active
        self.recommender.at(arm=self.arm, round=self.round, page=self.page)
        recs = self.recommender.recommend(np.asarray(users), self.env.items_per_page,
                                          self._exclusion(users))
        out: list[Observation] = []
        active = []
        for u, row in zip(users, recs, strict=True):
            items = [int(i) for i in row if i >= 0]
            if not items:
                sess = self.sessions[u]
                sess.ended, sess.reason = True, "no_items"
                continue
            active.append(u)
            self.shown.setdefault(u, []).extend(items)
            base = self._base(u, f"p{self.page}")
            where = self._where(u, page=self.page)
            self.s.trace.emit("page", base, **where, items=[self.cat.item_ids[i] for i in items],
                              recommender=self.recommender.name)
            out.append(FeedPage(agent=u, base=base, where=where, round=self.round,
                                page=self.page, max_pages=self.env.max_pages, items=items))
        self.active = active
        return out

    def _record_pages(self, observations: Sequence[Observation],
                      actions: Sequence[Action]) -> None:
        cat, trace, page = self.cat, self.s.trace, self.page
        still = []
        for obs, a in zip(observations, actions, strict=True):
            u = obs.agent
            sess = self.sessions[u]
            if isinstance(a, Failure):
                trace.emit("decision_failure", f"{obs.base}/failure", **obs.where,
                           purpose=a.purpose, error=a.error, raw=a.raw, attempts=a.attempts)
                sess.pages, sess.ended, sess.reason = page, True, "llm_failure"
                continue
            assert isinstance(a, PageAction)
            sess.pages, sess.shown = page, sess.shown + len(a.items)
            for pos, x in enumerate(a.items, start=1):
                iid = cat.item_ids[x.item]
                action = "watch" if x.watch else "skip"
                trace.emit("decision", f"{obs.base}/i{iid}", **obs.where, position=pos,
                           item=iid, genres=list(cat.genres[x.item]), action=action,
                           rating=x.rating, reason=x.reason, inputs=x.inputs)
                if x.watch:
                    sess.watched.append(x.item)
                    sess.ratings.append(int(x.rating or 0))
                    self.watches.append((u, x.item, int(x.rating or 0), self.round))
            last_page = page >= self.env.max_pages
            action = "leave" if a.leave else ("end" if last_page else "next_page")
            trace.emit("decision", f"{obs.base}/exit", **obs.where, action=action,
                       feeling=a.feeling, feeling_source=a.feeling_source, inputs=a.inputs)
            if a.leave or last_page:
                sess.left_early = a.leave and not last_page
                sess.ended = True
                sess.reason = "left" if sess.left_early else "last_page"
            else:
                still.append(u)
        self.active = still
        trace.flush()

    # ------------------------------------------------------------------ interviews

    def _record_interviews(self, observations: Sequence[Observation],
                           actions: Sequence[Action]) -> None:
        trace = self.s.trace
        answers = {o.agent: (o, a) for o, a in zip(observations, actions, strict=True)}
        for u in sorted(self.sessions):
            sess = self.sessions[u]
            if u in answers:
                obs, a = answers[u]
                if isinstance(a, Failure):
                    trace.emit("decision_failure", f"{obs.base}/failure", **obs.where,
                               purpose=a.purpose, error=a.error, raw=a.raw,
                               attempts=a.attempts)
                else:
                    assert isinstance(a, InterviewAction)
                    trace.emit("interview", obs.base, **obs.where, satisfaction=a.satisfaction,
                               reason=a.reason, inputs=a.inputs)
            trace.emit("session_end", self._base(u, "end"), **self._where(u), pages=sess.pages,
                       shown=sess.shown, watched=len(sess.watched), left_early=sess.left_early,
                       reason=sess.reason or "last_page")
        trace.flush()
        self.s.on_session_end(len(self.sessions))


class _PageLane:
    """Some users' pages, on their own (``FeedEnvironment.lanes``)."""

    def __init__(self, env: FeedEnvironment, trace: TraceBuffer) -> None:
        self.env, self.trace = env, trace
        self.watched: list[list[tuple[int, int, int, int]]] = []  # per step
        self.served = 0  # the last page with observations

    def observe(self) -> list[Observation]:
        e = self.env
        if not e.active or e.page >= e.env.max_pages:
            return []
        out = e._pages()
        if out:
            self.served = e.page
        return out

    def step(self, observations: Sequence[Observation], actions: Sequence[Action]) -> None:
        e = self.env
        e._record_pages(observations, actions)
        self.watched.append(e.watches)
        e.watches = []
