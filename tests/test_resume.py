"""Checkpoint and resume: real `recarena run` processes killed with SIGKILL at chosen points
(half-way through a trace line, during a recommender refit between rounds, between a
step and its checkpoint, during an LLM call) and from outside once the trace has grown,
then `recarena resume`; metrics and trace (wall-clock and volatile fields aside) must equal
an uninterrupted run's. Also: what resume refuses, and a changed trace detected."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulations.cli.main import main
from simulations.record.trace import read_trace, strip_volatile
from tests.feed_world import feed_scenario, write_feed_scenario
from tests.shipped import shipped

REPO = Path(__file__).resolve().parents[1]

SCENARIO = feed_scenario("resume", seed=5, users=60)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RECARENA_CRASH_AT"}
    env["PYTHONPATH"] = str(REPO)
    return {**env, **extra}


def _recarena(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulations.cli.main", *args], env=_env(**env),
                          capture_output=True, text=True, timeout=600, check=False)


def _stable(run_dir: Path) -> list[dict[str, Any]]:
    return [strip_volatile(e) for e in read_trace(run_dir)]


def _summary(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "summary.json").read_text()))


def _manifest(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "manifest.json").read_text()))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_feed_scenario(tmp_path_factory.mktemp("scenario"), "resume", seed=5,
                               users=60)


@pytest.fixture(scope="module")
def reference(scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = _recarena("run", str(scenario), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


def _assert_same(run_dir: Path, reference: Path) -> None:
    assert _summary(run_dir)["metrics"] == _summary(reference)["metrics"]
    assert _stable(run_dir) == _stable(reference)
    m = _manifest(run_dir)
    assert m["status"] == "completed"
    assert m["resumed"] >= 1


@pytest.mark.parametrize("crash", ["trace:700", "refit:3", "step:4", "checkpoint:6", "trace:1"])
def test_killed_run_resumes_to_the_uninterrupted_result(
        crash: str, scenario: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _recarena("run", str(scenario), "--out", str(out), "--quiet",
                     RECARENA_CRASH_AT=crash)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _manifest(out)["status"] == "running"
    assert not (out / "summary.json").exists()
    if crash.startswith("trace:"):  # killed mid-line: the file ends in a partial event
        assert not (out / "trace.jsonl").read_bytes().endswith(b"\n")
    if crash == "refit:3":  # killed in the refit between ease's rounds 1 and 2
        ids = {e["id"] for e in read_trace(out)}
        assert "ease/r1" in ids and "ease/r1/retrain" not in ids and "ease/r2" not in ids
    proc = _recarena("resume", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    _assert_same(out, reference)


def test_killed_while_writing_the_metrics(scenario: Path, reference: Path,
                                          tmp_path: Path) -> None:
    events = read_trace(reference)
    last_step = max(e["seq"] for e in events if e["type"] != "metric" and e["type"] != "run_end")
    out = tmp_path / "run"
    proc = _recarena("run", str(scenario), "--out", str(out), "--quiet",
                     RECARENA_CRASH_AT=f"trace:{last_step + 3}")  # a metric event
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert b'"type":"metric"' in (out / "trace.jsonl").read_bytes()
    assert _recarena("resume", str(out), "--quiet").returncode == 0
    _assert_same(out, reference)


def test_killed_from_outside_once_the_trace_has_grown(
        scenario: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    size = (reference / "trace.jsonl").stat().st_size
    child = subprocess.Popen(
        [sys.executable, "-m", "simulations.cli.main", "run", str(scenario), "--out", str(out),
         "--quiet"], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trace = out / "trace.jsonl"
    try:
        while child.poll() is None:
            if trace.exists() and trace.stat().st_size > size // 2:
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert main(["resume", str(out), "--quiet"]) == 0
    _assert_same(out, reference)


def test_resume_twice(scenario: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _recarena("run", str(scenario), "--out", str(out), "--quiet",
                     RECARENA_CRASH_AT="step:2").returncode == -signal.SIGKILL
    assert _recarena("resume", str(out), "--quiet",
                     RECARENA_CRASH_AT="refit:3").returncode == -signal.SIGKILL
    proc = _recarena("resume", str(out), "--quiet", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["metrics"] == _summary(reference)["metrics"]
    _assert_same(out, reference)
    assert _manifest(out)["resumed"] == 2


def test_resume_refuses_a_completed_run(reference: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resume", str(reference)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"{reference}: the run completed already; nothing to resume"


def test_resume_refuses_a_folder_that_is_not_a_run(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a run folder" in err and len(err.strip().splitlines()) == 1


def test_resume_refuses_a_changed_scenario(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    scen = write_feed_scenario(tmp_path, "resume", seed=5, users=60)
    out = tmp_path / "run"
    assert _recarena("run", str(scen), "--out", str(out), "--quiet",
                     RECARENA_CRASH_AT="step:3").returncode == -signal.SIGKILL
    scen.write_text(yaml.safe_dump({**SCENARIO, "seed": 6}))
    assert main(["resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "config changed since the run started" in err and "\n" not in err
    assert _manifest(out)["status"] == "running"


def test_a_changed_trace_is_a_divergence(scenario: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert _recarena("run", str(scenario), "--out", str(out), "--quiet",
                     RECARENA_CRASH_AT="step:6").returncode == -signal.SIGKILL
    lines = (out / "trace.jsonl").read_bytes().split(b"\n")
    k = next(i for i, line in enumerate(lines) if b'"type":"decision"' in line)
    ev = json.loads(lines[k])
    ev["action"] = "skip" if ev["action"] == "watch" else "watch"
    lines[k] = json.dumps(ev, sort_keys=True, separators=(",", ":")).encode()
    (out / "trace.jsonl").write_bytes(b"\n".join(lines))
    assert main(["resume", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"resume diverged at event {ev['seq']}: the code or data changed since "
                   "the run started")


# ----------------------------------------------------------------------------- LLM users

CHILD = r"""
import json, os, re, signal, sys
from pathlib import Path
from agents.llm import FakeChatModel
from scenarios.loader import load_scenario
from simulations.run.runner import prepare, resume, run

