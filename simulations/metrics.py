"""Metrics computed from trace events alone (never from a run's in-memory state)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from simulations.arm_stats import UserSums, arm_stats

__all__ = [
    "CONVERSATION_LABELS",
    "METRIC_LABELS",
    "NEW_ITEM_METRICS",
    "RATING_METRICS",
    "compute_metrics",
    "fmt_metric",
    "genre_entropy",
    "gini",
    "labels_for",
]

METRIC_LABELS = {
    "watch_rate": "watch rate",
    "mean_rating": "rating",
    "exit_page": "exit page",
    "satisfaction": "satisfaction",
    "coverage": "coverage",
    "gini": "Gini",
    "genre_entropy": "genre H",
    "new_item_impressions": "new shown",
    "new_item_watches": "new watched",
}
# Figures on the rating scale: "n/a" for implicit feedback (data without ratings).
RATING_METRICS = ("mean_rating",)
# Only meaningful once add_items has released something: None before (a "-" in tables).
NEW_ITEM_METRICS = ("new_item_impressions", "new_item_watches")
CONVERSATION_LABELS = {
    "success_rate": "success",
    "turns_to_success": "turns to success",
    "recall_at_k": "recall@k",
    "conversations": "conversations",
}


def fmt_metric(metrics: dict[str, Any], key: str, value: Any, digits: int = 3) -> str:
    """A metric as a table cell: "n/a" for a rating figure of implicit data, "-" when
    there is nothing to measure."""
    if key in RATING_METRICS and metrics.get("ratings") is False:
        return "n/a"
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def labels_for(environment: str) -> dict[str, str]:
    """The table columns of an environment's metrics."""
    return CONVERSATION_LABELS if environment == "conversation" else METRIC_LABELS


def gini(counts: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = equal exposure, -> 1 = concentrated)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2.0 * (ranks * x).sum()) / (n * x.sum()) - (n + 1.0) / n)


def genre_entropy(genre_lists: Iterable[Sequence[str]]) -> float:
    """Shannon entropy (bits) of the genre distribution of a set of items.

    Each item spreads one unit of weight evenly over its genres.
    """
    w: dict[str, float] = defaultdict(float)
    for gs in genre_lists:
        for g in gs:
            w[g] += 1.0 / len(gs)
    total = sum(w.values())
    if total <= 0:
        return 0.0
    return float(-sum((v / total) * math.log2(v / total) for v in w.values() if v > 0))


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 6)


class _Acc:
    def __init__(self) -> None:
        self.impressions = 0
        self.watches = 0
        self.ratings: list[float] = []
        self.exit_pages: list[float] = []
        self.satisfaction: list[float] = []
        self.exposure: dict[str, int] = defaultdict(int)
        self.watched_genres: dict[tuple[Any, Any], list[tuple[str, ...]]] = defaultdict(list)
        self.released = False
        self.new_impressions = 0
        self.new_watches = 0

    def result(self, n_items: int) -> dict[str, float | None]:
        exposure = list(self.exposure.values()) + [0] * max(n_items - len(self.exposure), 0)
        entropies = [genre_entropy(v) for v in self.watched_genres.values()]
        return {
            "watch_rate": self.watches / self.impressions if self.impressions else None,
            "mean_rating": _mean(self.ratings),
            "exit_page": _mean(self.exit_pages),
            "satisfaction": _mean(self.satisfaction),
            "coverage": len(self.exposure) / n_items if n_items else None,
            "gini": gini(exposure) if self.exposure else None,
            "genre_entropy": _mean(entropies),
            "new_item_impressions": self.new_impressions if self.released else None,
            "new_item_watches": self.new_watches if self.released else None,
        }


class _Conv:
    """Conversation outcomes: success, turns, whether the target was ever recommended."""

    def __init__(self) -> None:
        self.turns: list[tuple[bool, int, bool]] = []
        self.k = 0

    def add(self, ev: dict[str, Any]) -> None:
        self.turns.append((bool(ev["success"]), int(ev["turns"]), bool(ev["target_seen"])))
        self.k = int(ev.get("k", self.k))

    def result(self) -> dict[str, Any]:
        n = len(self.turns)
        wins = [t for ok, t, _ in self.turns if ok]
        horizon = max((t for _, t, _ in self.turns), default=0)
        return {
            "conversations": n,
            "success_rate": len(wins) / n if n else None,
            "turns_to_success": _mean([float(t) for t in wins]),
            "recall_at_k": sum(seen for _, _, seen in self.turns) / n if n else None,
            "success_at_turn": {str(t): _round(sum(1 for w in wins if w <= t) / n)
                                for t in range(1, horizon + 1)} if n else {},
        }


def _add_user(us: UserSums, t: Any, ev: dict[str, Any], is_new: bool) -> None:
    """One feed event into its user's sums (what ``_Acc`` counts, per user)."""
    u = ev.get("user")
    if t == "decision" and ev["action"] in ("watch", "skip"):
        us.add(u, "impressions")
        if is_new:
            us.add(u, "new_impressions")
        if ev["action"] == "watch":
            us.add(u, "watches")
            if is_new:
                us.add(u, "new_watches")
            if ev.get("rating") is not None:
                us.add(u, "rating_sum", float(ev["rating"]))
                us.add(u, "ratings")
    elif t == "session_end" and ev["pages"] > 0:
        us.add(u, "pages_sum", float(ev["pages"]))
        us.add(u, "sessions")
    elif t == "interview":
        us.add(u, "satisfaction_sum", float(ev["satisfaction"]))
        us.add(u, "interviews")


