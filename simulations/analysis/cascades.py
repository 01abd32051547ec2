"""Cascades of item mentions in the social world: the trace-event contract, the cascade
trees and their shape (size, reach, depth, breadth, structural virality), a summary for
the report, and the comparison of depths with real Twitter15 cascades.

The mention event
-----------------
Each time an agent passes a catalogue item on, the social environment emits::

    {"type": "mention", "arm": str, "round": int, "tick": int,
     "user": str,            # the speaker
     "item": str,            # the catalogue id mentioned (structured output, not free text)
     "via": "post" | "chat", # a post reaches the speaker's followers, a chat one partner
     "to": [str, ...],       # the users who heard it (followers, or the chat partner)
     "parent": str | None}   # whom the speaker first heard the item from; None when the
                             # speaker found it by itself (feed, search)

Events are read in trace order (the order of causes); other event types and extra fields
(``v``, ``seq``, ``id``, ``ts``) are ignored. User and item ids are compared as strings.

The cascade tree
----------------
A cascade belongs to one (arm, item, root). Its nodes are the users who heard or mentioned
the item; its edges are first exposures: a hearer joins the tree of the speaker it first
heard the item from, as that speaker's child, and later hearings change nothing. A user
who mentions an item it has heard from nobody (on record in the trace) is a root and starts
a new cascade of that item, even when other cascades of the item exist in the arm. The
structure comes only from the ``to`` lists; ``parent`` is checked against them, and a
mention whose declared parent disagrees with the recorded first exposure counts in
``parent_mismatches`` (zero in a consistent trace). The mentioners (users who passed the
item on) form a subtree holding the root, since every speaker is a mentioner; the users
who only heard it are leaves.

Statistics of a cascade (root at depth 1, as Twitter15 counts):

* ``size``: mentioners (the root included), comparable to a retweet cascade, where every
  node retweeted; ``reach``: every node, i.e. the root and everyone who heard it.
* ``max_depth``, ``max_breadth``: the deepest level and the most nodes at one level of the
  mentioners' tree; ``reach_depth``: the deepest level of the whole tree (hearers included).
* ``structural_virality`` (Goel et al. 2016) of the mentioners' tree: the mean distance
  between two of its n nodes, the Wiener index over n choose 2. On a tree the Wiener index
  is the sum over edges of s(n - s), s the number of nodes below the edge (each pair whose
  path crosses the edge is split by it), so it is computed in O(n) from subtree sizes.
  A path of n nodes gives (n + 1) / 3, a star of n nodes 2(n - 1) / n; one node gives 0.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

__all__ = ["CASCADES_ENV", "Cascade", "CascadeDataError", "ReferenceCascade",
           "bootstrap_interval", "cascade_summary", "cascades_data_path",
           "cascades_from_events", "depth_distance", "depth_distance_interval",
           "load_twitter15", "structural_virality", "summaries_by_arm"]

CASCADES_ENV = "RECARENA_CASCADES"
# ../shared/data/twitter-cascades beside the repository root (as tests/conftest.py's ml-100k).
DEFAULT_CASCADES = Path(__file__).resolve().parents[3] / "shared" / "data" / "twitter-cascades"
VIA = ("post", "chat")
# The statistics whose distributions cascade_summary reports.
STATS = ("size", "reach", "max_depth", "max_breadth", "structural_virality", "reach_depth")
T = TypeVar("T")


@dataclass(frozen=True)
class Cascade:
    """One item's cascade from one root in one arm (see the module docstring).

    ``nodes`` and ``mentioners`` are in order of joining (the root first); ``parent`` maps
    each node to the speaker it first heard the item from (the root to None); ``depth``
    gives each node's level, the root's being 1. ``first_*`` is when the root mentioned the
    item, ``last_*`` the last time the cascade grew (a new node or a new mentioner);
    ``mentions`` counts its mention events (repeats included), ``via`` them by channel.
    """

    arm: str
    item: str
    root: str
    nodes: tuple[str, ...]
    parent: dict[str, str | None]
    depth: dict[str, int]
    mentioners: tuple[str, ...]
    size: int
    reach: int
    max_depth: int
    max_breadth: int
    structural_virality: float
    reach_depth: int
    first_round: int
    first_tick: int
    last_round: int
    last_tick: int
    mentions: int
    via: dict[str, int] = field(default_factory=dict)
    parent_mismatches: int = 0

    def to_dict(self, tree: bool = False) -> dict[str, Any]:
        """The statistics as JSON-ready values; with ``tree``, the parent map too."""
        out: dict[str, Any] = {
            "arm": self.arm, "item": self.item, "root": self.root, "size": self.size,
            "reach": self.reach, "max_depth": self.max_depth, "max_breadth": self.max_breadth,
            "structural_virality": round(self.structural_virality, 4),
            "reach_depth": self.reach_depth, "first_round": self.first_round,
            "first_tick": self.first_tick, "last_round": self.last_round,
            "last_tick": self.last_tick, "mentions": self.mentions, "via": dict(self.via),
            "parent_mismatches": self.parent_mismatches}
        if tree:
            out["parent"] = dict(self.parent)
            out["mentioners"] = list(self.mentioners)
        return out


def _virality_ordered(order: Sequence[str], parent: Mapping[str, str | None]) -> float:
    """Structural virality of a tree whose nodes ``order`` lists parents before children."""
    n = len(order)
    if n < 2:
        return 0.0
    below = dict.fromkeys(order, 1)
    wiener = 0
    for v in reversed(order[1:]):
        s = below[v]
        wiener += s * (n - s)
        p = parent[v]
        assert p is not None  # only the root has none, and it is order[0]
        below[p] += s
    return 2.0 * wiener / (n * (n - 1))


def structural_virality(parent: Mapping[str, str | None]) -> float:
    """Mean distance between pairs of nodes of a tree given as child -> parent (root -> None).

    O(n). A one-node tree gives 0. Raises ValueError unless the map is one tree.
    """
    roots = [v for v, p in parent.items() if p is None]
    if len(roots) != 1:
        raise ValueError(f"a tree has one root (parent None), this map has {len(roots)}")
    children: dict[str, list[str]] = {}
    for v, p in parent.items():
        if p is not None:
            if p not in parent:
                raise ValueError(f"node {v!r} has parent {p!r}, which is not in the tree")
            children.setdefault(p, []).append(v)
    order = roots
    for v in order:  # breadth first: parents before children
        order.extend(children.get(v, ()))
    if len(order) != len(parent):
        raise ValueError("the parent map has a cycle: some nodes are not below the root")
    return _virality_ordered(order, parent)


class _Tree:
    """A cascade being built from the events."""

    def __init__(self, arm: str, item: str, root: str, rnd: int, tick: int) -> None:
        self.arm, self.item, self.root = arm, item, root
        self.parent: dict[str, str | None] = {root: None}
        self.depth = {root: 1}
        self.mentioners: dict[str, None] = {root: None}  # an ordered set
        self.first = self.last = (rnd, tick)
        self.mentions = 0
        self.via = dict.fromkeys(VIA, 0)
        self.mismatches = 0

    def freeze(self) -> Cascade:
        ment = tuple(self.mentioners)
        levels = Counter(self.depth[v] for v in ment)
        return Cascade(
            arm=self.arm, item=self.item, root=self.root, nodes=tuple(self.parent),
            parent=self.parent, depth=self.depth, mentioners=ment, size=len(ment),
            reach=len(self.parent), max_depth=max(levels), max_breadth=max(levels.values()),
            structural_virality=_virality_ordered(ment, self.parent),
            reach_depth=max(self.depth.values()), first_round=self.first[0],
            first_tick=self.first[1], last_round=self.last[0], last_tick=self.last[1],
            mentions=self.mentions, via=self.via, parent_mismatches=self.mismatches)


def _id(event: Mapping[str, Any], key: str, where: str) -> str:
    v = event.get(key)
    if v is None or isinstance(v, bool | list | dict) or str(v) == "":
        raise ValueError(f"{where}: field {key!r}: expected an id, got {v!r}")
    return str(v)


def _int(event: Mapping[str, Any], key: str, where: str) -> int:
    v = event.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{where}: field {key!r}: expected an integer, got {v!r}")
    return v


def cascades_from_events(events: Iterable[Mapping[str, Any]]) -> list[Cascade]:
    """The cascades of every ``mention`` event of a trace, in order of their roots' mentions.

    Raises ValueError (one line naming the event and field) on a malformed mention event.
    """
    trees: list[_Tree] = []
    owner: dict[tuple[str, str], dict[str, _Tree]] = {}  # (arm, item) -> user -> its tree
    for i, ev in enumerate(events):
        if not isinstance(ev, Mapping) or ev.get("type") != "mention":
            continue
        where = f"mention event {i}" + (f" (seq {ev['seq']})" if "seq" in ev else "")
        arm, item, user = _id(ev, "arm", where), _id(ev, "item", where), _id(ev, "user", where)
        rnd, tick = _int(ev, "round", where), _int(ev, "tick", where)
        via, to = ev.get("via"), ev.get("to")
        if via not in VIA:
            raise ValueError(f"{where}: field 'via': expected 'post' or 'chat', got {via!r}")
        if not isinstance(to, list | tuple):
            raise ValueError(f"{where}: field 'to': expected a list of user ids, got {to!r}")
        declared = None if ev.get("parent") is None else _id(ev, "parent", where)
        users = owner.setdefault((arm, item), {})
        tree = users.get(user)
        if tree is None:  # heard it from nobody on record: a new root
            tree = users[user] = _Tree(arm, item, user, rnd, tick)
            trees.append(tree)
            heard_from = None
        else:
            heard_from = tree.parent[user]
            if user not in tree.mentioners:
                tree.mentioners[user] = None
                tree.last = (rnd, tick)
        tree.mismatches += declared != heard_from
        tree.mentions += 1
        tree.via[via] += 1
        for h in to:
            if h is None or isinstance(h, bool | list | dict):
                raise ValueError(f"{where}: field 'to': expected user ids, got {h!r}")
            hearer = str(h)
            if hearer == user or hearer in users:  # first exposure wins
                continue
            users[hearer] = tree
            tree.parent[hearer] = user
            tree.depth[hearer] = tree.depth[user] + 1
            tree.last = (rnd, tick)
    return [t.freeze() for t in trees]


def _distribution(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "median": None, "p90": None, "max": None}
    x = np.asarray(values, dtype=np.float64)
    return {"mean": round(float(x.mean()), 4), "median": round(float(np.median(x)), 4),
            "p90": round(float(np.percentile(x, 90)), 4), "max": round(float(x.max()), 4)}


def cascade_summary(cascades: Iterable[Cascade], largest: int = 10) -> dict[str, Any]:
    """Count, distributions (mean, median, p90, max) of each statistic, the histogram of
    max depths and the ``largest`` cascades by size (then reach), all JSON-serialisable.

    ``spread_share`` is the share of cascades that went beyond their root (size >= 2).
    """
    cs = list(cascades)
    via = Counter[str]()
    for c in cs:
        via.update(c.via)
    top = sorted(cs, key=lambda c: (-c.size, -c.reach, c.first_round, c.first_tick, c.arm,
                                    c.item, c.root))[:largest]
    return {
        "count": len(cs),
        "spread_share": round(sum(c.size >= 2 for c in cs) / len(cs), 4) if cs else None,
        "mentions": sum(c.mentions for c in cs),
        "via": {k: via[k] for k in VIA},
        "parent_mismatches": sum(c.parent_mismatches for c in cs),
        "distributions": {s: _distribution([getattr(c, s) for c in cs]) for s in STATS},
        "max_depth_histogram": {str(d): n for d, n in
                                sorted(Counter(c.max_depth for c in cs).items())},
        "largest": [c.to_dict() for c in top],
    }


def summaries_by_arm(cascades: Iterable[Cascade], largest: int = 10) -> dict[str, Any]:
    """``cascade_summary`` of each arm's cascades, arms in order of first appearance."""
    arms: dict[str, list[Cascade]] = {}
    for c in cascades:
        arms.setdefault(c.arm, []).append(c)
    return {arm: cascade_summary(cs, largest) for arm, cs in arms.items()}


