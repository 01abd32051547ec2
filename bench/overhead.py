"""Framework overhead: all MovieLens 100K users x 5 pages x 4 items, utility brain, EASE;
and the conversation environment (all users, 5 items a turn, up to 6 turns).

Usage::

    .venv/bin/python bench/overhead.py --data ../shared/data/ml-100k
    .venv/bin/python bench/overhead.py --data ../shared/data/ml-100k --before /tmp/base

``--before DIR`` also measures the code checked out in DIR (``git archive COMMIT | tar -x
-C DIR``) with this script, each checkout in its own child process, alternating.

Users are kept on the feed for all five pages (exit disabled) so the number of agent-pages
is exactly users x pages. In the conversation, an agent-turn is one observation answered
(the opening request or a verdict on a turn's recommendations). Wall time covers the
simulation (graph, recommender, brain, memory, trace writing, metrics from the trace),
not data loading, which is reported apart.
Writes the section between ``<!-- overhead:start -->`` and ``<!-- overhead:end -->`` of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
# --measure under --before: import the packages (and scenarios) of another checkout.
ROOT = Path(os.environ.get("RECARENA_BENCH_CODE") or HERE.parents[1])
# First on the path, and without bench/ itself (bench/memory.py would shadow memory/).
sys.path[:] = [str(ROOT), str(HERE.parents[1]),
               *(p for p in sys.path if p not in (str(ROOT), str(HERE.parent)))]

START, END = "<!-- overhead:start -->", "<!-- overhead:end -->"


def _engine() -> Any:
    """``prepare``, ``run`` and ``read_trace`` of the code measured: this tree's layout
    (simulations/run/, simulations/record/) or, under ``--before``, an older one's."""
    import importlib
    import types

    try:
        runner = importlib.import_module("simulations.run.runner")
        trace = importlib.import_module("simulations.record.trace")
    except ModuleNotFoundError:  # before simulations/ was split into rooms
        runner = importlib.import_module("simulations.runner")
        trace = importlib.import_module("simulations.trace")
    return types.SimpleNamespace(prepare=runner.prepare, run=runner.run,
                                 read_trace=trace.read_trace)


def measure(data: str, repeats: int) -> dict[str, float]:
    from scenarios.loader import load_scenario
    from scenarios.schema import RecommenderConfig
    eng = _engine()
    prepare, run, read_trace = eng.prepare, eng.run, eng.read_trace

    loaded = load_scenario(ROOT / "scenarios" / "movielens_feed.yaml")
    role = loaded.role.model_copy(update={"brain": loaded.role.brain.model_copy(update={
        "params": loaded.role.brain.params.model_copy(update={"exit_base": -50.0})})})
    scn = loaded.scenario.model_copy(update={
        "recommenders": [RecommenderConfig(name="ease", model="ease", params={"l2": 500.0})],
        "environment": loaded.scenario.environment.model_copy(
            update={"rounds": 1, "max_pages": 5, "items_per_page": 4}),
        "population": loaded.scenario.population.model_copy(update={"size": None}),
    })
    loaded = dataclasses.replace(loaded, scenario=scn, role=role)
    best: dict[str, float] = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        prep = prepare(loaded, data=data)
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            res = run(prep, Path(tmp) / "run")
            t2 = time.perf_counter()
            pages = sum(1 for e in read_trace(res.run_dir) if e["type"] == "page")
        sim = t2 - t1
        if not best or sim < best["sim_s"]:
            best = {"prepare_s": t1 - t0, "sim_s": sim, "agent_pages": pages,
                    "users": len(prep.population), "events": res.events,
                    "ms_per_agent_page": 1000.0 * sim / pages}
    return best


def measure_conversation(data: str, repeats: int) -> dict[str, float]:
    from scenarios.loader import load_scenario
    from scenarios.schema import RecommenderConfig
    eng = _engine()
    prepare, run, read_trace = eng.prepare, eng.run, eng.read_trace

    loaded = load_scenario(ROOT / "scenarios" / "conversation.yaml")
    scn = loaded.scenario.model_copy(update={
        "dataset": loaded.scenario.dataset.model_copy(update={"source": "files"}),
        "recommenders": [RecommenderConfig(name="ease", model="ease", params={"l2": 500.0})],
        "population": loaded.scenario.population.model_copy(update={"size": None}),
    })
    loaded = dataclasses.replace(loaded, scenario=scn)
    best: dict[str, float] = {}
    for _ in range(repeats):
        prep = prepare(loaded, data=data)
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            res = run(prep, Path(tmp) / "run")
            t2 = time.perf_counter()
            ev = list(read_trace(res.run_dir))
        turns = sum(1 for e in ev if e["type"] in ("verdict", "conversation_start"))
        convs = sum(1 for e in ev if e["type"] == "conversation_start")
        sim = t2 - t1
        if not best or sim < best["sim_s"]:
            best = {"sim_s": sim, "agent_turns": turns, "conversations": convs,
                    "success": res.metrics["arms"]["ease"]["overall"]["success_rate"],
                    "ms_per_agent_turn": 1000.0 * sim / max(turns, 1)}
    return best


