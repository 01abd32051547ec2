"""Per-user statistics of every arm of a trace, and the groups users belong to.

Each arm becomes an ``ArmTable``: one row per user with the sums behind every metric
(watches and impressions, rating sum and count, ...) and the user's item exposure. A metric
over any set of users, with any weights (a bootstrap resample, a permutation of arms), is
then a ratio of weighted sums, and over all users with unit weights it is exactly the
figure ``simulations.analysis.metrics.compute_metrics`` reports (micro-averaged, as there).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from scenarios.demographics import AGE_BANDS, age_band
from simulations.analysis.outcomes import UserAcc, outcomes_for, ratio_of, registered
from simulations.analysis.outcomes_conversation import CONVERSATION_FIELDS
from simulations.analysis.outcomes_feed import FEED_FIELDS

__all__ = [
    "CONVERSATION_FIELDS",
    "EXPOSURE_METRICS",
    "FEED_FIELDS",
    "ArmTable",
    "RunTables",
    "UserInfo",
    "age_band",
    "arm_tables",
    "metric_from_totals",
    "metric_names",
    "metric_values",
    "needs_exposure",
    "ratio_columns",
    "user_groups",
    "user_metrics",
]

EXPOSURE_METRICS = ("coverage", "gini")


def _ratios() -> dict[str, tuple[str, str]]:
    return {m: r for o in registered().values() for m, r in o.ratios.items()}


def __getattr__(name: str) -> Any:
    # RATIO_METRICS (metric -> (numerator, denominator) fields) is every environment's,
    # read from the outcome plug-ins when asked for (a plug-in may register later).
    if name == "RATIO_METRICS":
        return _ratios()
    raise AttributeError(name)


def metric_names(environment: str) -> tuple[str, ...]:
    """The metrics a paired comparison reports for an environment (its outcome plug-in's
    ``compared``; none without one)."""
    o = outcomes_for(environment)
    return o.compared if o is not None else ()


@dataclass(frozen=True)
class UserInfo:
    """What a profile event says about a user, for grouping."""

    role: str | None
    traits: dict[str, int]
    attrs: dict[str, str]


@dataclass(frozen=True, eq=False)
class ArmTable:
    """One arm's per-user sums (rows follow ``users``, columns ``fields``) and exposure
    (item counts on pages; columns follow ``items``)."""

    arm: str
    environment: str
    users: tuple[str, ...]
    fields: tuple[str, ...]
    sums: np.ndarray
    exposure: sp.csr_matrix
    items: tuple[str, ...]
    n_items: int

    def reindex(self, users: Sequence[str], items: Sequence[str]) -> ArmTable:
        """The table over ``users`` (zero rows for users it lacks) and ``items`` columns."""
        row = {u: k for k, u in enumerate(self.users)}
        col = {i: k for k, i in enumerate(items)}
        take = np.array([row.get(u, -1) for u in users], dtype=np.int64)
        sums = np.zeros((len(users), len(self.fields)))
        ok = take >= 0
        sums[ok] = self.sums[take[ok]]
        coo = self.exposure.tocoo()
        new_row = np.full(len(self.users), -1, dtype=np.int64)
        new_row[take[ok]] = np.flatnonzero(ok)
        col_map = np.array([col[i] for i in self.items], dtype=np.int64)
        keep = new_row[coo.row] >= 0
        exposure = sp.csr_matrix(
            (coo.data[keep], (new_row[coo.row[keep]], col_map[coo.col[keep]])),
            shape=(len(users), len(items)))
        return ArmTable(self.arm, self.environment, tuple(users), self.fields, sums,
                        exposure, tuple(items), max(self.n_items, len(items)))

    def subset(self, mask: np.ndarray) -> ArmTable:
        """The rows where ``mask`` is true."""
        idx = np.flatnonzero(mask)
        return ArmTable(self.arm, self.environment, tuple(self.users[i] for i in idx),
                        self.fields, self.sums[idx], self.exposure[idx], self.items,
                        self.n_items)


@dataclass(frozen=True)
class RunTables:
    """Every arm of one trace over the same users, and who those users are."""

    environment: str
    n_items: int
    users: tuple[str, ...]
    info: dict[str, UserInfo]
    arms: dict[str, ArmTable]


def arm_tables(events: Iterable[dict[str, Any]]) -> RunTables:
    """Per-user sums of every arm of a trace.

    Users are those with a profile event plus any user an arm event names, in order of
    first appearance; every arm has a row for each (zeros where the user did nothing in
    that arm). The sums are the environment's outcome plug-in's (``user_fields``,
    ``user_event``; simulations/analysis/outcomes.py) and follow its ``compute_metrics``; without a
    plug-in a table has users but no fields.
    """
    n_items, env = 0, "feed"
    users: dict[str, None] = {}
    info: dict[str, UserInfo] = {}
    acc: dict[str, dict[str, UserAcc]] = defaultdict(lambda: defaultdict(UserAcc))
    plugin = outcomes_for(env)
    for ev in events:
        t = ev.get("type")
        if t == "run_start":
            n_items = int(ev.get("n_items", 0))
            env = str(ev.get("environment") or "feed")
            plugin = outcomes_for(env)
            continue
        if t == "profile":
            u = str(ev["user"])
            users.setdefault(u)
            info.setdefault(u, UserInfo(ev.get("role"), dict(ev.get("traits") or {}),
                                        {k: str(v) for k, v in (ev.get("attrs") or {}).items()}))
            continue
        arm, user = ev.get("arm"), ev.get("user")
        if arm is None or user is None:
            continue
        u = str(user)
        a = acc[arm][u]
        if plugin is not None and plugin.user_event is not None and plugin.user_event(a, ev):
            users.setdefault(u)
    order = tuple(users)
    fields = plugin.user_fields if plugin is not None else ()
    finish = plugin.user_finish if plugin is not None else None
    items = sorted({i for per in acc.values() for x in per.values() for i in x.exposure})
    col = {i: k for k, i in enumerate(items)}
    tables: dict[str, ArmTable] = {}
    for arm, per in acc.items():
        sums = np.zeros((len(order), len(fields)))
        rows, cols, vals = [], [], []
        for r, u in enumerate(order):
            x = per.get(u)
            if x is None:
                continue
            if finish is not None:
                finish(x)
            sums[r] = [x.f.get(name, 0.0) for name in fields]
            for iid, c in x.exposure.items():
                rows.append(r)
                cols.append(col[iid])
                vals.append(c)
        exposure = sp.csr_matrix((np.asarray(vals, dtype=np.float64), (rows, cols)),
                                 shape=(len(order), len(items)))
        tables[arm] = ArmTable(arm, env, order, fields, sums, exposure, tuple(items),
                               max(n_items, len(items)))
    return RunTables(env, max(n_items, len(items)), order, info, tables)


def _gini_rows(x: np.ndarray, n_items: int) -> np.ndarray:
    """Gini of each row of non-negative counts, padded with zeros to ``n_items`` columns."""
    xs = np.sort(x, axis=1)
    n = max(n_items, xs.shape[1])
    ranks = np.arange(n - xs.shape[1] + 1, n + 1, dtype=np.float64)
    total = xs.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = 2.0 * (xs * ranks).sum(axis=1) / (n * total) - (n + 1.0) / n
    return np.where(total > 0, g, np.nan)


def needs_exposure(metric: str) -> bool:
    return metric in EXPOSURE_METRICS


def ratio_columns(metric: str, fields: Sequence[str]) -> list[int]:
    """Columns of a ratio metric's numerator and denominator (none for exposure metrics)."""
    ratio = ratio_of(metric)
    if ratio is not None:
        return [fields.index(f) for f in ratio]
    if metric in EXPOSURE_METRICS:
        return []
    raise ValueError(f"unknown metric {metric!r}")


