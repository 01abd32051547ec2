"""``recarena trace summary``: what a run was and how it went, at a glance."""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

from simulations.analysis.metrics import fmt_metric
from simulations.analysis.outcomes import metric_event_types, no_plugin_note, outcomes_for
from simulations.inspection.index import TraceIndex
from simulations.inspection.render import clip

__all__ = ["render_summary", "run_metrics", "summarise"]



def _metric_types() -> tuple[str, ...]:
    """The events metrics are computed from: every environment's, its outcome plug-in says
    which (simulations/analysis/outcomes.py)."""
    return ("run_start", *metric_event_types(), "decision_failure")


def _agrees(metrics: Any, ix: TraceIndex) -> bool:
    """Whether ``summary.json``'s metrics are those of the trace's ``metric`` events."""
    if not (isinstance(metrics, dict) and isinstance(metrics.get("arms"), dict)):
        return False
    seen = 0
    for ev in ix.iter_docs("type = 'metric'"):
        arm = metrics["arms"].get(ev.get("arm")) or {}
        scope = arm.get("overall") if ev.get("round") is None else \
            (arm.get("rounds") or {}).get(str(ev.get("round")))
        if not isinstance(scope, dict) or scope.get(ev.get("name")) != ev.get("value"):
            return False
        seen += 1
    return seen > 0


def run_metrics(ix: TraceIndex) -> dict[str, Any]:
    """Metrics of the run, overall, per round and per role.

    A complete run's ``summary.json`` holds them (the runner computed them from this
    trace); they are used when they agree with the trace's own ``metric`` events, else
    (a cut-off trace, an edited summary) they are computed from the events there are.
    ``source`` says which.
    """
    summary = ix.run_dir / "summary.json"
    metrics: Any = None
    if ix.end.complete and summary.is_file():
        with contextlib.suppress(ValueError):
            metrics = json.loads(summary.read_text(encoding="utf-8")).get("metrics")
    if _agrees(metrics, ix):
        metrics["source"] = "summary.json, checked against the trace's metric events"
    else:
        from simulations.analysis.metrics import compute_metrics

        types = _metric_types()
        marks = ", ".join("?" * len(types))
        metrics = compute_metrics(ix.iter_docs(f"type IN ({marks})", types))
        metrics["source"] = "computed from the trace"
    # Arms in the order they ran (summary.json sorts its keys).
    order = [a for (a,) in ix.rows("SELECT arm FROM events WHERE type = 'round_start' "
                                   "GROUP BY arm ORDER BY MIN(line)")]
    arms = metrics.get("arms", {})
    metrics["arms"] = {a: arms[a] for a in [*order, *sorted(set(arms) - set(order))]
                       if a in arms}
    return metrics


