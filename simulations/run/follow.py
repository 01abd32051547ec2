"""The run's trace read while it is written: metrics and index ready when the run ends.

The run's outcome (metrics, counts: ``simulations.run.outcome``) and the trace index
(``trace_index.sqlite``: ``simulations.inspection.index``) each need a pass over the whole
trace; made after the last event, the two passes held up the end of a 1,000-user run by
about 1.3 s (docs/benchmarks.md). A ``TraceFollower`` makes them in a thread of its own,
as the trace grows: every poll it takes the whole lines the writer has flushed, adds them
to the index and hands their events to the outcome pass. At the end only the last lines
are left to read. The SQLite part runs in C without the GIL, beside the agents' loop.

The passes see exactly what ``trace_outcome`` and ``build_index`` would read from the
finished file (tests/test_follow.py compares them), and the index is written to a
temporary file renamed into place only when complete, as ``build_index`` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from simulations.inspection.index import add_lines, begin_index, end_index
from simulations.record.trace import event_of
from simulations.run.outcome import TraceOutcome, outcome_of

__all__ = ["TraceFollower"]


class _Cancelled(Exception):
    pass


class TraceFollower:
    """Follows ``trace`` from its start; writes its index to ``index`` at ``finish``.

    Call ``start`` once the trace file exists (after a resume has cut it at its
    checkpoint), ``outcome`` when every event the outcome covers is flushed, ``finish``
    once the trace is closed, and ``close`` always (it abandons unfinished work).
    """

    def __init__(self, trace: Path, index: Path, *, poll_s: float = 0.5) -> None:
        self.trace, self.index, self.poll_s = trace, index, poll_s
        self._tmp = index.with_name(f"{index.name}.tmp{os.getpid()}")
        self._thread = threading.Thread(target=self._work, daemon=True,
                                        name="recarena-trace-follower")
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._outcome_until: int | None = None  # bytes the outcome covers, once known
        self._finishing = False
        self._cancelled = False
        self._outcome_done = threading.Event()
        self._outcome: TraceOutcome | None = None
        self._error: BaseException | None = None
        self._offset = 0  # bytes read
        self._line = 0  # lines read
        self._rest = b""  # a line not yet ended

    def start(self) -> TraceFollower:
        self._thread.start()
        return self

    def outcome(self, until: int) -> TraceOutcome:
        """The outcome of the trace's first ``until`` bytes (all flushed).

        Raises:
            ValueError: A line is not a JSON event (``FILE:LINE: ...``).
        """
        with self._lock:
            self._outcome_until = until
        self._wake.set()
        self._outcome_done.wait()
        if self._outcome is None:
            raise self._failure()
        return self._outcome

    def finish(self) -> Path:
        """Index the rest of the (closed) trace and put the index in place."""
        with self._lock:
            self._finishing = True
        self._wake.set()
        self._thread.join()
        if self._error is not None or not self.index.is_file():
            raise self._failure()
        return self.index

    def close(self) -> None:
        """Stop (if not finished) and remove the unfinished index."""
        if self._thread.is_alive():
            with self._lock:
                self._cancelled = True
            self._wake.set()
            self._thread.join()
        self._tmp.unlink(missing_ok=True)

    def _failure(self) -> BaseException:
        return self._error or RuntimeError("the trace follower stopped")

    # ------------------------------------------------------------------ the thread

    def _work(self) -> None:
        try:
            conn = sqlite3.connect(self._tmp)
            try:
                begin_index(conn, indexes=True)
                self._outcome = outcome_of(self._events(conn))
                self._outcome_done.set()
                self._wait(lambda: self._finishing)
                cut = self._read_rest(conn)
                end_index(conn, self.trace, cut, indexes=False)
                conn.commit()
            finally:
                conn.close()
            os.replace(self._tmp, self.index)
        except _Cancelled:
            pass
        except BaseException as e:  # reported to the caller of outcome/finish
            self._error = e
        finally:
            self._outcome_done.set()
            with contextlib.suppress(OSError):
                self._tmp.unlink(missing_ok=True)

    def _wait(self, ready: Callable[[], bool]) -> None:
        while True:
            with self._lock:
                if self._cancelled:
                    raise _Cancelled
                if ready():
                    return
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _events(self, conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
        """The events the outcome covers, indexed as they are read."""
        while True:
            with self._lock:
                until, cancelled = self._outcome_until, self._cancelled
                finishing = self._finishing
            if cancelled:
                raise _Cancelled
            lines = self._take(until)
            if lines:
                # Parsed first: a bad line is reported as the outcome pass reports it.
                events = [event_of(self.trace, n, raw) for n, raw in lines]
                add_lines(conn, self.trace, self._texts(lines))
                yield from events
                continue
            if (until is not None and self._offset >= until) or finishing:
                return  # (finishing: ``finish`` without ``outcome`` reads to the end)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _take(self, until: int | None) -> list[tuple[int, bytes]]:
        """The whole non-blank lines flushed since the last read (up to ``until`` bytes)."""
        at = self._offset + len(self._rest)
        with self.trace.open("rb") as f:
            f.seek(at)
            data = self._rest + f.read(-1 if until is None else max(0, until - at))
        end = data.rfind(b"\n") + 1
        self._rest = data[end:]
        out: list[tuple[int, bytes]] = []
        for raw in data[:end].splitlines(keepends=True):
            self._line += 1
            self._offset += len(raw)
            if raw.strip():
                out.append((self._line, raw))
        return out

    def _texts(self, lines: list[tuple[int, bytes]]) -> list[tuple[int, str]]:
        out = []
        for n, raw in lines:
            try:
                out.append((n, raw.decode("utf-8").rstrip("\r\n")))
            except UnicodeDecodeError:
                raise ValueError(f"{self.trace}:{n}: not UTF-8 text") from None
        return out

    def _read_rest(self, conn: sqlite3.Connection) -> int | None:
        """Index the rest of the closed trace; the number of a last line a crash cut off
        (no newline, not JSON), if any, as ``build_index`` reports it."""
        lines = self._take(None)
        rows = self._texts(lines)
        cut = None
        if self._rest:
            n = self._line + 1
            try:
                text = self._rest.decode("utf-8")
                json.loads(text)
            except ValueError:  # UnicodeDecodeError is a ValueError
                cut = n
            else:
                if text.strip():
                    rows.append((n, text))
        add_lines(conn, self.trace, rows)
        return cut
