"""Outcomes of the feed: users browse pages of recommendations, watch or skip each item,
leave, and rate the session in an exit interview.

Metrics: watch rate, rating, exit page (the page on which a session ended), satisfaction,
catalogue coverage and Gini of exposure, genre entropy (the mean, over (user, round)
sessions with at least one watch, of the entropy of the watched genres), and new-item
impressions and watches (decisions on items an arm's ``add_items`` events released, from
that event on; None for an arm, or a round, before any release).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simulations.analysis.diversity import genre_entropy, gini
from simulations.analysis.outcomes import (
    Marks,
    Outcomes,
    ReportSection,
    UserAcc,
    clip,
    register_outcomes,
)

if TYPE_CHECKING:
    from simulations.analysis.arm_stats import UserSums

__all__ = ["FEED", "FEED_FIELDS", "FeedMetrics"]

LABELS = {
    "watch_rate": "watch rate",
    "mean_rating": "rating",
    "exit_page": "exit page",
    "satisfaction": "satisfaction",
    "coverage": "coverage",
    "gini": "Gini",
    "genre_entropy": "genre H",
    "new_item_impressions": "new shown",
    "new_item_watches": "new watched",
}
FEED_FIELDS = ("impressions", "watches", "rating_sum", "ratings", "pages_sum", "sessions",
               "satisfaction_sum", "interviews", "entropy_sum", "entropy_sessions")
_TYPES = ("page", "decision", "session_end", "interview")
# Only meaningful once add_items has released something: None before (a "-" in tables).
NEW_ITEM_METRICS = ("new_item_impressions", "new_item_watches")
# Figures shown with an interval (stats key -> the overall metric it is), in order.
_CI = ("watch_rate", "new_shown_rate", "new_watched_rate", "mean_rating", "satisfaction",
       "exit_page")
_PLAIN = ("coverage", "gini", "genre_entropy")
_STATS = ("watch_rate", "mean_rating", "satisfaction", "exit_page", "new_shown_rate",
          "new_watched_rate")
FOOTNOTE = ("users (n): users with a session in the arm. Each figure is over all of them, "
            "with its 95% interval below it: percentile bootstrap over users (1,000 "
            "resamples), rates clipped to [0, 1]; coverage, Gini and genre H are point "
            "values (they depend on how many users there are).")
NEW_ITEMS_NOTE = (" new shown = share of shown items that were new releases; new watched = "
                  "share of shown new releases that were watched.")


def _mean(xs: list[float]) -> float | None:
    import numpy as np

    return float(np.mean(xs)) if xs else None


class _Acc:
    def __init__(self) -> None:
        self.impressions = 0
        self.watches = 0
        self.ratings: list[float] = []
        self.exit_pages: list[float] = []
        self.satisfaction: list[float] = []
        self.exposure: dict[str, int] = defaultdict(int)
        self.watched_genres: dict[tuple[Any, Any], list[tuple[str, ...]]] = defaultdict(list)
        self.released = False
        self.new_impressions = 0
        self.new_watches = 0

    def result(self, n_items: int) -> dict[str, float | None]:

        exposure = list(self.exposure.values()) + [0] * max(n_items - len(self.exposure), 0)
        entropies = [genre_entropy(v) for v in self.watched_genres.values()]
        return {
            "watch_rate": self.watches / self.impressions if self.impressions else None,
            "mean_rating": _mean(self.ratings),
            "exit_page": _mean(self.exit_pages),
            "satisfaction": _mean(self.satisfaction),
            "coverage": len(self.exposure) / n_items if n_items else None,
            "gini": gini(exposure) if self.exposure else None,
            "genre_entropy": _mean(entropies),
            "new_item_impressions": self.new_impressions if self.released else None,
            "new_item_watches": self.new_watches if self.released else None,
        }


def _add_user(us: UserSums, t: Any, ev: dict[str, Any], is_new: bool) -> None:
    """One feed event into its user's sums (what ``_Acc`` counts, per user)."""
    u = ev.get("user")
    if t == "decision" and ev["action"] in ("watch", "skip"):
        us.add(u, "impressions")
        if is_new:
            us.add(u, "new_impressions")
        if ev["action"] == "watch":
            us.add(u, "watches")
            if is_new:
                us.add(u, "new_watches")
            if ev.get("rating") is not None:
                us.add(u, "rating_sum", float(ev["rating"]))
                us.add(u, "ratings")
    elif t == "session_end" and ev["pages"] > 0:
        us.add(u, "pages_sum", float(ev["pages"]))
        us.add(u, "sessions")
    elif t == "interview":
        us.add(u, "satisfaction_sum", float(ev["satisfaction"]))
        us.add(u, "interviews")


