"""Evaluation traces: one JSON object per line, versioned, written and flushed as the run goes.

Every event carries ``v`` (schema version), ``seq`` (its position), ``id`` (a stable path
``ARM/rROUND/uUSER/STEP[/...]`` such as ``ease/r1/u42/p2/i17`` or ``pop/r1/u7/t3/verdict``),
``type`` and ``ts``. Wall-clock fields (``ts``, ``elapsed_s``) and an LLM call's
``volatile`` block (cache hit, latency, attempts: a replay answers everything from the
cache) are the only fields that differ between two runs of the same scenario and seed,
or between a recording and its replay; ``strip_volatile`` removes them.

Every line is passed through a :class:`simulations.record.redact.Redactor` before it is written,
so API keys and other secrets never reach the file.

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
                   (``memory_id`` of the stored record, ``text``)
``plan``           one planner step (planner, step, thoughts, tool calls, observations)
``llm_call``       purpose, kind (chat/score), tokens and cost of one model call, under the
                   step that made it; ``key`` (the call's cache key); ``request`` (the
                   rendered messages, or prompt and options) and ``response`` (raw text
                   or log-probabilities) unless ``output.keep_prompts`` is false;
                   ``volatile``: ``cached``, ``latency_s``, ``attempts``
``interview``      satisfaction 1-10 and why, after the user leaves
``session_end``    arm, round, user, pages seen, whether they left early
``conversation_*`` ``conversation_start`` (the hidden target), ``utterance``,
                   ``recommendation`` (items and what the recommender understood),
                   ``verdict`` (accept / reject / give up), ``conversation_end``
social world:      ``social_graph`` (the arm's graph statistics), ``tick`` (active users),
                   ``social_choice`` (activity, outcome, partner, searched item),
                   ``chat`` / ``post`` (text, mentioned items, partner or audience),
                   ``mention`` (item, via, ``to``: who heard it, ``parent``: whom the
                   speaker heard it from; docs/social.md); its ``page`` and ``decision``
                   carry ``tick``, ``via`` (browse/search), ``source`` and ``heard``
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

from simulations.record.crash import crash_now, crash_target
from simulations.record.redact import Redactor

__all__ = ["TRACE_VERSION", "VOLATILE_FIELDS", "ResumeDivergedError", "TraceReadResult",
           "TraceWriter", "event_of", "iter_trace", "read_trace", "strip_volatile"]

TRACE_VERSION = 1
VOLATILE_FIELDS = ("ts", "elapsed_s", "volatile")


class ResumeDivergedError(RuntimeError):
    """Re-executing a run to resume it did not reproduce the events already on disk."""


class TraceWriter:
    """Appends events to a new JSONL file; refuses to overwrite an existing one.

    ``redactor`` masks secrets in every line (default: the secrets of the environment).
    ``TraceWriter.resume`` reopens a killed run's trace instead (see there).
    """

    def __init__(self, path: str | Path, redactor: Redactor | None = None, *,
                 _resume: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self._redact = (redactor or Redactor.from_environment()).text
        self._seq = 0
        self._verify_until = 0
        self._disk: IO[bytes] | None = None
        if _resume is None:
            self._f: IO[bytes] = self.path.open("xb")
            self._offset = 0
        else:
            offset, events = _resume
            with self.path.open("r+b") as f:  # drop what came after the checkpoint
                if f.seek(0, 2) < offset:
                    raise ResumeDivergedError(
                        f"{self.path}: the trace is shorter ({f.tell()} bytes) than its "
                        f"checkpoint ({offset} bytes); it was changed since the run stopped")
                f.truncate(offset)
            self._disk = self.path.open("rb")
            self._verify_until = events
            self._f = self.path.open("ab")
            self._offset = offset
        self._crash_at = crash_target("trace")

    @classmethod
    def resume(cls, path: str | Path, redactor: Redactor | None, *, offset: int,
               events: int) -> TraceWriter:
        """Reopen a trace to continue a run from a checkpoint.

        The file is cut at ``offset`` (the checkpoint's byte offset: anything after it,
        possibly a half-written line, goes). Its first ``events`` events are then expected,
        not written: the run is re-executed from the start, and each event it emits is
        compared with the one on disk, wall-clock and volatile fields aside; a difference
        raises ``ResumeDivergedError``. From event ``events`` on, events are appended.
        """
        return cls(path, redactor, _resume=(offset, events))

    def emit(self, type_: str, id_: str, **fields: Any) -> None:
        event = {"v": TRACE_VERSION, "seq": self._seq, "id": id_, "type": type_,
                 "ts": round(time.time(), 3), **fields}
        line = self._redact(json.dumps(event, sort_keys=True, separators=(",", ":")))
        if self._seq < self._verify_until:
            self._verify(line)
            self._seq += 1
            return
        self._seq += 1
        data = (line + "\n").encode("utf-8")
        if self._crash_at == self._seq:  # test hook: die half-way through this line
            self._f.write(data[: len(data) // 2])
            self._f.flush()
            crash_now()
        self._f.write(data)
        self._offset += len(data)

    def _verify(self, line: str) -> None:
        assert self._disk is not None
        disk = self._disk.readline()
        same = False
        if disk.endswith(b"\n"):
            try:
                same = strip_volatile(json.loads(disk)) == strip_volatile(json.loads(line))
            except json.JSONDecodeError:
                same = False
        if not same:
            raise ResumeDivergedError(
                f"resume diverged at event {self._seq}: the code or data changed since "
                "the run started")
        if self._seq + 1 == self._verify_until:
            self._disk.close()
            self._disk = None

    def flush(self) -> None:
        """Push buffered events to the OS so a crash leaves a readable prefix."""
        self._f.flush()

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
            self._disk = None
        if not self._f.closed:
            self._f.flush()
            self._f.close()

    @property
    def count(self) -> int:
        """Events emitted so far (those verified on a resume included)."""
        return self._seq

    @property
    def offset(self) -> int:
        """Bytes of the file written so far: where the next event starts."""
        return self._offset

    @property
    def verifying(self) -> bool:
        """Whether events are still being compared with a resumed trace's."""
        return self._seq < self._verify_until

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TraceReadResult(list[dict[str, Any]]):
    """The events of a trace; ``truncated`` is true when the last line was cut off."""

    truncated: bool = False


