"""Fairness of a run, read from its trace: user side (every summary metric by gender, age
band and occupation, with interval gaps between groups) and provider side (exposure Gini,
average recommendation popularity, long-tail share per recommender).

User side, per arm, metric and attribute: each level's value (the summary's statistic, a
ratio of sums over the level's users) with a bootstrap interval over users; each level's
gap to everyone else (level minus the rest) and, over the levels with at least
``min_users`` users, the range (largest minus smallest level), both with percentile
intervals from the same bootstrap resamples of users. Levels smaller than ``min_users``
are listed but left out of the range (a level of three users is noise, not a finding).

Provider side, per arm: the Gini of item exposure over the whole catalogue, the average
recommendation popularity (ARP: per user, the mean training-history popularity of the
items on their pages, averaged over users) and the long-tail share (APLT: per user, the
share of their impressions on long-tail items, averaged over users). The long tail is
every item outside the short head, the top ``head_share`` (20%) of the catalogue by
training-history popularity (Abdollahpouri et al., 2019); the popularity comes from the
run's ``reference.json``. ARP and APLT have bootstrap intervals over users; Gini, like
everywhere in RecArena, is a point value (a resample changes how many distinct users
there are, which biases it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulations.analysis.diversity import gini
from simulations.analysis.outcomes import ratio_of
from simulations.analysis.user_stats import (
    ArmTable,
    RunTables,
    UserInfo,
    arm_tables,
    metric_names,
    metric_values,
    user_groups,
)
from simulations.record.trace import read_trace
from simulations.run.sampling import user_split

__all__ = ["ATTRIBUTES", "HEAD_SHARE", "FairnessOptions", "fairness_of_run", "long_tail",
           "provider_side", "user_side"]

ATTRIBUTES = ("gender", "age", "occupation")
HEAD_SHARE = 0.2


@dataclass(frozen=True)
class FairnessOptions:
    min_users: int = 10  # levels smaller than this stay out of the range
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0  # of the bootstrap, not of the simulation
    test_only: bool = True  # report on test users (simulations/run/sampling.py)


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 6)


def _ci(d: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    d = d[np.isfinite(d)]
    if d.size == 0:
        return None, None
    lo, hi = np.percentile(d, [50 * (1 - confidence), 50 * (1 + confidence)])
    return _num(float(lo)), _num(float(hi))


def _boot_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    w = np.zeros((resamples, n))
    np.add.at(w, (np.repeat(np.arange(resamples), n), idx.ravel()), 1.0)
    return w


def user_side(tables: RunTables, opt: FairnessOptions = FairnessOptions(),
              attributes: Sequence[str] = ATTRIBUTES) -> list[dict[str, Any]]:
    """Per arm, ratio metric and attribute: levels, gaps to the rest and the range."""
    users = list(tables.users)
    groups = user_groups(users, tables.info, attributes=[a for a in attributes
                                                         if a not in ("gender", "age")])
    n = len(users)
    boot = _boot_weights(n, opt.resamples, opt.seed) if n else np.zeros((0, 0))
    ones = np.ones((1, n))
    metrics = [m for m in metric_names(tables.environment) if ratio_of(m) is not None]
    out: list[dict[str, Any]] = []
    for arm, table in tables.arms.items():
        for m in metrics:
            for dim in attributes:
                levels = groups.get(dim)
                if not levels:
                    continue
                out.append(_dimension(arm, m, dim, levels, table, boot, ones, opt))
    return out


def _dimension(arm: str, metric: str, dim: str, levels: Mapping[str, np.ndarray],
               table: ArmTable, boot: np.ndarray, ones: np.ndarray,
               opt: FairnessOptions) -> dict[str, Any]:
    rows, big = [], []
    per_level: dict[str, np.ndarray] = {}
    for lv, mask in levels.items():
        value = float(metric_values(metric, ones * mask, table)[0])
        rest = float(metric_values(metric, ones * ~mask, table)[0])
        b_in = metric_values(metric, boot * mask, table)
        b_out = metric_values(metric, boot * ~mask, table)
        per_level[lv] = b_in
        lo, hi = _ci(b_in, opt.confidence)
        glo, ghi = _ci(b_in - b_out, opt.confidence)
        size = int(mask.sum())
        rows.append({"level": lv, "users": size, "value": _num(value), "ci_low": lo,
                     "ci_high": hi, "gap_to_rest": _num(value - rest), "gap_ci_low": glo,
                     "gap_ci_high": ghi})
        if size >= opt.min_users and np.isfinite(value):
            big.append((lv, value))
    rng: dict[str, Any] = {"range": None, "ci_low": None, "ci_high": None, "highest": None,
                           "lowest": None, "levels_in_range": len(big)}
    if len(big) >= 2:
        hi_lv = max(big, key=lambda x: x[1])
        lo_lv = min(big, key=lambda x: x[1])
        stack = np.vstack([per_level[lv] for lv, _ in big])
        with np.errstate(invalid="ignore"):
            spread = np.nanmax(stack, axis=0) - np.nanmin(stack, axis=0)
        lo, hi = _ci(spread, opt.confidence)
        rng = {"range": _num(hi_lv[1] - lo_lv[1]), "ci_low": lo, "ci_high": hi,
               "highest": hi_lv[0], "lowest": lo_lv[0], "levels_in_range": len(big)}
    return {"arm": arm, "metric": metric, "attribute": dim, "levels": rows, **rng}


def long_tail(popularity: np.ndarray, head_share: float = HEAD_SHARE) -> np.ndarray:
    """Boolean mask of long-tail items: outside the top ``head_share`` of the catalogue
    by popularity (ties towards the lower index, so the head has exactly that size)."""
    n = popularity.size
    head = int(np.ceil(head_share * n))
    order = np.lexsort((np.arange(n), -popularity))
    tail = np.ones(n, dtype=bool)
    tail[order[:head]] = False
    return tail


def provider_side(table: ArmTable, popularity: Mapping[str, float], catalogue_size: int,
                  opt: FairnessOptions = FairnessOptions(),
                  head_share: float = HEAD_SHARE) -> dict[str, Any]:
    """Exposure Gini, ARP and long-tail share of one arm (see the module doc)."""
    ids = list(popularity)
    pop = np.array([float(popularity[i]) for i in ids])
    tail_ids = {i for i, t in zip(ids, long_tail(pop, head_share), strict=True) if t}
    col_pop = np.array([float(popularity.get(i, 0.0)) for i in table.items])
    col_tail = np.array([i in tail_ids for i in table.items], dtype=np.float64)
    x = table.exposure
    shown = np.asarray(x.sum(axis=1)).ravel()
    keep = shown > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        arp = np.asarray(x @ col_pop).ravel() / shown
        aplt = np.asarray(x @ col_tail).ravel() / shown
    arp, aplt = arp[keep], aplt[keep]
    exposure = np.zeros(max(catalogue_size, len(table.items)))
    exposure[:len(table.items)] = np.asarray(x.sum(axis=0)).ravel()
    rng = np.random.default_rng(opt.seed)
    out: dict[str, Any] = {"arm": table.arm, "users": int(keep.sum()),
                           "gini": round(gini(exposure), 6),
                           "catalogue_items": int(exposure.size),
                           "tail_items": len(tail_ids), "head_share": head_share}
    for name, v in (("arp", arp), ("long_tail_share", aplt)):
        if v.size == 0:
            out[name] = {"value": None, "ci_low": None, "ci_high": None}
            continue
        idx = rng.integers(0, v.size, size=(opt.resamples, v.size))
        lo, hi = _ci(v[idx].mean(axis=1), opt.confidence)
        out[name] = {"value": _num(float(v.mean())), "ci_low": lo, "ci_high": hi}
    return out


def _with_attrs(tables: RunTables, attrs: Mapping[str, Mapping[str, str]] | None
                ) -> RunTables:
    """Fill users' attributes from the dataset when the trace withheld them."""
    if not attrs:
        return tables
    info = {u: UserInfo(i.role, i.traits, dict(i.attrs) or {k: str(v) for k, v in
                                                             attrs.get(u, {}).items()})
            for u, i in tables.info.items()}
    return RunTables(tables.environment, tables.n_items, tables.users, info, tables.arms)


