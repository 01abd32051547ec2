"""LLMClient throughput against a loopback OpenAI-compatible stub: achieved calls/s vs C/L.

Usage::

    .venv/bin/python bench/llm_throughput.py --latency 0.5 --calls 320 --concurrency 16 64

An endpoint that allows C calls in flight at latency L can answer at most C/L calls per
second. For each C the client (``llm.concurrency: C``, the openai backend through
``ChatOpenAI``, no cache, no rate limits) sends ``--calls`` distinct chat calls, all at
once: through ``LLMClient.achat`` on one asyncio loop, and through ``LLMClient.chat`` from C
threads. The stub (``bench/stub_server.py``) runs in its own process, as a real endpoint
would, and answers after L seconds. Writes the section between
``<!-- llm-throughput:start -->`` and ``<!-- llm-throughput:end -->`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the packages importable
    sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402

START, END = "<!-- llm-throughput:start -->", "<!-- llm-throughput:end -->"
KEY_ENV = "RECARENA_STUB_KEY"


@contextmanager
def stub_process(latency_s: float, idle_s: float = 60.0) -> Iterator[str]:
    """``bench.stub_server`` in a subprocess; yields its base URL."""
    cmd = [sys.executable, "-m", "bench.stub_server", "--latency", str(latency_s),
           "--idle", str(idle_s), "--lifetime", "3600"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the stub server did not start (printed {url!r})")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _client(base_url: str, concurrency: int) -> Any:
    from agents.llm import LLMClient
    from scenarios.schema import LLMConfig

    cfg = LLMConfig(backend="openai", model="gpt-4o-mini", base_url=base_url,
                    api_key_env=KEY_ENV, concurrency=concurrency, max_tokens=16,
                    max_retries=0, timeout_s=60)
    client = LLMClient(cfg)
    client.chat([("user", "warm up")], agent="warm", purpose="warm")  # build the model
    return client


def _messages(i: int) -> list[tuple[str, str]]:
    return [("system", "You are a movie fan."),
            ("user", f"Question {i}: would you watch film {i}? Answer in one line.")]


def run_async(base_url: str, concurrency: int, calls: int) -> float:
    client = _client(base_url, concurrency)

    async def go() -> float:
        await client.achat([("user", "warm up async")], agent="warm", purpose="warm")
        t0 = time.perf_counter()
        await asyncio.gather(*(client.achat(_messages(i), agent=f"u{i}", purpose="bench")
                               for i in range(calls)))
        return time.perf_counter() - t0

    return asyncio.run(go())


def run_threads(base_url: str, concurrency: int, calls: int) -> float:
    client = _client(base_url, concurrency)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda i: client.chat(_messages(i), agent=f"u{i}", purpose="bench"),
                      range(calls)))
    return time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--latency", type=float, default=0.5, help="stub latency L (s)")
    p.add_argument("--calls", type=int, default=320)
    p.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    p.add_argument("--no-doc", action="store_true", help="print only")
    args = p.parse_args(argv)
    if args.latency <= 0 or args.calls < 1 or min(args.concurrency) < 1:
        p.error("--latency must be > 0, --calls and --concurrency >= 1")
    os.environ.setdefault(KEY_ENV, "stub-key")
    rows = []
    load_before = os.getloadavg()[0]
    with stub_process(args.latency) as url:
        for c in args.concurrency:
            bound = c / args.latency
            for how, fn in (("async (achat)", run_async), ("threads (chat)", run_threads)):
                wall = fn(url, c, args.calls)
                rate = args.calls / wall
                rows.append((c, how, wall, rate, bound))
                print(f"C={c:3d} L={args.latency:g}s {how:15s}: {args.calls} calls in "
                      f"{wall:.2f} s = {rate:.1f} calls/s; C/L = {bound:.0f}; "
                      f"ratio {rate / bound:.2f}", flush=True)
    load_after = os.getloadavg()[0]
    if args.no_doc:
        return 0
    body = [
        f"## LLM client throughput: {args.calls} chat calls against a stub at "
        f"L = {args.latency:g} s",
        "",
        "`LLMClient` (openai backend, `ChatOpenAI`, no cache, no rate limits, "
        "`llm.concurrency: C`) sends all calls at once; the loopback stub "
        "(`bench/stub_server.py`, its own process) answers each after L seconds. C/L is the "
        "most an endpoint allowing C calls in flight can answer; target: ratio >= 0.9.",
        "",
        "| C | driver | wall (s) | calls/s | C/L | ratio |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for c, how, wall, rate, bound in rows:
        body.append(f"| {c} | {how} | {wall:.2f} | {rate:.1f} | {bound:.0f} | "
                    f"**{rate / bound:.2f}** |")
    body += ["", f"1-minute load average {load_before:.1f} before, {load_after:.1f} after "
             "(other work shares the machine)."]
    write_section(START, END, body, __file__, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
