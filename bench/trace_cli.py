"""Trace commands on a big trace: all 751 MovieLens 100K users with history x 4 recommenders
x 2 rounds (943 users before the leak-free split of issue 16).

Usage::

    .venv/bin/python bench/trace_cli.py --data ../shared/data/ml-100k
    .venv/bin/python bench/trace_cli.py --run runs/movielens_feed-...   # an existing run

Without ``--run`` it first makes the run (``recarena run scenarios/movielens_feed.yaml
--users 751``, about 280,000 events) in a temporary folder. Each command runs as a user
runs it (a fresh ``recarena`` process, Python start-up included, output to a file), three
times; the table shows the median wall time and the median CPU time (user + system) of
the process. The baseline is what a command would cost without the index: reading the
whole JSONL trace (``simulations.record.trace.read_trace``) and filtering it, in-process.
Writes the section between ``<!-- trace_cli:start -->`` and ``<!-- trace_cli:end -->`` of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the packages importable
    sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402

START, END = "<!-- trace_cli:start -->", "<!-- trace_cli:end -->"
RECARENA = [sys.executable, "-m", "simulations.cli.main"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _time(args: Sequence[str], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``recarena ARGS`` (stdout to a file)."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        with tempfile.TemporaryFile() as out:
            r = subprocess.run([*RECARENA, *args], stdout=out, stderr=subprocess.PIPE,
                               env=_env(), check=False)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if r.returncode != 0:
            raise SystemExit(f"recarena {' '.join(args)} failed: {r.stderr.decode()[-500:]}")
    return statistics.median(walls), statistics.median(cpus)


def _make_run(data: str, out: Path) -> None:
    r = subprocess.run([*RECARENA, "run", str(ROOT / "scenarios" / "movielens_feed.yaml"),
                        "--data", data, "--users", "751", "--out", str(out), "--quiet"],
                       env=_env(), check=False, capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"recarena run failed: {r.stderr.decode()[-500:]}")


@dataclass(frozen=True)
class Result:
    events: int
    trace_mb: float
    index_mb: float
    build: tuple[float, float]  # wall, CPU
    scan: tuple[float, float]
    rows: list[tuple[str, str, tuple[float, float]]]


def measure(run_dir: Path, repeats: int) -> Result:
    from simulations.inspection.index import INDEX_FILENAME, build_index, open_index
    from simulations.record.trace import read_trace

    trace = run_dir / "trace.jsonl"
    t0 = time.perf_counter()
    c0 = time.process_time()
    build_index(run_dir)
    build = (time.perf_counter() - t0, time.process_time() - c0)
    with open_index(run_dir) as ix:
        events = ix.end.events
        users = ix.users()
    agent = users[len(users) // 2]
    t0 = time.perf_counter()
    c0 = time.process_time()
    scanned = [e for e in read_trace(run_dir) if e.get("user") == agent]
    scan = (time.perf_counter() - t0, time.process_time() - c0)
    run = str(run_dir)
    with tempfile.TemporaryDirectory() as tmp:
        rows: list[tuple[str, str, tuple[float, float]]] = [
            ("agent", f"trace agent RUN {agent} --no-pager ({len(scanned)} events)",
             _time(["trace", "agent", run, agent, "--no-pager"], repeats)),
            ("agent", f"trace agent RUN {agent} --json",
             _time(["trace", "agent", run, agent, "--json"], repeats)),
            ("search", 'trace search RUN "Star Wars" (text or title, first 50)',
             _time(["trace", "search", run, "Star Wars", "--no-pager"], repeats)),
            ("search", "trace search RUN --type decision --where genres=Horror "
             "--where rating=5 (first 50)",
             _time(["trace", "search", run, "--type", "decision", "--where", "genres=Horror",
                    "--where", "rating=5", "--no-pager"], repeats)),
            ("search", 'trace search RUN "no such text" (scans every event, no match)',
             _time(["trace", "search", run, "no such text", "--no-pager"], repeats)),
            ("search", "trace search RUN --where satisfaction<5 --limit 100000 "
             "(JSON test on every event)",
             _time(["trace", "search", run, "--where", "satisfaction<5", "--limit", "100000",
                    "--no-pager"], repeats)),
            ("export", "trace export RUN --table decisions --format csv",
             _time(["trace", "export", run, "--table", "decisions", "--out",
                    f"{tmp}/d.csv"], repeats)),
            ("export", "trace export RUN --table decisions --format parquet",
             _time(["trace", "export", run, "--table", "decisions", "--format", "parquet",
                    "--out", f"{tmp}/d.parquet"], repeats)),
            ("export", "trace export RUN --table agents --format csv",
             _time(["trace", "export", run, "--table", "agents", "--out",
                    f"{tmp}/a.csv"], repeats)),
            ("summary", "trace summary RUN", _time(["trace", "summary", run], repeats)),
        ]
    return Result(events, trace.stat().st_size / 1e6,
                  (run_dir / INDEX_FILENAME).stat().st_size / 1e6, build, scan, rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", help="MovieLens 100K folder (to make the run)")
    p.add_argument("--run", help="an existing run folder instead of making one")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if a.run:
            run_dir = Path(a.run)
        elif a.data:
            run_dir = Path(tmp) / "run"
            t0 = time.perf_counter()
            _make_run(a.data, run_dir)
            print(f"made the run in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        else:
            p.error("give --data DIR (to make the run) or --run RUN_DIR")
        m = measure(run_dir, a.repeats)
    body = [
        "## Trace commands: 751 MovieLens users x 4 recommenders x 2 rounds",
        "",
        f"The trace of `recarena run scenarios/movielens_feed.yaml --users 751` "
        f"({m.events:,} events, {m.trace_mb:.0f} MB of JSONL). Each command runs as a "
        "user runs it: a fresh `recarena` process (Python start-up included), output to a "
        f"file, median of {a.repeats}. Target: under 2 s for `agent` and `search`.",
        "",
        "| command | what | wall s | CPU s |",
        "| --- | --- | ---: | ---: |",
        *(f"| {name} | `{what}` | {w:.2f} | {c:.2f} |" for name, what, (w, c) in m.rows),
        "",
        f"Index (`trace_index.sqlite`, {m.index_mb:.0f} MB) built at the end of the run: "
        f"{m.build[0]:.1f} s wall, {m.build[1]:.1f} s CPU (in-process). "
        f"Baseline without the index: reading the whole trace with `read_trace` and picking "
        f"one agent's events takes {m.scan[0]:.1f} s wall, {m.scan[1]:.1f} s CPU "
        "(in-process, no start-up), before any rendering.",
        "",
        "The machine is shared (2 CPUs, several engineers' jobs); wall time there includes "
        "waiting for a CPU, CPU time does not.",
    ]
    write_section(START, END, body, __file__, argv)
    print("\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
