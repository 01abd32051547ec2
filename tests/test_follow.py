"""The trace follower (simulations/run/follow.py): the outcome and the index it makes while
a trace is written equal what ``trace_outcome`` and ``build_index`` read from the finished
file; a bad line fails as the outcome pass fails; an abandoned follower leaves nothing."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from scenarios.loader import load_scenario
from simulations.inspection.index import INDEX_FILENAME, build_index
from simulations.record.trace import TraceWriter
from simulations.run.follow import TraceFollower
from simulations.run.outcome import trace_outcome
from simulations.run.runner import prepare, run
from tests.shipped import shipped


def _tables(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as c:
        out = {t: sorted(c.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
               for t in ("events", "event_items", "items")}
        meta = dict(c.execute("SELECT key, value FROM meta").fetchall())
    meta.pop("trace_mtime_ns")
    out["meta"] = sorted(meta.items())
    return out


def _assert_indexed_as_plain(index: Path, trace: Path, tmp_path: Path) -> None:
    """``index`` holds what ``build_index`` makes of the finished trace; no temporary
    file is left beside it."""
    plain = build_index(trace, tmp_path / "plain.sqlite")
    assert _tables(index) == _tables(plain)
    assert not list(index.parent.glob("*.tmp*"))


def _write(trace: Path, n: int, *, pause: float = 0.0) -> None:
    """``n`` feed-like pages and decisions, flushed a few at a time (``pause`` between)."""
    with TraceWriter(trace) as w:
        w.emit("run_start", "run", n_items=5, n_users=2, environment="feed")
        for k in range(n):
            w.emit("page", f"a/r1/u{k % 2}/p{k}", arm="a", round=1, user=str(k % 2),
                   items=["1", "2"])
            w.emit("decision", f"a/r1/u{k % 2}/p{k}/i1", arm="a", round=1, user=str(k % 2),
                   item="1", action="watch" if k % 3 else "skip", rating=4, position=1)
            if k % 5 == 0:
                w.flush()
                time.sleep(pause)


def test_follower_matches_passes_over_the_finished_trace(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    writer = threading.Thread(target=_write, args=(trace, 60), kwargs={"pause": 0.01})
    writer.start()
    while not trace.exists():
        time.sleep(0.001)
    follower = TraceFollower(trace, tmp_path / INDEX_FILENAME, poll_s=0.005).start()
    try:
        writer.join()
        outcome = follower.outcome(trace.stat().st_size)
        with trace.open("ab") as f:  # written after the outcome: in the index only
            f.write(b'{"type":"run_end","seq":999,"id":"run/end","status":"completed"}\n')
        follower.finish()
    finally:
        follower.close()
    assert outcome == trace_outcome(trace)
    assert outcome.metrics["arms"], "the outcome saw the pages"
    _assert_indexed_as_plain(tmp_path / INDEX_FILENAME, trace, tmp_path)


def test_a_bad_line_fails_the_outcome_like_the_plain_pass(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    _write(trace, 12)
    lines = trace.read_bytes().splitlines(keepends=True)
    trace.write_bytes(b"".join([*lines[:7], b"{not json\n", *lines[8:]]))
    with pytest.raises(ValueError) as plain:
        trace_outcome(trace)
    follower = TraceFollower(trace, tmp_path / INDEX_FILENAME, poll_s=0.005).start()
    try:
        with pytest.raises(ValueError) as followed:
            follower.outcome(trace.stat().st_size)
    finally:
        follower.close()
    assert str(followed.value) == str(plain.value)
    assert ":" in str(plain.value) and "not a JSON event" in str(plain.value)
    assert not (tmp_path / INDEX_FILENAME).exists() and not list(tmp_path.glob("*.tmp*"))


def test_an_abandoned_follower_leaves_no_index(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    _write(trace, 5)
    follower = TraceFollower(trace, tmp_path / INDEX_FILENAME, poll_s=0.005).start()
    time.sleep(0.05)
    follower.close()
    assert not (tmp_path / INDEX_FILENAME).exists() and not list(tmp_path.glob("*.tmp*"))


def test_a_run_writes_the_index_and_metrics_of_its_trace(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = run(prepare(load_scenario(shipped("quickstart.yaml")), users=5), out)
    assert res.metrics == trace_outcome(out / "trace.jsonl").metrics
    _assert_indexed_as_plain(out / INDEX_FILENAME, out / "trace.jsonl", tmp_path)


def test_finish_without_an_outcome_indexes_the_whole_trace(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    _write(trace, 8)
    follower = TraceFollower(trace, tmp_path / INDEX_FILENAME, poll_s=0.005).start()
    try:
        follower.finish()
    finally:
        follower.close()
    _assert_indexed_as_plain(tmp_path / INDEX_FILENAME, trace, tmp_path)
