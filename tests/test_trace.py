"""Trace writer and reader: versioned events, no overwrite, crash-tolerant reading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulations.record.trace import TRACE_VERSION, TraceWriter, read_trace, strip_volatile


def test_writer_assigns_seq_version_and_flushes(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    w = TraceWriter(p)
    w.emit("run_start", "run", seed=1)
    w.emit("page", "a/r1/u1/p1", items=["1"])
    w.flush()
    # Readable before close: a crash after flush leaves these lines.
    lines = p.read_text().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [0, 1]
    assert all(json.loads(x)["v"] == TRACE_VERSION for x in lines)
    w.close()


def test_writer_refuses_to_overwrite(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_text("keep\n")
    with pytest.raises(FileExistsError):
        TraceWriter(p)
    assert p.read_text() == "keep\n"


def test_reader_drops_cut_last_line(tmp_path: Path) -> None:
    p = tmp_path / "trace.jsonl"
    p.write_text('{"type":"run_start","ts":1}\n{"type":"page","ar')
    events = read_trace(tmp_path)
    assert [e["type"] for e in events] == ["run_start"]
    assert events.truncated


def test_reader_rejects_corrupt_middle_line(tmp_path: Path) -> None:
    p = tmp_path / "trace.jsonl"
    p.write_text('{"type":"run_start"}\nnot json\n{"type":"run_end"}\n')
    with pytest.raises(ValueError, match=r"trace.jsonl:2:"):
        read_trace(p)


def test_strip_volatile() -> None:
    assert strip_volatile({"ts": 1.0, "elapsed_s": 2.0, "type": "x"}) == {"type": "x"}


def test_strip_volatile_drops_llm_timing() -> None:
    ev = {"type": "llm_call", "input_tokens": 3,
          "volatile": {"cached": True, "latency_s": 0.1, "attempts": 0}}
    assert strip_volatile(ev) == {"type": "llm_call", "input_tokens": 3}
