"""The progress bar of ``recarena run`` and ``recarena resume`` (rich).

One line: agent sessions done of all (population x rounds x arms), a bar, the LLM calls so
far (how many came from the cache), tokens, cost, elapsed time and the ETA (rich's
estimate from the rate of finished sessions). The runner feeds it through two callbacks:
``session_end(n)`` (``run(on_session_end=...)``) and ``llm_call(record)``
(``run(on_llm_call=...)``, called from the executor's event loop thread, hence the lock).

Off a terminal (CI logs, ``nohup``, output piped to a file) a bar would be drawn once, cut
to 80 columns, at the end: ``make_progress`` gives a :class:`PlainProgress` there instead,
which prints a plain, complete line per task when it starts, every ``every`` seconds
(``RECARENA_PROGRESS_EVERY``, default 30) and when it ends. The ``eval`` commands' bars
use ``make_progress`` too.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from agents.llm import CallRecord

__all__ = ["EVERY_ENV", "LLMTally", "PlainProgress", "RunProgress", "make_progress"]

EVERY_ENV = "RECARENA_PROGRESS_EVERY"


def _every() -> float:
    try:
        return max(0.0, float(os.environ.get(EVERY_ENV, "30")))
    except ValueError:
        return 30.0


def _clock(seconds: float | None) -> str:
    return "?" if seconds is None else str(timedelta(seconds=int(seconds)))


class PlainProgress(Progress):
    """A rich ``Progress`` that draws nothing live and prints plain lines instead: one per
    task when it is added, at most one every ``every`` seconds while it advances, and one
    when it completes (or when the display stops). For consoles that are not terminals.

    A line: ``DESCRIPTION: DONE/TOTAL UNIT (PCT%) · LLM · elapsed H:MM:SS · ETA H:MM:SS``
    (``unit`` and ``llm`` are optional task fields).
    """

    def __init__(self, *columns: str | ProgressColumn, console: Console | None = None,
                 every: float | None = None, **kwargs: Any) -> None:
        kwargs.pop("disable", None)
        super().__init__(*columns, console=console, disable=True, **kwargs)
        self.every = _every() if every is None else every
        self._printed: dict[TaskID, tuple[float, float]] = {}  # task -> (time, completed)
        self._plain_lock = threading.Lock()

    def line(self, task: Task) -> str:
        """The plain line of ``task`` now."""
        total = task.total
        done = int(task.completed)
        parts = [f"{task.description}: {done}/{int(total) if total is not None else '?'}"]
        if task.fields.get("unit"):
            parts[0] += f" {task.fields['unit']}"
        if total:
            parts[0] += f" ({100 * task.completed / total:.0f}%)"
        if task.fields.get("llm"):
            parts.append(str(task.fields["llm"]))
        parts.append(f"elapsed {_clock(task.elapsed or 0.0)}")
        if not task.finished:
            parts.append(f"ETA {_clock(task.time_remaining)}")
        return " · ".join(parts)

    def _emit(self, task_id: TaskID, force: bool = False) -> None:
        task = next((t for t in self.tasks if t.id == task_id), None)
        if task is None:
            return
        with self._plain_lock:
            now = time.monotonic()
            last = self._printed.get(task_id)
            finished = task.finished
            if last is not None and last[1] == task.completed:
                return  # nothing new to say
            if not (force or last is None or finished or now - last[0] >= self.every):
                return
            self._printed[task_id] = (now, task.completed)
            self.console.print(self.line(task), markup=False, highlight=False,
                               soft_wrap=True)

    def add_task(self, description: str, start: bool = True, total: float | None = 100.0,
                 completed: int = 0, visible: bool = True, **fields: Any) -> TaskID:
        task_id = super().add_task(description, start, total, completed, visible, **fields)
        self._emit(task_id)
        return task_id

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._emit(task_id)

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        if "completed" in kwargs or "advance" in kwargs or "total" in kwargs:
            self._emit(task_id)

    def stop(self) -> None:
        for task_id in self.task_ids:
            self._emit(task_id, force=True)  # the final count, unless printed already
        super().stop()


def make_progress(*columns: str | ProgressColumn, console: Console | None = None,
                  disable: bool = False, every: float | None = None,
                  **kwargs: Any) -> Progress:
    """A rich ``Progress`` on a terminal; off one (and not ``disable``), a
    :class:`PlainProgress` printing plain lines every ``every`` seconds."""
    console = console or Console(stderr=True)
    if disable or console.is_terminal:
        return Progress(*columns, console=console, disable=disable, **kwargs)
    return PlainProgress(*columns, console=console, every=every, **kwargs)


class LLMTally:
    """LLM calls, cache hits, tokens and cost so far (thread-safe)."""

    def __init__(self) -> None:
        self.calls = self.cached = self.tokens = 0
        self.cost_usd = 0.0
        self._lock = threading.Lock()

    def add(self, rec: CallRecord) -> None:
        with self._lock:
            self.calls += 1
            self.cached += int(rec.cached)
            self.tokens += rec.input_tokens + rec.output_tokens
            self.cost_usd += rec.cost_usd

    def text(self) -> str:
        with self._lock:
            cached = f" ({self.cached} cached)" if self.cached else ""
            return (f"LLM calls {self.calls}{cached} · tokens {self.tokens:,} · "
                    f"${self.cost_usd:.4f}")


class RunProgress:
    """A rich progress line for a run; a context manager.

    Args:
        description: What runs, e.g. the scenario's name.
        total: Agent sessions in the run (population x rounds x arms).
        console: Where to draw (stderr in the CLI).
        disable: Draw nothing (``--quiet``, ``--json``); the callbacks still count.
        llm: Show the LLM column (runs whose agents use a language model).
        every: Off a terminal, seconds between plain lines (see ``make_progress``).
    """

    def __init__(self, description: str, total: int, *, console: Console | None = None,
                 disable: bool = False, llm: bool = True, every: float | None = None) -> None:
        self.tally = LLMTally()
        self.llm = llm
        columns = [TextColumn("[progress.description]{task.description}"), BarColumn(),
                   MofNCompleteColumn(), TextColumn("agent sessions done")]
        if llm:
            columns.append(TextColumn("{task.fields[llm]}"))
        columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
        self.progress = make_progress(*columns, console=console, disable=disable,
                                      every=every, transient=False)
        self.task = self.progress.add_task(description, total=total,
                                           llm=self.tally.text() if llm else "",
                                           unit="agent sessions done")

    def session_end(self, n: int) -> None:
        """``n`` agent sessions ended."""
        self.progress.advance(self.task, n)

    def llm_call(self, rec: CallRecord) -> None:
        """One LLM call finished."""
        self.tally.add(rec)
        if self.llm:
            self.progress.update(self.task, llm=self.tally.text())

    @property
    def done(self) -> int:
        return int(self.progress.tasks[0].completed)

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.stop()
