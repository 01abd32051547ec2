"""The filter-bubble figures of bench/social.py: genre entropy of recommender pages per
round and condition, slopes over rounds and paired differences (no engine: RunData in)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.social_runs import RunData
from simulations.analysis.diversity import genre_entropy
from simulations.analysis.stats import interval

# label -> (run condition, arm)
CONDITIONS = {
    "ease": ("base", "ease"),
    "ease + 2 random": ("random_k", "ease"),
    "ease, 6-item pages": ("page6", "ease"),
    "ease, rewired 0.5": ("rewire", "ease"),
    "ease, social off": ("social_off", "ease"),
    "random (null)": ("base", "random"),
}
# (intervention, baseline): paired on the same users of one seed
PAIRS = [("ease + 2 random", "ease"), ("ease + 2 random", "ease, 6-item pages"),
         ("ease, rewired 0.5", "ease"), ("ease, social off", "ease"), ("random (null)", "ease")]

UserRound = dict[tuple[str, int], float]


def pages(rd: RunData, arm: str, measure: str) -> dict[tuple[str, int], list[tuple[str, ...]]]:
    """``all``: every recommender-page item of each (user, round); ``first``: the items of
    its first recommender page of the round (a fixed count: the page size)."""
    return (rd.first if measure == "first" else rd.browse).get(arm, {})


def entropies(rd: RunData, arm: str, measure: str = "all") -> UserRound:
    """Genre entropy (bits) of the recommender-page items of each (user, round)."""
    return {k: genre_entropy(v) for k, v in pages(rd, arm, measure).items() if v}


def round_means(h: UserRound, rounds: int) -> list[float | None]:
    out: list[float | None] = []
    for r in range(1, rounds + 1):
        xs = [v for (_, rr), v in h.items() if rr == r]
        out.append(float(np.mean(xs)) if xs else None)
    return out


def slope(means: Sequence[float | None]) -> float | None:
    pts = [(r + 1, m) for r, m in enumerate(means) if m is not None]
    if len(pts) < 2:
        return None
    x, y = np.array(pts, dtype=np.float64).T
    return float(np.polyfit(x, y, 1)[0])


def user_means(h: UserRound) -> dict[str, float]:
    acc: dict[str, list[float]] = {}
    for (u, _), v in h.items():
        acc.setdefault(u, []).append(v)
    return {u: float(np.mean(v)) for u, v in acc.items()}


def _pooled(diffs: list[list[float]]) -> dict[str, Any]:
    """Per-unit t-interval over all seeds' units, and the interval over per-seed means."""
    flat = [d for ds in diffs for d in ds]
    per_seed = [float(np.mean(ds)) for ds in diffs if ds]
    return {"per_user": interval(flat), "per_seed": interval(per_seed),
            "seed_means": [round(x, 4) for x in per_seed]}


