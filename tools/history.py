"""Users' past ratings, bounded by a clock, and how they read to a model.

:class:`UserHistories` indexes interactions by user in time order. Every read takes the
clock: ``before`` (a timestamp; only interactions strictly earlier are returned). Give it
only interactions that are in the past for the caller (a simulation's history split, a
task's training data): what is not in it cannot leak, and ``before`` cuts further.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tools.dataset import Catalog, Interactions

__all__ = ["Rating", "UserHistories", "attribute_phrase", "describe_user", "history_lines",
           "rated_line"]


@dataclass(frozen=True)
class Rating:
    """One interaction: ``rating`` None when watched but not rated, ``ts`` None when it
    happened during the simulation."""

    item: int
    rating: float | None
    ts: float | None = None


class UserHistories:
    """Per-user ratings of ``inter``, oldest first (ties keep file order)."""

    def __init__(self, inter: Interactions, n_users: int) -> None:
        order = np.lexsort((np.arange(len(inter)), inter.ts, inter.user))
        self._item = inter.item[order]
        self._rating = inter.rating[order]
        self._ts = inter.ts[order]
        self._bounds = np.searchsorted(inter.user[order], np.arange(n_users + 1))
        self.n_users = n_users

    def ratings(self, user: int, before: float | None = None) -> list[Rating]:
        """The user's ratings, oldest first; with ``before``, only those strictly earlier."""
        if not 0 <= user < self.n_users:
            return []
        s, e = int(self._bounds[user]), int(self._bounds[user + 1])
        if before is not None:
            e = s + int(np.searchsorted(self._ts[s:e], before, side="left"))
        return [Rating(int(i), float(r), float(t)) for i, r, t in
                zip(self._item[s:e], self._rating[s:e], self._ts[s:e], strict=True)]


def rated_line(catalog: Catalog, r: Rating) -> str:
    """``ID: Title (year), genres; rated R/5`` (or ``watched, not rated``)."""
    i = r.item
    year = catalog.years[i]
    title = f"{catalog.titles[i]} ({year})" if year else catalog.titles[i]
    how = f"rated {r.rating:g}/5" if r.rating is not None else "watched, not rated"
    genres = ", ".join(catalog.genres[i]) or "unclassified"
    return f"{catalog.item_ids[i]}: {title}, {genres}; {how}"


def history_lines(catalog: Catalog, ratings: Sequence[Rating], n: int) -> list[str]:
    """The last ``n`` ratings as lines, oldest first."""
    return [rated_line(catalog, r) for r in ratings[-n:]] if n > 0 else []


def attribute_phrase(attrs: Mapping[str, str]) -> str:
    """The user's attributes as ``describe_user`` writes them (``age 24, gender M, ...``);
    a trace that withholds attributes removes exactly this phrase."""
    return ", ".join(f"{k} {v}" for k, v in attrs.items() if v)


def describe_user(catalog: Catalog, user_id: str, attrs: Mapping[str, str],
                  ratings: Sequence[Rating], n_favourites: int = 5) -> str:
    """Who the user is, from attributes and the given ratings only: counts, mean, the
    genres of what they rated 4-5 and 1-2, and recent favourites."""
    who = attribute_phrase(attrs)
    head = f"user {user_id}" + (f" ({who})" if who else "")
    if not ratings:
        return f"{head}: no ratings yet."
    values = [r.rating for r in ratings if r.rating is not None]
    liked = [r for r in ratings if r.rating is not None and r.rating >= 4]
    disliked = [r for r in ratings if r.rating is not None and r.rating <= 2]
    like_g = Counter(g for r in liked for g in catalog.genres[r.item])
    dis_g = Counter(g for r in disliked for g in catalog.genres[r.item])
    top = [g for g, _ in sorted(like_g.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
    low = [g for g, _ in sorted(dis_g.items(), key=lambda kv: (-kv[1], kv[0]))
           if g not in top][:2]
    fav = [catalog.titles[r.item] for r in reversed(liked)][:n_favourites]
    mean = f", mean {float(np.mean(values)):.2f}/5" if values else ""
    parts = [f"{len(ratings)} movies watched so far, {len(values)} rated{mean}"]
    parts.append(f"rates 4-5 mostly {', '.join(top)}" if top else "no 4-5 ratings")
    if low:
        parts.append(f"rates 1-2 mostly {', '.join(low)}")
    if fav:
        parts.append(f"recent favourites: {'; '.join(fav)}")
    return f"{head}: " + "; ".join(parts) + "."