class FeedMetrics:
    """The feed's ``RunMetrics``: per arm, overall, per round and per role."""

    def __init__(self) -> None:
        from simulations.analysis.arm_stats import UserSums

        self.acc: dict[str, _Acc] = defaultdict(_Acc)
        self.per_round: dict[tuple[str, int], _Acc] = defaultdict(_Acc)
        self.per_role: dict[tuple[str, str], _Acc] = defaultdict(_Acc)
        # Per-user sums of each arm, for sample sizes and intervals over users.
        self.user_sums: dict[str, UserSums] = defaultdict(UserSums)
        self.new_items: dict[str, set[str]] = defaultdict(set)
        # One shared tuple per genre combination: a long trace has millions of watches but
        # few combinations, and the events themselves are not kept (they may be streamed).
        self.combos: dict[tuple[str, ...], tuple[str, ...]] = {}

    def add(self, ev: dict[str, Any]) -> None:
        t, arm = ev.get("type"), ev["arm"]
        if t == "event" and ev.get("action") == "add_items":
            self.new_items[arm].update(str(i) for i in ev["items"])
            self.acc[arm].released = True
            return
        if t not in _TYPES:
            return
        role = ev.get("role")
        targets = [self.acc[arm], self.per_round[(arm, ev["round"])]]
        if role is not None:
            targets.append(self.per_role[(arm, role)])
        new_items = self.new_items[arm]
        is_new = t == "decision" and ev.get("item") is not None and ev["item"] in new_items
        genres: tuple[str, ...] = ()
        if t == "decision" and ev["action"] == "watch":
            g = tuple(ev.get("genres") or ())
            genres = self.combos.setdefault(g, g)
        for a in targets:
            a.released = a.released or bool(new_items)
            if t == "page":
                for iid in ev["items"]:
                    a.exposure[iid] += 1
            elif t == "decision" and ev["action"] in ("watch", "skip"):
                a.impressions += 1
                a.new_impressions += is_new
                a.new_watches += is_new and ev["action"] == "watch"
                if ev["action"] == "watch":
                    a.watches += 1
                    if ev.get("rating") is not None:
                        a.ratings.append(float(ev["rating"]))
                    a.watched_genres[(ev["user"], ev["round"])].append(genres)
            elif t == "session_end" and ev["pages"] > 0:
                a.exit_pages.append(float(ev["pages"]))
            elif t == "interview":
                a.satisfaction.append(float(ev["satisfaction"]))
        _add_user(self.user_sums[arm], t, ev, is_new)

    def arms(self, n_items: int, ratings: bool) -> dict[str, dict[str, Any]]:
        from simulations.analysis.arm_stats import arm_stats

        return {arm: {
            "overall": a.result(n_items),
            "rounds": {str(r): pr.result(n_items)
                       for (a2, r), pr in sorted(self.per_round.items()) if a2 == arm},
            "roles": {ro: pr.result(n_items)
                      for (a2, ro), pr in sorted(self.per_role.items()) if a2 == arm},
            "stats": arm_stats(self.user_sums[arm], names=_STATS, sessions="sessions",
                               ratings=ratings, released=a.released)}
            for arm, a in self.acc.items()}


def _user_event(a: UserAcc, ev: dict[str, Any]) -> bool:
    t = ev.get("type")
    if t == "page":
        for iid in ev["items"]:
            a.exposure[str(iid)] += 1
        return True
    if t == "decision" and ev.get("action") in ("watch", "skip"):
        a.f["impressions"] += 1
        if ev["action"] == "watch":
            a.f["watches"] += 1
            if ev.get("rating") is not None:
                a.f["rating_sum"] += float(ev["rating"])
                a.f["ratings"] += 1
            a.extra.setdefault(ev.get("round"), []).append(ev.get("genres") or [])
    elif t == "session_end" and ev.get("pages", 0) > 0:
        a.f["pages_sum"] += float(ev["pages"])
        a.f["sessions"] += 1
    elif t == "interview":
        a.f["satisfaction_sum"] += float(ev["satisfaction"])
        a.f["interviews"] += 1
    return False