def analyse(runs: dict[tuple[int, str], RunData], seeds: Sequence[int],
            rounds: int, measure: str = "all") -> dict[str, Any]:
    """Everything the doc and the JSON report about the bubble, for one measure."""
    h = {(s, lab): entropies(runs[(s, c)], arm, measure) for s in seeds
         for lab, (c, arm) in CONDITIONS.items() if (s, c) in runs}
    n_items = {(s, lab): {k: float(len(v)) for k, v in pages(runs[(s, c)], arm,
                                                               measure).items() if v}
               for s in seeds for lab, (c, arm) in CONDITIONS.items() if (s, c) in runs}
    labels = [lab for lab in CONDITIONS if all((s, lab) in h for s in seeds)]
    out: dict[str, Any] = {"conditions": {}, "paired": {}}
    for lab in labels:
        per_seed = [round_means(h[(s, lab)], rounds) for s in seeds]
        slopes = [slope(m) for m in per_seed]
        drops: list[list[float]] = []  # per user: last round - first round
        for s in seeds:
            hu = h[(s, lab)]
            users = {u for (u, r) in hu if r == 1} & {u for (u, r) in hu if r == rounds}
            drops.append([hu[(u, rounds)] - hu[(u, 1)] for u in sorted(users)])
        out["conditions"][lab] = {
            "run": CONDITIONS[lab][0], "arm": CONDITIONS[lab][1],
            "per_seed_round_means": [[None if m is None else round(m, 4) for m in ms]
                                     for ms in per_seed],
            "rounds": [interval([x for x in (ms[r] for ms in per_seed) if x is not None])
                       for r in range(rounds)],
            "items": [round(x, 2) if np.isfinite(x) else None for x in np.mean(
                [[np.nan if m is None else m for m in round_means(n_items[(s, lab)], rounds)]
                 for s in seeds], axis=0).tolist()],
            "slope": {**interval([x for x in slopes if x is not None]),
                      "per_seed": [None if x is None else round(x, 4) for x in slopes]},
            "last_minus_first": _pooled(drops),
        }
    for a, b in PAIRS:
        if a not in labels or b not in labels:
            continue
        diffs: list[list[float]] = []
        last: list[list[float]] = []
        dslopes: list[float] = []
        for s in seeds:
            ua, ub = user_means(h[(s, a)]), user_means(h[(s, b)])
            diffs.append([ua[u] - ub[u] for u in sorted(set(ua) & set(ub))])
            ha, hb = h[(s, a)], h[(s, b)]
            both = sorted({k for k in ha if k[1] == rounds} & set(hb))
            last.append([ha[k] - hb[k] for k in both])
            sa = slope(round_means(ha, rounds))
            sb = slope(round_means(hb, rounds))
            if sa is not None and sb is not None:
                dslopes.append(sa - sb)
        out["paired"][f"{a} - {b}"] = {"mean_over_rounds": _pooled(diffs),
                                       "last_round": _pooled(last),
                                       "slope": interval(dslopes)}
    return out


def _iv(d: dict[str, Any], digits: int = 3) -> str:
    if d.get("mean") is None:
        return "-"
    return f"{d['mean']:.{digits}f} [{d['lo']:.{digits}f}, {d['hi']:.{digits}f}]"


def _excl(d: dict[str, Any]) -> str:
    """Sign of an interval: above 0, below 0, or spanning it."""
    if d.get("lo") is None:
        return "n/a"
    return "above 0" if d["lo"] > 0 else "below 0" if d["hi"] < 0 else "includes 0"


