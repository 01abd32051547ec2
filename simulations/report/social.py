"""The social world's report sections (declared by its outcome plug-in,
simulations/analysis/outcomes_social.py): the filter bubble of shown and watched genres
round by round, the graph's degree distribution, and the largest mention cascades with
their depths beside real Twitter15 cascades.

``collect`` reads a run's events once when the report is built (the plug-in's
``report_data``); the sections read its result from ``Run.data``.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulations.analysis.cascades import (
    Cascade,
    CascadeDataError,
    cascades_data_path,
    cascades_from_events,
    depth_distance_interval,
    load_twitter15,
)
from simulations.analysis.diversity import genre_entropy
from simulations.report.data import Series
from simulations.report.figures import Figures, note

__all__ = ["SocialData", "cascades", "collect", "degrees", "filter_bubble", "mean_interval"]

LARGEST = 10
_VOLATILE = ("id", "arm", "seq", "ts", "v", "type")


@dataclass
class SocialData:
    """Per arm: the ``social_graph`` event, each round's per-user genre entropies of
    shown and watched items (users with at least one), and the mention cascades."""

    graphs: dict[str, dict[str, Any]] = field(default_factory=dict)
    shown: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    watched: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    cascades: dict[str, list[Cascade]] = field(default_factory=dict)


def collect(events: list[dict[str, Any]]) -> SocialData:
    """What the social sections need from a run's events."""
    out = SocialData()
    genres: dict[tuple[str, str, str, int], list[tuple[str, ...]]] = defaultdict(list)
    mentions = []
    for ev in events:
        t = ev.get("type")
        if t == "social_graph" and ev.get("arm") is not None:
            out.graphs[str(ev["arm"])] = ev
        elif t == "decision" and ev.get("action") in ("watch", "skip") and ev.get("arm"):
            g = tuple(ev.get("genres") or ())
            key = (str(ev["arm"]), str(ev["user"]), int(ev["round"]))
            genres[("shown", *key)].append(g)
            if ev["action"] == "watch":
                genres[("watched", *key)].append(g)
        elif t == "mention":
            mentions.append(ev)
    for (kind, arm, _, rnd), gs in genres.items():
        per = out.shown if kind == "shown" else out.watched
        per.setdefault(arm, {}).setdefault(rnd, []).append(genre_entropy(gs))
    for c in cascades_from_events(mentions):
        out.cascades.setdefault(c.arm, []).append(c)
    return out


def _social(series: list[Series]) -> list[Series]:
    return [s for s in series if s.run.environment == "social"
            and isinstance(s.run.data, SocialData)]


def mean_interval(x: np.ndarray, resamples: int, seed: int, level: float = 0.95
                  ) -> tuple[float | None, float | None, float | None]:
    """The mean of ``x`` with a percentile bootstrap interval (resampling its entries,
    here users); no interval for fewer than two."""
    if x.size == 0:
        return None, None, None
    mean = float(x.mean())
    if x.size < 2 or resamples < 1:
        return mean, None, None
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1931]))
    chunk = max(1, min(resamples, 2_000_000 // x.size))
    boot = np.concatenate([x[rng.integers(0, x.size, size=(min(chunk, resamples - k),
                                                           x.size))].mean(axis=1)
                           for k in range(0, resamples, chunk)])
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return mean, float(lo), float(hi)


def _gap(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def filter_bubble(f: Figures, series: list[Series], resamples: int, seed: int) -> str:
    social = _social(series)
    if not social:
        return note("No social runs.")
    fig = f.make_subplots(rows=1, cols=2, subplot_titles=("items shown", "items watched"))
    for s in social:
        data: SocialData = s.run.data
        for col, per in ((1, data.shown), (2, data.watched)):
            rounds = sorted(per.get(s.arm, {}))
            vals = [mean_interval(np.asarray(per[s.arm][r]), resamples, seed + r)
                    for r in rounds]
            fig.add_trace(f.go.Scatter(
                name=s.label, x=rounds, y=[v[0] for v in vals], mode="lines+markers",
                line={"color": s.color}, legendgroup=s.label, showlegend=col == 1,
                error_y={"type": "data", "visible": True,
                         "array": [_gap(v[2], v[0]) for v in vals],
                         "arrayminus": [_gap(v[0], v[1]) for v in vals]}),
                row=1, col=col)
    fig.update_xaxes(title_text="round", dtick=1)
    fig.update_yaxes(title_text="genre entropy (bits)", row=1, col=1)
    return note("Per round, the genre entropy of what each user was shown (left) and "
                "watched (right), averaged over the users with at least one such item; "
                "error bars: 95% bootstrap interval over users. Falling lines are a "
                "narrowing diet (RecAgent's filter bubble).") + f.div(fig)


def _graph_groups(series: list[Series]) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, colour, social_graph event) per distinct graph of a run: arms that share
    their graph (the usual case) are one series."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    by_run: dict[int, dict[str, tuple[list[Series], dict[str, Any]]]] = {}
    for s in series:
        g = s.run.data.graphs.get(s.arm)
        if g is None:
            continue
        key = json.dumps({k: v for k, v in g.items() if k not in _VOLATILE}, sort_keys=True)
        groups = by_run.setdefault(id(s.run), {})
        groups.setdefault(key, ([], g))[0].append(s)
    several = len({id(s.run) for s in series}) > 1
    for groups in by_run.values():
        for members, g in groups.values():
            run = members[0].run
            arms = ("every arm" if len(groups) == 1 and len(members) > 1 else
                    ", ".join(m.arm for m in members))
            out.append((f"{run.label} · {arms}" if several else arms, members[0].color, g))
    return out


def _bins(hist: list[list[int]]) -> list[str]:
    return [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi, _ in hist]


_STAT_ROWS = (("users", lambda g: g.get("nodes")), ("ties", lambda g: g.get("edges")),
              ("directed", lambda g: "yes" if g.get("directed") else "no"),
              ("mean degree", lambda g: (g.get("degree") or {}).get("mean")),
              ("median degree", lambda g: (g.get("degree") or {}).get("median")),
              ("max degree", lambda g: (g.get("degree") or {}).get("max")),
              ("clustering", lambda g: g.get("clustering")),
              ("components", lambda g: g.get("components")),
              ("largest component share", lambda g: g.get("largest_component_share")),
              ("mean tie strength", lambda g: g.get("mean_tie")))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))


