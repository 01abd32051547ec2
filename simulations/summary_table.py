"""The run's results table (``recarena run``, ``recarena trace summary``): per arm, how many
users it rests on and each figure with its 95% interval over users, on a named scale."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from simulations.arm_stats import SCALES
from simulations.metrics import (
    CONVERSATION_LABELS,
    METRIC_LABELS,
    NEW_ITEM_METRICS,
    fmt_metric,
)

__all__ = ["FOOTNOTE", "metrics_table", "table_columns"]

# Figures shown with an interval (stats key -> the overall metric it is), in order.
_FEED_CI = ("watch_rate", "new_shown_rate", "new_watched_rate", "mean_rating",
            "satisfaction", "exit_page")
_FEED_PLAIN = ("coverage", "gini", "genre_entropy")
_CONV_CI = ("success_rate", "recall_at_k")
_CONV_PLAIN = ("turns_to_success",)
_LABELS = {**METRIC_LABELS, "new_shown_rate": "new shown (rate)",
           "new_watched_rate": "new watched (rate)", **CONVERSATION_LABELS}
FOOTNOTE = ("users (n): users with a session in the arm. Each figure is over all of them, "
            "with its 95% interval below it: percentile bootstrap over users (1,000 "
            "resamples), rates clipped to [0, 1]; coverage, Gini and genre H are point "
            "values (they depend on how many users there are).")
NEW_ITEMS_NOTE = (" new shown = share of shown items that were new releases; new watched = "
                  "share of shown new releases that were watched.")


def _label(key: str) -> str:
    scale = SCALES.get(key)
    return f"{_LABELS[key]} ({scale})" if scale else _LABELS[key]


def table_columns(metrics: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The columns with intervals and the plain ones, for this run's metrics (new-item
    columns only when something was released)."""
    if metrics.get("environment") == "conversation":
        return list(_CONV_CI), list(_CONV_PLAIN)
    arms = metrics.get("arms", {}).values()
    released = any(m.get("overall", {}).get(k) is not None
                   for m in arms for k in NEW_ITEM_METRICS)
    ci = [k for k in _FEED_CI if released or k not in ("new_shown_rate", "new_watched_rate")]
    return ci, list(_FEED_PLAIN)


def _cell(metrics: dict[str, Any], key: str, v: Any) -> Text | str:
    if key == "mean_rating" and metrics.get("ratings") is False:
        return "n/a"
    if not v:
        return "-"
    if v.get("n", 0) < 2:  # one user: no spread to estimate
        return f"{v['value']:.3f}"
    return Text.assemble(f"{v['value']:.3f}\n", (f"[{v['lo']:.3f}, {v['hi']:.3f}]", "dim"))


def metrics_table(metrics: dict[str, Any], title: str = "") -> Group:
    """One column per recommender: n users, then each figure with its interval below it
    (a statistician's table 1); then, in a mixed population, the per-role point values;
    then the footnote."""
    ci, plain = table_columns(metrics)
    arms = metrics.get("arms", {})
    if not arms:  # an environment without metrics of its own (a plug-in): say so
        return Group(f"{title + ': ' if title else ''}no metrics for the "
                     f"{metrics.get('environment', '?')} environment (see the trace)")
    t = Table(title=title or None, title_justify="left")
    t.add_column("", style="bold", no_wrap=True)
    for arm in arms:
        t.add_column(arm, justify="right", no_wrap=True)
    stats = {a: m.get("stats") or {} for a, m in arms.items()}
    t.add_row("users (n)", *(str(stats[a].get("n_users", "-")) for a in arms),
              end_section=True)
    for k in ci:
        t.add_row(_label(k), *(_cell(metrics, k, stats[a].get(k)) for a in arms))
    for k in plain:
        t.add_row(_label(k), *(fmt_metric(metrics, k, arms[a].get("overall", {}).get(k))
                               for a in arms))
    parts: list[Any] = [t]
    mixed = [(a, r, rm) for a, m in arms.items() if len(m.get("roles", {})) > 1
             for r, rm in m["roles"].items()]
    if mixed:
        keys = [k for k in (*ci, *plain) if k in METRIC_LABELS or k in CONVERSATION_LABELS]
        rt = Table(title="per role (point values)", title_justify="left")
        rt.add_column("recommender / role", style="bold", no_wrap=True)
        for k in keys:
            rt.add_column(_label(k), justify="right")
        for a, r, rm in mixed:
            rt.add_row(f"{a} / {r}", *(fmt_metric(metrics, k, rm.get(k)) for k in keys))
        parts.append(rt)
    note = FOOTNOTE + (NEW_ITEMS_NOTE if "new_shown_rate" in ci else "")
    note = note if metrics.get("environment") != "conversation" else (
        "users (n): users with a conversation in the arm. 95% intervals: percentile "
        "bootstrap over users (1,000 resamples), rates clipped to [0, 1].")
    if metrics.get("ratings") is False:
        note += " Ratings: n/a (implicit feedback, the data has no ratings)."
    parts.append(Text(note, style="dim"))
    return Group(*parts)
