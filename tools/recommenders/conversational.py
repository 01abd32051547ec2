"""A classic conversational recommender: a model's scores re-ranked by what the user said.

What the user said so far is read for genres ("a comedy"), decades ("from the 90s"),
titles of other movies ("something like Heat") and other words that occur in titles;
each item's score is the base model's (standardised per user) plus weighted matches.
No language model: the baseline that LLM conversational recommenders must beat.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from tools.dataset import Catalog
from tools.recommenders.base import Recommender

__all__ = ["ConversationalRanker", "Understood"]

_WORD = re.compile(r"[a-z0-9']+")
_STOP = frozenset((
    "a", "an", "and", "the", "of", "in", "on", "for", "to", "with", "from", "like",
    "something", "movie", "movies", "film", "films", "i", "im", "i'm", "want", "looking",
    "not", "these", "none", "this", "that", "more", "less", "some", "any", "it", "its", "is",
    "are", "was", "be", "my", "me", "please", "one", "ones", "give", "up", "yes", "no",
))


class Understood:
    """What the ranker understood from the user's words (also written to the trace)."""

    def __init__(self, genres: set[str], decades: set[int], like: list[int],
                 keywords: set[str]) -> None:
        self.genres, self.decades, self.like, self.keywords = genres, decades, like, keywords

    def as_dict(self, catalog: Catalog) -> dict[str, list[str]]:
        return {"genres": sorted(self.genres), "decades": [f"{d}s" for d in sorted(self.decades)],
                "like": [catalog.item_ids[i] for i in self.like],
                "keywords": sorted(self.keywords)}


class ConversationalRanker:
    """Re-ranks ``base``'s scores for one user by the conversation so far."""

    def __init__(self, base: Recommender, catalog: Catalog, embeddings: np.ndarray, *,
                 genre_weight: float = 1.0, keyword_weight: float = 0.5,
                 similar_weight: float = 2.0) -> None:
        self.base, self.cat, self.emb = base, catalog, embeddings
        self.w_genre, self.w_kw, self.w_sim = genre_weight, keyword_weight, similar_weight
        self._genres = {g.lower(): g for gs in catalog.genres for g in gs}
        self._title_words = [set(_WORD.findall(t.lower())) - _STOP for t in catalog.titles]
        # Longest titles first so "Star Wars" does not shadow "Star Wars: Episode I".
        self._titles = sorted(((t.lower(), i) for i, t in enumerate(catalog.titles)
                               if len(t) >= 4), key=lambda x: -len(x[0]))
        decade = np.full(catalog.n_items, -1)
        for i, y in enumerate(catalog.years):
            if y[:4].isdigit():
                decade[i] = int(y[:4]) // 10 * 10 % 100
        self._decade = decade

    @property
    def name(self) -> str:
        return f"conversational({self.base.name})"

    def understand(self, said: Iterable[str]) -> Understood:
        text = " ".join(said).lower()
        genres = {g for low, g in self._genres.items() if low in text}
        decades = {int(m) for m in re.findall(r"\b(\d)0s\b", text)}
        decades = {d * 10 for d in decades}
        like: list[int] = []
        rest = text
        for low, i in self._titles:
            if low in rest:
                like.append(i)
                rest = rest.replace(low, " ")
        words = set(_WORD.findall(rest)) - _STOP - {g.lower() for g in genres}
        keywords = {w for w in words if len(w) >= 4 and not w.isdigit()}
        return Understood(genres, decades, like, keywords)

    def rank(self, user: int, said: Sequence[str], k: int, exclude: Iterable[int],
             base_scores: np.ndarray | None = None) -> tuple[list[int], Understood]:
        """The ``k`` best items for ``user`` given what they said, never ``exclude``.

        ``base_scores``: the base model's scores for this user, when the caller scored a
        batch of users at once (one model call per turn instead of one per user).
        """
        s = (base_scores if base_scores is not None
             else self.base.score(np.asarray([user]))[0]).astype(np.float64)
        finite = np.isfinite(s)
        sd = float(s[finite].std()) or 1.0
        score = np.where(finite, (s - float(s[finite].mean())) / sd, -np.inf)
        u = self.understand(said)
        if u.genres:
            match = np.array([len(u.genres.intersection(gs)) / len(u.genres)
                              for gs in self.cat.genres])
            score += self.w_genre * 2.0 * match
        if u.decades:
            score += self.w_genre * np.isin(self._decade, list(u.decades))
        if u.keywords:
            score += self.w_kw * np.array([len(u.keywords & tw) for tw in self._title_words])
        if u.like:
            sims = self.emb @ self.emb[u.like].T
            score += self.w_sim * 2.0 * sims.max(axis=1)
            score[u.like] = -np.inf  # the user named them: they want something else
        ex = np.fromiter(exclude, dtype=np.int64)
        if ex.size:
            score[ex] = -np.inf
        order = np.lexsort((np.arange(score.size), -score))
        top = [int(i) for i in order[:k] if np.isfinite(score[i])]
        return top, u