mode, scenario, out, crash_at = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
calls = [0]

def answer(t):
    # A pure function of the prompt (a resumed run asks the model again after its
    # checkpoint), with a kill at the crash_at-th call.
    calls[0] += 1
    if calls[0] == crash_at:
        os.kill(os.getpid(), signal.SIGKILL)
    last = t[-1][1]
    if "what have you learned" in last:
        return "I like comedies."
    if "satisfied" in last:
        return json.dumps({"satisfaction": 6, "reason": "fine picks"})
    ids = re.findall(r"Refer to items only by their id \(([^)]*)\)", last)[0].split(", ")
    return json.dumps({"items": [{"item_id": i, "watch": k == 0,
                                  "rating": 4 if k == 0 else None,
                                  "reason": f"because {i}"} for k, i in enumerate(ids)],
                       "feeling": "fine", "leave": "Page 3" in last})

fake = FakeChatModel(responses=answer)
if mode == "run":
    run(prepare(load_scenario(scenario), users=3), out, chat_model=fake)
else:
    resume(out, chat_model=fake)
print(calls[0])
"""


@pytest.fixture(scope="module")
def llm_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("llm")
    role = yaml.safe_load(shipped("roles", "llm_user.yaml").read_text())
    role["memory"]["long_term"].update(embedder="hash", reflect_every=4)
    (folder / "role.yaml").write_text(yaml.safe_dump(role))
    scn = yaml.safe_load(shipped("llm_feed.yaml").read_text())
    scn["population"]["role"] = "role.yaml"
    scn["llm"] = {"backend": "fake", "model": "fake", "concurrency": 1}
    scn["recommenders"][1]["retrain"] = True
    path = folder / "llm.yaml"
    path.write_text(yaml.safe_dump(scn))
    return path


def _child(mode: str, scenario: Path, out: Path, crash_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, mode, str(scenario), str(out),
                           str(crash_at)], env=_env(), capture_output=True, text=True,
                          timeout=600, check=False)


def test_llm_run_killed_during_a_call_resumes_from_its_cache(
        llm_scenario: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    proc = _child("run", llm_scenario, ref, 0)
    assert proc.returncode == 0, proc.stderr
    total = int(proc.stdout.split()[-1])
    assert total > 20
    out = tmp_path / "run"
    proc = _child("run", llm_scenario, out, total * 2 // 3)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    proc = _child("resume", llm_scenario, out, 0)
    assert proc.returncode == 0, proc.stderr
    # The calls before the checkpoint came from the cache: the model was asked only for
    # the rest (and for the one the kill interrupted).
    assert 0 < int(proc.stdout.split()[-1]) < total // 2
    _assert_same(out, ref)
    assert _summary(out)["llm"]["calls"] == _summary(ref)["llm"]["calls"]
