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
FOOTNOTE = ("[value] [95% interval]: percentile bootstrap over users (1,000 resamples); "
            "rates clipped to [0, 1]. new shown = share of shown items that were new "
            "releases; new watched = share of shown new releases that were watched.")


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
    if v["lo"] == v["hi"]:  # one user: no spread to estimate
        return f"{v['value']:.3f}"
    return Text.assemble(f"{v['value']:.3f}\n", (f"[{v['lo']:.3f}, {v['hi']:.3f}]", "dim"))


def metrics_table(metrics: dict[str, Any], title: str = "") -> Group:
    """One row per recommender (n users, figures with intervals), and one per
    (recommender, role) in a mixed population (point values); then the footnote."""
    ci, plain = table_columns(metrics)
    t = Table(title=title or None, show_lines=True)
    t.add_column("recommender", style="bold")
    t.add_column("users", justify="right")
    for k in (*ci, *plain):
        t.add_column(_label(k), justify="right")
    for arm, m in metrics.get("arms", {}).items():
        st = m.get("stats") or {}
        ov = m.get("overall", {})
        t.add_row(arm, str(st.get("n_users", "-")),
                  *(_cell(metrics, k, st.get(k)) for k in ci),
                  *(fmt_metric(metrics, k, ov.get(k)) for k in plain))
        roles = m.get("roles", {})
        if len(roles) > 1:
            for role, rm in roles.items():
                t.add_row(f"  {arm} / {role}", "",
                          *(fmt_metric(metrics, k, rm.get(k)) for k in ci),
                          *(fmt_metric(metrics, k, rm.get(k)) for k in plain), style="dim")
    note = FOOTNOTE if metrics.get("environment") != "conversation" else FOOTNOTE.split(
        " new shown")[0]
    if metrics.get("ratings") is False:
        note += " Ratings: n/a (implicit feedback, the data has no ratings)."
    return Group(t, Text(note, style="dim"))

