"""The run's results table (``recarena run``, ``recarena trace summary``): per arm, how many
users it rests on and each figure with its 95% interval over users, on a named scale."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from simulations.analysis.arm_stats import SCALES
from simulations.analysis.metrics import fmt_metric
from simulations.analysis.outcomes import all_labels, no_plugin_note, outcomes_for, rating_metrics
from simulations.analysis.outcomes_feed import FOOTNOTE

__all__ = ["FOOTNOTE", "metrics_table", "table_columns"]


def _label(key: str) -> str:
    name = all_labels().get(key, key.replace("_", " "))
    scale = SCALES.get(key)
    return f"{name} ({scale})" if scale else name


def table_columns(metrics: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The columns with intervals and the plain ones, for this run's metrics (the
    environment's outcome plug-in says which; e.g. new-item columns of the feed only when
    something was released)."""
    o = outcomes_for(metrics.get("environment"))
    return o.summary_columns(metrics) if o is not None else ([], [])


def _cell(metrics: dict[str, Any], key: str, v: Any) -> Text | str:
    if metrics.get("ratings") is False and key in rating_metrics():
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
        o = outcomes_for(metrics.get("environment"))
        labels = o.labels if o is not None else {}
        keys = [k for k in (*ci, *plain) if k in labels]
        rt = Table(title="per role (point values)", title_justify="left")
        rt.add_column("recommender / role", style="bold", no_wrap=True)
        for k in keys:
            rt.add_column(_label(k), justify="right")
        for a, r, rm in mixed:
            rt.add_row(f"{a} / {r}", *(fmt_metric(metrics, k, rm.get(k)) for k in keys))
        parts.append(rt)
    o = outcomes_for(metrics.get("environment"))
    if o is not None and o.summary_lines is not None:
        parts += [Text(line) for line in o.summary_lines(metrics)]
    note = (no_plugin_note(str(metrics.get("environment"))) if o is None else
            o.summary_note(metrics, ci) if o.summary_note is not None else "")
    if metrics.get("ratings") is False:
        note += " Ratings: n/a (implicit feedback, the data has no ratings)."
    parts.append(Text(note, style="dim"))
    return Group(*parts)
