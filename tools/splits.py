"""Splits of interactions into history and future (held-out) parts.

* ``global`` (:func:`global_split`, the default everywhere): one time cutoff for everyone,
  leak-free;
* ``per_user`` (:func:`temporal_split`): each user's earliest share, the earlier protocol;
* :func:`leave_last_out`: each user's last interaction;
* :func:`rolling_cutoffs`: several global cutoffs (rolling origins).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:  # only its methods are used here
    from tools.data_model import Interactions

__all__ = [
    "SPLIT_KINDS",
    "SplitKind",
    "global_cutoff",
    "global_split",
    "leave_last_out",
    "rolling_cutoffs",
    "split_at",
    "split_interactions",
    "temporal_split",
]

SplitKind = Literal["global", "per_user"]
SPLIT_KINDS: tuple[SplitKind, ...] = ("global", "per_user")


def _order_by_user_time(inter: Interactions) -> np.ndarray:
    # Stable: ties in time keep file order, so splits are reproducible.
    return np.lexsort((np.arange(len(inter)), inter.ts, inter.user))


def temporal_split(
    inter: Interactions, history_fraction: float = 0.8, min_future: int = 1
) -> tuple[Interactions, Interactions]:
    """Per user, the earliest ``history_fraction`` of interactions vs the rest.

    Users with fewer than ``min_future + 1`` interactions keep everything as history.
    """
    if not 0.0 < history_fraction <= 1.0:
        raise ValueError("history_fraction must be in (0, 1]")
    order = _order_by_user_time(inter)
    users = inter.user[order]
    is_future = np.zeros(len(inter), dtype=bool)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    for s, e in zip(starts, ends, strict=True):
        n = e - s
        # The epsilon keeps 0.55 * 100 = 55.000000000000007 from rounding up to 56.
        n_future = n - int(np.ceil(n * history_fraction - 1e-9))
        if history_fraction < 1.0:
            n_future = max(n_future, min_future) if n > min_future else 0
        if n_future:
            is_future[order[e - n_future:e]] = True
    return inter.select(~is_future), inter.select(is_future)


def global_cutoff(inter: Interactions, history_fraction: float = 0.8) -> float:
    """The time ``T`` of the leak-free split: the ``history_fraction`` quantile of all
    timestamps (the timestamp of the sorted row at index ``ceil(fraction * n)``).

    ``inf`` when the fraction is 1 or there are no rows (everything is history).
    """
    if not 0.0 < history_fraction <= 1.0:
        raise ValueError("history_fraction must be in (0, 1]")
    n = len(inter)
    k = int(np.ceil(n * history_fraction - 1e-9))
    if n == 0 or k >= n:
        return float("inf")
    return float(np.sort(inter.ts, kind="stable")[k])


def split_at(inter: Interactions, cutoff: float) -> tuple[Interactions, Interactions]:
    """History (``ts < cutoff``) and future (``ts >= cutoff``): ties at the cutoff go to
    the future, so nothing dated at or after the cutoff is ever seen as history."""
    fut = inter.ts >= cutoff
    return inter.select(~fut), inter.select(fut)


def global_split(
    inter: Interactions, history_fraction: float = 0.8
) -> tuple[Interactions, Interactions]:
    """The leak-free split: one global cutoff ``T = global_cutoff(inter, fraction)``.

    History is every rating dated before ``T`` (for every user), future every rating dated
    at or after it; so the item space, popularity, item means, baselines and recommenders
    fitted on history know nothing from any user's future. Deterministic: it depends on
    the timestamps only, never on file order. Users who rated only after ``T`` have no
    history; users who rated only before it have no future.
    """
    return split_at(inter, global_cutoff(inter, history_fraction))


def split_interactions(
    inter: Interactions, history_fraction: float = 0.8, kind: SplitKind = "global"
) -> tuple[Interactions, Interactions]:
    """History and future by ``kind``: ``global`` (leak-free, the default) or
    ``per_user`` (each user's earliest share, :func:`temporal_split`; other users' history
    may then postdate a user's future, kept for comparison with earlier figures)."""
    if kind == "global":
        return global_split(inter, history_fraction)
    if kind == "per_user":
        return temporal_split(inter, history_fraction)
    raise ValueError(f"unknown split {kind!r}; expected one of {', '.join(SPLIT_KINDS)}")


def rolling_cutoffs(
    inter: Interactions, n_cutoffs: int, first: float = 0.5, last: float = 0.9
) -> list[float]:
    """``n_cutoffs`` global cutoffs at evenly spaced timestamp quantiles in
    ``[first, last]`` (rolling origins; each is leak-free on its own)."""
    if n_cutoffs < 1:
        raise ValueError("n_cutoffs must be at least 1")
    if not 0.0 < first <= last <= 1.0:
        raise ValueError("need 0 < first <= last <= 1")
    qs = [first] if n_cutoffs == 1 else np.linspace(first, last, n_cutoffs).tolist()
    return [global_cutoff(inter, float(q)) for q in qs]


def leave_last_out(inter: Interactions) -> tuple[Interactions, Interactions]:
    """Per user, the last interaction (by time, then file order) is the test item."""
    order = _order_by_user_time(inter)
    users = inter.user[order]
    last = np.flatnonzero(np.r_[users[1:] != users[:-1], True])
    is_test = np.zeros(len(inter), dtype=bool)
    # Users with a single interaction have nothing to train on: keep them in train.
    firsts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    counts = np.r_[firsts[1:], len(users)] - firsts
    is_test[order[last[counts > 1]]] = True
    return inter.select(~is_test), inter.select(is_test)
