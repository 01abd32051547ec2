"""``recarena trace diff``: how two runs differ: config, metrics, and what each agent did.

Steps are matched by (arm, round, user, step), so two runs of the same users (a baseline
and a new prompt, brain or recommender) line up decision by decision. Arms pair by name;
two runs without a common arm name but with as many arms pair in order (say, ``pop`` in
one run against ``ease`` in the other).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from rich.console import RenderableType
from rich.markup import escape
from rich.table import Table

from simulations.inspection.index import TraceIndex
from simulations.inspection.render import clip, fmt, step_of
from simulations.inspection.summary import run_metrics

__all__ = ["diff_runs", "render_diff"]

_TYPES = ("page", "decision", "interview", "decision_failure", "utterance", "verdict",
          "recommendation")
_FIELDS = ("action", "item", "rating", "items", "satisfaction", "text", "accept", "give_up",
           "feedback", "purpose")
Key = tuple[str, int, str, str]  # arm, round, user, step


def _flatten(x: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(x, dict):
        out: dict[str, Any] = {}
        for k, v in x.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(x, list) and any(isinstance(v, dict | list) for v in x):
        out = {}
        for i, v in enumerate(x):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: x}


def _steps(ix: TraceIndex) -> dict[Key, dict[str, Any]]:
    """What each agent did at each step, as comparable dicts."""
    cols = ", ".join(f"json_extract(doc, '$.{f}')" for f in _FIELDS)
    marks = ", ".join("?" * len(_TYPES))
    steps: dict[Key, dict[str, Any]] = {}
    for arm, rnd, user, id_, type_, *vals in ix.rows(
            f"SELECT arm, round, user, id, type, {cols} FROM events "
            f"WHERE type IN ({marks}) ORDER BY line", _TYPES):
        base = step_of(str(id_))
        if base is None or user is None:
            continue
        f = dict(zip(_FIELDS, vals, strict=True))
        s = steps.setdefault((str(arm), int(rnd or 0), str(user), base.rsplit("/", 1)[-1]), {})
        if type_ in ("page", "recommendation"):
            s["shown"] = json.loads(f["items"] or "[]")
        elif type_ == "decision" and f["item"] is not None:
            s.setdefault("decisions", []).append(
                [str(f["item"]), f["action"], f["rating"]])
        elif type_ == "decision":
            s["exit"] = f["action"]
        elif type_ == "interview":
            s["satisfaction"] = f["satisfaction"]
        elif type_ == "decision_failure":
            s["failed"] = f["purpose"]
        elif type_ == "utterance":
            s.setdefault("said", []).append(f["text"])
        elif type_ == "verdict":
            s["verdict"] = ("accept " + str(f["accept"]) if f["accept"] is not None
                            else "give up" if f["give_up"] else "reject")
    return steps


def _profiles(ix: TraceIndex) -> dict[str, str]:
    return {str(u): json.dumps({k: v for k, v in json.loads(d).items()
                                if k not in ("seq", "ts", "v", "id")}, sort_keys=True)
            for u, d in ix.rows("SELECT user, doc FROM events WHERE type = 'profile'")}


def _pair_arms(a: list[str], b: list[str]) -> list[tuple[str, str]]:
    common = [x for x in a if x in b]
    if common:
        return [(x, x) for x in common]
    return list(zip(a, b, strict=True)) if len(a) == len(b) else []


def diff_runs(ia: TraceIndex, ib: TraceIndex) -> dict[str, Any]:
    """Config, metric and per-agent decision differences of run B against run A."""
    ca = _flatten(ia.run_start().get("config") or {})
    cb = _flatten(ib.run_start().get("config") or {})
    config = [{"path": k, "a": ca.get(k), "b": cb.get(k)} for k in sorted(set(ca) | set(cb))
              if ca.get(k) != cb.get(k)]
    ma, mb = run_metrics(ia), run_metrics(ib)
    arms_a, arms_b = list(ma.get("arms", {})), list(mb.get("arms", {}))
    pairs = _pair_arms(arms_a, arms_b)
    metrics: dict[str, Any] = {}
    for xa, xb in pairs:
        oa, ob = ma["arms"][xa], mb["arms"][xb]
        rows: dict[str, Any] = {}
        for scope, va, vb in [("overall", oa["overall"], ob["overall"]),
                              *((f"round {r}", oa["rounds"].get(r, {}), ob["rounds"].get(r, {}))
                                for r in sorted(set(oa["rounds"]) | set(ob["rounds"])))]:
            rows[scope] = {k: {"a": va.get(k), "b": vb.get(k),
                               "delta": (round(vb[k] - va[k], 6) if isinstance(va.get(k), float
                                         | int) and isinstance(vb.get(k), float | int)
                                         else None)}
                           for k in sorted(set(va) | set(vb)) if not isinstance(
                               va.get(k, vb.get(k)), dict)}
        metrics[xa if xa == xb else f"{xa} vs {xb}"] = rows
    sa, sb = _steps(ia), _steps(ib)
    arm_b = dict(pairs)
    sb_mapped = {}
    for xa, xb in pairs:
        sb_mapped.update({(xa, *k[1:]): v for k, v in sb.items() if k[0] == xb})
    sa = {k: v for k, v in sa.items() if k[0] in arm_b}
    users_a = {k[2] for k in sa}
    users_b = {k[2] for k in sb_mapped}
    both = users_a & users_b
    pa, pb = _profiles(ia), _profiles(ib)
    decisions = []
    per_agent: dict[str, dict[str, Any]] = defaultdict(lambda: {"steps": 0, "differing": 0})
    for key in sorted(set(sa) | set(sb_mapped), key=lambda k: (k[2], k[0], k[1], k[3])):
        if key[2] not in both:
            continue
        a, b = sa.get(key), sb_mapped.get(key)
        pa_ = per_agent[key[2]]
        pa_["steps"] += 1
        if a != b:
            pa_["differing"] += 1
            d = {"agent": key[2], "arm": key[0], "round": key[1], "step": key[3],
                 "a": a, "b": b}
            pa_.setdefault("first", d)
            decisions.append(d)
    agents = [{"agent": u, **v, "profile_differs": pa.get(u) != pb.get(u)}
              for u, v in sorted(per_agent.items(), key=lambda kv: _num(kv[0]))]
    return {
        "a": str(ia.run_dir), "b": str(ib.run_dir),
        "trace_a": ia.end.as_dict(), "trace_b": ib.end.as_dict(),
        "config": config, "arms": [list(p) for p in pairs],
        "unpaired_arms": {"a": [x for x in arms_a if x not in arm_b],
                          "b": [x for x in arms_b if x not in arm_b.values()]},
        "metrics": metrics,
        "agents": {"compared": len(both), "only_a": sorted(users_a - users_b, key=_num),
                   "only_b": sorted(users_b - users_a, key=_num),
                   "differing": sum(1 for x in agents if x["differing"]),
                   "profiles_differ": sum(1 for x in agents if x["profile_differs"]),
                   "steps_compared": sum(x["steps"] for x in agents),
                   "steps_differing": len(decisions)},
        "per_agent": agents, "decisions": decisions,
    }


def _num(u: str) -> tuple[int, str]:
    return (int(u), "") if u.isdigit() else (1 << 62, u)


def _step_text(s: dict[str, Any] | None, title: Any) -> str:
    if s is None:
        return "(no such step)"
    bits = []
    if "decisions" in s:
        w = [f"{title(i)} ★{r}" for i, a, r in s["decisions"] if a == "watch"]
        bits.append(f"watched {'; '.join(w)}" if w else "watched nothing")
        bits.append(f"of {len(s['decisions'])}")
    elif "shown" in s:
        bits.append("shown " + "; ".join(title(i) for i in s["shown"]))
    if "exit" in s:
        bits.append(f"→ {s['exit']}")
    if "satisfaction" in s:
        bits.append(f"satisfaction {s['satisfaction']}")
    if "said" in s:
        bits.append("says " + " / ".join(clip(x, 80) for x in s["said"]))
    if "verdict" in s:
        v = s["verdict"]
        bits.append(f"accepts {title(v[7:])}" if v.startswith("accept ") else v)
    if "failed" in s:
        bits.append(f"failed ({s['failed']})")
    return clip(", ".join(bits), 220)


def _delta(v: Any) -> str:
    return "-" if v is None else "0" if v == 0 else f"{v:+.3f}"


def render_diff(d: dict[str, Any], ia: TraceIndex, ib: TraceIndex,
                limit: int = 20) -> list[RenderableType]:
    from simulations.analysis.outcomes import registered

    labels = {k: v for o in registered().values() for k, v in o.labels.items()}
    parts: list[RenderableType] = []
    for side, key in (("A", "trace_a"), ("B", "trace_b")):
        if d[key]["note"]:
            parts.append(f"[yellow]{side}: {escape(d[key]['note'])}[/]")
    parts.append(f"A: {escape(d['a'])}\nB: {escape(d['b'])}")
    if d["config"]:
        parts.append(f"config differences ({len(d['config'])}):")
        t = Table()
        for col in ("field", "A", "B"):
            t.add_column(col, overflow="fold")
        for c in d["config"][:max(limit, 20)]:
            t.add_row(escape(c["path"]), escape(clip(json.dumps(c["a"]), 70)),
                      escape(clip(json.dumps(c["b"]), 70)))
        parts.append(t)
        if len(d["config"]) > max(limit, 20):
            parts.append(f"... and {len(d['config']) - max(limit, 20)} more (--json for all)")
    else:
        parts.append("config: identical")
    if not d["arms"]:
        parts.append("[yellow]no arms to pair: the runs share no recommender name and have "
                     "different numbers of arms[/]")
    for arm, scopes in d["metrics"].items():
        rounds = [k for k in scopes if k != "overall"]
        t = Table(title=f"metrics: {arm}", title_justify="left")
        for col in ("metric", "A", "B", "B - A", *(f"{r}: B - A" for r in rounds)):
            t.add_column(col, justify="left" if col == "metric" else "right")
        for n, v in scopes["overall"].items():
            t.add_row(labels.get(n, n), fmt(v["a"]), fmt(v["b"]), _delta(v["delta"]),
                      *(_delta(scopes[r].get(n, {}).get("delta")) for r in rounds))
        parts.append(t)
    ag = d["agents"]
    parts.append(f"agents: {ag['compared']} in both runs ({len(ag['only_a'])} only in A, "
                 f"{len(ag['only_b'])} only in B); {ag['differing']} decided differently in "
                 f"{ag['steps_differing']} of {ag['steps_compared']} steps"
                 + (f"; {ag['profiles_differ']} have different profiles"
                    if ag["profiles_differ"] else ""))
    if d["decisions"]:
        t = Table(title=f"first differing step of each agent (up to {limit})",
                  title_justify="left")
        for col in ("agent", "step", "differing", "A", "B"):
            t.add_column(col, overflow="fold")
        shown = 0
        for x in d["per_agent"]:
            if not x["differing"] or shown >= limit:
                continue
            shown += 1
            f = x["first"]
            t.add_row(x["agent"], f"{f['arm']} r{f['round']} {f['step']}",
                      f"{x['differing']}/{x['steps']}", escape(_step_text(f["a"], ia.title)),
                      escape(_step_text(f["b"], ib.title)))
        parts.append(t)
    return parts
