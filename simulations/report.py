"""A self-contained HTML report of one or more run folders, with Plotly plots.

Everything is inlined (plotly.js once in the head, each figure's data in its own script),
so the file opens offline. Several runs are compared side by side: every plot has one
series per (run, recommender). Sections (``SECTIONS``) with nothing to plot for these runs
are left out, and the overview lists them with the reason. Plot conventions (axes from 0,
legends outside the plots, no all-zero cost chart): simulations/report_figures.py.

The report reads the trace and, where present, ``reference.json`` (item popularity in the
training history and the held-out ratings, written by the runner). It never includes the
run's config, prompts or model output, so nothing secret can reach it.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulations.metrics import RATING_METRICS, compute_metrics, labels_for
from simulations.paired import value_ci
from simulations.report_figures import CSS, plotly_js
from simulations.report_figures import Figures as _Figures
from simulations.report_figures import ci_bar as _ci_bar
from simulations.report_figures import label as _label
from simulations.report_figures import note as _note
from simulations.report_robust import robustness_section
from simulations.trace import read_trace
from simulations.user_stats import ArmTable, RunTables, arm_tables, metric_names, user_groups

__all__ = ["SECTIONS", "ReportError", "build_report", "write_report"]

SECTIONS = (
    ("overview", "Runs and metrics"),
    ("headline", "Watch rate and satisfaction"),
    ("exit-pages", "Where users leave"),
    ("filter-bubble", "Genre entropy per round (filter bubble)"),
    ("popularity", "Exposure by item popularity (popularity bias)"),
    ("groups", "Metrics by user group (fairness)"),
    ("ratings", "Simulated and held-out ratings"),
    ("new-items", "New items"),
    ("llm", "Tokens and cost per agent"),
    ("conversation", "Conversations: success by turn"),
    ("robustness", "Robustness across user models"),
)
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf")
# A section is shown if it has a plot or a table; else its "why not" goes to the overview.
_CONTENT = ('class="plotly-graph-div"', "<table")
_GROUP_METRICS = {"feed": ("watch_rate", "satisfaction"), "conversation": ("success_rate",)}


class ReportError(ValueError):
    """A report cannot be built; the message is one line for the user."""


@dataclass
class _Run:
    run_dir: Path
    label: str
    scenario: str
    seed: Any
    status: str
    environment: str
    dataset: str
    tables: RunTables
    metrics: dict[str, Any]
    reference: dict[str, Any] | None
    max_pages: int
    exits: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    ratings: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    new_items: set[str] = field(default_factory=set)
    released: dict[str, int] = field(default_factory=dict)  # item -> release round
    # arm -> round -> [impressions, impressions of new items, watches of new items]
    new_exposure: dict[str, dict[int, list[int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: [0, 0, 0])))
    tokens: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: [0.0, 0.0])))


@dataclass(frozen=True)
class _Series:
    label: str
    color: str
    run: _Run
    arm: str

    @property
    def table(self) -> ArmTable:
        return self.run.tables.arms[self.arm]


def _load_run(run_dir: Path) -> _Run:
    try:
        events = read_trace(run_dir)
    except FileNotFoundError as e:
        raise ReportError(str(e)) from None
    start = next((e for e in events if e.get("type") == "run_start"), {})
    end = next((e for e in events if e.get("type") == "run_end"), None)
    status = end["status"] if end else ("truncated" if events.truncated else "incomplete")
    ref_path = run_dir / "reference.json"
    reference = json.loads(ref_path.read_text(encoding="utf-8")) if ref_path.is_file() else None
    env_cfg = (start.get("config") or {}).get("environment") or {}
    run = _Run(run_dir, "", str(start.get("scenario") or run_dir.name), start.get("seed"),
               status, str(start.get("environment") or "feed"), str(start.get("dataset", "")),
               arm_tables(events), compute_metrics(events), reference,
               int(env_cfg.get("max_pages") or 0))
    for ev in events:
        t, arm = ev.get("type"), ev.get("arm")
        if t == "event" and ev.get("action") == "add_items":
            for i in ev.get("items", []):
                run.new_items.add(str(i))
                run.released.setdefault(str(i), int(ev["round"]))
        if arm is None:
            continue
        if t == "session_end" and ev.get("pages", 0) > 0:
            run.exits[arm][int(ev["pages"])] += 1
        elif t == "decision" and ev.get("action") in ("watch", "skip"):
            if ev["action"] == "watch" and ev.get("rating") is not None:
                run.ratings[arm][f"{float(ev['rating']):g}"] += 1
            cell = run.new_exposure[arm][int(ev["round"])]
            cell[0] += 1
            if str(ev.get("item")) in run.new_items:
                cell[1] += 1
                cell[2] += ev["action"] == "watch"
        elif t == "llm_call":
            agent = str(ev.get("user", "run"))
            acc = run.tokens[arm][agent]
            acc[0] += ev.get("input_tokens", 0) + ev.get("output_tokens", 0)
            acc[1] += ev.get("cost_usd", 0.0)
    return run


def _series(runs: list[_Run]) -> list[_Series]:
    base = [f"{r.scenario} (seed {r.seed})" for r in runs]
    for r, b in zip(runs, base, strict=True):
        r.label = b if base.count(b) == 1 else f"{b} {r.run_dir.name}"
    out: list[_Series] = []
    for r in runs:
        for arm in r.tables.arms:
            label = arm if len(runs) == 1 else f"{r.label} · {arm}"
            out.append(_Series(label, _PALETTE[len(out) % len(_PALETTE)], r, arm))
    return out


# ----------------------------------------------------------------------------- plots


def _overview(runs: list[_Run], series: list[_Series], resamples: int, seed: int) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            r.label, r.run_dir, r.environment, r.dataset, len(r.tables.users),
            ", ".join(r.tables.arms), r.status)) + "</tr>" for r in runs)
    out = ["<table><tr><th>run</th><th>folder</th><th>environment</th><th>dataset</th>"
           f"<th>users</th><th>recommenders</th><th>status</th></tr>{rows}</table>"]
    for env in sorted({r.environment for r in runs}):
        labels = labels_for(env)
        names = [m for m in metric_names(env) if m in labels]
        head = "".join(f"<th>{html.escape(_label(m))}</th>" for m in names)
        body = []
        for s in (s for s in series if s.run.environment == env):
            cells = []
            for m in names:
                if m in RATING_METRICS and s.run.metrics.get("ratings") is False:
                    cells.append("<td>n/a</td>")  # implicit feedback: no rating scale
                    continue
                v, lo, hi = value_ci(s.table, m, resamples=resamples, seed=seed)
                ci = "" if lo is None or hi is None else f" <small>[{lo:.3f}, {hi:.3f}]</small>"
                cells.append("<td>-</td>" if v is None else f"<td>{v:.3f}{ci}</td>")
            body.append(f"<tr><td>{html.escape(s.label)}</td>{''.join(cells)}</tr>")
        out.append(f"<h3>{html.escape(env)} metrics (95% bootstrap intervals over users)"
                   f"</h3><table><tr><th>series</th>{head}</tr>{''.join(body)}</table>")
    return "".join(out)


def _headline(f: _Figures, series: list[_Series], resamples: int, seed: int) -> str:
    feed = [s for s in series if s.run.environment == "feed"]
    if not feed:
        return _note("No feed runs: watch rate and satisfaction belong to the feed "
                     "(conversations are in their own section).")
    fig = f.make_subplots(rows=1, cols=2, subplot_titles=("watch rate", "satisfaction (1-10)"))
    for s in feed:
        for col, m in ((1, "watch_rate"), (2, "satisfaction")):
            v = value_ci(s.table, m, resamples=resamples, seed=seed)
            fig.add_trace(_ci_bar(f.go, s, [s.label], [v], show=False), row=1, col=col)
    fig.update_layout(showlegend=False)
    fig.update_yaxes(range=[0, 10], row=1, col=2)  # the whole 1-10 scale, from 0
    return _note("Per recommender; error bars: 95% bootstrap interval over users.") + f.div(
        fig, rates=("yaxis",))


def _exit_pages(f: _Figures, series: list[_Series]) -> str:
    feed = [s for s in series if s.run.environment == "feed" and s.run.exits.get(s.arm)]
    if not feed:
        return _note("No feed sessions in these runs.")
    fig = f.go.Figure()
    for s in feed:
        c = s.run.exits[s.arm]
        pages = list(range(1, max(max(c), s.run.max_pages) + 1))
        total = sum(c.values())
        fig.add_trace(f.go.Bar(name=s.label, x=pages, y=[c.get(p, 0) / total for p in pages],
                               marker_color=s.color))
    fig.update_layout(barmode="group", xaxis_title="page on which the session ended",
                      yaxis_title="share of sessions")
    return f.div(fig, rates=("yaxis",))


def _filter_bubble(f: _Figures, series: list[_Series]) -> str:
    feed = [s for s in series if s.run.environment == "feed"]
    if not feed:
        return _note("No feed runs.")
    fig = f.go.Figure()
    for s in feed:
        rounds = s.run.metrics["arms"][s.arm]["rounds"]
        xs = sorted(rounds, key=int)
        fig.add_trace(f.go.Scatter(name=s.label, x=[int(r) for r in xs],
                                   y=[rounds[r].get("genre_entropy") for r in xs],
                                   mode="lines+markers", line={"color": s.color}))
    fig.update_layout(xaxis_title="round", yaxis_title="genre entropy of watched items (bits)",
                      xaxis={"dtick": 1})
    return f.div(fig)


def _deciles(popularity: dict[str, int]) -> dict[str, int]:
    """Decile 1 (least popular in the training history) to 10 (most) of every item."""
    ids = sorted(popularity, key=lambda i: (popularity[i], i))
    out: dict[str, int] = {}
    for d, chunk in enumerate(np.array_split(np.arange(len(ids)), 10), start=1):
        for k in chunk:
            out[ids[int(k)]] = d
    return out


def _popularity(f: _Figures, series: list[_Series], resamples: int, seed: int) -> str:
    feed = [s for s in series if s.run.environment == "feed"]
    if not feed:
        return _note("No feed runs.")
    with_ref = [s for s in feed if s.run.reference and s.run.reference.get("item_popularity")]
    titles = ("share of exposure by item-popularity decile", "Gini of exposure")
    # Without any run's item popularity there are no deciles: Gini alone, no empty panel.
    gcol = 2 if with_ref else 1
    fig = (f.make_subplots(rows=1, cols=2, column_widths=[0.68, 0.32], subplot_titles=titles)
           if with_ref else f.make_subplots(rows=1, cols=1, subplot_titles=titles[1:]))
    for s in with_ref:
        assert s.run.reference is not None
        dec = _deciles(s.run.reference["item_popularity"])
        col_sum = np.asarray(s.table.exposure.sum(axis=0)).ravel()
        share = np.zeros(10)
        for item, c in zip(s.table.items, col_sum, strict=True):
            if item in dec:
                share[dec[item] - 1] += c
        share = share / share.sum() if share.sum() else share
        fig.add_trace(f.go.Bar(name=s.label, x=list(range(1, 11)), y=share.tolist(),
                               marker_color=s.color, legendgroup=s.label), row=1, col=1)
    for s in feed:
        v = value_ci(s.table, "gini", resamples=resamples, seed=seed)
        fig.add_trace(f.go.Bar(name=s.label, x=[s.label], y=[v[0]], marker_color=s.color,
                               legendgroup=s.label, showlegend=not with_ref), row=1, col=gcol)
    fig.update_layout(barmode="group")
    if with_ref:
        fig.update_xaxes(title_text="popularity decile in the training history (10 = most)",
                         dtick=1, row=1, col=1)
    fig.update_xaxes(showticklabels=False, row=1, col=gcol)
    note = _note("Decile 1 holds the least popular tenth of the catalogue in the training "
                 "history, 10 the most popular. Gini has no interval: it depends on the number "
                 "of users, which a bootstrap resample changes (recarena compare tests Gini "
                 "differences with a permutation test).")
    if len(with_ref) < len(feed):
        note += _note("Some runs have no reference.json (written by newer runs): no deciles "
                      "for them.")
    return note + f.div(fig, height=420, rates=("yaxis", "yaxis2"))


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
    metrics = [m for env in envs for m in _GROUP_METRICS.get(env, ())]
    # Only (dimension, metric) panels some series has data for: no empty panels.
    panels = [(dim, m) for dim in dims for m in metrics
              if any(m in metric_names(s.run.environment) and (s.label, dim) in masks
                     for s in series)]
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


def _conversation(f: _Figures, series: list[_Series], resamples: int, seed: int) -> str:
    conv = [s for s in series if s.run.environment == "conversation"]
    if not conv:
        return _note("No conversation runs.")
    fig = f.make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35], subplot_titles=(
        "success by turn (cumulative)", "success rate, 95% interval"))
    for s in conv:
        by_turn = s.run.metrics["arms"][s.arm]["overall"].get("success_at_turn", {})
        turns = sorted(by_turn, key=int)
        fig.add_trace(f.go.Scatter(name=s.label, x=[int(t) for t in turns],
                                   y=[by_turn[t] for t in turns], mode="lines+markers",
                                   line={"color": s.color}, legendgroup=s.label),
                      row=1, col=1)
        v = value_ci(s.table, "success_rate", resamples=resamples, seed=seed)
        fig.add_trace(_ci_bar(f.go, s, [s.label], [v], show=False), row=1, col=2)
    fig.update_xaxes(title_text="turn", dtick=1, row=1, col=1)
    fig.update_xaxes(showticklabels=False, row=1, col=2)
    return f.div(fig, rates=("yaxis", "yaxis2"))


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
    runs = [_load_run(Path(d)) for d in run_dirs]
    series = _series(runs)
    f = _Figures()
    bodies = {
        "overview": _overview(runs, series, resamples, seed),
        "headline": _headline(f, series, resamples, seed),
        "exit-pages": _exit_pages(f, series),
        "filter-bubble": _filter_bubble(f, series),
        "popularity": _popularity(f, series, resamples, seed),
        "groups": _groups(f, series, resamples, seed),
        "ratings": _ratings(f, series),
        "new-items": _new_items(f, series),
        "llm": _llm(f, series),
        "conversation": _conversation(f, series, resamples, seed),
        "robustness": robustness_section([r.run_dir for r in runs]),
    }
    # Sections with nothing to show are left out (no empty panels); the overview says why.
    shown = [(sid, t) for sid, t in SECTIONS
             if sid == "overview" or any(m in bodies[sid] for m in _CONTENT)]
    left = [(t, re.sub(r"<[^>]+>", "", bodies[sid]).strip()) for sid, t in SECTIONS
            if (sid, t) not in shown]
    if left:
        bodies["overview"] += '<p class="note" id="not-shown">Not shown, nothing to plot ' \
            "for these runs: " + "; ".join(
                f"{html.escape(t)}: {why.rstrip('.')}" for t, why in left) + ".</p>"
    nav = "".join(f'<a href="#{sid}">{html.escape(t)}</a>' for sid, t in shown)
    sections = "".join(f'<section id="{sid}"><h2>{html.escape(t)}</h2>{bodies[sid]}</section>'
                       for sid, t in shown)
    title = "RecArena report: " + ", ".join(r.label for r in runs)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{script}</script></head><body>'
        f"<header><h1>{html.escape(title)}</h1></header><nav>{nav}</nav>"
        f"<main>{sections}</main></body></html>\n")


def write_report(run_dirs: Sequence[str | Path], out: str | Path, *, resamples: int = 1000,
                 seed: int = 0) -> Path:
    """Build the report and write it to ``out`` (atomically)."""
    text = build_report(run_dirs, resamples=resamples, seed=seed)
    p = Path(out)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(p)
    return p
