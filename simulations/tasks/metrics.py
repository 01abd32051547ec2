"""Metrics of the offline tasks (rp, sr, gen), as pure functions over one instance or a list.

Ranking (sr): one relevant item per instance. Its rank is its 1-based position in the
answer; items the answer left out follow it in the order the candidates were presented,
and a positive that is not among the candidates (candidates from a classic model) has no
rank. ``HR@k = [rank <= k]``, ``NDCG@k = [rank <= k] / log2(rank + 1)`` (IDCG = 1),
``MRR = 1 / rank``; no rank counts 0 in all of them.

Rating (rp): RMSE and MAE of predictions against the real ratings.

Explanation (gen): MovieLens has no review texts, so MACRec's BLEU/ROUGE against the
user's review cannot be computed. What can be checked is whether an explanation is
grounded in facts the explainer was allowed to see: a genre of the explained item, a
title the user rated before the clock, or a genre the user liked (rated >= 4) before it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "RANK_METRICS",
    "distinct_share",
    "grounding",
    "rank_metrics",
    "rank_of",
    "rating_errors",
    "title_variants",
]

RANK_METRICS = ("hr@1", "hr@5", "ndcg@1", "ndcg@5", "ndcg@10", "mrr")
# MovieLens writes "Godfather, The"; explanations write "The Godfather".
_ARTICLE = re.compile(r"^(?P<head>.+), (?P<art>The|A|An|Les|La|Le|Il|Das|Der|Die|El)$")
# Titles this short match inside ordinary words ("Up", "It"): never counted as mentions.
MIN_TITLE_CHARS = 4
_GENRE_ALIASES = {"sci-fi": ("sci-fi", "science fiction", "scifi"),
                  "children's": ("children's", "children", "kids", "family"),
                  "film-noir": ("film-noir", "film noir", "noir")}


def rank_of(answer: Sequence[int], positive: int, candidates: Sequence[int]) -> int | None:
    """1-based rank of ``positive``: its position in ``answer``, else (if it is a
    candidate the answer left out) after every answered item, in presented order."""
    if positive not in candidates:
        return None
    seen: dict[int, None] = {}
    for i in answer:
        if i in candidates:
            seen.setdefault(int(i), None)
    for i in candidates:
        seen.setdefault(int(i), None)
    return list(seen).index(positive) + 1


def rank_metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    """HR@1/5, NDCG@1/5/10 and MRR averaged over instances (None: not ranked, 0).

    With one relevant item NDCG@k is ``1 / log2(rank + 1)`` inside the top k, so NDCG@1
    equals HR@1; both are reported because AgentCF's tables list both.
    """
    if not ranks:
        return {k: math.nan for k in RANK_METRICS}
    r = np.array([math.inf if x is None else float(x) for x in ranks])

    def ndcg(k: int) -> float:
        hit = r <= k
        with np.errstate(divide="ignore"):
            return float(np.where(hit, 1.0 / np.log2(np.where(hit, r, 1.0) + 1.0), 0.0).mean())

    return {"hr@1": float((r <= 1).mean()), "hr@5": float((r <= 5).mean()),
            "ndcg@1": ndcg(1), "ndcg@5": ndcg(5), "ndcg@10": ndcg(10),
            "mrr": float((1.0 / r).mean())}


def rating_errors(pred: Sequence[float] | np.ndarray,
                  real: Sequence[float] | np.ndarray) -> dict[str, float]:
    """RMSE and MAE."""
    p = np.asarray(pred, dtype=np.float64)
    y = np.asarray(real, dtype=np.float64)
    if p.size == 0:
        return {"rmse": math.nan, "mae": math.nan}
    return {"rmse": float(np.sqrt(np.mean((p - y) ** 2))), "mae": float(np.mean(np.abs(p - y)))}


def title_variants(title: str) -> tuple[str, ...]:
    """Lower-case forms of a catalogue title an explanation may use."""
    t = title.strip()
    out = {t.lower()}
    m = _ARTICLE.match(t)
    if m:
        out.add(f"{m['art']} {m['head']}".lower())
        out.add(m["head"].lower())
    return tuple(v for v in out if len(v) >= MIN_TITLE_CHARS)


def _mentions(text: str, phrases: Iterable[str]) -> bool:
    return any(re.search(rf"(?<![a-z0-9]){re.escape(p)}(?![a-z0-9])", text) for p in phrases)


def _genre_forms(genres: Iterable[str]) -> list[str]:
    forms: list[str] = []
    for g in genres:
        forms.extend(_GENRE_ALIASES.get(g.lower(), (g.lower(),)))
    return forms


def grounding(text: str, item_genres: Iterable[str], history_titles: Iterable[str],
              liked_genres: Iterable[str]) -> dict[str, bool]:
    """Which allowed facts an explanation mentions (case-insensitive, whole words).

    ``grounded`` is any of: a genre of the item, a title from the user's history before
    the clock, a genre the user liked before it.
    """
    t = text.lower()
    item_genre = _mentions(t, _genre_forms(item_genres))
    title = _mentions(t, (v for title in history_titles for v in title_variants(title)))
    liked = _mentions(t, _genre_forms(liked_genres))
    return {"item_genre": item_genre, "history_title": title, "liked_genre": liked,
            "grounded": item_genre or title or liked}


def distinct_share(texts: Sequence[str]) -> float:
    """Distinct texts over all texts (1.0: no two explanations are the same string)."""
    if not texts:
        return math.nan
    return len({" ".join(t.lower().split()) for t in texts}) / len(texts)