def compute_metrics(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per arm (overall, per round and per role) metrics from a trace's events.

    Returns ``{"n_items": N, "environment": KIND, "arms": {arm: {"overall": {...},
    "rounds": {r: {...}}, "roles": {role: {...}}, "decision_failures": n}}}``.
    Feed metrics: exit page is the page on which a session ended; genre entropy is the
    mean, over (user, round) sessions with at least one watch, of the entropy of watched
    genres. Conversation metrics: success rate, mean turns to success (over successes),
    recall@k (share of conversations whose target was ever among the k recommended), and
    success by turn (cumulative).
    New-item impressions and watches count decisions on items an arm's ``add_items``
    events released (from that event on); None for an arm, or a round, before any release.
    """
    n_items, env, ratings = 0, "feed", True
    acc: dict[str, _Acc] = defaultdict(_Acc)
    per_round: dict[tuple[str, int], _Acc] = defaultdict(_Acc)
    per_role: dict[tuple[str, str], _Acc] = defaultdict(_Acc)
    conv: dict[str, _Conv] = defaultdict(_Conv)
    conv_round: dict[tuple[str, int], _Conv] = defaultdict(_Conv)
    conv_role: dict[tuple[str, str], _Conv] = defaultdict(_Conv)
    # Per-user sums of each arm, for sample sizes and intervals over users.
    user_sums: dict[str, UserSums] = defaultdict(UserSums)
    failures: dict[str, int] = {}
    new_items: dict[str, set[str]] = defaultdict(set)
    # One shared tuple per genre combination: a long trace has millions of watches but few
    # combinations, and the events themselves are not kept (they may be streamed).
    combos: dict[tuple[str, ...], tuple[str, ...]] = {}
    for ev in events:
        t = ev.get("type")
        if t == "run_start":
            n_items = int(ev.get("n_items", 0))
            env = str(ev.get("environment") or "feed")
            ratings = ev.get("ratings", True) is not False
            continue
        arm = ev.get("arm")
        if arm is not None and t == "decision_failure":
            failures[arm] = failures.get(arm, 0) + 1
        if arm is None:
            continue
        if t == "event" and ev.get("action") == "add_items":
            new_items[arm].update(str(i) for i in ev["items"])
            acc[arm].released = True
            continue
        role = ev.get("role")
        if t == "conversation_end":
            us = user_sums[arm]
            us.add(ev.get("user"), "conversations")
            us.add(ev.get("user"), "successes", float(bool(ev["success"])))
            us.add(ev.get("user"), "target_seen", float(bool(ev["target_seen"])))
            for c in (conv[arm], conv_round[(arm, ev["round"])]):
                c.add(ev)
            if role is not None:
                conv_role[(arm, role)].add(ev)
            continue
        if t not in ("page", "decision", "session_end", "interview"):
            continue
        targets = [acc[arm], per_round[(arm, ev["round"])]]
        if role is not None:
            targets.append(per_role[(arm, role)])
        is_new = t == "decision" and ev.get("item") is not None and ev["item"] in new_items[arm]
        genres: tuple[str, ...] = ()
        if t == "decision" and ev["action"] == "watch":
            g = tuple(ev.get("genres") or ())
            genres = combos.setdefault(g, g)
        for a in targets:
            a.released = a.released or bool(new_items[arm])
            if t == "page":
                for iid in ev["items"]:
                    a.exposure[iid] += 1
            elif t == "decision" and ev["action"] in ("watch", "skip"):
                a.impressions += 1
                a.new_impressions += is_new
                a.new_watches += is_new and ev["action"] == "watch"
                if ev["action"] == "watch":
                    a.watches += 1
                    if ev.get("rating") is not None:
                        a.ratings.append(float(ev["rating"]))
                    a.watched_genres[(ev["user"], ev["round"])].append(genres)
            elif t == "session_end" and ev["pages"] > 0:
                a.exit_pages.append(float(ev["pages"]))
            elif t == "interview":
                a.satisfaction.append(float(ev["satisfaction"]))
        _add_user(user_sums[arm], t, ev, is_new)

    def stats(arm: str) -> dict[str, Any]:
        return arm_stats(user_sums[arm], environment=env, ratings=ratings,
                         released=acc[arm].released if arm in acc else False)

    def clean(d: dict[str, Any]) -> dict[str, Any]:
        return {k: _round(v) if isinstance(v, float | type(None)) else v for k, v in d.items()}

    arms: dict[str, Any] = {}
    if env == "conversation":
        for arm, c in conv.items():
            arms[arm] = {
                "overall": clean(c.result()),
                "rounds": {str(r): clean(pc.result()) for (a2, r), pc in sorted(conv_round.items())
                           if a2 == arm},
                "roles": {ro: clean(pc.result()) for (a2, ro), pc in sorted(conv_role.items())
                          if a2 == arm},
                "decision_failures": failures.get(arm, 0), "stats": stats(arm)}
    else:
        for arm, a in acc.items():
            arms[arm] = {
                "overall": clean(a.result(n_items)),
                "rounds": {str(r): clean(pr.result(n_items))
                           for (a2, r), pr in sorted(per_round.items()) if a2 == arm},
                "roles": {ro: clean(pr.result(n_items))
                          for (a2, ro), pr in sorted(per_role.items()) if a2 == arm},
                "decision_failures": failures.get(arm, 0), "stats": stats(arm)}
    out: dict[str, Any] = {"n_items": n_items, "environment": env, "arms": arms}
    if not ratings:  # implicit feedback: simulated ratings have no real scale to match
        out["ratings"] = False
        for a in arms.values():
            for scope in (a["overall"], *a["rounds"].values(), *a["roles"].values()):
                scope.update({k: None for k in RATING_METRICS if k in scope})
    return out
