"""Resume of runs whose stores live in the run folder: the shipped conversation scenario
with a MACRec team (its lessons are a shared store in RUN/agent_memory) and a Chat-REC
role, on the fake chat model, killed twice with SIGKILL and resumed twice, must end with the
uninterrupted run's trace and metrics; and the store registry (agents.run_stores) that
rolls every store back, including one a later module adds."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from agents.run_stores import (
    LEGACY_STORE_DIRS,
    STORES_FILE,
    registered_stores,
    reset_stores,
    store_dir,
)
from simulations.record.trace import read_trace
from tests.shipped import shipped
from tests.test_resume import _assert_same, _manifest, _recarena, _summary

REPO = Path(__file__).resolve().parents[1]
SCENARIO = shipped("agent_conversation.yaml")
ARGS = ("--llm", "fake", "--users", "2", "--quiet")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("team_ref") / "run"
    proc = _recarena("run", str(SCENARIO), "--out", str(out), *ARGS)
    assert proc.returncode == 0, proc.stderr
    return out


def test_the_reference_writes_team_lessons_in_the_run_folder(reference: Path) -> None:
    # What makes this scenario a test of roll-back: the team's reflector writes lessons
    # into a store in the run folder, and later tasks read them.
    events = read_trace(reference)
    lessons = [e for e in events if e["type"] == "lesson"]
    reads = [e for e in events if e["type"] == "memory" and e.get("kind") == "shared"
             and e.get("recalled")]
    assert lessons and reads
    assert (reference / "agent_memory").is_dir()
    assert "agent_memory" in json.loads((reference / STORES_FILE).read_text())
    assert len(events) > 270  # both kills below land inside the run


def test_a_team_run_killed_twice_and_resumed_twice_is_the_uninterrupted_run(
        reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _recarena("run", str(SCENARIO), "--out", str(out), *ARGS,
                     RECARENA_CRASH_AT="trace:200")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # Killed after lessons were written past its last checkpoint: the store is ahead of
    # the trace, which is what broke the first resume ("resume diverged at event 87"
    # when only memory/ was rolled back).
    proc = _recarena("resume", str(out), "--quiet", RECARENA_CRASH_AT="trace:260")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    proc = _recarena("resume", str(out), "--quiet", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["metrics"] == _summary(reference)["metrics"]
    _assert_same(out, reference)
    assert _manifest(out)["resumed"] == 2


# ----------------------------------------------------------------------------- registry


def test_every_registered_store_is_rolled_back_and_others_are_kept(tmp_path: Path) -> None:
    run = tmp_path / "run"
    memory = store_dir(run, "memory")
    later = store_dir(run, "social_graph")  # a store a later issue adds: no other change
    worker = store_dir(run / "workers" / "w0", "memory")  # a Ray worker's own folder
    for folder in (memory, later, worker):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "rows.bin").write_bytes(b"after the checkpoint")
    (run / "llm_cache.sqlite").write_bytes(b"paid for")  # never a store: kept
    (run / "trace.jsonl").write_text("{}\n")
    assert store_dir(run, "memory") == memory  # registering twice is one record
    assert json.loads((run / STORES_FILE).read_text()) == ["memory", "social_graph"]
    assert set(registered_stores(run)) == {memory, later, worker}
    assert set(reset_stores(run)) == {memory, later, worker}
    assert not memory.exists() and not later.exists() and not worker.exists()
    assert (run / "llm_cache.sqlite").read_bytes() == b"paid for"
    assert (run / "trace.jsonl").exists()
    assert reset_stores(run) == []  # nothing left to roll back; the records stay
    assert (run / STORES_FILE).is_file()


def test_a_run_folder_from_before_the_registry_still_rolls_its_stores_back(
        tmp_path: Path) -> None:
    for name in LEGACY_STORE_DIRS:
        (tmp_path / name).mkdir()
    assert sorted(p.name for p in reset_stores(tmp_path)) == sorted(LEGACY_STORE_DIRS)


@pytest.mark.parametrize("name", ["", "..", "a/b", "."])
def test_a_store_name_is_one_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="one plain folder name"):
        store_dir(tmp_path, name)
