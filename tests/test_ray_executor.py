"""The Ray executor on a real local Ray instance (2 workers, 127.0.0.1 only): the same
metrics and trace (wall-clock and volatile fields aside) as the default executor for the
same seed, with the utility brain and with LLM users replayed from a recorded cache
(long-term chromadb memory and reflections included); a Ray recording whose merged cache
replays in one process; a Ray run killed with SIGKILL and resumed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.llm import FakeChatModel
from scenarios.loader import load_scenario
from simulations.executors.ray_shards import LOCAL_ONLY_ENV
from simulations.record.trace import read_trace, strip_volatile
from simulations.run.runner import prepare, run
from tests.feed_world import write_feed_scenario
from tests.shipped import shipped

REPO = Path(__file__).resolve().parents[1]
RAY = {"kind": "ray", "workers": 2}


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Any:
    """One local Ray instance for the module (the executor joins it and leaves it up)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ[LOCAL_ONLY_ENV] = "0"  # loopback only (read when Ray is imported)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    yield ray
    ray.shutdown()


def _stable(run_dir: Path) -> list[dict[str, Any]]:
    return [strip_volatile(e) for e in read_trace(run_dir)]


def _metrics(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "summary.json").read_text())["metrics"])


def _assert_same(a: Path, b: Path) -> None:
    assert _metrics(a) == _metrics(b)
    ta, tb = _stable(a), _stable(b)
    assert len(ta) == len(tb)
    for x, y in zip(ta, tb, strict=True):  # the first difference, not a 10,000-line diff
        assert x == y


@pytest.fixture(scope="module")
def utility_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_feed_scenario(tmp_path_factory.mktemp("utility"), "shards", seed=11,
                               users=40)


