"""Pipelined phases (simulations/environments/pipeline.py): lanes of agents move through
the feed's pages on their own, and the run's trace, metrics and memories are the lock-step loop's.

Nothing is timed: the fake chat model reports, for every call, which page it is for, so
the tests see a lane's next page being asked while another lane's previous page is still
in flight (impossible in lock-step), and count the calls in flight.
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.llm import FakeChatModel
from agents.llm.fake import Transcript
from simulations.environments.pipeline import LOCKSTEP_ENV
from simulations.run.runner import prepare, run
from tests.test_executor import _chroma_rows, _jitter, _scenario, _trace

REPO = Path(__file__).resolve().parents[1]
_PAGE = re.compile(r"[Pp]age (\d+) of at most")


def _ids(last: str) -> list[str]:
    return re.findall(r"Refer to items only by their id \(([^)]*)\)", last)[0].split(", ")


def answer(transcript: Transcript) -> str:
    """Watches the first item; some users (by what they are shown) leave on page 2, so
    lanes end at different pages."""
    last = transcript[-1][1]
    if "what have you learned" in last:
        return "I like comedies more than I thought."
    if "Step 1." in last or "Step 2." in last:
        return "Light comedies.\nFilm A"
    if "satisfied" in last:
        return json.dumps({"satisfaction": 6, "reason": "ok"})
    ids = _ids(last)
    page = int(_PAGE.findall(last)[0])
    leave = page == 2 and zlib.crc32(ids[0].encode()) % 3 == 0
    return json.dumps({"items": [{"item_id": i, "watch": k == 0,
                                  "rating": 4 if k == 0 else None, "reason": "r"}
                                 for k, i in enumerate(ids)],
                       "feeling": "fine", "leave": leave})


class Pages:
    """The page each planner or page-decision call is for, in the order the calls start
    (the goal or the prompt names it), and the calls in flight."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.slowed = False
        self.total = 0
        self.peak = 0
        self._lock = threading.Lock()

    @property
    def crossed(self) -> bool:
        """A call for page p started after one for page p + 1: a lane went on to its next
        page while another lane was still on the previous one (the round's last page is
        4 and the next round starts at 1, so only that can step back by exactly 1)."""
        return any(b == a - 1 for a, b in zip(self.started, self.started[1:], strict=False))

    def start(self, transcript: Transcript) -> float:
        found = _PAGE.findall(transcript[-1][1])
        with self._lock:
            self.total += 1
            self.peak = max(self.peak, self.total)
            if found:
                self.started.append(int(found[0]))
            # The very first call (one user's first planner step) takes 0.3 s, the others
            # 1-20 ms: in lock-step everyone waits for it; the other lanes move on.
            slow, self.slowed = not self.slowed, True
        return 0.3 if slow else _jitter(transcript)

    def done(self, transcript: Transcript) -> str:
        with self._lock:
            self.total -= 1
        return answer(transcript)


def _loaded(tmp_path: Path, concurrency: int) -> Any:
    loaded = _scenario(tmp_path, concurrency=concurrency, pages=4)
    scn = loaded.scenario.model_copy(update={
        "environment": loaded.scenario.environment.model_copy(update={"rounds": 2})})
    return dataclasses.replace(loaded, scenario=scn)