# --- the reference: real Twitter15 cascades --------------------------------------------


class CascadeDataError(ValueError):
    """A bad reference file: the message is one line naming the file, line and field."""


@dataclass(frozen=True)
class ReferenceCascade:
    """One Twitter15 cascade's statistics (the reference folder's README.md)."""

    id: str
    source: str
    label: bool
    num_users: int
    max_depth: int
    mean_time: float
    median_time: float
    max_time: float
    topic_category: str
    start_time: datetime


_COLUMNS = ("id", "source", "label", "num_users", "max_depth", "mean_time", "median_time",
            "max_time", "topic_category", "start_time")


def cascades_data_path() -> Path:
    """The reference folder: RECARENA_CASCADES, else ../shared/data/twitter-cascades beside
    the repository root."""
    return Path(os.environ.get(CASCADES_ENV) or DEFAULT_CASCADES)


def _parse(raw: str, kind: str) -> Any:
    """A value of a reference column (ValueError when it does not parse)."""
    if kind == "count":
        n = int(raw)
        if n < 1:
            raise ValueError
        return n
    if kind == "float":
        x = float(raw)  # may be negative: the source's times are as given (README)
        if not np.isfinite(x):
            raise ValueError
        return x
    if kind == "label":
        return {"true": True, "false": False}[raw.strip().lower()]
    if kind == "time":
        return datetime.fromisoformat(raw)
    if not raw.strip():
        raise ValueError
    return raw


