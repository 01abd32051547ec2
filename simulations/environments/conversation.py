"""The conversation: a user looks for a hidden target; the recommender answers turn by turn.

Each round every user with a liked (rated >= 4) item in their held-out future gets one
such item as a hidden target. The user opens by describing what it wants without naming
it; each turn the recommender recommends ``items_per_turn`` items (a classic model
re-ranked by what was said, or a recommender agent (``model: agent``: a Chat-REC role or
a team with an interpreter) that reads the conversation and replies); the
user accepts one, or rejects them with feedback, or gives up when its patience (a trait)
runs out. Metrics: success by turn, mean turns to success, recall@k.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from agents.observations import Action, Failure, Observation
from agents.recsys.plugins import (
    AgentConversationRanker,
    AgentRecommender,
    AgentUnderstood,
)
from scenarios.schema import SwitchRecommenderEvent
from simulations.environments.base import ArmEnvironment, EnvSetup, TraceBuffer, register
from simulations.environments.conversation_kind import (
    ConversationOpen,
    ConversationOpenKind,
    ConversationTurn,
    ConversationTurnKind,
    Utterance,
    Verdict,
)
from tools.recommenders import ColdStartRecommender
from tools.recommenders.conversational import ConversationalRanker, Understood

__all__ = ["ConversationEnvironment"]


@dataclass
class _Conversation:
    target: int
    turn: int = 0
    said: list[str] = field(default_factory=list)
    recommended: list[int] = field(default_factory=list)
    target_seen: bool = False
    done: bool = False
    accepted: int | None = None  # the item the user took, if any


@register("conversation", kinds=(ConversationOpenKind(), ConversationTurnKind()))
class ConversationEnvironment(ArmEnvironment):
    kind = "conversation"

    def __init__(self, setup: EnvSetup) -> None:
        super().__init__(setup)
        self.cfg = setup.scenario.environment.conversation
        n_users, n_items = setup.dataset.n_users, setup.dataset.n_items
        self.seen = setup.history.matrix(n_users, n_items).tolil().rows
        self.ranker = self._ranker(setup.fit(setup.arm, setup.history, frozenset()))
        fut = setup.future
        liked = setup.dataset.liked(fut)
        self.liked_future: dict[int, list[int]] = {}
        for u, i in zip(fut.user[liked].tolist(), fut.item[liked].tolist(), strict=True):
            self.liked_future.setdefault(int(u), []).append(int(i))
        self.used: dict[int, set[int]] = {}
        self.convs: dict[int, _Conversation] = {}
        self.phase = "done"

    def _ranker(self, model: ColdStartRecommender) -> ConversationalRanker | \
            AgentConversationRanker:
        """An agent arm's agent talks; a classic model is re-ranked by what was said."""
        if isinstance(model.base, AgentRecommender):
            a = model.base
            return AgentConversationRanker(model, a.agent, a.n, self.cat, a.user_ids)
        return ConversationalRanker(
            model, self.cat, self.s.world.embeddings, genre_weight=self.cfg.genre_weight,
            keyword_weight=self.cfg.keyword_weight, similar_weight=self.cfg.similar_weight)

    def begin_round(self, round_: int) -> None:
        s, trace = self.s, self.s.trace
        self.round, self.phase = round_, "open"
        self._release(round_)

        def refit(ev: SwitchRecommenderEvent) -> None:
            self.ranker = self._ranker(s.fit(ev, s.history, self.released))

        self._switch(round_, refit)
        trace.emit("round_start", f"{self.arm}/r{round_}", arm=self.arm, round=round_,
                   recommender=self.ranker.name, users=len(s.users), environment="conversation")
        self.convs = {}
        skipped = 0
        for u in s.users:
            pool = [i for i in self.liked_future.get(u, [])
                    if i not in self.used.get(u, set()) and i not in self.withheld]
            if not pool:
                skipped += 1
                continue
            rng = np.random.default_rng(np.random.SeedSequence([s.scenario.seed, u, round_, 7]))
            target = pool[int(rng.integers(len(pool)))]
            self.used.setdefault(u, set()).add(target)
            self.convs[u] = _Conversation(target)
            trace.emit("conversation_start", self._base(u, "start"), **self._where(u),
                       target=self.cat.item_ids[target])
        if skipped:
            trace.emit("event", f"{self.arm}/r{round_}/no_target", arm=self.arm, round=round_,
                       action="no_target", users=skipped,
                       note="users with no liked held-out item left sit this round out")

    def observe(self) -> list[Observation]:
        active = [u for u, c in sorted(self.convs.items()) if not c.done]
        if self.phase == "open":
            return [ConversationOpen(agent=u, base=self._base(u, "t0"),
                                     where=self._where(u, turn=0), round=self.round,
                                     target=self.convs[u].target,
                                     max_turns=self.cfg.max_turns, patience=self.cfg.patience,
                                     noise=self.cfg.description_noise) for u in active]
        if self.phase != "turns" or not active:
            return []
        out: list[Observation] = []
        k = self.cfg.items_per_turn
        scores = self.ranker.base.score(np.asarray(active))
        for row, u in enumerate(active):
            c = self.convs[u]
            c.turn += 1
            exclude = set(self.seen[u]) | set(c.recommended) | self.withheld
            base, where = self._base(u, f"t{c.turn}"), self._where(u, turn=c.turn)
            understood: Understood | AgentUnderstood
            if isinstance(self.ranker, AgentConversationRanker):
                if c.turn == 1:
                    self.ranker.reset(u)
                items, understood = self.ranker.rank(u, c.said, k, exclude, scores[row],
                                                     where=where)
            else:
                items, understood = self.ranker.rank(u, c.said, k, exclude, scores[row])
            c.recommended.extend(items)
            c.target_seen = c.target_seen or c.target in items
            self.s.trace.emit("recommendation", base, **where,
                              items=[self.cat.item_ids[i] for i in items],
                              understood=understood.as_dict(self.cat),
                              recommender=self.ranker.name)
            out.append(ConversationTurn(agent=u, base=base, where=where, round=self.round,
                                        turn=c.turn, target=c.target, recommended=items,
                                        said=list(c.said), max_turns=self.cfg.max_turns,
                                        reply=getattr(understood, "reply", ""),
                                        patience=self.cfg.patience,
                                        noise=self.cfg.description_noise))
        return out

    def step(self, observations: Sequence[Observation], actions: Sequence[Action]) -> None:
        trace = self.s.trace
        for obs, a in zip(observations, actions, strict=True):
            u = obs.agent
            c = self.convs[u]
            if isinstance(a, Failure):
                trace.emit("decision_failure", f"{obs.base}/failure", **obs.where,
                           purpose=a.purpose, error=a.error, raw=a.raw, attempts=a.attempts)
                self._end(u, "llm_failure")
            elif isinstance(a, Utterance):
                c.said.append(a.text)
                trace.emit("utterance", f"{obs.base}/say", **obs.where, text=a.text,
                           inputs=a.inputs)
            else:
                assert isinstance(a, Verdict)
                accepted = self.cat.item_ids[a.accept] if a.accept is not None else None
                trace.emit("verdict", f"{obs.base}/verdict", **obs.where, accept=accepted,
                           give_up=a.give_up, feedback=a.feedback, inputs=a.inputs,
                           target_shown=c.target in getattr(obs, "recommended", []))
                if a.accept is not None:
                    c.accepted = a.accept
                    self._end(u, "accepted" if a.accept == c.target else "accepted_other")
                elif a.give_up or c.turn >= self.cfg.max_turns:
                    self._end(u, "gave_up" if a.give_up else "max_turns")
                elif a.feedback:
                    c.said.append(a.feedback)
                    trace.emit("utterance", f"{obs.base}/say", **obs.where, text=a.feedback,
                               inputs={})
        self.phase = "turns"
        trace.flush()

    def lanes(self, size: int) -> list[_TurnLane] | None:
        """Conversations are independent: the round's turns in lanes of ``size`` users
        (``simulations.environments.base.LaneEnvironment``). Not with a recommender agent,
        which files its events in the run's trace as it answers."""
        active = [u for u, c in sorted(self.convs.items()) if not c.done]
        if (self.phase not in ("open", "turns") or not active
                or isinstance(self.ranker, AgentConversationRanker)):
            return None
        out = []
        for lo in range(0, len(active), max(1, size)):
            # A shallow copy: its own conversations (the same objects) and trace.
            view, buffer = copy.copy(self), TraceBuffer()
            view.s = dataclasses.replace(self.s, trace=buffer)
            view.convs = {u: self.convs[u] for u in active[lo:lo + size]}
            out.append(_TurnLane(view, buffer))
        return out

    def join(self, lanes: Sequence[object]) -> None:
        """After the lanes every conversation is over; the phase the lock-step loop left."""
        if any(isinstance(x, _TurnLane) and x.stepped for x in lanes):
            self.phase = "turns"

    def _end(self, u: int, reason: str) -> None:
        c = self.convs[u]
        c.done = True
        self.s.trace.emit("conversation_end", self._base(u, "end"), **self._where(u),
                          success=reason == "accepted", reason=reason, turns=c.turn,
                          target_seen=c.target_seen, k=self.cfg.items_per_turn)

    def end_round(self, round_: int) -> None:
        for u, c in sorted(self.convs.items()):
            if not c.done:
                self._end(u, "max_turns")
        # An accepted item is the conversation's choice: it teaches the arm's items.
        self._teach_items(round_, [(u, c.accepted) for u, c in sorted(self.convs.items())
                                   if c.accepted is not None])
        self.s.trace.flush()
        self.s.on_session_end(len(self.s.users))


class _TurnLane:
    """Some users' conversations, on their own (``ConversationEnvironment.lanes``)."""

    def __init__(self, env: ConversationEnvironment, trace: TraceBuffer) -> None:
        self.env, self.trace = env, trace
        self.stepped = False

    def observe(self) -> list[Observation]:
        return self.env.observe()

    def step(self, observations: Sequence[Observation], actions: Sequence[Action]) -> None:
        self.env.step(observations, actions)
        self.stepped = True