def tables(res: dict[str, Any], rounds: int) -> list[str]:
    conds = res["conditions"]
    head = " | ".join(f"round {r}" for r in range(1, rounds + 1))
    rows = [f"| condition | {head} | slope / round | last − first round (per user) | "
            "items / user-round, first → last round |",
            "| --- |" + " ---: |" * (rounds + 3)]
    for lab, c in conds.items():
        cells = " | ".join(_iv(x, 2) for x in c["rounds"])
        items = c.get("items") or [None]
        rows.append(f"| {lab} | {cells} | {_iv(c['slope'], 3)} | "
                    f"{_iv(c['last_minus_first']['per_user'], 3)} | "
                    f"{items[0]} → {items[-1]} |")
    rows += ["", "Paired differences (same users, same seed; 95% intervals):", "",
             "| difference | mean over rounds, per user | per seed (n = seeds) | "
             "last round, per user | slope difference (per seed) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, p in res["paired"].items():
        m = p["mean_over_rounds"]
        rows.append(f"| {name} | {_iv(m['per_user'])} (n = {m['per_user']['n']}) | "
                    f"{_iv(m['per_seed'])} | {_iv(p['last_round']['per_user'])} | "
                    f"{_iv(p['slope'])} |")
    return rows


def verdicts(res: dict[str, Any]) -> list[str]:
    """RecAgent's directions against the figures (computed, not typed in)."""
    c, p = res["conditions"], res["paired"]
    out: list[str] = []
    if "ease" in c:
        s = c["ease"]["slope"]
        out.append(f"- **EASE narrows the pages over rounds** (RecAgent: entropy falls): "
                   f"slope {_iv(s)} bits per round, {_excl(s)} → "
                   + ("**met**." if s["hi"] is not None and s["hi"] < 0
                      else "**disagrees**." if s["lo"] is not None and s["lo"] > 0
                      else "**not shown** (the interval includes 0)."))
    for key, what in (("ease + 2 random - ease", "mixing 2 random items into pages raises it"),
                      ("ease, rewired 0.5 - ease", "rewiring half the within-group ties "
                       "raises it")):
        if key in p:
            d = p[key]["mean_over_rounds"]["per_seed"]
            u = p[key]["mean_over_rounds"]["per_user"]
            out.append(f"- **{what.capitalize()}** (RecAgent: yes): {_iv(d)} bits per seed "
                       f"({_excl(d)}), {_iv(u)} per user → "
                       + ("**met**." if d["lo"] is not None and d["lo"] > 0
                          else "**disagrees**." if d["hi"] is not None and d["hi"] < 0
                          else "**not shown** (the interval includes 0)."))
            if key.startswith("ease, rewired"):
                sd, ld = p[key]["slope"], p[key]["last_round"]["per_user"]
                out.append(f"  Its slope difference {_iv(sd)} per round ({_excl(sd)}), last "
                           f"round {_iv(ld)} per user ({_excl(ld)}).")
    key = "ease + 2 random - ease, 6-item pages"
    if key in p:
        d = p[key]["mean_over_rounds"]["per_seed"]
        out.append(f"- Against the size-matched control (6 EASE items per page, as many items "
                   f"as 4 + 2): {_iv(d)} per seed ({_excl(d)}): "
                   + ("the random items add diversity beyond a longer page."
                      if d["lo"] is not None and d["lo"] > 0 else
                      "4 EASE + 2 random items are *less* diverse than 6 EASE items, so the "
                      "rise over the base is the longer page (entropy grows with the items "
                      "counted), not the random items: **RecAgent's direction is not "
                      "reproduced once page length is held fixed**."
                      if d["hi"] is not None and d["hi"] < 0 else
                      "the random items' gain is not separated from that of a longer page."))
    if "random (null)" in c:
        s = c["random (null)"]["slope"]
        out.append(f"- **Null: the random recommender** should not narrow: slope {_iv(s)} "
                   f"({_excl(s)}) → " + ("**as expected**." if s["hi"] is None or s["hi"] >= 0
                                         else "**falls too**: part of the EASE trend is not "
                                         "the recommender's."))
    if "ease, social off" in c and "ease" in c:
        s = c["ease, social off"]["slope"]
        base_falls = c["ease"]["slope"]["hi"] is not None and c["ease"]["slope"]["hi"] < 0
        off_falls = s["hi"] is not None and s["hi"] < 0
        d = p.get("ease, social off - ease", {}).get("slope", {})
        out.append(f"- **Null: social off** (no chats, posts or heard pull): EASE's slope "
                   f"{_iv(s)} ({_excl(s)}), paired slope difference to the base {_iv(d)}: "
                   + ("the narrowing persists without the social features (the "
                      "recommender's own loop)." if base_falls and off_falls else
                      "the narrowing goes with the social features." if base_falls else
                      "it falls without the social features only." if off_falls else
                      "neither falls."))
    return out


def first_page_verdicts(res: dict[str, Any], main: dict[str, Any]) -> list[str]:
    """The directions again on the first page of each round (a fixed number of items)."""
    c, p = res["conditions"], res["paired"]
    parts = []
    if "ease" in c:
        parts.append(f"EASE's slope {_iv(c['ease']['slope'])} ({_excl(c['ease']['slope'])})")
    for key in ("ease + 2 random - ease, 6-item pages", "ease, rewired 0.5 - ease",
                "ease, social off - ease", "random (null) - ease"):
        if key in p:
            d = p[key]["mean_over_rounds"]["per_seed"]
            parts.append(f"{key} {_iv(d)} per seed ({_excl(d)})")
    out = ["- **First page only** (the number of pages browsed taken out): "
           + "; ".join(parts) + "."]
    key = "ease, social off - ease"
    if key in p and key in main["paired"]:
        first = p[key]["mean_over_rounds"]["per_seed"]
        every = main["paired"][key]["mean_over_rounds"]["per_seed"]
        if first["hi"] is not None and first["hi"] < 0 < every["lo"]:
            out.append("  So turning the social features off *raises* the all-pages entropy "
                       "only because users then browse more pages a round; page for page, "
                       "EASE shows a narrower mix without them (friends' watches, retrained "
                       "into EASE, widen it).")
    return out
