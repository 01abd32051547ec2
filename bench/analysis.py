"""Paired A/B and HTML report on a full MovieLens 100K run: how long they take.

Usage::

    .venv/bin/python bench/analysis.py --data ../shared/data/ml-100k [--run RUN_DIR]

Runs ``scenarios/movielens_feed.yaml`` for all 751 users with history (4 recommenders x 2
rounds; 943 users before the leak-free split of issue 16; the
utility brain) unless ``--run`` names such a run, then times ``recarena compare RUN``
(3 arms against the baseline, 7 metrics, overall and per user group; 2,000 bootstrap and
9,999 permutation resamples), the same with ``--no-groups``, and ``recarena report RUN``.
Writes the section between ``<!-- analysis:start -->`` and ``<!-- analysis:end -->`` of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402

START, END = "<!-- analysis:start -->", "<!-- analysis:end -->"


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv: Sequence[str] | None = None) -> int:
    from scenarios.loader import load_scenario
    from simulations.eval.compare import CompareOptions, compare_runs
    from simulations.record.trace import read_trace
    from simulations.report.html import write_report
    from simulations.run.runner import prepare, run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--run", help="an existing run of movielens_feed.yaml (all users)")
    ap.add_argument("--no-doc", action="store_true", help="print only")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if a.run:
            run_dir = Path(a.run)
        else:
            loaded = load_scenario(ROOT / "scenarios" / "movielens_feed.yaml")
            run_dir = run(prepare(loaded, users=751, data=a.data), Path(tmp) / "ml").run_dir
        events = len(read_trace(run_dir))
        t_groups, res = _timed(lambda: compare_runs([run_dir]))
        t_overall, _ = _timed(lambda: compare_runs([run_dir],
                                                   options=CompareOptions(groups=False)))
        t_report, path = _timed(lambda: write_report([run_dir], Path(tmp) / "report.html"))
        assert isinstance(res, dict) and isinstance(path, Path)
        size = path.stat().st_size / 1e6
    load = os.getloadavg()[0]
    seed = res["per_seed"][0]
    groups = len({r["group"] for r in seed["rows"]})
    tests = len(seed["rows"])
    body = [
        "## Paired A/B and HTML report: MovieLens 100K, all users",
        "",
        f"`movielens_feed.yaml` with {seed['users']} users, {len(seed['arms'])} recommenders "
        f"x 2 rounds ({events} trace events). Compare: {len(seed['arms']) - 1} arms against "
        f"{seed['baseline']}, 7 metrics, 2,000 bootstrap and 9,999 permutation resamples per "
        "difference (the trace is read once per command).",
        "",
        "| command | differences tested | seconds |",
        "| --- | ---: | ---: |",
        f"| `recarena compare RUN` (overall + {groups - 1} user groups) | {tests} | "
        f"{t_groups:.1f} |",
        f"| `recarena compare RUN --no-groups` | {tests // groups} | {t_overall:.1f} |",
        f"| `recarena report RUN` ({size:.1f} MB HTML) | - | {t_report:.1f} |",
        "",
        f"Load average at the end: {load:.1f} (other work shares the machine; the figures "
        "are wall-clock seconds).",
    ]
    if a.no_doc:
        print("\n".join(body))
    else:
        write_section(START, END, body, __file__, argv)
        print("\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
