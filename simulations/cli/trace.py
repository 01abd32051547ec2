"""``recarena trace ...``: read a run's trace in a terminal (rich) or as JSON.

Every command reads the run's SQLite index (built on demand, see
simulations.inspection.index), reads a trace cut off by a crash, and says where it ends.
Only stdlib, rich and sqlite3 load up front, so a command answers in well under a second.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_trace_commands"]


def _json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def _note_stderr(note: str | None) -> None:
    if note:
        print(f"recarena: {note}", file=sys.stderr)


def cmd_summary(a: argparse.Namespace) -> int:
    from simulations.inspection.index import open_index
    from simulations.inspection.render import console, print_paged
    from simulations.inspection.summary import render_summary, summarise

    with open_index(a.run_dir) as ix:
        s = summarise(ix)
    if a.json:
        _json(s)
        _note_stderr(s["trace"]["note"])
        return 0
    out = console()
    # Never paged (--no-pager is accepted and changes nothing): the summary is what a
    # reader looks at first, and it stays on screen after the command.
    print_paged(out, render_summary(s, out), pager=False)
    return 0


def cmd_agent(a: argparse.Namespace) -> int:
    from simulations.inspection.index import open_index
    from simulations.inspection.render import console, print_paged
    from simulations.inspection.story import agent_story, render_story

    with open_index(a.run_dir) as ix:
        s = agent_story(ix, a.agent_id)
    if a.json:
        _json(s)
        _note_stderr(s["trace"]["note"])
        return 0
    print_paged(console(), render_story(s), pager=not a.no_pager)
    return 0


def cmd_step(a: argparse.Namespace) -> int:
    from simulations.inspection.index import open_index
    from simulations.inspection.render import console, print_paged
    from simulations.inspection.step import render_step, step_detail

    with open_index(a.run_dir) as ix:
        s = step_detail(ix, a.event_id)
    if a.json:
        _json(s)
        _note_stderr(s["trace"]["note"])
        return 0
    print_paged(console(), render_step(s), pager=not a.no_pager)
    return 0


def cmd_search(a: argparse.Namespace) -> int:
    from simulations.inspection.index import open_index
    from simulations.inspection.render import console, print_paged
    from simulations.inspection.search import render_search, search_events

    with open_index(a.run_dir) as ix:
        r = search_events(ix, a.query, types=a.type or [], agent=a.agent, item=a.item,
                          where=a.where or [], limit=a.limit)
        if a.json:
            _json(r)
            _note_stderr(r["trace"]["note"])
            return 0
        parts = render_search(r, ix)
    print_paged(console(), parts, pager=not a.no_pager)
    return 0


def cmd_diff(a: argparse.Namespace) -> int:
    from simulations.inspection.diff import diff_runs, render_diff
    from simulations.inspection.index import open_index
    from simulations.inspection.render import console, print_paged

    with open_index(a.run_a) as ia, open_index(a.run_b) as ib:
        d = diff_runs(ia, ib)
        if a.json:
            _json(d)
            _note_stderr(d["trace_a"]["note"])
            _note_stderr(d["trace_b"]["note"])
            return 0
        parts = render_diff(d, ia, ib, limit=a.limit)
    print_paged(console(), parts, pager=not a.no_pager)
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from simulations.inspection.export import export_rows, write_table
    from simulations.inspection.index import open_index

    with open_index(a.run_dir) as ix:
        rows = export_rows(ix, a.table)
        note = ix.end.describe()
        run_dir = ix.run_dir
    if a.out:
        out = a.out
    else:
        folder = Path(run_dir) / "exports"
        folder.mkdir(exist_ok=True)
        out = str(folder / f"{a.table}.{a.format}")
    cols = write_table(rows, a.table, a.format, out)
    if a.json:
        _json({"table": a.table, "format": a.format, "path": out, "rows": len(rows),
               "columns": cols, "trace_note": note})
    elif out != "-":
        print(f"{a.table}: {len(rows):,} rows, {len(cols)} columns -> {out}")
    _note_stderr(note)
    return 0


RUN_HELP = "a run folder (or its trace.jsonl)"


def add_trace_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add the ``trace`` subcommands through ``command(name, help)``, which adds one
    subcommand to the ``trace`` parser and returns its parser."""
    def common(p: argparse.ArgumentParser, json_help: str = "print JSON instead",
               pages: bool = True) -> None:
        # Every trace command takes both, so a script can pass them to any of them.
        p.add_argument("--json", action="store_true", help=json_help)
        p.add_argument("--no-pager", action="store_true",
                       help="never page long output on a terminal" if pages else
                       "accepted like every trace command; this one never pages")

    s = command("summary", "config, population, metrics per round and role, LLM "
                       "usage, failures, stop reason")
    s.add_argument("run_dir", metavar="RUN", help=RUN_HELP)
    common(s, pages=False)
    s.set_defaults(fn=cmd_summary)

    ag = command("agent", "one agent's story: profile, pages or turns with "
                        "titles, memories, plans, model calls, exit, interview")
    ag.add_argument("run_dir", metavar="RUN", help=RUN_HELP)
    ag.add_argument("agent_id", help="the user id (42 or u42)")
    common(ag)
    ag.set_defaults(fn=cmd_agent)

    st = command("step", "one decision in full: rendered prompt, raw output, "
                        "parsed result, tokens, latency, cache hit")
    st.add_argument("run_dir", metavar="RUN", help=RUN_HELP)
    st.add_argument("event_id", help="an event id, e.g. ease/r1/u42/p2 or ease/r1/u42/p2/llm0")
    common(st)
    st.set_defaults(fn=cmd_step)

    se = command("search", "events by text (or item title), type, agent, item "
                        "and field values")
    se.add_argument("run_dir", metavar="RUN", help=RUN_HELP)
    se.add_argument("query", nargs="?", help="text in the event or in an item's title")
    se.add_argument("--type", action="append", metavar="TYPE",
                    help="event type (repeatable): decision, page, llm_call, ...")
    se.add_argument("--agent", help="user id")
    se.add_argument("--item", help="item id the event concerns")
    se.add_argument("--where", action="append", metavar="FIELD=VALUE",
                    help="field test (repeatable): rating=5, inputs.attempts>1, genres=Horror; "
                    "operators = != > >= < <=")
    se.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    common(se)
    se.set_defaults(fn=cmd_search)

    di = command("diff", "config, metric and per-agent decision differences of "
                        "two runs of the same users")
    di.add_argument("run_a", metavar="RUN_A", help="the first run folder")
    di.add_argument("run_b", metavar="RUN_B", help="the second run folder (same users)")
    di.add_argument("--limit", type=int, default=20, help="agents listed (default 20)")
    common(di)
    di.set_defaults(fn=cmd_diff)

    ex = command("export", "tidy tables (decisions, pages, agents, llm_calls) "
                        "as CSV or Parquet, with titles and genres")
    ex.add_argument("run_dir", metavar="RUN", help=RUN_HELP)
    ex.add_argument("--table", required=True,
                    choices=["decisions", "pages", "agents", "llm_calls"],
                    help="which table")
    ex.add_argument("--format", default="csv", choices=["csv", "parquet"],
                    help="file format (parquet needs pyarrow: the 'parquet' extra)")
    ex.add_argument("--out", "-o", help="file to write (default RUN/exports/TABLE.FORMAT; "
                    "'-': CSV to stdout)")
    common(ex, json_help="print what was written as JSON", pages=False)
    ex.set_defaults(fn=cmd_export)
