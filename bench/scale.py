"""Scale: N synthetic users x 5 pages with the utility brain, one arm (pop), one round.

Usage::

    .venv/bin/python bench/scale.py --users 10000,100000 [--before bench/results/scale_before.json]

Each size runs ``recarena run`` in a child process (the whole command: data generation,
agents, simulation, trace, metrics from the trace, trace index); wall time is measured
around the child; its CPU time (user + system) and peak resident memory come from
``os.wait4`` (the child's own ``ru_utime``, ``ru_stime``, ``ru_maxrss``). On a shared
machine CPU time is the steadier figure. Users stay on the feed for all five pages (exit
disabled), so a run makes exactly users x 5 pages. Results go to
bench/results/scale_LABEL.json and, with ``--write``, to the section between
``<!-- scale:start -->`` and ``<!-- scale:end -->`` of docs/benchmarks.md (with the
``--before`` results beside them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the packages importable
    sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402

START, END = "<!-- scale:start -->", "<!-- scale:end -->"
RESULTS = ROOT / "bench" / "results"

ROLE = """kind: role
name: scale_viewer
description: The synthetic viewer with leaving disabled, so every user sees every page.
memory:
  short_term_window: 8
planner:
  kind: static
brain:
  kind: utility
  params:
    watch_threshold: 0.5
    exit_base: -50.0
"""

SCENARIO = """kind: scenario
name: scale
seed: 7
dataset:
  source: synthetic
  history_fraction: 0.8
  synthetic:
    n_users: {users}
    n_items: 2000
    n_genres: 10
    history_mean: 30
population:
  role: role.yaml
recommenders:
  - name: pop
    model: pop
environment:
  kind: feed
  items_per_page: 4
  max_pages: 5
  rounds: 1
metrics: [watch_rate, mean_rating, exit_page, satisfaction, coverage, gini, genre_entropy]
output:
  dir: runs
"""


def measure(users: int, extra: Sequence[str] = ()) -> dict[str, Any]:
    """One child run of ``users`` users: wall time, peak RSS, trace size, events.

    ``extra``: more ``recarena run`` arguments (bench/scale_ray.py: ``--executor ray``).
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "role.yaml").write_text(ROLE, encoding="utf-8")
        scenario = folder / "scale.yaml"
        scenario.write_text(SCENARIO.format(users=users), encoding="utf-8")
        out = folder / "run"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "simulations.cli.main", "run", str(scenario), "--out",
               str(out), "--quiet", "--json", *extra]
        t0 = time.perf_counter()
        with (folder / "stdout").open("wb") as so, (folder / "stderr").open("wb") as se:
            proc = subprocess.Popen(cmd, stdout=so, stderr=se, env=env, cwd=folder)
            # wait4 gives this child's own peak (RUSAGE_CHILDREN is the maximum over
            # every child so far).
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
        if proc.returncode != 0:
            err = (folder / "stderr").read_text(encoding="utf-8")[-2000:]
            raise RuntimeError(f"run of {users} users failed ({proc.returncode}): {err}")
        res = json.loads((folder / "stdout").read_text(encoding="utf-8"))
        trace = out / "trace.jsonl"
        return {"users": users, "wall_s": round(wall, 1),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
                "peak_rss_mib": round(usage.ru_maxrss / 1024),
                "trace_mb": round(trace.stat().st_size / 1e6, 1), "events": res["events"],
                "watch_rate": res["metrics"]["arms"]["pop"]["overall"]["watch_rate"]}


def _table(rows: list[dict[str, Any]], label: str) -> list[str]:
    def n(v: Any) -> str:
        return "-" if v is None else f"{v:,}" if isinstance(v, int) else str(v)

    out = [f"| {label} | users | wall (s) | CPU (s) | peak RSS (MiB) | trace (MB) | events "
           "| note |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r.get('label', label)} | {n(r['users'])} | {n(r['wall_s'])} | "
                   f"{n(r.get('cpu_s'))} | {n(r['peak_rss_mib'])} | {n(r['trace_mb'])} | "
                   f"{n(r['events'])} | {r.get('note', '')} |")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", default="10000,100000", help="comma-separated sizes")
    ap.add_argument("--label", default="after", help="name of the results file")
    ap.add_argument("--before", help="results JSON of an earlier build to show beside")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--no-run", action="store_true",
                    help="measure nothing: write the doc from bench/results/scale_LABEL.json")
    a = ap.parse_args(argv)
    results = RESULTS / f"scale_{a.label}.json"
    if a.no_run:
        rows = json.loads(results.read_text(encoding="utf-8"))
    else:
        rows = []
        for n in (int(x) for x in a.users.split(",")):
            r = measure(n)
            print(json.dumps(r), flush=True)
            rows.append(r)
        RESULTS.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    if a.write:
        before = json.loads(Path(a.before).read_text(encoding="utf-8")) if a.before else []
        both = [{**r, "label": "before"} for r in before] + [{**r, "label": a.label}
                                                             for r in rows]
        body = ["## Scale: synthetic users x 5 pages, utility brain, default executor", "",
                "One arm (pop), one round, 4 items a page, leaving disabled so every user "
                "sees all 5 pages; the whole `recarena run` in a child process (data, "
                "agents, simulation, trace, metrics, trace index). Targets at 100,000 "
                "users: wall <= 10 min on 2 cores, peak RSS <= 4 GiB.", "",
                *_table(both, "build"), "",
                "What dominated memory (py-spy and tracemalloc on 3,000 and 10,000 users; "
                "before = commit 7c7a401): (1) the run's end read the whole trace into a "
                "list of dicts (`read_trace`) for the metrics and the 'every decision "
                "failed' check: about 10x the trace's size, 15+ GiB at 100,000 users; now "
                "one streamed pass (`iter_trace` -> `compute_metrics`, which keeps one tuple "
                "per genre combination instead of each event's list); (2) the trace index "
                "staged every line in an in-memory SQLite temp table "
                "(`temp_store=MEMORY`), now on disk; (3) a page for all users was scored "
                "as one dense users x items float64 matrix, copied several times by "
                "`top_k` (1.6 GB a copy at 100,000 x 2,000): `Recommender.recommend` now "
                "scores 4,096 users at a time (rows are independent: the same pages). "
                "What remains grows with users: agents' short-term memories and ratings, "
                "the environment's shown items, and one page's observations and actions. "
                "CPU (py-spy, 3,000 users): the agents' step 33% (utility brain 15%), "
                "data and item embeddings (`prepare`: SVD and ridge) 27%, trace writing "
                "10%, the feed's bookkeeping 8%, metrics 8%, imports 8%; nothing "
                "dominates. Wall times were taken on a machine shared with four other "
                "jobs (load average 10-14 on 2 CPUs), so they overstate the time a quiet "
                "machine needs; CPU time is the steadier figure.", "",
                "Verdict at 100,000 users: both targets met. On the current code (commit "
                "ecee45c, last row) 302 s of wall (5.0 min, target 10) and 295 s of CPU on "
                "a nearly idle machine (load 1.7), peak RSS 2.8 GiB (target 4 GiB; before: "
                "over 15 GiB, never finished). The 240 MiB more than the c567687 row are a "
                "step's agent events, now held until the step ends so that the trace is in "
                "the same order under every executor (docs/scaling.md). The 32-minute row "
                "was taken under a load of 10-14 and shows the machine, not the code. "
                "Each row was measured with `bench/scale.py --users N --label L` (the "
                "command below only assembles the table)."]
        write_section(START, END, body, __file__, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