def _trace_file(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / "trace.jsonl"
    if not p.exists():
        raise FileNotFoundError(f"{p}: no trace here (expected a run folder or trace.jsonl)")
    return p


class iter_trace:
    """The events of a trace file (or of ``RUN_DIR/trace.jsonl``), one at a time.

    Streams: memory stays flat however long the trace. After iterating, ``truncated``
    tells whether the last line was a crash's cut-off prefix (see ``read_trace``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = _trace_file(path)
        self.truncated = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        p = self.path
        with p.open("rb") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                if not line.endswith(b"\n"):  # only the last line: a crash's prefix?
                    try:
                        json.loads(line)
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        self.truncated = True
                        break
                yield event_of(p, lineno, line)


def event_of(path: Path, lineno: int, line: bytes) -> dict[str, Any]:
    """The event of one trace line.

    Raises:
        ValueError: Not a JSON event (``FILE:LINE: ...``).
    """
    try:
        event = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        msg = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8"
        raise ValueError(f"{path}:{lineno}: not a JSON event: {msg}") from None
    if not isinstance(event, dict) or "type" not in event:
        raise ValueError(f"{path}:{lineno}: type: every event needs a 'type'")
    return event


def read_trace(path: str | Path) -> TraceReadResult:
    """All events of a trace file (or of ``RUN_DIR/trace.jsonl``), in memory.

    A final line without a newline that does not parse is the prefix a crash left: it is
    dropped and ``truncated`` set. Any other unparsable line is an error naming the line.
    Long traces: prefer ``iter_trace``, which streams.
    """
    events = iter_trace(path)
    out = TraceReadResult(events)
    out.truncated = events.truncated
    return out


def strip_volatile(event: dict[str, Any]) -> dict[str, Any]:
    """The event without wall-clock fields, for comparing runs."""
    return {k: v for k, v in event.items() if k not in VOLATILE_FIELDS}
