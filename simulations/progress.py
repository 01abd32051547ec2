"""The progress bar of ``recarena run`` and ``recarena resume`` (rich).

One line: agent sessions done of all (population x rounds x arms), a bar, the LLM calls so
far (how many came from the cache), tokens, cost, elapsed time and the ETA (rich's
estimate from the rate of finished sessions). The runner feeds it through two callbacks:
``session_end(n)`` (``run(on_session_end=...)``) and ``llm_call(record)``
(``run(on_llm_call=...)``, called from the executor's event loop thread, hence the lock).
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from agents.llm import CallRecord

__all__ = ["LLMTally", "RunProgress"]


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
    """

    def __init__(self, description: str, total: int, *, console: Console | None = None,
                 disable: bool = False, llm: bool = True) -> None:
        self.tally = LLMTally()
        self.llm = llm
        columns = [TextColumn("[progress.description]{task.description}"), BarColumn(),
                   MofNCompleteColumn(), TextColumn("agent sessions done")]
        if llm:
            columns.append(TextColumn("{task.fields[llm]}"))
        columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
        self.progress = Progress(*columns, console=console, disable=disable,
                                 transient=False)
        self.task = self.progress.add_task(description, total=total, llm=self.tally.text())

    def session_end(self, n: int) -> None:
        """``n`` agent sessions ended."""
        self.progress.advance(self.task, n)

    def llm_call(self, rec: CallRecord) -> None:
        """One LLM call finished."""
        self.tally.add(rec)
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
