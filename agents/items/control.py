"""The deterministic item-agent control: AgentCF's mechanism with tag rules, no LLM.

Users and items are weighted tags (tools/item_tags.py). An item starts from its seeded
tags (genres, decade, shared knowledge-graph entities) and learns "who likes me": the
tastes of users who chose it. A user starts empty and learns from its choices.

- forward: the user prefers the shown item whose tags are closer (cosine) to its own;
  ties go to the item shown first.
- backward, wrong choice: the user gains the positive's tags (``user_rate``) and loses the
  wrongly preferred item's (``negative_rate``); then, given the updated user, the
  positive gains the user's tags (``item_rate``) and the negative loses them
  (``negative_rate``).
- backward, right choice (``on_right: reinforce``): the same gains scaled by
  ``reinforce``, nothing lost.
- Every description keeps its ``keep`` heaviest tags: a short description.

With ``item_updates`` off (the ablation) items keep their seeded tags; users still learn.

Descriptions in the memory store (:meth:`TagAgents.keep_in`): the tags are the state;
each agent's description rendered in words is written to the same long-term store as the
LLM agents' (agents/items/store.py), so a run leaves inspectable "who likes me" texts.
Agents changed by an update are marked and rendered at the epoch's end, in one batched
upsert: rendering and writing per update would cost a chromadb call per step (about
7,400 steps an epoch on MovieLens 100K) for texts the next update overwrites anyway.

Inference (sr ranking): ``basic`` scores cosine(user, item); ``history`` adds the user's
last ``history`` liked items before the clock to the user's tags; ``retrieval`` adds to the
basic score the best similarity of the candidate to the items of the user's remembered
choices (what the +retrieval mode of the LLM agents reads from the memory store).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from agents.items.loop import Backward, Choice, EpochStats, TrainStep
from scenarios.item_role import ItemRole
from tools.item_tags import Tags, add, cosine, normalised, top

if TYPE_CHECKING:  # the store module is only needed when descriptions are kept
    from agents.items.store import Descriptions

__all__ = ["TagAgents"]

History = Callable[[int, float | None], Sequence[int]]  # (user, before) -> liked items
Render = Callable[[Tags], str]  # tags -> a description in words


class TagAgents:
    """Users and items as tag descriptions, updated by AgentCF's rules."""

    def __init__(self, role: ItemRole, seeds: Sequence[Tags], n_users: int,
                 history: History) -> None:
        self.role = role
        self.c = role.control
        self.keep = role.memory.keep
        self.items_learn = role.training.item_updates
        self.reinforce = role.training.on_right == "reinforce"
        self.seeds = [{k: v * self.c.seed_weight for k, v in s.items()} for s in seeds]
        self.learned: list[Tags] = [{} for _ in seeds]
        self.users: list[Tags] = [{} for _ in range(n_users)]
        self.chosen: list[list[int]] = [[] for _ in range(n_users)]  # remembered choices
        self.history = history
        self.desc: Descriptions | None = None
        self._render_item: Render = str
        self._render_user: Render = str
        self._dirty_users: set[int] = set()
        self._dirty_items: set[int] = set()

    def keep_in(self, desc: Descriptions, item: Render, user: Render) -> None:
        """Write descriptions, rendered by ``item`` / ``user``, to ``desc``'s store at
        each epoch's end (:meth:`end_epoch`)."""
        self.desc, self._render_item, self._render_user = desc, item, user

    def end_epoch(self, stats: EpochStats) -> None:
        """Render the agents this epoch changed and write them in one batch."""
        if self.desc is None:
            return
        for u in sorted(self._dirty_users):
            self.desc.set_user(u, self._render_user(self.users[u]))
        for i in sorted(self._dirty_items):
            self.desc.set_item(i, self._render_item(self.item(i)))
        self._dirty_users.clear()
        self._dirty_items.clear()
        self.desc.flush()

    def fork(self) -> TagAgents:
        """An independent copy: what either learns next leaves the other as it is (each
        arm of a run teaches its own copy, agents/items/live.py)."""
        twin = copy.copy(self)
        twin.learned = [dict(t) for t in self.learned]
        twin.users = [dict(t) for t in self.users]
        twin.chosen = [list(c) for c in self.chosen]
        return twin

    # ----------------------------------------------------------------- descriptions

    def item(self, i: int) -> Tags:
        """The item's description: seeded tags plus what it learned."""
        if not self.learned[i]:
            return self.seeds[i]
        t = dict(self.seeds[i])
        add(t, self.learned[i], 1.0)
        return t

    # ----------------------------------------------------------------- training

    def forward(self, step: TrainStep) -> Choice:
        u = self.users[step.user]
        first, second = ((step.negative, step.positive) if step.swap
                         else (step.positive, step.negative))
        a, b = cosine(u, self.item(first)), cosine(u, self.item(second))
        chose = first if a >= b else second
        return Choice(chose, fields={"scores": [round(a, 4), round(b, 4)]})

    def backward(self, step: TrainStep, choice: Choice, right: bool) -> Backward:
        c, u = self.c, self.users[step.user]
        if right and not self.reinforce:
            return Backward()
        scale = c.reinforce if right else 1.0
        add(u, normalised(self.item(step.positive)), c.user_rate * scale)
        if not right:
            add(u, normalised(self.item(step.negative)), -c.negative_rate * c.user_rate)
        self.users[step.user] = top(u, self.keep)
        self.chosen[step.user].append(step.positive)
        self._dirty_users.add(step.user)
        if self.items_learn:  # given the updated user
            taste = normalised(self.users[step.user])
            pos = self.learned[step.positive]
            add(pos, taste, c.item_rate * scale)
            self.learned[step.positive] = top(pos, self.keep)
            self._dirty_items.add(step.positive)
            if not right:
                neg = self.learned[step.negative]
                add(neg, taste, -c.negative_rate * c.item_rate)
                self.learned[step.negative] = top(neg, self.keep)
                self._dirty_items.add(step.negative)
        return Backward(fields={"user_tags": len(self.users[step.user])})

    # ----------------------------------------------------------------- inference

    def scores(self, user: int, items: Sequence[int], now: float | None,
               mode: str) -> list[float]:
        """Higher is better, per item, for ``mode`` basic / history / retrieval."""
        u: Tags = dict(self.users[user])
        if mode == "history":
            for h in self.history(user, now)[-self.c.history:]:
                add(u, normalised(self.item(h)), 1.0 / self.c.history)
        base = [cosine(u, self.item(i)) for i in items]
        if mode != "retrieval":
            return base
        mem = [self.item(h) for h in self.chosen[user][-self.c.history:]]
        return [s + max((cosine(m, self.item(i)) for m in mem), default=0.0)
                for s, i in zip(base, items, strict=True)]