def degrees(f: Figures, series: list[Series], resamples: int = 0, seed: int = 0) -> str:
    groups = _graph_groups(_social(series))
    if not groups:
        return note("No social_graph events in these runs.")
    directed = any(g.get("directed") for _, _, g in groups)
    panels = (("degree", "degree (followed + followers)" if directed else "degree"),
              *((("in_degree", "in-degree"), ("out_degree", "out-degree")) if directed
                else ()))
    fig = f.make_subplots(rows=1, cols=len(panels), subplot_titles=[t for _, t in panels])
    for label, color, g in groups:
        for col, (key, _) in enumerate(panels, start=1):
            hist = (g.get(key) or {}).get("histogram") or []
            total = sum(c for *_, c in hist) or 1
            fig.add_trace(f.go.Bar(name=label, x=_bins(hist), y=[c / total for *_, c in hist],
                                   marker_color=color, legendgroup=label,
                                   showlegend=col == 1), row=1, col=col)
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="ties per user (doubling bins)", type="category")
    fig.update_yaxes(title_text="share of users", row=1, col=1)
    attrs = sorted({a for _, _, g in groups for a in g.get("assortativity") or {}},
                   key=lambda a: (a != "degree", a))
    rows = [*((name, [fn(g) for _, _, g in groups]) for name, fn in _STAT_ROWS),
            *((f"assortativity by {a.replace('_', ' ')}",
               [(g.get("assortativity") or {}).get(a) for _, _, g in groups]) for a in attrs),
            *((f"ties within one {a.replace('_', ' ')}",
               [(g.get("same_share") or {}).get(a) for _, _, g in groups])
              for a in attrs if a != "degree")]
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _, _ in groups)
    body = "".join(f"<tr><td>{html.escape(name)}</td>"
                   + "".join(f"<td>{_fmt(v)}</td>" for v in vals) + "</tr>"
                   for name, vals in rows)
    notes = sorted({n for _, _, g in groups for n in g.get("notes") or []})
    return (note("The social graph each arm ran on (its social_graph event): users by "
                 "number of ties, in doubling bins; arms with the same graph are one series."
                 + (" Built: " + "; ".join(notes) + "." if notes else ""))
            + f.div(fig, rates=tuple("yaxis" + (str(k) if k > 1 else "")
                                     for k in range(1, len(panels) + 1)))
            + f"<table><tr><th></th>{head}</tr>{body}</table>")


def _titles(run_dir: Path) -> dict[str, str]:
    """Item id -> "Title (year)" from the run's items.jsonl (empty when missing)."""
    out: dict[str, str] = {}
    p = run_dir / "items.jsonl"
    if not p.is_file():
        return out
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            it = json.loads(line)
        except ValueError:
            continue
        title, year = str(it.get("title", "")), str(it.get("year") or "")
        out[str(it.get("id"))] = f"{title} ({year})" if year and year not in title else title
    return out


