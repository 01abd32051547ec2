"""Recommender agents where classic models go: the feed and the conversation.

- ``AgentRecommender`` is a ``tools.recommenders.Recommender``: a classic model proposes
  the top ``n`` unseen items per user and the agent ranks them (the feed wraps it with the
  arm's cold-start policy like any model). Its ``now`` is the simulation clock: everything
  in the library's history is before the simulation, so the agent's tools see the user's
  whole pre-simulation past and nothing of the held-out future.
- ``AgentConversationRanker`` has the interface of the classic
  ``ConversationalRanker``: the candidates come from the same model, the conversation so
  far (the user's words and the agent's earlier replies) goes to the agent as context,
  and the agent's reply is recorded with each recommendation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from agents.recsys.protocol import RankRequest, RecommenderAgent
from tools.dataset import Catalog
from tools.recommenders.base import Recommender

__all__ = ["AgentConversationRanker", "AgentRecommender", "AgentUnderstood"]


class AgentRecommender(Recommender):
    """``agent`` re-ranks ``base``'s top ``n`` candidates."""

    def __init__(self, base: Recommender, agent: RecommenderAgent, n: int,
                 user_ids: Sequence[str], seed: int = 0) -> None:
        super().__init__(seed)
        self.base, self.agent, self.n, self.user_ids = base, agent, n, user_ids
        self.name = f"{agent.name}({base.name}@{n})"
        self.uses_ratings = base.uses_ratings
        self._at: dict[str, Any] = {}
        self._calls = 0

    def fit(self, matrix: sp.csr_matrix) -> None:
        self.base.fit(matrix)
        self._train = self.base.train_matrix

    def _fit(self, matrix: sp.csr_matrix) -> None:  # fit() delegates to the base model
        raise NotImplementedError

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.base.score(users)

    def at(self, **where: Any) -> None:
        self._at = dict(where)

    def recommend(self, users: np.ndarray, k: int,
                  exclude: sp.csr_matrix | None = None) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        cands = self.base.recommend(users, max(self.n, k), exclude)
        self._calls += 1
        reqs: list[RankRequest] = []
        rows: list[int] = []
        for row, (u, c) in enumerate(zip(users.tolist(), cands, strict=True)):
            items = [int(i) for i in c if i >= 0]
            if not items:
                continue
            uid = self.user_ids[u]
            step = (f"r{self._at['round']}/u{uid}/p{self._at['page']}"
                    if "round" in self._at and "page" in self._at else f"call{self._calls}/u{uid}")
            where = {**self._at, "user": uid,
                     "base": f"{self._at.get('arm', 'feed')}/{step}/rec"}
            reqs.append(RankRequest(user=u, candidates=items, k=k, now=None, where=where))
            rows.append(row)
        out = np.full((len(users), k), -1, dtype=np.int64)
        for row, r in zip(rows, self.agent.rank(reqs), strict=True):
            out[row, :len(r.items[:k])] = r.items[:k]
        return out


class AgentUnderstood:
    """What the agent made of the conversation (the recommendation event's ``understood``)."""

    def __init__(self, reply: str, failure: str | None) -> None:
        self.reply, self.failure = reply, failure

    def as_dict(self, catalog: Catalog) -> dict[str, Any]:
        return {"reply": self.reply, "failure": self.failure}


class AgentConversationRanker:
    """An agent as the conversation environment's recommender."""

    def __init__(self, base: Recommender, agent: RecommenderAgent, n: int,
                 catalog: Catalog, user_ids: Sequence[str]) -> None:
        self.base, self.agent, self.n, self.cat, self.user_ids = (
            base, agent, n, catalog, user_ids)
        self.replies: dict[int, list[str]] = {}

    @property
    def name(self) -> str:
        # The conversation hands over the arm's model: the AgentRecommender, usually under
        # its cold-start wrapper, already named agent(base@n); do not wrap that name twice.
        inner = getattr(self.base, "base", self.base)
        if isinstance(inner, AgentRecommender):
            return inner.name
        return f"{self.agent.name}({self.base.name}@{self.n})"

    def reset(self, user: int) -> None:
        self.replies.pop(user, None)

    def context(self, user: int, said: Sequence[str]) -> str:
        """The conversation in order: the user opens, then reply and answer alternate."""
        lines: list[str] = []
        replies = self.replies.get(user, [])
        for n, text in enumerate(said):
            lines.append(f"User: {text}")
            if n < len(replies):
                lines.append(f"You: {replies[n]}")
        return "\n".join(lines)

    def rank(self, user: int, said: Sequence[str], k: int, exclude: Iterable[int],
             base_scores: np.ndarray | None = None,
             where: dict[str, Any] | None = None) -> tuple[list[int], AgentUnderstood]:
        s = (base_scores if base_scores is not None
             else self.base.score(np.asarray([user]))[0]).astype(np.float64)
        s = np.where(np.isfinite(s), s, -np.inf)
        ex = np.fromiter(exclude, dtype=np.int64)
        if ex.size:
            s[ex] = -np.inf
        order = np.lexsort((np.arange(s.size), -s))
        cands = [int(i) for i in order[:max(self.n, k)] if np.isfinite(s[i])]
        if not cands:
            return [], AgentUnderstood("", "no candidates left")
        w = dict(where or {})
        w.setdefault("user", self.user_ids[user])
        w["base"] = f"{w.get('arm', 'conv')}/r{w.get('round', 0)}/u{w['user']}/t" \
                    f"{w.get('turn', len(said))}/rec"
        r = self.agent.rank([RankRequest(user=user, candidates=cands, k=k,
                                         context=self.context(user, said), where=w)])[0]
        self.replies.setdefault(user, []).append(r.reply or "(no reply)")
        return list(r.items[:k]), AgentUnderstood(r.reply, r.failure)
