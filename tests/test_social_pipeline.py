"""The social world's pipelined ticks (simulations/environments/social_lanes.py): a user's
page or post starts as soon as its own choice is back, and the run's trace, metrics and
memories are the lock-step loop's.

Nothing is timed: the fake chat model answers after 1-20 ms fixed per prompt (so answers
come back in another order than they were asked) and reports, for every page call, whether
a choice of the same tick was still in flight when it started (impossible in lock-step).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import simulations.environments.loop as loop_module
import simulations.environments.social_lanes as social_lanes
from agents.llm import FakeChatModel
from agents.llm.fake import Transcript
from agents.llm.fake_replies import plausible_reply
from scenarios.loader import load_scenario
from simulations.environments.pipeline import LOCKSTEP_ENV
from simulations.run.runner import prepare, run
from tests.test_executor import _jitter, _trace

REPO = Path(__file__).resolve().parents[1]
_TICK = re.compile(r"\(tick (\d+)\)")


def _scenario(folder: Path) -> Path:
    """24 LLM users, concurrency 4 (lanes of 4), 2 arms (a built-in model and the friends
    recommender, a plug-in) x 2 rounds of 4 ticks: they browse, search what they heard,
    chat at tick 3 and post at tick 4 (``plausible_reply``)."""
    role = {"name": "llm_social", "brain": {"kind": "llm", "decision_mode": "structured"},
            "memory": {"short_term_window": 6}}
    scn = {"kind": "scenario", "name": "social-lanes", "seed": 5,
           "dataset": {"source": "synthetic",
                       "synthetic": {"n_users": 60, "n_items": 150, "n_genres": 6,
                                     "history_mean": 20}},
           "population": {"size": 24, "role": role},
           "recommenders": [{"name": "pop", "model": "pop", "retrain": True},
                            {"name": "friends",
                             "model": "tools.recommenders.social:FriendsRecommender"}],
           "environment": {"kind": "social", "items_per_page": 4, "rounds": 2,
                           "settings": {"graph": {"kind": "barabasi_albert", "m": 3},
                                        "ticks": 4, "activity": 0.8}},
           "llm": {"backend": "fake", "model": "fake", "concurrency": 4},
           "output": {"dir": str(folder / "runs")}}
    path = folder / "social.yaml"
    path.write_text(json.dumps(scn, indent=2))
    return path


class Calls:
    """Which choice calls are in flight, per tick, and whether a page call started while
    a choice of its tick was still in flight."""

    def __init__(self) -> None:
        self.choosing: dict[int, int] = {}
        self.crossed = 0
        self._lock = threading.Lock()

    def start(self, transcript: Transcript) -> float:
        last = transcript[-1][1]
        found = _TICK.findall(last)
        with self._lock:
            if '"activity": "browse"' in last and found:
                tick = int(found[0])
                self.choosing[tick] = self.choosing.get(tick, 0) + 1
            elif '"item_id": "ID", "watch"' in last and sum(self.choosing.values()):
                self.crossed += 1
        return _jitter(transcript)

    def done(self, transcript: Transcript) -> str:
        last = transcript[-1][1]
        found = _TICK.findall(last)
        if '"activity": "browse"' in last and found:
            with self._lock:
                self.choosing[int(found[0])] -= 1
        return plausible_reply(transcript)


def test_pipelined_ticks_equal_the_lockstep_run(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    drives: list[int | None] = []
    real = loop_module.run_driven

    def spy(*args: Any, **kwargs: Any) -> int | None:
        done = real(*args, **kwargs)
        drives.append(done)
        return done

    monkeypatch.setattr(loop_module, "run_driven", spy)
    ahead: list[bool] = []  # a next tick started while the loop wrote the last one
    real_ahead = social_lanes._Tick._ahead

    def spy_ahead(self: Any) -> Any:
        out = real_ahead(self)
        ahead.append(out is not None and out.tick is not None)
        return out

    monkeypatch.setattr(social_lanes._Tick, "_ahead", spy_ahead)
    path = _scenario(tmp_path)
    results, calls = {}, {}
    for name, lockstep in (("lockstep", "1"), ("pipelined", "")):
        monkeypatch.setenv(LOCKSTEP_ENV, lockstep)
        calls[name] = Calls()
        fake = FakeChatModel(responses=calls[name].done, latency=calls[name].start)
        results[name] = run(prepare(load_scenario(path, llm_flag=True)), tmp_path / name,
                            chat_model=fake)
        assert results[name].status == "completed"
        assert fake.max_in_flight == 4  # the client's limit holds
    # Lock-step: no page starts before every choice of its tick is back. Pipelined: pages
    # started while other lanes' choices were in flight, in every tick that had pages
    # (2 arms x 2 rounds x 4 ticks, each choose + act: 2 steps).
    assert calls["lockstep"].crossed == 0
    assert calls["pipelined"].crossed > 0
    assert drives.count(2) == 16
    assert any(ahead) and not all(ahead)  # not after a tick with chats, nor the last
    events = _trace(tmp_path / "lockstep")
    outcomes = {e["outcome"] for e in events if e["type"] == "social_choice"}
    assert outcomes >= {"browse", "search", "chat", "chat_refused", "post"}
    assert {e["type"] for e in events} >= {"page", "decision", "chat", "post", "mention"}
    assert results["lockstep"].metrics == results["pipelined"].metrics
    assert events == _trace(tmp_path / "pipelined")
    raw = [(tmp_path / n / "trace.jsonl").read_text().splitlines() for n in results]
    assert len(raw[0]) == len(raw[1])


# ----------------------------------------------------------------------------- resume

CHILD = r"""
import os, signal, sys
from pathlib import Path
from agents.llm import FakeChatModel
from agents.llm.fake_replies import plausible_reply
from scenarios.loader import load_scenario
from simulations.run.runner import prepare, resume, run