def _user_finish(a: UserAcc) -> None:
    """Genre entropy is summed over (user, round) sessions with at least one watch."""
    for g in a.extra.values():
        a.f["entropy_sum"] += genre_entropy(g)
        a.f["entropy_sessions"] += 1


def _columns(metrics: dict[str, Any]) -> tuple[list[str], list[str]]:
    """New-item columns only when something was released."""
    arms = metrics.get("arms", {}).values()
    released = any(m.get("overall", {}).get(k) is not None
                   for m in arms for k in NEW_ITEM_METRICS)
    ci = [k for k in _CI if released or k not in ("new_shown_rate", "new_watched_rate")]
    return ci, list(_PLAIN)


def _note(metrics: dict[str, Any], ci: list[str]) -> str:
    return FOOTNOTE + (NEW_ITEMS_NOTE if "new_shown_rate" in ci else "")


# ----------------------------------------------------------------------------- trace agent


def _page(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    names = "; ".join(m.e(title(i)) for i in ev.get("items", []))
    return f"page {ev.get('page')} from {m.e(ev.get('recommender'))}: {names}"


def _decision(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    a = ev.get("action")
    if a in ("watch", "skip"):
        name = m.e(title(ev.get("item")))
        if ev.get("genres"):
            name += " " + m.d(m.e("(" + ", ".join(map(str, ev["genres"])) + ")"))
        why = f" {m.d('— ' + m.e(clip(ev.get('reason', ''), 120)))}" if ev.get("reason") else ""
        if a == "watch":
            return f"{m.b('watched')} {name} ★{ev.get('rating')}{why}"
        return f"skipped {name}{why}"
    feel = ev.get("feeling")
    said = " (model said it)" if ev.get("feeling_source") == "model" else ""
    what = {"leave": m.b("left the feed"), "next_page": "went to the next page",
            "end": "reached the last page"}.get(str(a), m.e(a))
    return f"{what}" + (f"; feeling: {m.e(clip(feel, 100))}{said}" if feel else "")


def _interview(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    return (f"{m.b('interview')}: satisfaction {ev.get('satisfaction')}/10 — "
            f"{m.e(clip(ev.get('reason', ''), 200))}")


def _session_end(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    left = "left early" if ev.get("left_early") else m.e(ev.get("reason", ""))
    return (f"session ended: {ev.get('pages')} pages, {ev.get('shown')} shown, "
            f"{ev.get('watched')} watched ({left})")


def _step_title(name: str) -> str | None:
    if name.startswith("p") and name[1:].isdigit():
        return f"page {name[1:]}"
    return "exit interview" if name == "interview" else None


_SECTIONS = "simulations.report.sections"
FEED = register_outcomes(Outcomes(
    environment="feed",
    labels=LABELS,
    defaults=tuple(LABELS),
    metrics=FeedMetrics,
    event_types=_TYPES,
    user_fields=FEED_FIELDS,
    user_event=_user_event,
    user_finish=_user_finish,
    ratios={"watch_rate": ("watches", "impressions"),
            "mean_rating": ("rating_sum", "ratings"),
            "exit_page": ("pages_sum", "sessions"),
            "satisfaction": ("satisfaction_sum", "interviews"),
            "genre_entropy": ("entropy_sum", "entropy_sessions")},
    compared=("watch_rate", "mean_rating", "exit_page", "satisfaction", "coverage", "gini",
              "genre_entropy"),
    rating_metrics=("mean_rating",),
    summary_columns=_columns,
    summary_note=_note,
    stat_labels={"new_shown_rate": "new shown (rate)",
                 "new_watched_rate": "new watched (rate)"},
    group_metrics=("watch_rate", "satisfaction"),
    report_sections=(
        ReportSection("headline", "Watch rate and satisfaction", f"{_SECTIONS}:headline", 10),
        ReportSection("exit-pages", "Where users leave", f"{_SECTIONS}:exit_pages", 20),
        ReportSection("filter-bubble", "Genre entropy per round (filter bubble)",
                      f"{_SECTIONS}:filter_bubble", 30),
        ReportSection("popularity", "Exposure by item popularity (popularity bias)",
                      f"{_SECTIONS}:popularity", 40)),
    describe={"page": _page, "decision": _decision, "interview": _interview,
              "session_end": _session_end},
    seen_types=("page",),
    result_types=("decision", "interview", "session_end"),
    step_title=_step_title,
    setting=lambda env: {k: env.get(k) for k in ("items_per_page", "max_pages", "rounds")},
))
