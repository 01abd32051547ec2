"""LLM users at scale against a loopback stub: does the executor keep an endpoint busy?

Usage::

    .venv/bin/python bench/scale_llm.py                      # both cases, writes the doc
    .venv/bin/python bench/scale_llm.py --case big --no-doc  # 1,000 x 5 only, print only
    .venv/bin/python bench/scale_llm.py --case issue --before /tmp/base  # + old code's figure

An endpoint that allows C calls in flight at latency L answers at most C/L calls per
second. Cases (``scenarios/llm_feed.yaml``: the Agent4Rec-style ``llm_user`` role with
long-term memory (``hash`` embedder) and reflections, one arm (pop), one round, users never
leave, so every user sees every page):

- ``big``: 1,000 users x 5 pages at L = 0.5 s, ``concurrency: 64`` (C/L = 128 calls/s);
  targets: achieved calls/s >= 0.9 C/L, wall <= 5 minutes.
- ``issue``: issue 10's measurement, 64 users x 3 pages at L = 0.5 s, ``concurrency: 16``.

The stub (``bench/stub_server.py`` with a responder that answers every prompt validly) runs
in its own process on 127.0.0.1 and stops itself when idle; each case runs in a fresh child
process (``--measure``) that reports its wall time, CPU time and calls; calls/s is over the
whole ``run`` (agents, memory, trace, metrics included), so it is the figure a user sees.
``--no-memory`` turns long-term memory (and reflections) off, to see the executor and the
LLM layer alone. ``--before DIR`` also measures the code checked out in DIR
(``git archive COMMIT | tar -x -C DIR``) with the same script and stub. The machine's
load average is recorded beside the figures: other work on the 2 cores takes CPU time the
client would need.
Writes the section between ``<!-- scale-llm:start -->`` and ``<!-- scale-llm:end -->`` of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
# --measure under --before: import the packages of another checkout, not of this tree.
CODE = Path(os.environ.get("RECARENA_BENCH_CODE") or HERE.parents[1])
# First on the path, and without bench/ itself (bench/memory.py would shadow memory/).
sys.path[:] = [str(CODE), *(p for p in sys.path if p not in (str(CODE), str(HERE.parent)))]

START, END = "<!-- scale-llm:start -->", "<!-- scale-llm:end -->"


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
KEY_ENV = "RECARENA_STUB_KEY"
CASES = {"big": (1000, 5, 64), "issue": (64, 3, 16)}  # users, pages, concurrency
_IDS = re.compile(r"Refer to items only by their id \(([^)]*)\)")


def answer(body: Mapping[str, Any]) -> str:
    """The stub's reply to a request: a valid page, interview or reflection answer."""
    last = str(body.get("messages", [{}])[-1].get("content") or "")
    found = _IDS.search(last)
    if found:
        ids = found.group(1).split(", ")
        return json.dumps({"items": [
            {"item_id": i, "watch": k == 0, "rating": 4 if k == 0 else None, "reason": "fits"}
            for k, i in enumerate(ids)], "feeling": "fine", "leave": False})
    if "what have you learned" in last:
        return "I like what I chose; comedies more than I thought."
    if "satisfied" in last:
        return json.dumps({"satisfaction": 6, "reason": "some good picks"})
    return "ok"


def serve(latency: float) -> int:
    """The stub with ``answer`` (prints its base URL; stops after 10 minutes idle: a
    loaded machine may take minutes to prepare a run)."""
    from bench.stub_server import serve as stub

    with stub(latency_s=latency, responder=answer, idle_s=600.0, lifetime_s=3600.0) as s:
        print(s.base_url, flush=True)
        while s.running:
            time.sleep(0.5)
    return 0


def _loaded(url: str, users: int, pages: int, concurrency: int, memory: bool = True) -> Any:
    from scenarios.loader import load_scenario
    from scenarios.schema import LLMConfig

    loaded = load_scenario(CODE / "scenarios" / "llm_feed.yaml")
    lt = loaded.role.memory.long_term.model_copy(update={"embedder": "hash",
                                                         "enabled": memory})
    role = loaded.role.model_copy(update={
        "memory": loaded.role.memory.model_copy(update={"long_term": lt})})
    scn = loaded.scenario
    data = scn.dataset.model_copy(update={"synthetic": scn.dataset.synthetic.model_copy(
        update={"n_users": max(users + 100, scn.dataset.synthetic.n_users)})})
    scn = scn.model_copy(update={
        "dataset": data, "recommenders": scn.recommenders[:1],
        "population": scn.population.model_copy(update={"size": users}),
        "environment": scn.environment.model_copy(update={"rounds": 1, "max_pages": pages}),
        "llm": LLMConfig(backend="openai", model="stub", base_url=url, api_key_env=KEY_ENV,
                         concurrency=concurrency, max_tokens=300, max_retries=2,
                         timeout_s=120)})
    return dataclasses.replace(loaded, scenario=scn, role=role)


