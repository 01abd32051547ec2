"""The social world at scale: utility users on a large graph, and LLM users against a stub.

    .venv/bin/python bench/social_scale.py                      # 10,000 users x 20 ticks
    .venv/bin/python bench/social_scale.py --part llm           # LLM users, loopback stub

``utility``: 10,000 synthetic users on a Barabasi-Albert graph (m = 5), one EASE arm, one
round of 20 ticks (activity 0.3), beside the feed for the same users (one round of 5
pages), each in its own child process: wall time of prepare + run and the child's peak
memory (ru_maxrss). Target (issue 19): within 10 minutes and 4 GiB on this 2-core machine.

``llm``: LLM users (structured decisions, no long-term memory) in the same world against
``bench/stub_server.py`` answering every social, page and chat prompt after L seconds
(the fake model's plausible replies): calls per second against C/L. Target: >= 0.85.
The default case is 1,000 users (the feed's case in issue 19; ``--llm-users 256`` for the
old one): at 256 users a tick's wave is four batches of C = 64 calls, so the run's fixed
costs (the arm's setup, the chats' line-by-line tail, each tick's sync) weigh more than
the pipelining can take off. The ticks run pipelined (simulations/environments/
social_lanes.py); ``RECARENA_LOCKSTEP=1`` in the environment gives the lock-step timing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
sys.path[:] = [str(ROOT), *(p for p in sys.path if p not in (str(ROOT), str(HERE.parent)))]

START, END = "<!-- social-scale:start -->", "<!-- social-scale:end -->"
KEY_ENV = "RECARENA_STUB_KEY"


def _scenario(users: int, env: dict[str, Any], role: dict[str, Any] | str,
              llm: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"kind": "scenario", "name": "social_scale", "seed": 3,
            "dataset": {"source": "synthetic",
                        "synthetic": {"n_users": users + 100, "n_items": 2000,
                                      "n_genres": 12, "history_mean": 30}},
            "population": {"size": users, "role": role},
            "recommenders": [{"name": "ease", "model": "ease", "params": {"l2": 100.0}}],
            "environment": env, **({"llm": llm} if llm else {}),
            "output": {"dir": tempfile.gettempdir()}}


def social_env(ticks: int) -> dict[str, Any]:
    return {"kind": "social", "items_per_page": 4, "rounds": 1,
            "settings": {"graph": {"kind": "barabasi_albert", "m": 5}, "ticks": ticks,
                         "activity": 0.3}}


FEED_ENV = {"kind": "feed", "items_per_page": 4, "max_pages": 5, "rounds": 1}


def measure(scn: Mapping[str, Any]) -> dict[str, Any]:
    """One run in this process (a child): wall of prepare + run, events, peak memory."""
    from scenarios.loader import load_scenario
    from simulations.run.runner import prepare, run

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.yaml"
        path.write_text(json.dumps(scn))
        t0 = time.perf_counter()
        prep = prepare(load_scenario(path, llm_flag=bool(scn.get("llm"))))
        t1 = time.perf_counter()
        res = run(prep, Path(tmp) / "run")
        t2 = time.perf_counter()
    llm = res.llm or {}
    return {"status": res.status, "events": res.events, "prepare_s": t1 - t0,
            "run_s": t2 - t1, "wall_s": t2 - t0, "calls": llm.get("calls", 0),
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(scn: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(HERE), "--measure", json.dumps(scn)],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _answer(body: Mapping[str, Any]) -> str:
    from agents.llm.fake_replies import plausible_reply

    msgs = body.get("messages") or []
    return plausible_reply([(str(m.get("role")), str(m.get("content") or "")) for m in msgs])


def _serve(latency: float) -> int:
    from bench.stub_server import serve

    with serve(latency_s=latency, responder=_answer, idle_s=600.0, lifetime_s=3600.0) as s:
        print(s.base_url, flush=True)
        while s.running:
            time.sleep(0.5)
    return 0


def _utility(users: int, ticks: int) -> list[str]:
    role = "roles/synthetic_viewer.yaml"
    rows = []
    for name, env in (("social", social_env(ticks)), ("feed", FEED_ENV)):
        scn = _scenario(users, env, role)
        scn["population"]["role"] = str(ROOT / "scenarios" / role)
        r = _child(scn)
        what = f"{ticks} ticks" if name == "social" else "5 pages"
        rows.append(f"| {name} | {users} x {what} | {r['events']} | {r['prepare_s']:.1f} | "
                    f"{r['run_s']:.1f} | **{r['wall_s']:.1f}** | **{r['peak_mib']:.0f}** |")
        print(rows[-1], flush=True)
    return rows


def _llm(users: int, ticks: int, concurrency: int, latency: float) -> list[str]:
    stub = subprocess.Popen([sys.executable, str(HERE), "--serve", str(latency)],
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert stub.stdout is not None
        url = stub.stdout.readline().strip()
        role = {"name": "llm_social", "brain": {"kind": "llm", "decision_mode": "structured"},
                "memory": {"short_term_window": 6}}
        env = social_env(ticks)
        env["settings"]["activity"] = 1.0  # every user acts at every tick
        llm = {"backend": "openai", "model": "stub", "base_url": url,
               "api_key_env": KEY_ENV, "concurrency": concurrency, "max_tokens": 300,
               "max_retries": 2, "timeout_s": 120}
        r = _child(_scenario(users, env, role, llm), {KEY_ENV: "stub-key"})
    finally:
        stub.terminate()
    bound = concurrency / latency
    rate = r["calls"] / r["run_s"]
    row = (f"| {users} x {ticks} ticks | {concurrency} | {latency} | {r['calls']} | "
           f"{r['run_s']:.1f} | {rate:.1f} | {bound:.0f} | **{rate / bound:.2f}** |")
    print(row, flush=True)
    return [row]


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["--measure"]:
        print(json.dumps(measure(json.loads(args_in[1]))), flush=True)
        return 0
    if args_in[:1] == ["--serve"]:
        return _serve(float(args_in[1]))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--part", choices=["utility", "llm", "all"], default="utility")
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--ticks", type=int, default=20)
    p.add_argument("--llm-users", type=int, default=1000)
    p.add_argument("--llm-ticks", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency", type=float, default=0.5)
    p.add_argument("--no-doc", action="store_true", help="print only")
    a = p.parse_args(args_in)
    parts: list[str] = []
    if a.part in ("utility", "all"):
        rows = _utility(a.users, a.ticks)
        parts.append(
            "Utility users (`roles/synthetic_viewer.yaml`), synthetic world, one EASE arm, "
            "Barabasi-Albert graph (m = 5), activity 0.3; the feed with the same users "
            "beside it. Each run in its own child process; peak memory is the child's "
            "ru_maxrss. Target: social run within 10 minutes and 4 GiB.\n\n"
            "| world | users x steps | events | prepare (s) | run (s) | wall (s) | "
            "peak (MiB) |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n"
            + "\n".join(rows))
    if a.part in ("llm", "all"):
        rows = _llm(a.llm_users, a.llm_ticks, a.concurrency, a.latency)
        parts.append(
            "LLM users (structured decisions, short-term memory only, every user active "
            "at every tick) against `bench/stub_server.py` answering after L seconds; "
            "calls/s over the run against C/L. Target: ratio >= 0.85.\n\n"
            "| users x ticks | C | L (s) | calls | run (s) | calls/s | C/L | ratio |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n" + "\n".join(rows))
    if not a.no_doc:
        from bench.report import write_section

        write_section(START, END, ["## Social world at scale", "", "\n\n".join(parts)],
                      "bench/social_scale.py", args_in)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
