"""Scale on Ray: bench/scale.py's workload (N synthetic users x 5 pages, utility brain) on
the Ray executor with 2 local workers, as a ratio to the default executor.

Usage::

    .venv/bin/python bench/scale_ray.py --users 10000,30000 --repeat 3 --write

For each size the two executors run alternately (default, ray, default, ray, ...) so that
load on a shared machine falls on both alike; each run is a whole ``recarena run`` in a
child process (bench/scale.measure), the Ray one starting and stopping its own local Ray
instance (127.0.0.1, 2 workers) inside the run. The figure is the ratio of median wall
times, ray / default (below 1: Ray is faster). CPU time and peak RSS are the driver
process's only (Ray's workers are not its waited-for children), so only wall time is
compared. Results go to bench/results/scale_ray.json and, with ``--write``, to the section
between ``<!-- scale-ray:start -->`` and ``<!-- scale-ray:end -->`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the packages importable
    sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from bench.scale import measure  # noqa: E402

START, END = "<!-- scale-ray:start -->", "<!-- scale-ray:end -->"
RESULTS = ROOT / "bench" / "results" / "scale_ray.json"
RAY = ("--executor", "ray", "--workers", "2")


def compare(users: int, repeat: int) -> dict[str, Any]:
    """``repeat`` runs of each executor at ``users`` users, alternating."""
    walls: dict[str, list[float]] = {"default": [], "ray": []}
    loads: list[float] = []
    watch: dict[str, float] = {}
    for _ in range(repeat):
        for name, extra in (("default", ()), ("ray", RAY)):
            loads.append(os.getloadavg()[0])
            r = measure(users, extra)
            walls[name].append(r["wall_s"])
            watch[name] = r["watch_rate"]
            print(json.dumps({"users": users, "executor": name, **r}), flush=True)
    if watch["default"] != watch["ray"]:  # same seed: the executors must agree
        raise RuntimeError(f"watch rates differ at {users} users: {watch}")
    med = {k: statistics.median(v) for k, v in walls.items()}
    return {"users": users, "repeat": repeat, "default_wall_s": walls["default"],
            "ray_wall_s": walls["ray"], "default_median_s": med["default"],
            "ray_median_s": med["ray"], "ratio": round(med["ray"] / med["default"], 2),
            "load_avg_1m": [round(x, 1) for x in loads]}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", default="10000,30000", help="comma-separated sizes")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each executor per size")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--no-run", action="store_true",
                    help="measure nothing: write the doc from bench/results/scale_ray.json")
    a = ap.parse_args(argv)
    if a.no_run:
        rows = json.loads(RESULTS.read_text(encoding="utf-8"))
    else:
        rows = [compare(int(n), a.repeat) for n in a.users.split(",")]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    if a.write:
        body = ["## Scale on Ray: the same workload on 2 local Ray workers", "",
                "bench/scale.py's workload (synthetic users x 5 pages, utility brain, one "
                "arm, one round) with `--executor ray --workers 2` against the default "
                "executor, alternating runs; each run is the whole `recarena run` in a "
                "child process, the Ray one including starting and stopping its local "
                "Ray instance. Figure: median wall ray / median wall default (below 1: "
                "Ray faster). Same seed, so both runs must give the same metrics (checked "
                "on the watch rate).", "",
                "| users | runs each | default wall (s) | ray wall (s) | ratio ray/default "
                "| 1-min load average at the runs' starts |",
                "|---:|---:|---|---|---:|---|"]
        for r in rows:
            body.append(f"| {r['users']:,} | {r['repeat']} | "
                        f"{', '.join(str(x) for x in r['default_wall_s'])} | "
                        f"{', '.join(str(x) for x in r['ray_wall_s'])} | "
                        f"**{r['ratio']}** | {', '.join(str(x) for x in r['load_avg_1m'])} |")
        body += ["", "What it shows (measured 2026-12-02 with `bench/scale_ray.py --users "
                 "10000,30000 --repeat 3`; the command below only reassembles the table "
                 "when run with --no-run): on this 2-core machine, shared with other jobs "
                 "(load 3-6.6), Ray is slower at 10,000 users (x1.74; its wall times "
                 "spread 42-72 s) and close at 30,000 (x1.13). The ratio falls with size: "
                 "starting and stopping the local Ray instance costs a fixed few seconds, "
                 "and the agents' share of the work grows. The driver's own CPU time "
                 "drops by about a quarter (10,000 users: 27-30 s against 32-36 s; 30,000: "
                 "66-69 s against 89-93 s): the agents' step moves to the workers, while "
                 "the environment, recommender, trace writing (1.3 M events at 30,000 "
                 "users), metrics and trace index stay in the driver. With only 2 cores "
                 "for the driver and both workers, the workers' CPU competes with the "
                 "driver's instead of adding to it, and observations, actions and events "
                 "are pickled across processes; by Amdahl's law (the agents' step was "
                 "about a third of a run's CPU, docs/benchmarks.md 'Scale') 2 workers "
                 "could at best bring a run to about 0.83 of the default's wall time. "
                 "Ray pays off with more cores or nodes, and with LLM users, whose time "
                 "is spent waiting on endpoints in the workers. 100,000 users were not "
                 "run on Ray here (time)."]
        write_section(START, END, body, __file__, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