_KINDS = {"num_users": ("count", "an integer >= 1"), "max_depth": ("count", "an integer >= 1"),
          "mean_time": ("float", "a number"), "median_time": ("float", "a number"),
          "max_time": ("float", "a number"), "label": ("label", "True or False"),
          "start_time": ("time", "an ISO date and time")}


def load_twitter15(path: str | Path | None = None) -> list[ReferenceCascade]:
    """The Twitter15 cascades of ``twitter15.csv`` in the folder ``path`` (or the file
    itself); by default in ``cascades_data_path()``. All rows are checked before any use.

    Raises:
        FileNotFoundError: no such file (the message says how to point at it).
        CascadeDataError: a missing column or a bad value, as ``FILE:LINE: field 'NAME': ...``.
    """
    p = Path(path) if path is not None else cascades_data_path()
    if p.is_dir():
        p = p / "twitter15.csv"
    if not p.is_file():
        raise FileNotFoundError(f"Twitter15 cascades not found at {p} (set {CASCADES_ENV} to "
                                "the folder holding twitter15.csv)")
    out: list[ReferenceCascade] = []
    with p.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CascadeDataError(f"{p}:1: field {missing[0]!r}: missing column (the header "
                                   f"needs {', '.join(_COLUMNS)})")
        for row in reader:
            line = reader.line_num
            values: dict[str, Any] = {}
            for col in _COLUMNS:
                raw = row.get(col)
                kind, expected = _KINDS.get(col, ("text", "a non-empty value"))
                try:
                    if raw is None:
                        raise ValueError
                    values[col] = _parse(raw, kind)
                except (ValueError, KeyError):
                    got = "nothing (the row is short)" if raw is None else repr(raw)
                    raise CascadeDataError(f"{p}:{line}: field {col!r}: expected {expected}, "
                                           f"got {got}") from None
            if values["max_depth"] > values["num_users"]:
                raise CascadeDataError(f"{p}:{line}: field 'max_depth': {values['max_depth']} "
                                       f"levels need more than num_users "
                                       f"{values['num_users']} users")
            out.append(ReferenceCascade(**values))
    if not out:
        raise CascadeDataError(f"{p}:2: field 'id': no cascades in the file")
    return out