def measure(url: str, users: int, pages: int, concurrency: int,
            memory: bool = True) -> dict[str, Any]:
    """One run in this process: wall, CPU and LLM calls of ``run`` (after ``prepare``)."""
    eng = _engine()
    prepare, run = eng.prepare, eng.run

    prep = prepare(_loaded(url, users, pages, concurrency, memory), users=users)
    with tempfile.TemporaryDirectory() as tmp:
        c0, t0, load0 = time.process_time(), time.perf_counter(), os.getloadavg()[0]
        res = run(prep, Path(tmp) / "run")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    llm = res.llm or {}
    return {"users": users, "pages": pages, "concurrency": concurrency, "status": res.status,
            "calls": llm.get("calls", 0), "wall_s": wall, "cpu_s": cpu,
            "load_before": load0, "load_after": os.getloadavg()[0]}


def _child(url: str, case: str, code: Path | None, memory: bool) -> dict[str, Any]:
    users, pages, conc = CASES[case]
    env = {**os.environ, KEY_ENV: "stub-key"}
    if code is not None:
        env["RECARENA_BENCH_CODE"] = str(code)
    out = subprocess.run(
        [sys.executable, str(HERE), "--measure", url, str(users), str(pages), str(conc),
         "1" if memory else "0"],
        env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _row(label: str, case: str, r: dict[str, Any], latency: float) -> str:
    bound = r["concurrency"] / latency
    rate = r["calls"] / r["wall_s"]
    return (f"| {label} | {r['users']} x {r['pages']} | {r['concurrency']} | {r['calls']} | "
            f"{r['wall_s']:.1f} | {rate:.1f} | {bound:.0f} | **{rate / bound:.2f}** | "
            f"{1000 * r['cpu_s'] / max(r['calls'], 1):.1f} | "
            f"{r['load_before']:.1f} / {r['load_after']:.1f} |")


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["--serve"]:
        return serve(float(args_in[1]))
    if args_in[:1] == ["--measure"]:
        url, users, pages, conc, memory = args_in[1], *map(int, args_in[2:6])
        print(json.dumps(measure(url, users, pages, conc, bool(memory))), flush=True)
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--case", choices=[*CASES, "all"], default="all")
    p.add_argument("--latency", type=float, default=0.5)
    p.add_argument("--before", type=Path, help="also measure the code checked out here")
    p.add_argument("--no-memory", action="store_true",
                   help="long-term memory (and reflections) off: the executor and LLM "
                   "layer alone")
    p.add_argument("--no-doc", action="store_true", help="print only")
    args = p.parse_args(args_in)
    cases = list(CASES) if args.case == "all" else [args.case]
    stub = subprocess.Popen([sys.executable, str(HERE), "--serve", str(args.latency)],
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(HERE.parents[1])})
    rows: list[str] = []
    try:
        assert stub.stdout is not None
        url = stub.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the stub server did not start (printed {url!r})")
        for case in cases:
            runs = [("after", None)] + ([("before", args.before)] if args.before else [])
            for label, code in runs:
                r = _child(url, case, code, not args.no_memory)
                rows.append(_row(label, case, r, args.latency))
                print(rows[-1], flush=True)
    finally:
        stub.terminate()
        stub.wait(timeout=30)
    if args.no_doc:
        return 0
    from bench.report import write_section

    body = [
        f"## LLM users at scale against a loopback stub (L = {args.latency:g} s)",
        "",
        "`scenarios/llm_feed.yaml` (LLM users with long-term memory, `hash` embedder, and "
        "reflections; one arm, one round; users never leave) over the openai backend "
        "against `bench/stub_server.py` in its own process. calls/s over the whole run; "
        "C/L is the most the endpoint can answer; target ratio >= 0.9 and, for "
        "1,000 x 5, wall <= 300 s. CPU ms/call: the client process's CPU time per call "
        "(everything: agents, memory, trace). \"before\" is the code checked out in the "
        "command's `--before` folder (named in the notes below), same stub and script, "
        "measured right after \"after\".",
        "",
        "| code | users x pages | C | calls | wall (s) | calls/s | C/L | ratio | "
        "CPU ms/call | load avg before / after |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        *rows,
    ]
    write_section(START, END, body, __file__, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
