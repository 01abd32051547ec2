"""User profiles from data, as Agent4Rec builds them.

Macro traits (activity, conformity, diversity) are scored 1-3 by the user's tertile in the
population; micro traits are concrete tastes: liked and disliked genres and items. The
taste vector (mean embedding of the history) feeds the utility brain's watch decisions;
the rating bias and the liking vector (history embeddings weighted by how much better or
worse than expected the user rated them) feed its ratings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scenarios.schema import TraitOverrides
from tools.dataset import Dataset, Interactions

__all__ = ["UserProfile", "build_profiles", "tertile_scores"]

# Rating bias: a rating's weight halves every BIAS_HALF_LIFE later ratings (tastes drift;
# on MovieLens 100K recent ratings predict held-out ones better), shrunk by BIAS_PRIOR
# pseudo-ratings of 0. Liking: residual-weighted sum over (n + LIKING_PRIOR).
BIAS_HALF_LIFE = 30.0
BIAS_PRIOR = 2.0
LIKING_PRIOR = 20.0


@dataclass(frozen=True, eq=False)
class UserProfile:
    """Everything an agent knows about itself before the simulation starts."""

    user: int
    user_id: str
    activity: int
    conformity: int
    diversity: int
    n_history: int
    rating_mean: float
    rating_std: float
    liked_genres: tuple[str, ...]
    disliked_genres: tuple[str, ...]
    liked_items: tuple[str, ...]
    disliked_items: tuple[str, ...]
    taste: np.ndarray  # what the user chooses to watch: mean of all history items
    liking: np.ndarray  # what the user enjoys: history items weighted by rating residual
    attrs: dict[str, str]
    # Recent-weighted mean of (rating - item mean) over the history, shrunk towards 0.
    rating_bias: float = 0.0

    def to_event(self) -> dict[str, Any]:
        """The profile as it appears in the trace (no vectors)."""
        return {
            "user": self.user_id,
            "traits": {
                "activity": self.activity,
                "conformity": self.conformity,
                "diversity": self.diversity,
            },
            "tastes": {
                "liked_genres": list(self.liked_genres),
                "disliked_genres": list(self.disliked_genres),
                "liked_items": list(self.liked_items),
                "disliked_items": list(self.disliked_items),
            },
            "history": {
                "n": self.n_history,
                "rating_mean": round(self.rating_mean, 4),
                "rating_std": round(self.rating_std, 4),
            },
            "attrs": dict(self.attrs),
        }


def tertile_scores(values: np.ndarray) -> np.ndarray:
    """1, 2 or 3 by population tertile (ties share the lower score)."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = np.quantile(values, [1 / 3, 2 / 3])
    return (1 + (values > lo).astype(np.int64) + (values > hi).astype(np.int64)).astype(np.int64)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _genre_entropy(counts: np.ndarray) -> float:
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def build_profiles(
    dataset: Dataset,
    history: Interactions,
    embeddings: np.ndarray,
    overrides: TraitOverrides | None = None,
    n_examples: int = 5,
    tastes: np.ndarray | None = None,
) -> list[UserProfile]:
    """Profiles for every user of ``dataset`` from ``history`` alone.

    ``tastes`` (users x d, unit rows) are the watch tastes of a taste family with its own
    user vectors (tools/taste.py); without them a user's taste is the mean of the rows of
    their history.

    Traits are tertiles over the whole population (not the sampled subset), so a user's
    traits do not depend on who else was sampled.
    """
    n_users, cat = dataset.n_users, dataset.catalog
    item_mean = dataset.with_interactions(history).item_mean_rating
    gm = cat.genre_matrix
    order = np.lexsort((np.arange(len(history)), history.ts, history.user))
    users, items, ratings = history.user[order], history.item[order], history.rating[order]
    bounds = np.searchsorted(users, np.arange(n_users + 1))

    counts = np.diff(bounds).astype(np.float64)
    deviation = np.full(n_users, np.inf)
    entropy = np.zeros(n_users)
    for u in range(n_users):
        s, e = bounds[u], bounds[u + 1]
        if e > s:
            deviation[u] = float(np.mean((ratings[s:e] - item_mean[items[s:e]]) ** 2))
            entropy[u] = _genre_entropy(gm[items[s:e]].sum(axis=0))
    activity = tertile_scores(counts)
    finite = np.isfinite(deviation)
    dev_fill = np.where(finite, deviation, deviation[finite].max() if finite.any() else 0.0)
    conformity = 4 - tertile_scores(dev_fill)  # small deviation from the crowd = conformist
    diversity = tertile_scores(entropy)
    ov = overrides or TraitOverrides()

    global_mean = float(history.rating.mean()) if len(history) else 3.5
    profiles = []
    for u in range(n_users):
        s, e = bounds[u], bounds[u + 1]
        it, r = items[s:e], ratings[s:e]
        liked, disliked = it[r >= 4], it[r <= 2]
        # Watching and liking differ: people watch what they end up rating 2 as well, so
        # the watch taste uses the whole history and the rating taste the residuals.
        taste = (tastes[u] if tastes is not None else
                 _unit(embeddings[it].mean(axis=0) if it.size else
                       np.zeros(embeddings.shape[1])))
        resid = r - item_mean[it]
        weight = 0.5 ** ((it.size - 1 - np.arange(it.size)) / BIAS_HALF_LIFE)
        bias = float((weight * resid).sum() / (weight.sum() + BIAS_PRIOR)) if it.size else 0.0
        liking = ((resid - bias) @ embeddings[it].astype(np.float64) / (it.size + LIKING_PRIOR)
                  if it.size else np.zeros(embeddings.shape[1]))
        # Genre taste: share among liked items relative to the user's whole history.
        g_all = gm[it].sum(axis=0) + 1.0
        g_like = gm[liked].sum(axis=0)
        g_dis = gm[disliked].sum(axis=0)
        lift = g_like / g_all
        liked_genres = [cat.genre_names[j] for j in np.argsort(-lift, kind="stable")[:3]
                        if g_like[j] > 0]
        drop = g_dis / g_all
        disliked_genres = [cat.genre_names[j] for j in np.argsort(-drop, kind="stable")[:2]
                           if g_dis[j] > 0 and cat.genre_names[j] not in liked_genres]
        profiles.append(UserProfile(
            user=u,
            user_id=dataset.user_ids[u],
            activity=ov.activity or int(activity[u]),
            conformity=ov.conformity or int(conformity[u]),
            diversity=ov.diversity or int(diversity[u]),
            n_history=int(e - s),
            rating_mean=float(r.mean()) if r.size else global_mean,
            rating_std=float(r.std()) if r.size > 1 else 1.0,
            liked_genres=tuple(liked_genres),
            disliked_genres=tuple(disliked_genres),
            # Most recent first: what the user would name if asked.
            liked_items=tuple(cat.item_ids[i] for i in liked[::-1][:n_examples]),
            disliked_items=tuple(cat.item_ids[i] for i in disliked[::-1][:n_examples]),
            taste=taste.astype(np.float32),
            liking=liking.astype(np.float32),
            attrs=dict(dataset.user_attrs[u]) if dataset.user_attrs else {},
            rating_bias=bias,
        ))
    return profiles