def depth_distance(simulated_depths: Sequence[float], reference_depths: Sequence[float]) -> float:
    """Wasserstein-1 distance between two samples of max depths (in levels: the mean shift
    needed to turn one distribution into the other)."""
    a = np.asarray(list(simulated_depths), dtype=np.float64)
    b = np.asarray(list(reference_depths), dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("depth_distance needs at least one simulated and one reference depth")
    from scipy import stats  # scipy.stats is heavy: only when a distance is asked for

    return float(stats.wasserstein_distance(a, b))


def bootstrap_interval(samples: Sequence[T], statistic: Callable[[list[T]], float], *,
                       resamples: int = 1000, level: float = 0.95,
                       seed: int = 0) -> dict[str, Any]:
    """The statistic of ``samples`` (e.g. cascades) with a percentile bootstrap interval:
    resample the samples with replacement, ``resamples`` times, from ``seed``."""
    xs = list(samples)
    if not xs:
        return {"value": None, "lo": None, "hi": None, "resamples": 0, "level": level}
    rng = np.random.default_rng(seed)
    boot = [statistic([xs[j] for j in rng.integers(0, len(xs), len(xs))])
            for _ in range(resamples)]
    lo, hi = np.percentile(boot, [50 * (1 - level), 50 * (1 + level)])
    return {"value": float(statistic(xs)), "lo": float(lo), "hi": float(hi),
            "resamples": resamples, "level": level}


def depth_distance_interval(simulated_depths: Sequence[float],
                            reference_depths: Sequence[float], *, resamples: int = 1000,
                            level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """``depth_distance`` with a percentile bootstrap interval that resamples both samples
    (each is a sample of cascades). The distance of two resamples is never negative, so at
    small samples the interval sits above 0 even for one distribution: read it beside the
    reference against itself."""
    a, b = list(simulated_depths), list(reference_depths)
    value = depth_distance(a, b)
    rng = np.random.default_rng(seed)
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    from scipy import stats

    boot = [stats.wasserstein_distance(rng.choice(xa, xa.size), rng.choice(xb, xb.size))
            for _ in range(resamples)]
    lo, hi = np.percentile(boot, [50 * (1 - level), 50 * (1 + level)])
    return {"value": value, "lo": float(lo), "hi": float(hi), "resamples": resamples,
            "level": level}
