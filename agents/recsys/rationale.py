"""Rationales grounded in a user's history, and the rule ranker they condition.

Plain code, no model: the deterministic rationale (the user's top liked genres, recent
likes and their item-kNN neighbours), the grounding check of any rationale (which cited
items are real history items before the clock, which are not, which genres it names),
the grounding score a best-of-n judge can use, and the rule ranker of ``ranker: rules``
(a prior, plus genre and neighbour terms read from the rationale; without a rationale,
the prior alone: the ablation).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from scenarios.recsys import ReasoningConfig, RuleRankerConfig
from tools.dataset import Catalog, Interactions
from tools.history import Rating

__all__ = [
    "LIKED",
    "ItemSims",
    "Rationale",
    "ground",
    "grounding_score",
    "liked_genres",
    "rule_scores",
    "rules_rationale",
    "top_genres",
]

LIKED = 4.0
# A catalogue title this short is an ordinary word ("Heat", "Fargo" aside): a mention of it
# outside the user's history is not counted as a citation.
_MIN_FOREIGN_TITLE = 8


@dataclass(frozen=True)
class Rationale:
    """One rationale and what it rests on (item indices are catalogue rows)."""

    text: str
    cited: tuple[int, ...] = ()  # history items before the clock it cites
    ungrounded: tuple[str, ...] = ()  # cited ids or titles that are not such items
    genres: tuple[str, ...] = ()  # genres it names
    neighbours: tuple[int, ...] = ()  # items it names as like the cited ones (rules)
    source: str = "rules"
    score: float = 0.0  # the judge's score
    extra: dict[str, float] = field(default_factory=dict)


def liked(past: Sequence[Rating]) -> list[Rating]:
    return [r for r in past if r.rating is not None and r.rating >= LIKED]


def liked_genres(cat: Catalog, past: Sequence[Rating]) -> set[str]:
    return {g for r in liked(past) for g in cat.genres[r.item]}


def top_genres(cat: Catalog, past: Sequence[Rating], k: int) -> list[str]:
    """The ``k`` genres most frequent among liked items (ties: alphabetical)."""
    c = Counter(g for r in liked(past) for g in cat.genres[r.item])
    return [g for g, _ in sorted(c.items(), key=lambda x: (-x[1], x[0]))[:k]]


class ItemSims:
    """Item-kNN cosine similarities from a past interaction matrix (binary)."""

    def __init__(self, history: Interactions, n_users: int, n_items: int) -> None:
        m = sp.csr_matrix((np.ones(len(history)), (history.user, history.item)),
                          shape=(n_users, n_items))
        m.data[:] = 1.0
        m.sum_duplicates()
        m.data[:] = 1.0
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        co = (m.T @ m).toarray().astype(np.float64)
        self.sim = co / norms[:, None] / norms[None, :]
        np.fill_diagonal(self.sim, 0.0)

    def neighbours(self, items: Sequence[int], k: int, exclude: Iterable[int] = ()) -> list[int]:
        """The ``k`` items most similar to any of ``items`` (summed cosine), best first,
        ties to the lower index; never one of ``items`` or ``exclude``."""
        if k <= 0 or not items:
            return []
        s = self.sim[list(items)].sum(axis=0)
        s[list(items)] = -np.inf
        ex = list(exclude)
        if ex:
            s[ex] = -np.inf
        order = np.lexsort((np.arange(s.size), -s))
        return [int(i) for i in order[:k] if np.isfinite(s[i]) and s[i] > 0]


def _title(cat: Catalog, i: int) -> str:
    y = cat.years[i]
    return f"{cat.titles[i]} ({y})" if y else cat.titles[i]


def rules_rationale(cat: Catalog, sims: ItemSims, past: Sequence[Rating],
                    cfg: ReasoningConfig) -> Rationale:
    """Top liked genres, the most recent likes and their neighbours, as one text."""
    likes = liked(past)
    if not likes:
        return Rationale(text="No liked movies before now: no taste to go on.")
    genres = top_genres(cat, past, cfg.top_genres)
    recent = list(dict.fromkeys(r.item for r in reversed(likes)))[:cfg.recent_likes]
    seen = {r.item for r in past}
    near = sims.neighbours(recent, cfg.neighbours, exclude=seen)
    text = (f"Likes {', '.join(genres) or 'no genre in particular'} "
            f"({len(likes)} of {len(past)} ratings were 4-5). Recently liked: "
            + "; ".join(f"{cat.item_ids[i]}: {_title(cat, i)}" for i in recent) + ".")
    if near:
        text += " Others who watched those also watched: " + "; ".join(
            f"{cat.item_ids[i]}: {_title(cat, i)}" for i in near) + "."
    return Rationale(text=text, cited=tuple(recent), genres=tuple(genres),
                     neighbours=tuple(near), source="rules")


def _mentions(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![a-z0-9]){re.escape(phrase.lower())}(?![a-z0-9])", text) is not None


def _variants(title: str) -> list[str]:
    m = re.match(r"^(.+), (The|A|An|Les|La|Le|Il|Das|Der|Die|El)$", title.strip())
    out = [title.strip()]
    if m:
        out += [f"{m[2]} {m[1]}", m[1]]
    return [v for v in out if len(v) >= 4]


def ground(cat: Catalog, past: Sequence[Rating], text: str,
           cited_ids: Sequence[str] | None = None) -> tuple[list[int], list[str], list[str]]:
    """What a rationale cites: (history items before the clock, ungrounded citations,
    genres named).

    ``cited_ids``: the ids a structured answer lists (each is grounded when it is an item
    of ``past``); without them (free text), catalogue titles mentioned in ``text`` are the
    citations: a title of ``past`` is grounded, any other long enough title is not.
    """
    hist = list(dict.fromkeys(r.item for r in past))
    in_hist = set(hist)
    t = text.lower()
    cited: list[int] = []
    bad: list[str] = []
    if cited_ids is not None:
        index = {x: i for i, x in enumerate(cat.item_ids)}
        for x in dict.fromkeys(s.strip() for s in cited_ids):
            i = index.get(x)
            if i is not None and i in in_hist:
                cited.append(i)
            else:
                bad.append(x)
    else:
        for i in hist:
            if any(_mentions(t, v) for v in _variants(cat.titles[i])):
                cited.append(i)
        hist_titles = {cat.titles[i] for i in hist}
        for i, title in enumerate(cat.titles):
            if (title not in hist_titles and len(title) >= _MIN_FOREIGN_TITLE
                    and title.lower()[:4] in t and _mentions(t, title)):
                bad.append(_title(cat, i))
    all_genres = sorted({g for gs in cat.genres for g in gs})
    named = [g for g in all_genres if _mentions(t, g)]
    return cited, list(dict.fromkeys(bad)), named


def grounding_score(r: Rationale, liked_gs: set[str]) -> float:
    """Cited history items + liked genres named - 2 x ungrounded citations."""
    return float(len(r.cited) + len(set(r.genres) & liked_gs) - 2 * len(r.ungrounded))


def _prior(kind: str, popularity: np.ndarray, item_mean: np.ndarray,
           cand: np.ndarray) -> np.ndarray:
    if kind == "pop":
        top = float(np.log1p(popularity.max())) or 1.0
        return np.log1p(popularity[cand].astype(np.float64)) / top
    if kind == "item_mean":
        return (item_mean[cand].astype(np.float64) - 1.0) / 4.0
    return np.zeros(len(cand))


def rule_scores(cat: Catalog, sims: ItemSims, popularity: np.ndarray, item_mean: np.ndarray,
                candidates: Sequence[int], rationale: Rationale | None,
                cfg: RuleRankerConfig) -> np.ndarray:
    """Scores of ``candidates`` (higher first): the prior, plus, with a rationale, the
    share of each candidate's genres among its genres and the largest cosine to an item
    it cites or names."""
    cand = np.asarray(candidates, dtype=np.int64)
    s = _prior(cfg.prior, popularity, item_mean, cand)
    if rationale is None:
        return s
    want = set(rationale.genres)
    if want and cfg.genre_weight:
        s = s + cfg.genre_weight * np.array(
            [len(want & set(cat.genres[i])) / max(1, len(cat.genres[i])) for i in cand])
    anchors = np.array(list(dict.fromkeys((*rationale.cited, *rationale.neighbours))),
                       dtype=np.int64)
    if anchors.size and cfg.neighbour_weight:
        s = s + cfg.neighbour_weight * sims.sim[np.ix_(cand, anchors)].max(axis=1)
    return s
