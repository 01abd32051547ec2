"""SIGTERM handled like Ctrl-C (SIGINT).

``timeout``, systemd, Slurm, Kubernetes and ``kill`` stop a process with SIGTERM. Python's
default for it is to die on the spot, which leaves a run folder's manifest at
``"status": "running"`` for ever. Inside :func:`sigterm_as_interrupt` SIGTERM raises
:class:`Terminated`, a ``KeyboardInterrupt``, in the main thread instead: everything that
handles Ctrl-C (the runner writes ``interrupted``, the trace up to there, the summary and
the manifest) handles SIGTERM the same way. The CLI then exits with 143 (128 + SIGTERM,
what a shell reports for a process SIGTERM ended) instead of 130 for Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["EXIT_SIGTERM", "Terminated", "interrupt_reason", "sigterm_as_interrupt"]

EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM (raised by :func:`sigterm_as_interrupt`'s handler)."""


def interrupt_reason(e: KeyboardInterrupt) -> str:
    """What stopped the run, for the manifest's ``reason``: ``SIGTERM`` or ``SIGINT``."""
    return "SIGTERM" if isinstance(e, Terminated) else "SIGINT"


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"received signal {signal.Signals(signum).name}")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` in the main thread. Outside the main
    thread (where Python cannot install handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
