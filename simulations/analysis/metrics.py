"""Metrics computed from trace events alone (never from a run's in-memory state)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from simulations.analysis.diversity import genre_entropy, gini
from simulations.analysis.outcomes import RunMetrics, no_plugin_note, outcomes_for, rating_metrics
from simulations.analysis.outcomes_conversation import LABELS as CONVERSATION_LABELS_
from simulations.analysis.outcomes_feed import FEED, NEW_ITEM_METRICS
from simulations.analysis.outcomes_feed import LABELS as FEED_LABELS

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

# The built-in environments' labels and conventions, declared by their outcome plug-ins
# (simulations/analysis/outcomes_feed.py, outcomes_conversation.py); kept here under
# their old names.
METRIC_LABELS = FEED_LABELS
CONVERSATION_LABELS = CONVERSATION_LABELS_
# Figures on the rating scale: "n/a" for implicit feedback (data without ratings).
RATING_METRICS = ("mean_rating",)


def fmt_metric(metrics: dict[str, Any], key: str, value: Any, digits: int = 3) -> str:
    """A metric as a table cell: "n/a" for a rating figure of implicit data, "-" when
    there is nothing to measure."""
    if metrics.get("ratings") is False and key in rating_metrics():
        return "n/a"
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def labels_for(environment: str) -> dict[str, str]:
    """The table columns of an environment's metrics (none without an outcome plug-in)."""
    o = outcomes_for(environment)
    return dict(o.labels) if o is not None else {}


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 6)


def compute_metrics(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per arm (overall, per round and per role) metrics from a trace's events.

    Returns ``{"n_items": N, "environment": KIND, "arms": {arm: {"overall": {...},
    "rounds": {r: {...}}, "roles": {role: {...}}, "decision_failures": n, "stats": {...}}}}``.
    What the metrics are is the environment's outcome plug-in's (simulations/analysis/outcomes.py;
    the feed's and the conversation's are documented in their modules). An environment
    without a plug-in has no arms, and a ``note`` saying so.
    """
    n_items, env, ratings = 0, "feed", True
    acc: RunMetrics | None = None
    failures: dict[str, int] = {}
    for ev in events:
        t = ev.get("type")
        if t == "run_start":
            n_items = int(ev.get("n_items", 0))
            env = str(ev.get("environment") or "feed")
            ratings = ev.get("ratings", True) is not False
            plugin = outcomes_for(env)
            acc = plugin.metrics() if plugin is not None else None
            continue
        arm = ev.get("arm")
        if arm is None:
            continue
        if t == "decision_failure":
            failures[arm] = failures.get(arm, 0) + 1
        if acc is None and env == "feed":  # a trace without run_start: read as a feed
            acc = FEED.metrics()
        if acc is not None:
            acc.add(ev)

    def clean(d: dict[str, Any]) -> dict[str, Any]:
        return {k: _round(v) if isinstance(v, float | type(None)) else v for k, v in d.items()}

    arms: dict[str, Any] = {}
    for arm, r in (acc.arms(n_items, ratings) if acc is not None else {}).items():
        arms[arm] = {
            "overall": clean(r["overall"]),
            "rounds": {k: clean(v) for k, v in r["rounds"].items()},
            "roles": {k: clean(v) for k, v in r["roles"].items()},
            "decision_failures": failures.get(arm, 0), "stats": r.get("stats") or {}}
    out: dict[str, Any] = {"n_items": n_items, "environment": env, "arms": arms}
    plugin = outcomes_for(env)
    if plugin is None:
        out["note"] = no_plugin_note(env)
    if not ratings:  # implicit feedback: simulated ratings have no real scale to match
        out["ratings"] = False
        rated = plugin.rating_metrics if plugin is not None else ()
        for a in arms.values():
            for scope in (a["overall"], *a["rounds"].values(), *a["roles"].values()):
                scope.update({k: None for k in rated if k in scope})
    return out