def _test_users(tables: RunTables) -> RunTables:
    keep = np.array([user_split(u) == "test" for u in tables.users], dtype=bool)
    users = tuple(u for u, k in zip(tables.users, keep, strict=True) if k)
    arms = {a: t.subset(keep) for a, t in tables.arms.items()}
    return RunTables(tables.environment, tables.n_items, users,
                     {u: tables.info[u] for u in users if u in tables.info}, arms)


def fairness_of_run(run_dir: str | Path, opt: FairnessOptions = FairnessOptions(),
                    attrs: Mapping[str, Mapping[str, str]] | None = None
                    ) -> dict[str, Any]:
    """User-side and provider-side fairness of a run folder.

    ``attrs`` (user id -> attributes, from the dataset) fills in users whose profile
    event carries none (a run with ``output.withhold_attributes``).

    Raises:
        FileNotFoundError: No trace in ``run_dir``.
        ValueError: The trace has no arms.
    """
    p = Path(run_dir)
    events = read_trace(p)
    tables = _with_attrs(arm_tables(events), attrs)
    if not tables.arms:
        raise ValueError(f"{p}: the trace has no arm events")
    if opt.test_only:
        tables = _test_users(tables)
    ref_path = p / "reference.json"
    popularity: dict[str, float] = {}
    if ref_path.exists():
        popularity = json.loads(ref_path.read_text())["item_popularity"]
    provider = ([provider_side(t, popularity, tables.n_items, opt)
                 for t in tables.arms.values()] if popularity else [])
    without = [d for d in ATTRIBUTES
               if not any(i.attrs.get(d) for i in tables.info.values())]
    return {"run": str(p), "environment": tables.environment, "users": len(tables.users),
            "reported_on": "test users" if opt.test_only else "all users",
            "min_users": opt.min_users, "confidence": opt.confidence,
            "user_side": user_side(tables, opt), "provider_side": provider,
            "attributes_missing": without,
            "provider_note": None if popularity else "no reference.json: provider side "
            "needs the training-history popularity"}