def _config_digest(start: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    cfg = start.get("config") or {}
    env = cfg.get("environment") or {}
    kind = env.get("kind", start.get("environment", "feed"))
    plugin = outcomes_for(kind)
    if plugin is not None and plugin.setting is not None:
        setting = plugin.setting(env)
    elif "settings" in env:  # a plug-in environment: its rounds and its own settings
        setting = {"rounds": env.get("rounds"), **(env.get("settings") or {})}
    else:
        setting = {k: v for k, v in env.items() if k != "kind"}
    llm = cfg.get("llm") or {}
    pop = cfg.get("population") or {}
    roles = []
    for r in pop.get("roles") or [{"role": pop.get("role") or {}}]:
        role = r.get("role") or {}
        roles.append({"name": role.get("name"), "brain": (role.get("brain") or {}).get("kind"),
                      "planner": (role.get("planner") or {}).get("kind"),
                      "share": r.get("share"), "count": r.get("count")})
    digest = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()
    return {
        "scenario": start.get("scenario"), "description": cfg.get("description"),
        "seed": start.get("seed"), "config_hash": manifest.get("config_hash", digest),
        "dataset": start.get("dataset"), "n_items": start.get("n_items"),
        "n_users": start.get("n_users"), "population": start.get("population"),
        "sampling": pop.get("sampling"),
        "history_interactions": start.get("history_interactions"),
        "environment": {"kind": kind, **setting},
        "roles": roles,
        "events": cfg.get("events") or [],
        "llm": ({k: llm.get(k) for k in ("backend", "model", "temperature", "max_tokens")}
                if llm else None),
        "keep_prompts": (cfg.get("output") or {}).get("keep_prompts", True),
        "git_commit": manifest.get("git_commit"),
        "command": manifest.get("command"),
    }


def _llm(ix: TraceIndex) -> dict[str, Any] | None:
    rows = ix.rows(
        "SELECT json_extract(doc, '$.purpose'), COUNT(*), "
        "SUM(json_extract(doc, '$.input_tokens')), SUM(json_extract(doc, '$.output_tokens')), "
        "SUM(json_extract(doc, '$.cost_usd')), SUM(json_extract(doc, '$.volatile.cached')), "
        "SUM(json_extract(doc, '$.volatile.latency_s')) "
        "FROM events WHERE type = 'llm_call' GROUP BY 1 ORDER BY 1")
    if not rows:
        return None
    by = {str(p): {"calls": n, "input_tokens": i or 0, "output_tokens": o or 0,
                   "cost_usd": round(c or 0.0, 6), "cached": int(h or 0),
                   "latency_s": round(lat or 0.0, 3)}
          for p, n, i, o, c, h, lat in rows}
    total = {k: sum(v[k] for v in by.values()) for k in next(iter(by.values()))}
    total["cost_usd"] = round(total["cost_usd"], 6)
    total["latency_s"] = round(total["latency_s"], 3)
    usage = ix.first("llm_usage")
    return {"total": total, "by_purpose": by,
            "charged": ({k: usage.get(k) for k in ("input_tokens", "output_tokens", "cost_usd")}
                        if usage else None)}


def _failures(ix: TraceIndex) -> dict[str, Any]:
    rows = ix.rows("SELECT arm, json_extract(doc, '$.purpose'), COUNT(*) FROM events "
                   "WHERE type = 'decision_failure' GROUP BY 1, 2 ORDER BY 1, 2")
    examples = [{"id": e["id"], "error": e.get("error")}
                for e in ix.docs("type = 'decision_failure'", limit=3)]
    return {"total": sum(n for *_, n in rows),
            "by": [{"arm": a, "purpose": p, "count": n} for a, p, n in rows],
            "examples": examples}


def _item_updates(ix: TraceIndex) -> dict[str, dict[str, int]]:
    """Per arm and round, how many item descriptions the arm's item agents rewrote."""
    out: dict[str, dict[str, int]] = {}
    for arm, rnd, changed in ix.rows(
            "SELECT arm, round, json_extract(doc, '$.changed') FROM events "
            "WHERE type = 'item_update' ORDER BY line"):
        out.setdefault(str(arm), {})[str(rnd)] = int(changed)
    return out


def summarise(ix: TraceIndex) -> dict[str, Any]:
    """Everything ``trace summary`` shows, as JSON-ready data."""
    start = ix.run_start()
    manifest_p = ix.run_dir / "manifest.json"
    try:
        manifest = json.loads(manifest_p.read_text(encoding="utf-8")) \
            if manifest_p.is_file() else {}
    except ValueError:
        manifest = {}
    pop = ix.first("population") or {}
    cfg = start.get("config") or {}
    arms: dict[str, list[str]] = {}
    for ev in ix.of_type("round_start"):
        arms.setdefault(str(ev.get("arm")), []).append(str(ev.get("recommender")))
    end = ix.first("run_end") if ix.end.status is not None else None
    return {
        "run_dir": str(ix.run_dir), "scenario": start.get("scenario"), "seed": start.get("seed"),
        "config": _config_digest(start, manifest),
        "population": pop.get("roles") or {},
        "recommenders": [{**r, "rounds_run": len(arms.get(str(r.get("name")), [])),
                          "models": sorted(set(arms.get(str(r.get("name")), [])))}
                         for r in cfg.get("recommenders") or []],
        "metrics": run_metrics(ix),
        "llm": _llm(ix),
        "failures": _failures(ix),
        "status": ix.end.status or ("truncated" if ix.end.cut_line else "incomplete"),
        "reason": ix.end.reason or None,
        "elapsed_s": end.get("elapsed_s") if end else None,
        "trace": ix.end.as_dict(),
        "events": ix.end.events,
        "event_counts": ix.counts(),
        # Only runs whose scenario has item agents say so: other summaries stay as they were.
        **({"item_updates": up} if (up := _item_updates(ix)) else {}),
    }


def _metric_table(title: str, labels: dict[str, str],
                  rows: list[tuple[str, dict[str, Any], bool]],
                  metrics: dict[str, Any]) -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column("recommender", style="bold")
    for label in labels.values():
        t.add_column(label, justify="right")
    for name, m, dim in rows:
        t.add_row(name, *(fmt_metric(metrics, k, m.get(k)) for k in labels),
                  style="dim" if dim else None)
    return t


def render_summary(s: dict[str, Any], out: Console) -> list[RenderableType]:
    from simulations.analysis.metrics import labels_for
    from simulations.report.summary_table import metrics_table

    c = s["config"]
    parts: list[RenderableType] = []
    if s["trace"]["note"]:
        parts.append(f"[yellow]{s['trace']['note']}[/]")
    status = s["status"] + (f" ({s['reason']})" if s["reason"] else "")
    if not c["scenario"]:
        parts.append(f"status [bold]{status}[/] — {s['events']:,} events; no run_start "
                     "event, so no configuration or metrics")
        return parts
    parts.append(f"[bold]{c['scenario']}[/] seed {c['seed']} — status [bold]{status}[/]"
                 + (f" in {s['elapsed_s']:.1f} s" if s["elapsed_s"] else "")
                 + f" — {s['events']:,} events")
    if c.get("description"):
        parts.append(f"[dim]{clip(c['description'], 300)}[/]")
    env = c["environment"]
    setting = ", ".join(f"{k} {v}" for k, v in env.items() if k != "kind" and v is not None)
    parts.append(f"config {c['config_hash'][:12]}: {c['dataset']} ({c['n_items']} items, "
                 f"{c['n_users']} users, {c['history_interactions']} history ratings); "
                 f"{env['kind']}: {setting}")
    if c["events"]:
        parts.append("scripted events: " + "; ".join(
            ", ".join(f"{k} {v}" for k, v in e.items()) for e in c["events"]))
    brains = {r["name"]: f"{r['brain']} brain, {r['planner']} planner" for r in c["roles"]}
    pop = ", ".join(f"{n} {r} ({brains.get(r, '?')})" for r, n in s["population"].items())
    parts.append(f"population: {c['population']} users: {pop or 'no population event'}")
    recs = "; ".join(
        f"{r.get('name')} = {r.get('model')}"
        + (f" {json.dumps(r['params'])}" if r.get("params") else "")
        + (" (retrains)" if r.get("retrain") else "")
        + ("" if r["rounds_run"] else " [not run]") for r in s["recommenders"])
    parts.append(f"recommenders: {recs}")
    if c["llm"]:
        parts.append("llm: " + ", ".join(f"{k} {v}" for k, v in c["llm"].items())
                     + ("" if c["keep_prompts"] else "; prompts not kept"))
    m = s["metrics"]
    labels = labels_for(m.get("environment", "feed"))
    if outcomes_for(m.get("environment", "feed")) is None:
        parts.append(f"[yellow]{escape(no_plugin_note(str(m.get('environment'))))}[/]")
    overall: list[tuple[str, dict[str, Any], bool]] = []
    rounds: list[tuple[str, dict[str, Any], bool]] = []
    for arm, am in m.get("arms", {}).items():
        overall.append((arm, am["overall"], False))
        roles = am.get("roles", {})
        if len(roles) > 1:
            overall += [(f"  {arm} / {role}", rm, True) for role, rm in roles.items()]
        rounds += [(f"{arm} r{r}", rm, False) for r, rm in am.get("rounds", {}).items()]
    if overall:
        parts.append(metrics_table(m, "metrics (overall, and per role)"))
        parts.append(_metric_table("metrics per round", labels, rounds, m))
        parts.append(f"[dim]metrics: {m.get('source', '')}[/]")
    else:
        parts.append("no metrics: no sessions in the trace")
    llm = s["llm"]
    if llm:
        t = Table(title="LLM calls", title_justify="left")
        for col in ("purpose", "calls", "cache hits", "tokens in", "tokens out", "cost $",
                    "latency s"):
            t.add_column(col, justify="right" if col != "purpose" else "left")
        for p, v in [*llm["by_purpose"].items(), ("total", llm["total"])]:
            t.add_row(p, str(v["calls"]), str(v["cached"]), f"{v['input_tokens']:,}",
                      f"{v['output_tokens']:,}", f"{v['cost_usd']:.4f}",
                      f"{v['latency_s']:.1f}", style="bold" if p == "total" else None)
        parts.append(t)
        if llm["charged"]:
            ch = llm["charged"]
            parts.append(f"charged against the budget: {ch['input_tokens']:,} tokens in, "
                         f"{ch['output_tokens']:,} out, ${ch['cost_usd']:.4f}")
    if s.get("item_updates"):
        parts.append("item agents, descriptions rewritten after each round: " + "; ".join(
            f"{arm} " + ", ".join(f"r{r} {n}" for r, n in rounds.items())
            for arm, rounds in s["item_updates"].items()))
    f = s["failures"]
    if f["total"]:
        parts.append(f"[red]decision failures: {f['total']}[/] (" + ", ".join(
            f"{x['arm']} {x['purpose']} {x['count']}" for x in f["by"]) + ")")
        parts += [f"  {x['id']}: {clip(x['error'], 150)}" for x in f["examples"]]
    else:
        parts.append("decision failures: none")
    parts.append("[dim]events: " + ", ".join(f"{k} {v:,}"
                                            for k, v in s["event_counts"].items()) + "[/]")
    return parts