@pytest.fixture(scope="module")
def utility_default(utility_scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("default") / "run"
    run(prepare(load_scenario(utility_scenario)), out)
    return out


def test_utility_brain_on_two_workers_equals_the_default_executor(
        utility_scenario: Path, utility_default: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run(prepare(load_scenario(utility_scenario), executor=RAY), out)
    assert result.status == "completed"
    _assert_same(out, utility_default)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["executor"] == {"kind": "ray", "workers": 2, "address": None}
    # Both workers acted: each has its own folder.
    assert sorted(p.name for p in (out / "workers").iterdir()) == ["w0", "w1"]


def _answer(t: Any) -> str:
    """The fake model: a pure function of the prompt."""
    last = t[-1][1]
    if "what have you learned" in last:
        return "I like comedies."
    if "satisfied" in last:
        n = len(re.findall(r"\d", last))
        return json.dumps({"satisfaction": 3 + n % 7, "reason": "fine picks"})
    ids = re.findall(r"Refer to items only by their id \(([^)]*)\)", last)[0].split(", ")
    return json.dumps({"items": [{"item_id": i, "watch": k == len(last) % 3,
                                  "rating": 2 + len(i) % 4 if k == len(last) % 3 else None,
                                  "reason": f"because {i}"} for k, i in enumerate(ids)],
                       "feeling": "fine", "leave": "Page 3" in last})


@pytest.fixture(scope="module")
def llm_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("llm")
    role = yaml.safe_load(shipped("roles", "llm_user.yaml").read_text())
    role["memory"]["long_term"].update(embedder="hash", reflect_every=4)
    (folder / "role.yaml").write_text(yaml.safe_dump(role))
    scn = yaml.safe_load(shipped("llm_feed.yaml").read_text())
    scn["population"]["role"] = "role.yaml"
    scn["population"]["size"] = 6
    scn["llm"] = {"backend": "fake", "model": "fake", "concurrency": 2}
    scn["recommenders"][1]["retrain"] = True
    path = folder / "llm.yaml"
    path.write_text(yaml.safe_dump(scn))
    return path


@pytest.fixture(scope="module")
def recorded(llm_scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rec") / "run"
    run(prepare(load_scenario(llm_scenario)), out, chat_model=FakeChatModel(responses=_answer))
    return out


def test_llm_users_replayed_on_two_workers_equal_the_default_executor(
        llm_scenario: Path, recorded: Path, tmp_path: Path) -> None:
    default, ray_run = tmp_path / "default", tmp_path / "ray"
    run(prepare(load_scenario(llm_scenario)), default, replay=str(recorded))
    seen: list[Any] = []  # the progress bar's feed: workers report their calls
    result = run(prepare(load_scenario(llm_scenario), executor=RAY), ray_run,
                 replay=str(recorded), on_llm_call=seen.append)
    _assert_same(ray_run, default)
    _assert_same(ray_run, recorded)  # a replay is the recording, volatile fields aside
    events = read_trace(ray_run)
    kinds = {(e["type"], e.get("kind")) for e in events}
    # The comparison covered LLM calls, long-term reads and reflections.
    assert {("llm_call", "chat"), ("memory", "long_term"), ("memory", "reflection")} <= kinds
    assert result.llm is not None and result.llm["mode"] == "replay"
    assert result.llm["calls"] == sum(1 for e in events if e["type"] == "llm_call")
    assert result.llm["cached_calls"] == result.llm["calls"]
    assert len(seen) == result.llm["calls"] and all(r.cached for r in seen)
    # Each worker kept its chromadb stores in its own folder.
    assert all((ray_run / "workers" / w / "memory").is_dir() for w in ("w0", "w1"))
    assert not (ray_run / "memory").exists()


def _stub_answer(body: Any) -> str:
    """The stub server's answers: ``_answer`` of the request's messages."""
    return _answer([(m["role"], m["content"]) for m in body["messages"]])


def test_a_ray_recording_merges_its_cache_shards_and_replays_in_one_process(
        llm_scenario: Path, tmp_path: Path) -> None:
    from bench.stub_server import serve

    ray_run, replayed = tmp_path / "ray", tmp_path / "replayed"
    scn = yaml.safe_load(llm_scenario.read_text())
    with serve(responder=_stub_answer, idle_s=300) as stub:
        # Workers call a real OpenAI-compatible server (loopback) and record.
        scn["llm"] = {"backend": "openai", "model": "stub", "base_url": stub.base_url,
                      "structured_output": "text", "concurrency": 2}
        path = llm_scenario.with_name("stub.yaml")
        path.write_text(yaml.safe_dump(scn))
        result = run(prepare(load_scenario(path), executor=RAY), ray_run)
        requests = stub.stats.requests
    assert result.llm is not None and result.llm["mode"] == "record"
    assert result.llm["calls"] == requests > 0
    # The shards were merged into the run's cache and removed.
    assert not list((ray_run / "workers").glob("w*/llm_cache.sqlite"))
    # Replaying the run's cache in one process (a missing call would fail the run).
    run(prepare(load_scenario(path)), replayed, replay=str(ray_run))
    _assert_same(replayed, ray_run)


def test_an_unpicklable_chat_model_is_a_one_line_error(llm_scenario: Path,
                                                       tmp_path: Path) -> None:
    from simulations.run.runner import RunError

    with pytest.raises(RunError, match="cannot be sent to Ray workers") as e:
        run(prepare(load_scenario(llm_scenario), executor=RAY), tmp_path / "run",
            chat_model=FakeChatModel(responses=_answer))
    assert "\n" not in str(e.value)


def _recarena(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Without RAY_ADDRESS (set by this module's ray.init) the child starts its own Ray.
    full = {k: v for k, v in os.environ.items() if k not in ("RECARENA_CRASH_AT", "RAY_ADDRESS")}
    full.update(PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0", **env)
    return subprocess.run([sys.executable, "-m", "simulations.cli.main", *args], env=full,
                          capture_output=True, text=True, timeout=600, check=False)


def test_a_killed_ray_run_resumes_to_the_default_executors_result(
        utility_scenario: Path, utility_default: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    # Its own local Ray instance (a child process), killed after the 5th step.
    proc = _recarena("run", str(utility_scenario), "--out", str(out), "--quiet",
                     "--executor", "ray", "--workers", "2", RECARENA_CRASH_AT="step:5")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    proc = _recarena("resume", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    _assert_same(out, utility_default)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["resumed"] == 1 and manifest["executor"]["kind"] == "ray"


def test_a_killed_ray_recording_keeps_its_workers_calls_for_the_resume(
        llm_scenario: Path, tmp_path: Path) -> None:
    from bench.stub_server import serve

    scn = yaml.safe_load(llm_scenario.read_text())
    with serve(responder=_stub_answer, idle_s=300) as stub:
        scn["llm"] = {"backend": "openai", "model": "stub", "base_url": stub.base_url,
                      "structured_output": "text", "concurrency": 2}
        path = llm_scenario.with_name("stub_resume.yaml")
        path.write_text(yaml.safe_dump(scn))
        reference = tmp_path / "reference"
        run(prepare(load_scenario(path)), reference)  # uninterrupted, in one process
        paid = stub.stats.requests
        out = tmp_path / "run"
        proc = _recarena("run", str(path), "--out", str(out), "--quiet", "--executor", "ray",
                         RECARENA_CRASH_AT="step:6")
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        before = stub.stats.requests - paid
        # The workers' shards hold what was paid for before the kill.
        assert list((out / "workers").glob("w*/llm_cache.sqlite"))
        proc = _recarena("resume", str(out), "--quiet")
        assert proc.returncode == 0, proc.stderr
        after = stub.stats.requests - paid - before
    assert before > 0 and after > 0
    assert before + after == paid  # nothing paid twice, nothing missing
    _assert_same(out, reference)
