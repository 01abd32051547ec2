"""Evaluation traces: one JSON object per line, versioned, written and flushed as the run goes.

Every event carries ``v`` (schema version), ``seq`` (its position), ``id`` (a stable path
``ARM/rROUND/uUSER/STEP[/...]`` such as ``ease/r1/u42/p2/i17`` or ``pop/r1/u7/t3/verdict``),
``type`` and ``ts`` (wall clock, the only field that
differs between two runs of the same scenario and seed).

Event types (version 1):

=================  ==================================================================
``run_start``      resolved config, seed, dataset and catalogue size, population, environment
``population``     how many users play each role
``profile``        a user's traits, tastes and role (once per user)
``round_start``    arm, round, recommender in use, environment
``page``           arm, round, user, page, the item ids shown
``decision``       one per shown item (``watch``/``skip``, rating, inputs) and one per page
                   (``leave``/``next_page``, feeling and whether the model said it)
``memory``         reads (short-term, long-term, shared) and writes, reflections
``plan``           one planner step (planner, step, thoughts, tool calls, observations)
``llm_call``       purpose, tokens and cost of one model call, under the step that made it
``interview``      satisfaction 1-10 and why, after the user leaves
``session_end``    arm, round, user, pages seen, whether they left early
``conversation_*`` ``conversation_start`` (the hidden target), ``utterance``,
                   ``recommendation`` (items and what the recommender understood),
                   ``verdict`` (accept / reject / give up), ``conversation_end``
``retrain``        arm, round, interactions used
``event``          a scripted event taking effect
``metric``         name, arm, round (or null for the whole run), value
``run_end``        status (``completed``/``failed``/``interrupted``), reason, duration
=================  ==================================================================
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["TRACE_VERSION", "TraceReadResult", "TraceWriter", "read_trace", "strip_volatile"]

TRACE_VERSION = 1
VOLATILE_FIELDS = ("ts", "elapsed_s")


class TraceWriter:
    """Appends events to a new JSONL file; refuses to overwrite an existing one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._f: IO[str] = self.path.open("x", encoding="utf-8")
        self._seq = 0

    def emit(self, type_: str, id_: str, **fields: Any) -> None:
        event = {"v": TRACE_VERSION, "seq": self._seq, "id": id_, "type": type_,
                 "ts": round(time.time(), 3), **fields}
        self._seq += 1
        self._f.write(json.dumps(event, sort_keys=True, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        """Push buffered events to the OS so a crash leaves a readable prefix."""
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            self._f.close()

    @property
    def count(self) -> int:
        return self._seq

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TraceReadResult(list[dict[str, Any]]):
    """The events of a trace; ``truncated`` is true when the last line was cut off."""

    truncated: bool = False


def _iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as f:
        yield from enumerate(f, start=1)


def read_trace(path: str | Path) -> TraceReadResult:
    """All events of a trace file (or of ``RUN_DIR/trace.jsonl``).

    A final line without a newline that does not parse is the prefix a crash left: it is
    dropped and ``truncated`` set. Any other unparsable line is an error naming the line.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "trace.jsonl"
    if not p.exists():
        raise FileNotFoundError(f"{p}: no trace here (expected a run folder or trace.jsonl)")
    out = TraceReadResult()
    lines = list(_iter_lines(p))
    for lineno, line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as e:
            if lineno == len(lines) and not line.endswith("\n"):
                out.truncated = True
                break
            raise ValueError(f"{p}:{lineno}: not a JSON event: {e.msg}") from None
        if not isinstance(event, dict) or "type" not in event:
            raise ValueError(f"{p}:{lineno}: type: every event needs a 'type'")
        out.append(event)
    return out


def strip_volatile(event: dict[str, Any]) -> dict[str, Any]:
    """The event without wall-clock fields, for comparing runs."""
    return {k: v for k, v in event.items() if k not in VOLATILE_FIELDS}
