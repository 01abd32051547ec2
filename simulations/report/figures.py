"""Plot helpers of the HTML report (simulations/report/html.py): figures rendered to divs with
one look (legend right of the plots, y axes from 0, rate axes to just above their data),
bars with error bars, notes and metric labels with their scales."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from simulations.analysis.arm_stats import SCALES
from simulations.analysis.outcomes import all_labels

__all__ = ["CSS", "LEGEND", "Figures", "ci_bar", "label", "note", "plotly_js"]


def plotly_js() -> str:
    """plotly.js, inlined once in the report's head (this module is the only one that
    imports plotly). Raises ImportError without the 'report' extra."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


class Figures:
    """Plotly figures rendered to divs (the library itself is inlined once, in the head)."""

    def __init__(self) -> None:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        self.go, self.make_subplots = go, make_subplots
        self.count = 0

    def div(self, fig: Any, height: int = 380, rates: Sequence[str] = (),
            zero: bool = True) -> str:
        """The figure as a div. Every y axis starts at 0 (unless not ``zero``: token
        counts in a box plot); the ``rates`` axes (layout names, e.g. ``yaxis2``) end a
        little above the highest value, at 1.1 at most. The legend sits right of the
        plots, outside them, so it never covers tick labels or axis titles."""
        self.count += 1
        fig.update_layout(template="plotly_white", height=height,
                          margin={"l": 60, "r": 20, "t": 50, "b": 50},
                          legend=LEGEND)
        if zero or rates:
            _from_zero(fig, rates)
        return str(fig.to_html(full_html=False, include_plotlyjs=False,
                               div_id=f"plot-{self.count}",
                               config={"displaylogo": False, "responsive": True}))


# Outside the plotting area, top right (plotly widens the right margin to fit it).
LEGEND = {"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1.0, "yanchor": "top"}


def _from_zero(fig: Any, rates: Sequence[str]) -> None:
    """Every y axis from 0; a rate axis to just above its highest bar or error bar
    (head room for the subplot title above a bar at 1), never beyond 1.1."""
    tops: dict[str, float] = {}
    for tr in fig.data:
        ax = "yaxis" + (tr.yaxis or "y")[1:]
        ys = [float(v) for v in (tr.y or ()) if v is not None]
        err = getattr(tr, "error_y", None)
        plus = list(err.array) if err is not None and err.array is not None else []
        ys += [float(v) + float(p) for v, p in zip(tr.y or (), plus, strict=False)
               if v is not None and p is not None]
        if ys:
            tops[ax] = max(tops.get(ax, 0.0), max(ys))
    for name in [k for k in fig.layout if str(k).startswith("yaxis")] or ["yaxis"]:
        if name in rates:
            top = min(1.0, tops.get(name, 1.0) or 1.0) * 1.1
            fig.layout[name].update(range=[0.0, top], rangemode="tozero")
        else:
            fig.layout[name].update(rangemode="tozero")


def ci_bar(go: Any, s: Any, x: list[str], vals: list[tuple[Any, Any, Any]],
            show: bool) -> Any:
    y = [v[0] for v in vals]
    plus = [None if v[0] is None or v[2] is None else v[2] - v[0] for v in vals]
    minus = [None if v[0] is None or v[1] is None else v[0] - v[1] for v in vals]
    return go.Bar(name=s.label, x=x, y=y, marker_color=s.color, legendgroup=s.label,
                  showlegend=show,
                  error_y={"type": "data", "array": plus, "arrayminus": minus,
                           "visible": True})


def label(metric: str) -> str:
    """A metric's name in the report, with its scale where it has one."""
    base = all_labels().get(metric, metric.replace("_", " "))
    return f"{base} ({SCALES[metric]})" if metric in SCALES else base


def note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222}
header{background:#24323f;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:22px}
nav{padding:8px 24px;background:#eef1f4;font-size:14px}
nav a{margin-right:14px;color:#24323f}
main{padding:0 24px 40px}
section{border-bottom:1px solid #ddd;padding:8px 0 16px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
p.note{color:#555;font-style:italic}
"""