def test_pipelined_pages_equal_the_lockstep_run(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    users, limit = 12, 4  # lanes of 4 users: 3 lanes
    runs: dict[str, tuple[Any, Pages, FakeChatModel]] = {}
    for name, lockstep in (("lockstep", "1"), ("pipelined", "")):
        monkeypatch.setenv(LOCKSTEP_ENV, lockstep)
        pages = Pages()
        fake = FakeChatModel(responses=pages.done, latency=pages.start)
        res = run(prepare(_loaded(tmp_path, limit), users=users), tmp_path / name,
                  chat_model=fake)
        assert res.status == "completed"
        runs[name] = (res, pages, fake)
    (a, lock, fa), (b, pipe, fb) = runs["lockstep"], runs["pipelined"]
    # Lock-step: every page's calls end before the next page's start. Pipelined: a lane
    # asked for its next page while another lane's page was still in flight.
    assert not lock.crossed
    assert pipe.crossed
    assert fa.max_in_flight == fb.max_in_flight == limit  # the client's limit holds
    events = _trace(tmp_path / "lockstep")
    assert {e["action"] for e in events if e["type"] == "decision"} >= {"leave", "next_page"}
    assert any(e["type"] == "retrain" for e in events) or len(
        {e["round"] for e in events if e["type"] == "page"}) == 2
    assert a.metrics == b.metrics
    assert events == _trace(tmp_path / "pipelined")
    raw = [(tmp_path / n / "trace.jsonl").read_text().splitlines() for n in runs]
    assert len(raw[0]) == len(raw[1])
    rows = [_chroma_rows(tmp_path / n / "memory") for n in runs]
    assert rows[0] and rows[0] == rows[1]


def test_a_role_that_shares_a_store_is_not_pipelined(tmp_path: Path) -> None:
    from simulations.executors import DefaultExecutor, PopulationSpec

    loaded = _loaded(tmp_path, 4)
    prep = prepare(loaded, users=8)

    def spec(shared: str | None) -> PopulationSpec:
        roles = tuple(dataclasses.replace(r, config=r.config.model_copy(update={
            "memory": r.config.memory.model_copy(update={"shared": shared})}))
            for r in prep.loaded.roles)
        return PopulationSpec(roles=roles, world=prep.world, profiles=prep.role_profiles,
                              users=prep.population, history=prep.history,
                              seed=prep.scenario.seed, llm=prep.llm, run_dir=tmp_path)

    alone, shared = (DefaultExecutor(spec(s), lambda *a, **k: None) for s in (None, "club"))
    try:
        assert alone.lane_size == 4 and shared.lane_size == 0
    finally:
        alone.close()
        shared.close()


def test_pipelined_conversations_equal_the_lockstep_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulations.environments.loop as loop_module
    from scenarios.schema import LLMConfig
    from tests.test_conversation import _chat_user, _llm, _loaded

    phases: list[tuple[str, int | None]] = []
    real = loop_module.run_phase

    def spy(env: Any, *args: Any, **kwargs: Any) -> int | None:
        done = real(env, *args, **kwargs)
        phases.append((type(env).kind, done))
        return done

    monkeypatch.setattr(loop_module, "run_phase", spy)
    loaded = _llm(_loaded(max_turns=3))
    loaded = dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(update={
        "llm": LLMConfig(backend="fake", model="fake", concurrency=4)}))
    results = {}
    for name, lockstep in (("lockstep", "1"), ("pipelined", "")):
        monkeypatch.setenv(LOCKSTEP_ENV, lockstep)
        first = [True]

        def latency(t: Transcript, first: list[bool] = first) -> float:
            slow, first[0] = first[0], False  # one slow opening: the other lanes go on
            return 0.3 if slow else _jitter(t)

        results[name] = run(prepare(loaded, users=12), tmp_path / name,
                            chat_model=FakeChatModel(responses=_chat_user, latency=latency))
    # The pipelined run ran each round's conversations in lanes (then found nothing left
    # to do in lanes: None, and the lock-step step observed nobody); lock-step never did.
    assert [done for _, done in phases if done] == [4] * sum(
        e["type"] == "round_start" for e in _trace(tmp_path / "lockstep"))
    assert {kind for kind, _ in phases} == {"conversation"}
    assert results["lockstep"].metrics == results["pipelined"].metrics
    events = _trace(tmp_path / "lockstep")
    assert {e["type"] for e in events} >= {"verdict", "utterance", "conversation_end"}
    assert events == _trace(tmp_path / "pipelined")


# ----------------------------------------------------------------------------- resume

