"""The report sections of the built-in environments (declared by their outcome plug-ins,
simulations/analysis/outcomes_feed.py and outcomes_conversation.py): the feed's headline, exit
pages, filter bubble and popularity bias, and the conversation's success by turn."""

from __future__ import annotations

import numpy as np

from simulations.analysis.paired import value_ci
from simulations.report.data import Series
from simulations.report.figures import Figures, ci_bar, note

__all__ = ["conversation", "deciles", "exit_pages", "filter_bubble", "headline", "popularity"]


def headline(f: Figures, series: list[Series], resamples: int, seed: int) -> str:
    feed = [s for s in series if s.run.environment == "feed"]
    if not feed:
        return note("No feed runs: watch rate and satisfaction belong to the feed "
                     "(conversations are in their own section).")
    fig = f.make_subplots(rows=1, cols=2, subplot_titles=("watch rate", "satisfaction (1-10)"))
    for s in feed:
        for col, m in ((1, "watch_rate"), (2, "satisfaction")):
            v = value_ci(s.table, m, resamples=resamples, seed=seed)
            fig.add_trace(ci_bar(f.go, s, [s.label], [v], show=False), row=1, col=col)
    fig.update_layout(showlegend=False)
    fig.update_yaxes(range=[0, 10], row=1, col=2)  # the whole 1-10 scale, from 0
    return note("Per recommender; error bars: 95% bootstrap interval over users.") + f.div(
        fig, rates=("yaxis",))


def exit_pages(f: Figures, series: list[Series], resamples: int = 0, seed: int = 0) -> str:
    feed = [s for s in series if s.run.environment == "feed" and s.run.exits.get(s.arm)]
    if not feed:
        return note("No feed sessions in these runs.")
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


def filter_bubble(f: Figures, series: list[Series], resamples: int = 0, seed: int = 0) -> str:
    feed = [s for s in series if s.run.environment == "feed"]
    if not feed:
        return note("No feed runs.")
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


def deciles(popularity: dict[str, int]) -> dict[str, int]:
    """Decile 1 (least popular in the training history) to 10 (most) of every item."""
    ids = sorted(popularity, key=lambda i: (popularity[i], i))
    out: dict[str, int] = {}
    for d, chunk in enumerate(np.array_split(np.arange(len(ids)), 10), start=1):
        for k in chunk:
            out[ids[int(k)]] = d
    return out


def popularity(f: Figures, series: list[Series], resamples: int, seed: int) -> str:
    feed = [s for s in series if s.run.environment == "feed"]
    if not feed:
        return note("No feed runs.")
    with_ref = [s for s in feed if s.run.reference and s.run.reference.get("item_popularity")]
    titles = ("share of exposure by item-popularity decile", "Gini of exposure")
    # Without any run's item popularity there are no deciles: Gini alone, no empty panel.
    gcol = 2 if with_ref else 1
    fig = (f.make_subplots(rows=1, cols=2, column_widths=[0.68, 0.32], subplot_titles=titles)
           if with_ref else f.make_subplots(rows=1, cols=1, subplot_titles=titles[1:]))
    for s in with_ref:
        assert s.run.reference is not None
        dec = deciles(s.run.reference["item_popularity"])
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
    text = note("Decile 1 holds the least popular tenth of the catalogue in the training "
                 "history, 10 the most popular. Gini has no interval: it depends on the number "
                 "of users, which a bootstrap resample changes (recarena compare tests Gini "
                 "differences with a permutation test).")
    if len(with_ref) < len(feed):
        text += note("Some runs have no reference.json (written by newer runs): no deciles "
                      "for them.")
    return text + f.div(fig, height=420, rates=("yaxis", "yaxis2"))



def conversation(f: Figures, series: list[Series], resamples: int, seed: int) -> str:
    conv = [s for s in series if s.run.environment == "conversation"]
    if not conv:
        return note("No conversation runs.")
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
        fig.add_trace(ci_bar(f.go, s, [s.label], [v], show=False), row=1, col=2)
    fig.update_xaxes(title_text="turn", dtick=1, row=1, col=1)
    fig.update_xaxes(showticklabels=False, row=1, col=2)
    return f.div(fig, rates=("yaxis", "yaxis2"))
