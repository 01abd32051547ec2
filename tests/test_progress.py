"""The run's progress bar: agents done, LLM calls, tokens, cost and ETA, fed by a real run
(and a resume) through the runner's callbacks."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import yaml
from rich.console import Console

from agents.llm import CallRecord, FakeChatModel
from scenarios.loader import load_scenario
from simulations.cli.progress import PlainProgress, RunProgress, make_progress
from simulations.record.trace import read_trace
from simulations.run.runner import prepare, resume, run
from tests.shipped import shipped
from tests.test_llm_brain import _answer_all

REPO = Path(__file__).resolve().parents[1]


def _scenario_file(tmp_path: Path) -> Path:
    """scenarios/llm_feed.yaml, small, on the fake backend, as files (a resume reloads
    them)."""
    role = yaml.safe_load(shipped("roles", "llm_user.yaml").read_text())
    role["memory"]["long_term"]["embedder"] = "hash"
    (tmp_path / "role.yaml").write_text(yaml.safe_dump(role))
    scn = yaml.safe_load(shipped("llm_feed.yaml").read_text())
    scn["population"]["role"] = "role.yaml"
    scn["recommenders"] = scn["recommenders"][:1]
    scn["environment"].update(rounds=1, max_pages=2)
    scn["llm"].update(backend="fake", model="fake", concurrency=4)
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scn))
    return path


def _record(n_in: int, n_out: int, cost: float, cached: bool = False) -> CallRecord:
    return CallRecord(agent="u1", purpose="page", kind="chat", key="k", input_tokens=n_in,
                      output_tokens=n_out, cost_usd=cost, charged=not cached, cached=cached,
                      latency_s=0.1, attempts=0 if cached else 1)


def _text(p: RunProgress) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(p.progress.get_renderable())
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_the_line_shows_agents_calls_tokens_cost_and_eta() -> None:
    p = RunProgress("feed", 10, console=Console(file=io.StringIO()), disable=True)
    assert "0/10 agent sessions done" in _text(p) and "LLM calls 0" in _text(p)
    p.session_end(3)
    p.llm_call(_record(100, 20, 0.0015))
    p.llm_call(_record(1000, 200, 0.0, cached=True))
    line = _text(p)
    assert "3/10 agent sessions done" in line
    assert "LLM calls 2 (1 cached) · tokens 1,320 · $0.0015" in line
    assert "ETA" in line
    # A run without LLM roles shows no LLM column.
    assert "LLM calls" not in _text(RunProgress("feed", 1, disable=True, llm=False))


def test_a_run_and_its_resume_feed_the_bar(tmp_path: Path) -> None:
    loaded = load_scenario(_scenario_file(tmp_path))
    p = RunProgress("llm", 4, disable=True)
    res = run(prepare(loaded, users=4), tmp_path / "a", chat_model=FakeChatModel(
        responses=_answer_all), on_session_end=p.session_end, on_llm_call=p.llm_call)
    calls = [e for e in read_trace(tmp_path / "a") if e["type"] == "llm_call"]
    assert res.llm is not None
    assert p.done == 4 and p.tally.calls == len(calls) == res.llm["calls"]
    assert p.tally.tokens == res.llm["input_tokens"] + res.llm["output_tokens"]
    # Resuming a run (here: one that was marked as stopped after its end) counts the calls
    # its rebuild answers from the cache too.
    manifest = tmp_path / "a" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"completed"', '"interrupted"'))
    q = RunProgress("llm", 4, disable=True)
    resume(tmp_path / "a", on_session_end=q.session_end, on_llm_call=q.llm_call)
    assert q.done == 4 and q.tally.calls == len(calls) and q.tally.cached == len(calls)


# ----------------------------------------------------------------------------- off a terminal


def test_off_a_terminal_the_progress_is_plain_complete_lines() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=40)  # narrow: a bar would be cut to 40 columns
    assert not console.is_terminal
    p = RunProgress("a_scenario_with_a_long_name", 10, console=console, every=0)
    assert isinstance(p.progress, PlainProgress)
    with p:
        p.session_end(3)
        p.llm_call(_record(100, 20, 0.0015))  # calls alone print nothing new
        p.session_end(7)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("a_scenario_with_a_long_name: 0/10 agent sessions done (0%)")
    assert lines[1].startswith("a_scenario_with_a_long_name: 3/10 agent sessions done (30%) "
                               "· LLM calls 0 · tokens 0 · $0.0000 · elapsed 0:00:00 · ETA")
    assert lines[2].startswith("a_scenario_with_a_long_name: 10/10 agent sessions done "
                               "(100%) · LLM calls 1 · tokens 120 · $0.0015 · elapsed")
    assert len(lines) == 3  # the end is not repeated when the display stops
    assert "\x1b" not in buf.getvalue() and "━" not in buf.getvalue()


def test_plain_lines_are_spaced_by_the_interval() -> None:
    buf = io.StringIO()
    with make_progress(console=Console(file=buf), every=3600) as progress:
        t = progress.add_task("eval", total=100)
        for _ in range(99):
            progress.advance(t)
    # The start, then nothing for an hour, then the last count when the display stops.
    assert [x.split(" · ")[0] for x in buf.getvalue().splitlines()] == ["eval: 0/100 (0%)",
                                                                         "eval: 99/100 (99%)"]


def test_on_a_terminal_or_quiet_the_bar_is_rich_s() -> None:
    tty = Console(file=io.StringIO(), force_terminal=True)
    assert not isinstance(make_progress(console=tty), PlainProgress)
    quiet = make_progress(console=Console(file=io.StringIO()), disable=True)
    assert not isinstance(quiet, PlainProgress)


def test_a_run_piped_to_a_file_logs_plain_lines(tmp_path: Path) -> None:
    # `recarena run ... 2> log` as CI, nohup or a scheduler would: stderr is not a terminal.
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update(PYTHONPATH=str(REPO), RECARENA_PROGRESS_EVERY="0", COLUMNS="60")
    proc = subprocess.run(
        [sys.executable, "-m", "simulations.cli.main", "run", str(shipped("quickstart.yaml")),
         "--users", "4", "--out", str(tmp_path / "run")],
        env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.startswith("quickstart: ")]
    total = 4 * 3 * 3  # users x rounds x arms
    assert lines[0].startswith(f"quickstart: 0/{total} agent sessions done (0%)")
    assert lines[-1].startswith(f"quickstart: {total}/{total} agent sessions done (100%)")
    assert len(lines) > 3 and all(len(x) > 60 for x in lines[1:])  # whole, not cut at 60
    assert "━" not in proc.stderr and "\x1b[" not in proc.stderr