CHILD = r"""
import json, os, re, signal, sys, zlib
from pathlib import Path
from agents.llm import FakeChatModel
from scenarios.loader import load_scenario
from simulations.run.runner import prepare, resume, run

mode, scenario, out, crash_at = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
calls = [0]

def answer(t):
    calls[0] += 1
    if calls[0] == crash_at:
        os.kill(os.getpid(), signal.SIGKILL)
    last = t[-1][1]
    if "what have you learned" in last:
        return "I like comedies."
    if "satisfied" in last:
        return json.dumps({"satisfaction": 6, "reason": "fine picks"})
    ids = re.findall(r"Refer to items only by their id \(([^)]*)\)", last)[0].split(", ")
    leave = "Page 2" in last and zlib.crc32(ids[0].encode()) % 3 == 0
    return json.dumps({"items": [{"item_id": i, "watch": k == 0,
                                  "rating": 4 if k == 0 else None,
                                  "reason": f"because {i}"} for k, i in enumerate(ids)],
                       "feeling": "fine", "leave": leave})

fake = FakeChatModel(responses=answer)
if mode == "run":
    run(prepare(load_scenario(scenario), users=9), out, chat_model=fake)
else:
    resume(out, chat_model=fake)
print(calls[0])
"""


@pytest.fixture(scope="module")
def lanes_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LLM users with long-term memory and reflections, concurrency 3 (lanes of 3 of the
    9 users), 2 arms x 2 rounds of 3 pages, the second arm retraining."""
    folder = tmp_path_factory.mktemp("lanes")
    role = yaml.safe_load((REPO / "scenarios" / "roles" / "llm_user.yaml").read_text())
    role["memory"]["long_term"].update(embedder="hash", reflect_every=4)
    (folder / "role.yaml").write_text(yaml.safe_dump(role))
    scn = yaml.safe_load((REPO / "scenarios" / "llm_feed.yaml").read_text())
    scn["population"]["role"] = "role.yaml"
    scn["llm"] = {"backend": "fake", "model": "fake", "concurrency": 3}
    scn["recommenders"][1]["retrain"] = True
    path = folder / "lanes.yaml"
    path.write_text(yaml.safe_dump(scn))
    return path


def _child(mode: str, scenario: Path, out: Path, crash_at: int, **env: str
           ) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items()
            if k not in ("RECARENA_CRASH_AT", LOCKSTEP_ENV)}
    return subprocess.run([sys.executable, "-c", CHILD, mode, str(scenario), str(out),
                           str(crash_at)], env={**base, "PYTHONPATH": str(REPO), **env},
                          capture_output=True, text=True, timeout=600, check=False)


def _stable(run_dir: Path) -> list[dict[str, Any]]:
    return _trace(run_dir)


def test_a_killed_pipelined_run_resumes_to_the_lockstep_result(
        lanes_scenario: Path, tmp_path: Path) -> None:
    ref = tmp_path / "lockstep"
    proc = _child("run", lanes_scenario, ref, 0, **{LOCKSTEP_ENV: "1"})
    assert proc.returncode == 0, proc.stderr
    total = int(proc.stdout.split()[-1])
    summary = json.loads((ref / "summary.json").read_text())
    # Killed at a step inside a pipelined phase (the node's checkpoint not yet written),
    # and during an LLM call; both resumed (pipelined again) to the lock-step result.
    for name, crash, env in (("step", 0, {"RECARENA_CRASH_AT": "step:5"}),
                             ("call", total * 2 // 3, {})):
        out = tmp_path / name
        proc = _child("run", lanes_scenario, out, crash, **env)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        proc = _child("resume", lanes_scenario, out, 0)
        assert proc.returncode == 0, proc.stderr
        assert json.loads((out / "summary.json").read_text())["metrics"] == \
            summary["metrics"]
        assert _stable(out) == _stable(ref)
        assert json.loads((out / "manifest.json").read_text())["resumed"] == 1
