"""A self-contained HTML report of one or more run folders, with Plotly plots.

Everything is inlined (plotly.js once in the head, each figure's data in its own script),
so the file opens offline. Several runs are compared side by side: every plot has one
series per (run, recommender). Sections (``SECTIONS``) with nothing to plot for these runs
are left out, and the overview lists them with the reason. Plot conventions (axes from 0,
legends outside the plots, no all-zero cost chart): simulations/report/figures.py.

The report reads the trace and, where present, ``reference.json`` (item popularity in the
training history and the held-out ratings, written by the runner). It never includes the
run's config, prompts or model output, so nothing secret can reach it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simulations.analysis.metrics import labels_for
from simulations.analysis.outcomes import (
    no_plugin_note,
    outcomes_for,
    rating_metrics,
    report_sections,
)
from simulations.analysis.paired import value_ci
from simulations.analysis.user_stats import metric_names, user_groups
from simulations.report.data import ReportError, load_run, series_of
from simulations.report.data import Run as _Run
from simulations.report.data import Series as _Series
from simulations.report.figures import CSS, plotly_js
from simulations.report.figures import Figures as _Figures
from simulations.report.figures import ci_bar as _ci_bar
from simulations.report.figures import label as _label
from simulations.report.figures import note as _note
from simulations.report.robust import robustness_section
from simulations.report.sections import deciles as _deciles  # noqa: F401  (tests use it)

__all__ = ["SECTIONS", "ReportError", "build_report", "sections", "write_report"]

# A section is shown if it has a plot or a table; else its "why not" goes to the overview.
_CONTENT = ('class="plotly-graph-div"', "<table")
_Render = Callable[[_Figures, list[_Series], int, int], str]


# ----------------------------------------------------------------------------- plots


def _overview(runs: list[_Run], series: list[_Series], resamples: int, seed: int) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            r.label, r.run_dir, r.environment, r.dataset, len(r.tables.users),
            ", ".join(r.tables.arms), r.status)) + "</tr>" for r in runs)
    out = ["<table><tr><th>run</th><th>folder</th><th>environment</th><th>dataset</th>"
           f"<th>users</th><th>recommenders</th><th>status</th></tr>{rows}</table>"]
    for env in sorted({r.environment for r in runs}):
        if outcomes_for(env) is None:
            out.append(_note(no_plugin_note(env)))
            continue
        labels = labels_for(env)
        names = [m for m in metric_names(env) if m in labels]
        head = "".join(f"<th>{html.escape(_label(m))}</th>" for m in names)
        body = []
        for s in (s for s in series if s.run.environment == env):
            cells = []
            for m in names:
                if s.run.metrics.get("ratings") is False and m in rating_metrics():
                    cells.append("<td>n/a</td>")  # implicit feedback: no rating scale
                    continue
                v, lo, hi = value_ci(s.table, m, resamples=resamples, seed=seed)
                ci = "" if lo is None or hi is None else f" <small>[{lo:.3f}, {hi:.3f}]</small>"
                cells.append("<td>-</td>" if v is None else f"<td>{v:.3f}{ci}</td>")
            body.append(f"<tr><td>{html.escape(s.label)}</td>{''.join(cells)}</tr>")
        out.append(f"<h3>{html.escape(env)} metrics (95% bootstrap intervals over users)"
                   f"</h3><table><tr><th>series</th>{head}</tr>{''.join(body)}</table>")
    return "".join(out)

def _groups(f: _Figures, series: list[_Series], resamples: int, seed: int) -> str:
    dims: dict[str, list[str]] = {}
    masks: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for s in series:
        g = user_groups(s.table.users, s.run.tables.info)
        for dim, by_level in g.items():
            known = dims.setdefault(dim, [])
            known += [lv for lv in by_level if lv not in known]
            masks[(s.label, dim)] = by_level
    if not dims:
        return _note("No user attributes or traits with two or more levels.")
    envs = sorted({s.run.environment for s in series})
    metrics = [m for env in envs for m in getattr(outcomes_for(env), "group_metrics", ())]
    # Only (dimension, metric) panels some series has data for: no empty panels.
    panels = [(dim, m) for dim in dims for m in metrics
              if any(m in metric_names(s.run.environment) and (s.label, dim) in masks
                     for s in series)]
    if not panels:  # e.g. an environment that declares no group metrics
        return _note("No metrics by user group for these environments.")
    cols = min(len(metrics), 3) or 1
    rows = -(-len(panels) // cols)
    # A grid cell beyond the last panel gets no axes (None), so no empty panel is drawn.
    specs: list[list[dict[str, Any] | None]] = [
        [{} if r * cols + c < len(panels) else None for c in range(cols)]
        for r in range(rows)]
    fig = f.make_subplots(rows=rows, cols=cols, specs=specs, subplot_titles=[
        f"{_label(m)} by {dim}" for dim, m in panels], vertical_spacing=0.35 / rows)
    shown: set[str] = set()
    rates: list[str] = []
    for k, (dim, m) in enumerate(panels):
        r, c = divmod(k, cols)
        levels = dims[dim]
        for s in series:
            if m not in metric_names(s.run.environment) or (s.label, dim) not in masks:
                continue
            lv_masks = masks[(s.label, dim)]
            vals = [value_ci(s.table.subset(lv_masks[lv]), m, resamples=resamples,
                             seed=seed) if lv in lv_masks else (None, None, None)
                    for lv in levels]
            fig.add_trace(_ci_bar(f.go, s, [str(lv) for lv in levels], vals,
                                  show=s.label not in shown), row=r + 1, col=c + 1)
            shown.add(s.label)
        axis = "yaxis" if k == 0 else f"yaxis{k + 1}"
        if m == "satisfaction":
            fig.layout[axis].update(range=[0, 10])
        else:
            rates.append(axis)
    fig.update_layout(barmode="group")
    return _note("Levels: role; gender and age band (MovieLens-1M bands) from the user file; "
                 "activity, conformity and diversity 1 (low) to 3 (high). Error bars: 95% "
                 "bootstrap interval over the users of the group.") + f.div(
        fig, height=max(380, 260 * rows), rates=rates)


def _ratings(f: _Figures, series: list[_Series]) -> str:
    # Implicit feedback (data without ratings): simulated ratings have no scale to match.
    rated = [s for s in series if s.run.ratings.get(s.arm)
             and s.run.metrics.get("ratings") is not False]
    if not rated:
        if any(s.run.metrics.get("ratings") is False for s in series):
            return _note("Ratings: n/a (implicit feedback: the data has no ratings).")
        return _note("No simulated ratings in these runs.")
    refs = {}
    for s in rated:
        ref = s.run.reference
        if ref and ref.get("heldout_ratings"):
            kind = "real" if ref.get("real_ratings") else "synthetic world"
            refs[s.run.label] = (f"held-out {kind} ratings, {ref.get('dataset', '')}"
                                 + ("" if len({x.run.label for x in rated}) == 1
                                    else f" ({s.run.label})"), ref["heldout_ratings"])
    values = sorted({v for s in rated for v in s.run.ratings[s.arm]}
                    | {v for _, h in refs.values() for v in h}, key=float)
    fig = f.go.Figure()
    for s in rated:
        c = s.run.ratings[s.arm]
        total = sum(c.values())
        fig.add_trace(f.go.Bar(name=f"simulated: {s.label}", x=values,
                               y=[c.get(v, 0) / total for v in values], marker_color=s.color))
    for k, (label, hist) in enumerate(refs.values()):
        total = sum(hist.values())
        fig.add_trace(f.go.Bar(name=label, x=values, y=[hist.get(v, 0) / total for v in values],
                               marker_color="#333333" if k == 0 else "#999999",
                               marker_pattern_shape="/"))
    fig.update_layout(barmode="group", xaxis_title="rating (1-5)",
                      yaxis_title="share of ratings", xaxis={"type": "category"})
    note = "" if refs else _note("No held-out ratings recorded (reference.json missing).")
    return note + f.div(fig, rates=("yaxis",))


def _new_items(f: _Figures, series: list[_Series]) -> str:
    with_new = [s for s in series if s.run.new_items]
    if not with_new:
        return _note("No add_items events in these runs: no items were released mid-run.")
    # The watch-rate panel only if some recommender showed a new item (else it is empty).
    shown_any = any(sum(c[1] for c in s.run.new_exposure[s.arm].values()) for s in with_new)
    titles = ("share of impressions that were new items", "watch rate of new items when shown")
    fig = f.make_subplots(rows=1, cols=2 if shown_any else 1,
                          subplot_titles=titles if shown_any else titles[:1])
    for s in with_new:
        per = s.run.new_exposure[s.arm]
        first = min(s.run.released.values())
        rounds = sorted(r for r in per if r >= first)
        fig.add_trace(f.go.Bar(
            name=s.label, x=[f"round {r}" for r in rounds],
            y=[per[r][1] / per[r][0] if per[r][0] else None for r in rounds],
            marker_color=s.color, legendgroup=s.label), row=1, col=1)
        shown = sum(per[r][1] for r in rounds)
        rate = sum(per[r][2] for r in rounds) / shown if shown else None
        if not shown_any:
            continue
        fig.add_trace(f.go.Bar(name=s.label, x=[s.label], y=[rate],
                               text=["not shown" if rate is None else f"{rate:.3f}"],
                               textposition="outside", marker_color=s.color,
                               legendgroup=s.label, showlegend=False), row=1, col=2)
    fig.update_layout(barmode="group")
    if shown_any:
        fig.update_xaxes(showticklabels=False, row=1, col=2)
    n = max(len(s.run.new_items) for s in with_new)
    return _note(f"Items released by add_items events ({n} items), from their release "
                 "round on. A recommender that never showed one has no watch-rate bar."
                 ) + f.div(fig, rates=("yaxis", "yaxis2"))


def _llm(f: _Figures, series: list[_Series]) -> str:
    used = [s for s in series if s.run.tokens.get(s.arm)]
    if not used:
        return _note("No LLM calls in these runs (numeric brains only).")
    # No cost chart when nothing cost anything (a local model, a replayed cache).
    costs = any(v[1] > 0 for s in used for v in s.run.tokens[s.arm].values())
    titles = ("tokens per agent (input + output)", "cost per agent (USD)")
    fig = f.make_subplots(rows=1, cols=2 if costs else 1,
                          subplot_titles=titles if costs else titles[:1])
    for s in used:
        per = s.run.tokens[s.arm]
        for col, k in ((1, 0), (2, 1))[:2 if costs else 1]:
            fig.add_trace(f.go.Box(name=s.label, y=[v[k] for v in per.values()],
                                   text=list(per), boxpoints="all", jitter=0.3,
                                   marker_color=s.color, legendgroup=s.label,
                                   showlegend=col == 1), row=1, col=col)
    totals = ", ".join(f"{s.label}: {sum(v[0] for v in s.run.tokens[s.arm].values()):.0f} "
                       f"tokens, {sum(v[1] for v in s.run.tokens[s.arm].values()):.4f} USD"
                       for s in used)
    free = "" if costs else " Every call cost 0 USD, so there is no cost chart."
    return _note(f"Totals per recommender: {totals}. A call repeated from the run's cache "
                 f"costs nothing.{free}") + f.div(fig, zero=False)

def sections() -> list[tuple[str, str, int, _Render | None]]:
    """(id, title, rank, render) of every section, in order: the report's own and those
    of every environment's outcome plug-in (render None: the overview and robustness,
    which read the runs rather than the series)."""
    own: list[tuple[str, str, int, _Render | None]] = [
        ("overview", "Runs and metrics", 0, None),
        ("groups", "Metrics by user group (fairness)", 50, _groups),
        ("ratings", "Simulated and held-out ratings", 60, lambda f, s, n, seed: _ratings(f, s)),
        ("new-items", "New items", 70, lambda f, s, n, seed: _new_items(f, s)),
        ("llm", "Tokens and cost per agent", 80, lambda f, s, n, seed: _llm(f, s)),
        ("robustness", "Robustness across user models", 100, None)]
    plugged = [(x.id, x.title, x.rank, x.renderer()) for x in report_sections()]
    return sorted([*own, *plugged], key=lambda x: x[2])


SECTIONS = tuple((sid, title) for sid, title, _, _ in sections())


# ----------------------------------------------------------------------------- page

def build_report(run_dirs: Sequence[str | Path], *, resamples: int = 1000,
                 seed: int = 0) -> str:
    """The report of these run folders as one HTML document."""
    try:
        script = plotly_js()
    except ImportError:
        raise ReportError("the HTML report needs plotly: pip install 'recarena[report]'"
                          ) from None
    if not run_dirs:
        raise ReportError("report: name at least one run folder")
    runs = [load_run(Path(d)) for d in run_dirs]
    series = series_of(runs)
    f = _Figures()
    order = sections()
    bodies = {sid: (_overview(runs, series, resamples, seed) if sid == "overview" else
                    robustness_section([r.run_dir for r in runs]) if render is None else
                    render(f, series, resamples, seed))
              for sid, _, _, render in order}
    titles = [(sid, t) for sid, t, _, _ in order]
    # Sections with nothing to show are left out (no empty panels); the overview says why.
    shown = [(sid, t) for sid, t in titles
             if sid == "overview" or any(m in bodies[sid] for m in _CONTENT)]
    left = [(t, re.sub(r"<[^>]+>", "", bodies[sid]).strip()) for sid, t in titles
            if (sid, t) not in shown]
    if left:
        bodies["overview"] += '<p class="note" id="not-shown">Not shown, nothing to plot ' \
            "for these runs: " + "; ".join(
                f"{html.escape(t)}: {why.rstrip('.')}" for t, why in left) + ".</p>"
    nav = "".join(f'<a href="#{sid}">{html.escape(t)}</a>' for sid, t in shown)
    parts = "".join(f'<section id="{sid}"><h2>{html.escape(t)}</h2>{bodies[sid]}</section>'
                    for sid, t in shown)
    title = "RecArena report: " + ", ".join(r.label for r in runs)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{script}</script></head><body>'
        f"<header><h1>{html.escape(title)}</h1></header><nav>{nav}</nav>"
        f"<main>{parts}</main></body></html>\n")


def write_report(run_dirs: Sequence[str | Path], out: str | Path, *, resamples: int = 1000,
                 seed: int = 0) -> Path:
    """Build the report and write it to ``out`` (atomically)."""
    text = build_report(run_dirs, resamples=resamples, seed=seed)
    p = Path(out)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(p)
    return p