mode, scenario, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
fake = FakeChatModel(responses=plausible_reply)
if mode == "run":
    run(prepare(load_scenario(scenario, llm_flag=True)), out, chat_model=fake)
else:
    resume(out, chat_model=fake)
"""


def _child(mode: str, scenario: Path, out: Path, **env: str
           ) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items()
            if k not in ("RECARENA_CRASH_AT", LOCKSTEP_ENV)}
    return subprocess.run([sys.executable, "-c", CHILD, mode, str(scenario), str(out)],
                          env={**base, "PYTHONPATH": str(REPO), **env},
                          capture_output=True, text=True, timeout=600, check=False)


def test_a_killed_pipelined_tick_resumes_to_the_lockstep_result(tmp_path: Path) -> None:
    path = _scenario(tmp_path)
    ref = tmp_path / "lockstep"
    proc = _child("run", path, ref, **{LOCKSTEP_ENV: "1"})
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((ref / "summary.json").read_text())
    # Killed after the "choose" step of a tick was written (its "act" step and the node's
    # checkpoint not yet): the second tick of round 1 (started ahead, while the loop
    # wrote the first) and the first of round 2; each resumed (pipelined again).
    for crash in ("step:3", "step:12"):
        out = tmp_path / crash.replace(":", "")
        proc = _child("run", path, out, RECARENA_CRASH_AT=crash)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        proc = _child("resume", path, out)
        assert proc.returncode == 0, proc.stderr
        assert json.loads((out / "summary.json").read_text())["metrics"] == \
            summary["metrics"]
        assert _trace(out) == _trace(ref)
        assert json.loads((out / "manifest.json").read_text())["resumed"] == 1


def test_only_recommenders_with_independent_rows_are_pipelined() -> None:
    from simulations.environments.social_lanes import rows_independent
    from tools.recommenders import PluginRecommender, make_recommender

    assert rows_independent(make_recommender("ease"))
    assert rows_independent(make_recommender("random", seed=1))
    assert rows_independent(PluginRecommender("tools.recommenders.social:FriendsRecommender"))
    # Another plug-in might draw per call: its ticks stay lock-step.
    assert not rows_independent(PluginRecommender("tests.test_plugins:MostPopular"))