def metric_from_totals(metric: str, sums: np.ndarray, exposure: np.ndarray | None,
                       n_items: int) -> np.ndarray:
    """The metric from weighted totals: ``sums`` (batch, 2) of its numerator and
    denominator, or ``exposure`` (batch, items) of item counts."""
    if ratio_of(metric) is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(sums[:, 1] > 0, sums[:, 0] / sums[:, 1], np.nan)
    assert exposure is not None
    if metric == "coverage":
        return (exposure > 0).sum(axis=1) / n_items if n_items else np.full(
            len(exposure), np.nan)
    return _gini_rows(exposure, n_items)


def metric_values(metric: str, weights: np.ndarray, table: ArmTable) -> np.ndarray:
    """The metric of ``table`` under each row of user ``weights`` (shape (batch, users));
    NaN where it is undefined (e.g. no impressions among the weighted users)."""
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    cols = ratio_columns(metric, table.fields)
    sums = w @ table.sums[:, cols] if cols else np.zeros((len(w), 0))
    exposure = np.asarray(table.exposure.T @ w.T).T if needs_exposure(metric) else None
    return metric_from_totals(metric, sums, exposure, table.n_items)


def user_metrics(table: ArmTable, metrics: Sequence[str] | None = None
                 ) -> dict[str, dict[str, float | None]]:
    """Each user's own value of every per-user metric (ratio metrics only: coverage and
    Gini describe a population, not a user)."""
    names = [m for m in (metrics or metric_names(table.environment))
             if ratio_of(m) is not None]
    eye = np.eye(len(table.users))
    vals = {m: metric_values(m, eye, table) for m in names}
    return {u: {m: None if np.isnan(vals[m][k]) else float(vals[m][k]) for m in names}
            for k, u in enumerate(table.users)}


def user_groups(users: Sequence[str], info: dict[str, UserInfo],
                attributes: Sequence[str] = ()) -> dict[str, dict[str, np.ndarray]]:
    """Boolean masks over ``users`` per dimension and level: role, gender, age band and
    each trait, and any further user attribute named in ``attributes`` (e.g.
    ``occupation``: 21 levels in MovieLens, so compare and the report leave it out).
    Dimensions with fewer than two levels are left out."""
    dims: dict[str, list[str | None]] = defaultdict(list)
    for u in users:
        i = info.get(u, UserInfo(None, {}, {}))
        dims["role"].append(i.role)
        dims["gender"].append(i.attrs.get("gender"))
        dims["age"].append(age_band(i.attrs.get("age")))
        for a in attributes:
            dims[a].append(i.attrs.get(a) or None)
        for trait in ("activity", "conformity", "diversity"):
            v = i.traits.get(trait)
            dims[trait].append(None if v is None else str(v))
    out: dict[str, dict[str, np.ndarray]] = {}
    for dim, labels in dims.items():
        levels = sorted({x for x in labels if x is not None},
                        key=lambda s: (_band_order(s) if dim == "age" else 0, s))
        if len(levels) < 2:
            continue
        arr = np.array([x if x is not None else "" for x in labels], dtype=object)
        out[dim] = {lv: arr == lv for lv in levels}
    return out


def _band_order(label: str) -> int:
    return AGE_BANDS.index(label) if label in AGE_BANDS else len(AGE_BANDS)