def _child(data: str, repeats: int, code: Path | None) -> tuple[dict[str, float],
                                                                  dict[str, float]]:
    env = dict(os.environ)
    if code is not None:
        env["RECARENA_BENCH_CODE"] = str(code)
    out = subprocess.run([sys.executable, str(HERE), "--measure", data, str(repeats)],
                         env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    return got["feed"], got["conversation"]


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["--measure"]:
        data, repeats = args_in[1], int(args_in[2])
        print(json.dumps({"feed": measure(data, repeats),
                          "conversation": measure_conversation(data, repeats)}), flush=True)
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--data", required=True, help="MovieLens 100K folder")
    p.add_argument("--repeats", type=int, default=3, help="runs; the fastest is reported")
    p.add_argument("--before", type=Path, help="also measure the code checked out here")
    p.add_argument("--no-doc", action="store_true", help="print only")
    args = p.parse_args(args_in)
    if args.before is None:
        r = measure(args.data, args.repeats)
        c = measure_conversation(args.data, args.repeats)
        before: tuple[dict[str, float], dict[str, float]] | None = None
    else:
        r, c = _child(args.data, args.repeats, None)
        before = _child(args.data, args.repeats, args.before)
    target = 5.0
    verdict = "meets" if r["ms_per_agent_page"] <= target else "MISSES"
    print(f"{r['users']} users, {r['agent_pages']} agent-pages, {r['events']} events: "
          f"simulation {r['sim_s']:.2f} s = {r['ms_per_agent_page']:.3f} ms per agent-page "
          f"({verdict} the {target} ms target); data and agents prepared in "
          f"{r['prepare_s']:.2f} s")
    print(f"conversation: {c['conversations']} conversations, {c['agent_turns']} agent-turns: "
          f"{c['sim_s']:.2f} s = {c['ms_per_agent_turn']:.3f} ms per agent-turn "
          f"(success {c['success']:.3f})")
    if before is not None:
        rb, cb = before
        print(f"before ({args.before}): {rb['ms_per_agent_page']:.3f} ms per agent-page, "
              f"{cb['ms_per_agent_turn']:.3f} ms per agent-turn; after / before: "
              f"{r['ms_per_agent_page'] / rb['ms_per_agent_page']:.2f}, "
              f"{c['ms_per_agent_turn'] / cb['ms_per_agent_turn']:.2f}")
    if not args.no_doc:
        from bench.report import write_section

        compare = [] if before is None else [
            "",
            f"Same run, the code checked out in `{args.before}` (\"before\", measured right "
            "after, each in its own child process):",
            "",
            "| code | ms per agent-page | ms per agent-turn |",
            "| --- | ---: | ---: |",
            f"| after | {r['ms_per_agent_page']:.3f} | {c['ms_per_agent_turn']:.3f} |",
            f"| before | {before[0]['ms_per_agent_page']:.3f} | "
            f"{before[1]['ms_per_agent_turn']:.3f} |",
            f"| after / before | {r['ms_per_agent_page'] / before[0]['ms_per_agent_page']:.2f}"
            f" | {c['ms_per_agent_turn'] / before[1]['ms_per_agent_turn']:.2f} |",
        ]
        write_section(START, END, [
            "## Framework overhead: feed simulation on MovieLens 100K",
            "",
            "All users x 5 pages x 4 items, utility brain, EASE (l2=500), one round, exit "
            "disabled so every user sees every page. Simulation time covers the LangGraph "
            "feed graph, recommender scoring, the brain, short-term memory, writing the "
            "trace and computing metrics from it; best of "
            f"{args.repeats} runs. Target: at most {target} ms per agent-page.",
            "",
            "| users | agent-pages | trace events | simulation (s) | ms per agent-page | "
            "prepare data + agents (s) |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {r['users']} | {r['agent_pages']} | {r['events']} | {r['sim_s']:.2f} | "
            f"**{r['ms_per_agent_page']:.3f}** ({verdict} target) | {r['prepare_s']:.2f} |",
            "",
            "The agents run as LangGraph agent graphs (perceive, recall, plan, act, remember), "
            "one graph step per role per page for all users still browsing; the feed is an "
            "environment behind the protocol of simulations/environments/base.py.",
            "",
            "Conversation environment, same users: every user with a liked held-out item "
            "looks for it (5 items a turn, at most 6 turns, utility brain, EASE re-ranked "
            "by what the user said). An agent-turn is one observation answered.",
            "",
            "| conversations | agent-turns | simulation (s) | ms per agent-turn | success |",
            "| ---: | ---: | ---: | ---: | ---: |",
            f"| {c['conversations']} | {c['agent_turns']} | {c['sim_s']:.2f} | "
            f"**{c['ms_per_agent_turn']:.3f}** | {c['success']:.3f} |",
            *compare,
        ], __file__, args_in)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