def _largest(social: list[Series]) -> str:
    ranked = sorted(((c, s) for s in social for c in s.run.data.cascades.get(s.arm, [])),
                    key=lambda cs: (-cs[0].size, -cs[0].reach, -cs[0].max_depth,
                                    cs[0].first_round, cs[0].first_tick, cs[1].label,
                                    cs[0].item))[:LARGEST]
    titles: dict[int, dict[str, str]] = {}
    rows = []
    for c, s in ranked:
        names = titles.setdefault(id(s.run), _titles(s.run.run_dir))
        via = ", ".join(f"{k} {n}" for k, n in c.via.items() if n)
        cells = (names.get(c.item, f"item {c.item}"), s.label, c.size, c.reach, c.max_depth,
                 c.max_breadth, f"{c.structural_virality:.2f}", via,
                 f"r{c.first_round} t{c.first_tick} to r{c.last_round} t{c.last_tick}")
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in cells)
                    + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in (
        "item", "arm", "size", "reach", "depth", "breadth", "virality", "via",
        "first to last mention (round, tick)"))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def cascades(f: Figures, series: list[Series], resamples: int, seed: int) -> str:
    social = [s for s in _social(series) if s.run.data.cascades.get(s.arm)]
    if not social:
        return note("No mention cascades in these runs (nobody passed an item on).")
    try:
        ref = [r.max_depth for r in load_twitter15()]
        ref_note = ""
    except FileNotFoundError:
        ref, ref_note = [], (f"Twitter15 reference not found at {cascades_data_path()} (set "
                             "RECARENA_CASCADES to the folder holding twitter15.csv): no "
                             "reference depths.")
    except CascadeDataError as e:
        ref, ref_note = [], f"Twitter15 reference not read: {e}"
    depths = {s.label: [c.max_depth for c in s.run.data.cascades[s.arm]] for s in social}
    spread = {s.label: [c.max_depth for c in s.run.data.cascades[s.arm] if c.size >= 2]
              for s in social}
    top = max([*(max(d) for d in depths.values()), *ref, 1])
    xs = list(range(1, top + 1))
    fig = f.make_subplots(rows=1, cols=2, subplot_titles=(
        "all cascades", "cascades passed on beyond the root (size 2 or more)"))
    for col, per in ((1, depths), (2, spread)):
        for s in social:
            d = np.bincount(per[s.label], minlength=top + 1)[1:]
            fig.add_trace(f.go.Bar(name=s.label, x=xs,
                                   y=(d / max(d.sum(), 1)).tolist(), marker_color=s.color,
                                   legendgroup=s.label, showlegend=col == 1), row=1, col=col)
        if ref:
            d = np.bincount(ref, minlength=top + 1)[1:]
            fig.add_trace(f.go.Bar(name=f"Twitter15 ({len(ref)} cascades)", x=xs,
                                   y=(d / d.sum()).tolist(), marker_color="#333333",
                                   marker_pattern_shape="/", legendgroup="twitter15",
                                   showlegend=col == 1), row=1, col=col)
    lines = []
    for s in social if ref else ():
        parts = []
        for what, per in (("all", depths), ("passed on", spread)):
            if per[s.label]:
                w = depth_distance_interval(per[s.label], ref,
                                            resamples=min(resamples, 1000), seed=seed)
                parts.append(f"{what} {w['value']:.2f} [{w['lo']:.2f}, {w['hi']:.2f}]")
        lines.append(f"{s.label}: {', '.join(parts)}")
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="maximum depth (root = 1)", dtick=1)
    fig.update_yaxes(title_text="share of cascades", row=1, col=1)
    counts = "; ".join(
        f"{s.label}: {len(depths[s.label])} cascades, "
        f"{sum(c.size >= 2 for c in s.run.data.cascades[s.arm])} passed on beyond the root"
        for s in social)
    text = note(f"A cascade is an item passed on from one user who found it (the root), "
                f"through chats and posts. Size: users who passed it on; reach: also those "
                f"who only heard it; depth and breadth: levels of the tree of those who "
                f"passed it on; virality: mean distance between two of them (Goel et al.). "
                f"{counts}. The {LARGEST} largest:")
    text += _largest(social)
    text += note("Maximum depths beside real retweet cascades (Twitter15, 108-829 users "
                 "each, far larger than a small simulated world: compare the shape, not the "
                 "size)." + (" Wasserstein distance of the depths to Twitter15 (levels, 95% "
                             "bootstrap interval): " + "; ".join(lines) + "." if lines else ""))
    if ref_note:
        text += note(ref_note)
    return text + f.div(fig, rates=("yaxis", "yaxis2"))
