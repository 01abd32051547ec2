"""What a social world's trace means: its metrics, per-user sums and trace-view lines.

Per arm, overall and per round (RecAgent's filter-bubble measure is per round):

- ``watch_rate``, ``mean_rating``: over the items shown on pages (browse and search).
- ``shown_entropy``, ``watched_entropy``: genre entropy (bits) of what each user was
  shown / watched in a round, averaged over (user, round) pairs with at least one.
- ``gini``, ``coverage``: exposure of the catalogue on pages.
- ``feed_share``, ``search_share``, ``friend_share``: where watches came from. A watch is
  "friend" when the item was on the user's heard list (whatever page showed it),
  "search" when a search it typed showed it, "feed" otherwise.
- ``social_lift``: watch rate of heard items shown minus that of the unheard items shown
  beside them (the same pages), so both see the same user, round and recommender.
- ``mentions``, ``chat_lines``, ``posts``: how much users told each other.
- ``cascades``, ``cascade_size``, ``cascade_depth``, ``virality``: the mention cascades of
  items (simulations.analysis.cascades): how many, their mean size and maximum depth
  (over users who passed the item on, the root at depth 1 as Twitter15 counts it) and
  mean structural virality.
- ``graph_*``: the arm's social graph (its ``social_graph`` event, tools.social_graph's
  ``graph_stats``), in ``overall`` only: nodes, edges, directed (0/1), degree mean,
  median and max, mean tie, clustering, components, largest component share,
  assortativity by degree and by each attribute (``graph_assortativity_gender``...) and
  the share of ties within one level of each attribute (``graph_same_gender_share``...).
  The degree histogram is in the event (and the report), not in the metrics.

Per-user sums (``user_stats``, ``recarena compare``, the report's intervals) follow the
same definitions; the genre entropies are sums over a user's rounds
(``shown_entropy_sum`` / ``shown_entropy_sessions``), so their ratio over all users is
the metric above.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from simulations.analysis.arm_stats import UserSums, arm_stats
from simulations.analysis.cascades import cascades_from_events
from simulations.analysis.diversity import genre_entropy, gini
from simulations.analysis.outcomes import (
    Marks,
    Outcomes,
    ReportSection,
    Scoped,
    UserAcc,
    clip,
    register_outcomes,
)
from simulations.analysis.outcomes_feed import FEED

__all__ = ["GRAPH", "SOCIAL", "SOCIAL_FIELDS", "SocialMetrics", "graph_figures", "graph_lines"]

# Event types this plug-in shares with the feed: a feed trace keeps the feed's words.
feed_describe = FEED.describe

LABELS = {
    "watch_rate": "watch rate",
    "mean_rating": "rating",
    "shown_entropy": "shown H",
    "watched_entropy": "watched H",
    "gini": "Gini",
    "coverage": "coverage",
    "feed_share": "from feed",
    "search_share": "from search",
    "friend_share": "from friends",
    "social_lift": "social lift",
    "mentions": "mentions",
    "chat_lines": "chat lines",
    "posts": "posts",
    "cascades": "cascades",
    "cascade_size": "cascade size",
    "cascade_depth": "cascade depth",
    "virality": "virality",
}
SOCIAL_FIELDS = ("impressions", "watches", "rating_sum", "ratings", "feed_watches",
                 "search_watches", "friend_watches", "heard_impressions", "heard_watches",
                 "unheard_impressions", "unheard_watches", "sessions",
                 "shown_entropy_sum", "shown_entropy_sessions", "watched_entropy_sum",
                 "watched_entropy_sessions")
_RATIOS = {"watch_rate": ("watches", "impressions"), "mean_rating": ("rating_sum", "ratings"),
           "friend_share": ("friend_watches", "watches"),
           "search_share": ("search_watches", "watches"),
           "heard_watch_rate": ("heard_watches", "heard_impressions"),
           "shown_entropy": ("shown_entropy_sum", "shown_entropy_sessions"),
           "watched_entropy": ("watched_entropy_sum", "watched_entropy_sessions")}
_STATS = ("watch_rate", "mean_rating", "friend_share", "heard_watch_rate", "shown_entropy",
          "watched_entropy")
_TYPES = ("page", "decision", "mention", "chat", "post")
GRAPH = "social_graph"


class _Acc:
    def __init__(self) -> None:
        self.f: dict[str, float] = defaultdict(float)
        self.exposure: dict[str, int] = defaultdict(int)
        self.shown: dict[tuple[str, Any], list[tuple[str, ...]]] = defaultdict(list)
        self.watched: dict[tuple[str, Any], list[tuple[str, ...]]] = defaultdict(list)
        self.mentions: list[dict[str, Any]] = []

    def result(self, n_items: int) -> dict[str, Any]:
        f = self.f

        def ratio(a: str, b: str) -> float | None:
            return f[a] / f[b] if f[b] else None

        heard, unheard = ratio("heard_watches", "heard_impressions"), \
            ratio("unheard_watches", "unheard_impressions")
        exposure = list(self.exposure.values()) + [0] * max(n_items - len(self.exposure), 0)

        def mean_h(d: dict[tuple[str, Any], list[tuple[str, ...]]]) -> float | None:
            hs = [genre_entropy(v) for v in d.values() if v]
            return sum(hs) / len(hs) if hs else None

        return {
            "watch_rate": ratio("watches", "impressions"),
            "mean_rating": ratio("rating_sum", "ratings"),
            "shown_entropy": mean_h(self.shown), "watched_entropy": mean_h(self.watched),
            "gini": gini(exposure) if self.exposure else None,
            "coverage": len(self.exposure) / n_items if n_items else None,
            "feed_share": ratio("feed_watches", "watches"),
            "search_share": ratio("search_watches", "watches"),
            "friend_share": ratio("friend_watches", "watches"),
            "social_lift": heard - unheard if heard is not None and unheard is not None
            else None,
            "mentions": int(f["mentions"]), "chat_lines": int(f["chat_lines"]),
            "posts": int(f["posts"]), **_cascade_figures(self.mentions),
        }


def _cascade_figures(mentions: list[dict[str, Any]]) -> dict[str, Any]:
    """Count and means of the mention cascades (size and depth over mentioners, root at
    depth 1; structural virality: simulations.analysis.cascades)."""
    cs = cascades_from_events(mentions)
    if not cs:
        return {"cascades": 0, "cascade_size": None, "cascade_depth": None,
                "virality": None}
    n = len(cs)
    return {"cascades": n, "cascade_size": sum(c.size for c in cs) / n,
            "cascade_depth": sum(c.max_depth for c in cs) / n,
            "virality": sum(c.structural_virality for c in cs) / n}


def _count(f: Any, ev: dict[str, Any]) -> None:
    """One decision of a page into sums (``f`` a defaultdict or a user's counter)."""
    watch = ev["action"] == "watch"
    f["impressions"] += 1
    side = "heard" if ev.get("heard") else "unheard"
    f[f"{side}_impressions"] += 1
    if watch:
        f["watches"] += 1
        f[f"{side}_watches"] += 1
        f[f"{ev.get('source', 'feed')}_watches"] += 1
        if ev.get("rating") is not None:
            f["rating_sum"] += float(ev["rating"])
            f["ratings"] += 1


def graph_figures(ev: dict[str, Any]) -> dict[str, Any]:
    """The scalars of a ``social_graph`` event (``graph_stats``), as ``graph_*`` metrics."""
    deg = ev.get("degree") or {}
    out: dict[str, Any] = {
        "graph_nodes": ev.get("nodes"), "graph_edges": ev.get("edges"),
        "graph_directed": int(bool(ev.get("directed"))),
        "graph_mean_degree": deg.get("mean"), "graph_median_degree": deg.get("median"),
        "graph_max_degree": deg.get("max"), "graph_mean_tie": ev.get("mean_tie"),
        "graph_clustering": ev.get("clustering"), "graph_components": ev.get("components"),
        "graph_largest_component_share": ev.get("largest_component_share")}
    for a, v in (ev.get("assortativity") or {}).items():
        out[f"graph_assortativity_{a}"] = v
    for a, v in (ev.get("same_share") or {}).items():
        out[f"graph_same_{a}_share"] = v
    return out


def _entropy_sums(us: UserSums, shown: dict[tuple[str, Any], list[tuple[str, ...]]],
                  watched: dict[tuple[str, Any], list[tuple[str, ...]]]) -> None:
    for name, d in (("shown", shown), ("watched", watched)):
        for (user, _), genres in d.items():
            if genres:
                us.add(user, f"{name}_entropy_sum", genre_entropy(genres))
                us.add(user, f"{name}_entropy_sessions")


class SocialMetrics:
    """The social world's ``RunMetrics``."""

    def __init__(self) -> None:
        self.scopes: Scoped[_Acc] = Scoped(_Acc)
        self.users: dict[str, UserSums] = {}
        self.graphs: dict[str, dict[str, Any]] = {}
        self.finished: set[str] = set()

    def add(self, ev: dict[str, Any]) -> None:
        t = ev.get("type")
        if t == GRAPH:
            self.graphs[str(ev["arm"])] = graph_figures(ev)
            return
        if t not in _TYPES:
            return
        targets = self.scopes.targets(ev)
        if t == "decision" and ev.get("action") in ("watch", "skip"):
            genres = tuple(ev.get("genres") or ())
            key = (str(ev["user"]), ev["round"])
            for a in targets:
                _count(a.f, ev)
                a.shown[key].append(genres)
                if ev["action"] == "watch":
                    a.watched[key].append(genres)
            us = self.users.setdefault(ev["arm"], UserSums(SOCIAL_FIELDS))
            for name, v in _user_sums(ev).items():
                us.add(ev["user"], name, v)
        elif t == "page":
            for a in targets:
                for iid in ev["items"]:
                    a.exposure[str(iid)] += 1
            self.users.setdefault(ev["arm"], UserSums(SOCIAL_FIELDS)).add(ev["user"],
                                                                          "sessions")
        else:
            name = {"mention": "mentions", "chat": "chat_lines", "post": "posts"}[str(t)]
            for a in targets:
                a.f[name] += 1
                if t == "mention":
                    a.mentions.append(ev)

    def arms(self, n_items: int, ratings: bool) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for arm, acc in self.scopes.overall.items():
            us = self.users.setdefault(arm, UserSums(SOCIAL_FIELDS))
            if arm not in self.finished:  # entropies need a user's whole round
                self.finished.add(arm)
                _entropy_sums(us, acc.shown, acc.watched)
            r = self.scopes.result(arm, lambda a: a.result(n_items))
            r["overall"].update(self.graphs.get(arm, {}))
            out[arm] = {**r, "stats": arm_stats(us, names=_STATS, sessions="sessions",
                                                figures=_RATIOS, ratings=ratings)}
        return out


def _user_sums(ev: dict[str, Any]) -> dict[str, float]:
    f: dict[str, float] = defaultdict(float)
    _count(f, ev)
    return f


def _user_event(a: UserAcc, ev: dict[str, Any]) -> bool:
    t = ev.get("type")
    if t == "page":
        for iid in ev["items"]:
            a.exposure[str(iid)] += 1
        a.f["sessions"] += 1
        return True
    if t == "decision" and ev.get("action") in ("watch", "skip"):
        for name, v in _user_sums(ev).items():
            a.f[name] += v
        genres = tuple(ev.get("genres") or ())
        a.extra.setdefault(("shown", ev.get("round")), []).append(genres)
        if ev["action"] == "watch":
            a.extra.setdefault(("watched", ev.get("round")), []).append(genres)
    return False


def _user_finish(a: UserAcc) -> None:
    """Genre entropies summed over the user's rounds with something shown / watched."""
    for (name, _), genres in a.extra.items():
        a.f[f"{name}_entropy_sum"] += genre_entropy(genres)
        a.f[f"{name}_entropy_sessions"] += 1


def _graph_line(g: dict[str, Any]) -> str:
    def f(k: str, fmt: str = ".3f") -> str:
        v = g.get(k)
        return "-" if v is None else format(v, fmt) if isinstance(v, float) else str(v)

    attrs = sorted((k[len("graph_assortativity_"):] for k in g
                    if k.startswith("graph_assortativity_")), key=lambda a: (a != "degree", a))
    assort = ", ".join(f"{a.replace('_', ' ')} {f('graph_assortativity_' + a, '.2f')}"
                       for a in attrs)
    same = ", ".join(f"{a.replace('_', ' ')} {f(f'graph_same_{a}_share', '.0%')}"
                     for a in attrs if f"graph_same_{a}_share" in g)
    comp = g.get("graph_components")
    return (f"{f('graph_nodes')} users, {f('graph_edges')} "
            f"{'directed' if g.get('graph_directed') else 'undirected'} ties; degree mean "
            f"{f('graph_mean_degree', '.2f')}, median {f('graph_median_degree', 'g')}, max "
            f"{f('graph_max_degree')}; clustering {f('graph_clustering')}; {comp} "
            f"component{'s' if comp != 1 else ''} (largest "
            f"{f('graph_largest_component_share', '.0%')}); mean tie "
            f"{f('graph_mean_tie')}" + (f"; assortativity: {assort}" if assort else "")
            + (f"; ties within a level: {same}" if same else ""))


def graph_lines(metrics: dict[str, Any]) -> list[str]:
    """The social graph of each arm in one line (one for all arms when they share it)."""
    per = {a: {k: v for k, v in (m.get("overall") or {}).items() if k.startswith("graph_")}
           for a, m in (metrics.get("arms") or {}).items()}
    per = {a: g for a, g in per.items() if g}
    if not per:
        return []
    lines = {a: _graph_line(g) for a, g in per.items()}
    if len(set(lines.values())) == 1:
        return [f"graph ({'every arm' if len(lines) > 1 else next(iter(lines))}): "
                + next(iter(lines.values()))]
    return [f"graph ({a}): {line}" for a, line in lines.items()]


# ----------------------------------------------------------------------------- trace agent


def _choice(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    what = {"browse": "browses the recommender", "idle": "does nothing",
            "post": "writes a post", "chat_refused": "wanted to chat; the partner was busy"}
    act = str(ev.get("outcome") or ev.get("activity"))
    if act == "search":
        return f"{m.b('searches')} for {m.e(ev.get('query') or '')}"
    if act == "chat":
        return f"{m.b('chats')} with user {m.e(ev.get('partner'))}"
    return m.e(what.get(act, act))


def _said(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    told = ", ".join(m.e(title(i)) for i in ev.get("mentions", []))
    to = (f"to user {m.e(ev.get('partner'))}" if ev.get("type") == "chat"
          else f"to {ev.get('audience', 0)} followers")
    return (f"{m.b('says')} {to}: “{m.e(clip(ev.get('text', ''), 200))}”"
            + (f" {m.d('(mentions ' + told + ')')}" if told else ""))


def _page(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    if "via" not in ev:  # a feed's page (the describers of every environment are merged)
        return feed_describe["page"](ev, title, m)
    names = "; ".join(m.e(title(i)) for i in ev.get("items", []))
    src = f"search “{m.e(ev.get('query'))}”" if ev.get("via") == "search" \
        else f"{m.e(ev.get('recommender'))}"
    return f"page from {src}: {names}"


def _decision(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    if "via" not in ev:  # a feed's decision
        return feed_describe["decision"](ev, title, m)
    name = m.e(title(ev.get("item")))
    heard = " " + m.d("(heard about it)") if ev.get("heard") else ""
    if ev.get("action") == "watch":
        return f"{m.b('watched')} {name} ★{ev.get('rating')}{heard}"
    return f"skipped {name}{heard}"


def _mention(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    src = f"heard from user {m.e(ev['parent'])}" if ev.get("parent") else "found it"
    return f"told {len(ev.get('to', []))} about {m.e(title(ev.get('item')))} ({src})"


_SECTIONS = "simulations.report.social"
SOCIAL = register_outcomes(Outcomes(
    environment="social",
    labels=LABELS,
    defaults=tuple(LABELS),
    metrics=SocialMetrics,
    event_types=(*_TYPES, GRAPH),
    user_fields=SOCIAL_FIELDS,
    user_event=_user_event,
    user_finish=_user_finish,
    ratios={k: v for k, v in _RATIOS.items() if k in LABELS},
    compared=("watch_rate", "friend_share", "search_share", "shown_entropy",
              "watched_entropy", "coverage", "gini"),
    rating_metrics=("mean_rating",),
    summary_columns=lambda m: (["watch_rate", "friend_share", "shown_entropy",
                                "watched_entropy"],
                               ["gini", "social_lift", "mentions", "cascade_depth"]),
    summary_lines=graph_lines,
    summary_note=lambda m, ci: ("from friends: share of watches of items heard from a tie; "
                                "shown H / watched H: genre entropy (bits) per user and round, "
                                "with a 95% bootstrap interval over users; "
                                "social lift: watch rate of heard minus unheard items on "
                                "the same pages."),
    stat_labels={"heard_watch_rate": "heard watch rate"},
    group_metrics=("watch_rate", "friend_share"),
    report_sections=(
        ReportSection("social-bubble", "Genre entropy of shown and watched items per round "
                      "(social filter bubble)", f"{_SECTIONS}:filter_bubble", 42),
        ReportSection("social-graph", "The social graph: degree distribution",
                      f"{_SECTIONS}:degrees", 44),
        ReportSection("social-cascades", "Mention cascades", f"{_SECTIONS}:cascades", 46)),
    report_data=f"{_SECTIONS}:collect",
    describe={"social_choice": _choice, "chat": _said, "post": _said, "page": _page,
              "decision": _decision, "mention": _mention},
    seen_types=("page",),
    result_types=("social_choice", "decision", "chat", "post"),
    setting=lambda env: {"rounds": env.get("rounds"), **{
        k: v for k, v in (env.get("settings") or {}).items() if k != "graph"},
        "graph": (env.get("settings") or {}).get("graph", {}).get("kind")},
))
