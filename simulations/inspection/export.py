"""``recarena trace export``: tidy tables (one row per observation) for pandas users.

=============  ====================================================================
``decisions``  one row per item decided on: a feed item watched or skipped (with the
               rating and reason), or a conversation suggestion accepted or rejected
``pages``      one row per feed page or conversation turn: what was shown, what came
               of it, how the agent left it
``agents``     one row per agent, arm and round: traits and tastes, the session's
               outcome, the interview, LLM calls, tokens and cost
``llm_calls``  one row per model call: purpose, tokens, cost, cache hit, latency and,
               when kept, the rendered prompt and the raw answer
=============  ====================================================================

Every row names its event (``event_id``, for ``trace step``), and item columns come with
``title``, ``year`` and ``genres`` joined from the run's catalogue. CSV writes lists as
``a|b``; Parquet (needs pyarrow: ``pip install 'recarena[parquet]'``) keeps them as lists.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulations.inspection.index import TraceIndex
from simulations.inspection.render import step_of
from simulations.record.redact import Redactor

__all__ = ["FORMATS", "TABLES", "export_rows", "write_table"]

TABLES = ("decisions", "pages", "agents", "llm_calls")
FORMATS = ("csv", "parquet")
# Free text that came from a model or a config: masked again on the way out, in case the
# trace predates redaction.
_TEXT = ("reason", "feeling", "feedback", "said", "system", "prompt", "response",
         "interview_reason")
Row = dict[str, Any]
# Columns holding lists (CSV: a|b). Every other column holds a scalar or None.
_LISTS = frozenset({"genres", "items", "titles", "liked_genres", "disliked_genres",
                    "options"})


def _step(id_: str) -> str:
    base = step_of(id_)
    return base.rsplit("/", 1)[-1] if base else ""


def _item_cols(ix: TraceIndex, iid: Any) -> Row:
    it = ix.item(iid) if iid is not None else None
    return {"item": None if iid is None else str(iid), "title": it.title if it else None,
            "year": it.year if it else None, "genres": list(it.genres) if it else []}


def _step_of_id(id_: str) -> str:
    # Ids of item decisions are STEP/iITEM: the step is everything before the last '/'.
    return id_.rsplit("/", 1)[0]


def _where(ev: Row) -> Row:
    return {"arm": ev.get("arm"), "round": ev.get("round"), "user": ev.get("user"),
            "role": ev.get("role")}


def _decisions(ix: TraceIndex) -> list[Row]:
    rec = {id_: r for id_, r in ix.rows(
        "SELECT id, json_extract(doc, '$.recommender') FROM events "
        "WHERE type IN ('page', 'recommendation')")}
    rows: list[Row] = []
    for id_, arm, rnd, user, role, page, pos, item, action, rating, reason in ix.rows(
            "SELECT id, arm, round, user, role, json_extract(doc, '$.page'), "
            "json_extract(doc, '$.position'), CAST(json_extract(doc, '$.item') AS TEXT), "
            "json_extract(doc, '$.action'), json_extract(doc, '$.rating'), "
            "json_extract(doc, '$.reason') FROM events WHERE type = 'decision' "
            "AND json_type(doc, '$.item') IS NOT NULL ORDER BY line"):
        base = _step_of_id(id_)
        rows.append({"event_id": id_, "arm": arm, "round": rnd, "user": user, "role": role,
                     "step": base.rsplit("/", 1)[-1], "page": page, "turn": None,
                     "position": pos, **_item_cols(ix, item), "action": action,
                     "rating": rating, "reason": reason, "recommender": rec.get(base)})
    verdicts = {step_of(e["id"]): e for e in ix.of_type("verdict")}
    for r in ix.of_type("recommendation"):
        v = verdicts.get(r["id"]) or {}
        for pos, iid in enumerate(r.get("items", []), start=1):
            action = ("accept" if v.get("accept") == iid else "give_up" if v.get("give_up")
                      else "reject" if v else None)
            rows.append({"event_id": v.get("id", r["id"]), **_where(r), "step": _step(r["id"]),
                         "page": None, "turn": r.get("turn"), "position": pos,
                         **_item_cols(ix, iid), "action": action, "rating": None,
                         "reason": v.get("feedback"), "recommender": r.get("recommender")})
    return rows


def _pages(ix: TraceIndex) -> list[Row]:
    watched: dict[str, list[int]] = defaultdict(list)
    exits: dict[str, tuple[Any, Any]] = {}
    for id_, item, action, rating, feeling in ix.rows(
            "SELECT id, json_type(doc, '$.item'), json_extract(doc, '$.action'), "
            "json_extract(doc, '$.rating'), json_extract(doc, '$.feeling') FROM events "
            "WHERE type = 'decision'"):
        base = step_of(id_) or ""
        if item is None:
            exits[base] = (action, feeling)
        elif action == "watch":
            watched[base].append(rating)
    rows: list[Row] = []
    for p in ix.of_type("page"):
        items = [str(i) for i in p.get("items", [])]
        r = [x for x in watched.get(p["id"], []) if x is not None]
        ex = exits.get(p["id"], (None, None))
        rows.append({"event_id": p["id"], **_where(p), "step": _step(p["id"]),
                     "page": p.get("page"), "turn": None, "recommender": p.get("recommender"),
                     "items": items, "titles": [ix.title(i) for i in items],
                     "n_items": len(items), "n_watched": len(watched.get(p["id"], [])),
                     "mean_rating": round(sum(r) / len(r), 4) if r else None,
                     "exit": ex[0], "feeling": ex[1], "accepted": None, "give_up": None,
                     "feedback": None, "target_shown": None, "understood": None})
    verdicts = {step_of(e["id"]): e for e in ix.of_type("verdict")}
    for t in ix.of_type("recommendation"):
        items = [str(i) for i in t.get("items", [])]
        v = verdicts.get(t["id"]) or {}
        rows.append({"event_id": t["id"], **_where(t), "step": _step(t["id"]), "page": None,
                     "turn": t.get("turn"), "recommender": t.get("recommender"),
                     "items": items, "titles": [ix.title(i) for i in items],
                     "n_items": len(items), "n_watched": None, "mean_rating": None,
                     "exit": None, "feeling": None, "accepted": v.get("accept"),
                     "give_up": v.get("give_up"), "feedback": v.get("feedback"),
                     "target_shown": v.get("target_shown"),
                     "understood": json.dumps(t.get("understood"), ensure_ascii=False)})
    return rows


def _agents(ix: TraceIndex) -> list[Row]:
    profiles = {e["user"]: e for e in ix.of_type("profile")}
    interviews = {(e["arm"], e["round"], e["user"]): e for e in ix.of_type("interview")}
    llm: dict[tuple[Any, Any, Any], list[float]] = {}
    for arm, rnd, user, n, i, o, c in ix.rows(
            "SELECT arm, round, user, COUNT(*), SUM(json_extract(doc, '$.input_tokens')), "
            "SUM(json_extract(doc, '$.output_tokens')), SUM(json_extract(doc, '$.cost_usd')) "
            "FROM events WHERE type = 'llm_call' GROUP BY arm, round, user"):
        llm[(arm, rnd, user)] = [n, i or 0, o or 0, c or 0.0]
    rows: list[Row] = []
    for e in ix.of_type("session_end", "conversation_end"):
        p = profiles.get(e["user"]) or {}
        tr, ta, h = p.get("traits") or {}, p.get("tastes") or {}, p.get("history") or {}
        key = (e["arm"], e["round"], e["user"])
        iv = interviews.get(key) or {}
        n, i, o, c = llm.get(key, [0, 0, 0, 0.0])
        conv = e["type"] == "conversation_end"
        target = target_item = None
        if conv:
            start = ix.by_id(e["id"].rsplit("/", 1)[0] + "/start") or {}
            target = start.get("target")
            target_item = ix.item(target) if target is not None else None
        rows.append({
            "event_id": e["id"], **_where(e),
            "activity": tr.get("activity"), "conformity": tr.get("conformity"),
            "diversity": tr.get("diversity"), "liked_genres": ta.get("liked_genres", []),
            "disliked_genres": ta.get("disliked_genres", []), "history_n": h.get("n"),
            "history_rating_mean": h.get("rating_mean"),
            "pages": e.get("pages"), "shown": e.get("shown"), "watched": e.get("watched"),
            "left_early": e.get("left_early"), "end_reason": e.get("reason"),
            "satisfaction": iv.get("satisfaction"), "interview_reason": iv.get("reason"),
            "success": e.get("success") if conv else None,
            "turns": e.get("turns") if conv else None,
            "target": target, "target_title": target_item.title if target_item else None,
            "llm_calls": int(n), "input_tokens": int(i), "output_tokens": int(o),
            "cost_usd": round(float(c), 8)})
    return rows


def _llm_calls(ix: TraceIndex) -> list[Row]:
    rows: list[Row] = []
    for e in ix.of_type("llm_call"):
        vol = e.get("volatile") or {}
        req, resp = e.get("request"), e.get("response")
        system = prompt = options = response = None
        if req is not None:
            msgs = req.get("messages")
            if msgs is not None:
                system = "\n\n".join(c for r, c in msgs if r == "system") or None
                prompt = "\n\n".join(f"[{r}]\n{c}" for r, c in msgs if r != "system")
            else:
                prompt, options = req.get("prompt"), req.get("options")
        if resp is not None:
            response = resp["text"] if "text" in resp else json.dumps(resp.get("logprobs"))
        rows.append({"event_id": e["id"], **_where(e), "step": _step(e["id"]),
                     "purpose": e.get("purpose"), "kind": e.get("kind"),
                     "input_tokens": e.get("input_tokens"),
                     "output_tokens": e.get("output_tokens"), "cost_usd": e.get("cost_usd"),
                     "cached": vol.get("cached"), "latency_s": vol.get("latency_s"),
                     "attempts": vol.get("attempts"), "key": e.get("key"),
                     "prompt_kept": req is not None, "system": system, "prompt": prompt,
                     "options": options or [], "response": response})
    return rows


def export_rows(ix: TraceIndex, table: str) -> list[Row]:
    """The rows of one table (see the module doc), secrets masked in free text."""
    if table not in TABLES:
        raise ValueError(f"trace export: --table: one of {', '.join(TABLES)} (got {table!r})")
    rows = {"decisions": _decisions, "pages": _pages, "agents": _agents,
            "llm_calls": _llm_calls}[table](ix)
    red = Redactor.from_environment()
    for r in rows:
        for k in _TEXT:
            if isinstance(r.get(k), str):
                r[k] = red.text(r[k])
    return rows


def _columns(rows: Sequence[Row], table: str) -> list[str]:
    if rows:
        return list(rows[0])
    return {"decisions": ["event_id", "arm", "round", "user", "role", "step", "item"],
            "pages": ["event_id", "arm", "round", "user", "role", "step", "items"],
            "agents": ["event_id", "arm", "round", "user", "role"],
            "llm_calls": ["event_id", "arm", "round", "user", "role", "purpose"]}[table]



def write_table(rows: Sequence[Row], table: str, fmt: str, out: str) -> list[str]:
    """Write ``rows`` as CSV or Parquet to ``out`` (``-``: CSV to stdout); the columns."""
    cols = _columns(rows, table)
    if fmt == "csv":
        with contextlib.ExitStack() as stack:
            f = sys.stdout if out == "-" else stack.enter_context(
                Path(out).open("w", encoding="utf-8", newline=""))
            w = csv.writer(f)  # writes None as an empty field
            w.writerow(cols)
            lists = [k for k, c in enumerate(cols) if c in _LISTS]
            for r in rows:
                vals = [r.get(c) for c in cols]
                for k in lists:
                    vals[k] = "|".join(map(str, vals[k] or ()))
                w.writerow(vals)
        return cols
    if fmt != "parquet":
        raise ValueError(f"trace export: --format: csv or parquet (got {fmt!r})")
    if out == "-":
        raise ValueError("trace export: --out -: Parquet cannot go to stdout; name a file")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("trace export: --format parquet needs pyarrow: "
                         "pip install 'recarena[parquet]'") from None
    data = {c: [r.get(c) for r in rows] for c in cols}
    pq.write_table(pa.table(data), out)
    return cols
