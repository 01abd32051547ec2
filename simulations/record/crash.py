"""A test hook that kills the process at a chosen point, as ``kill -9`` would.

``RECARENA_CRASH_AT=KIND:N[,KIND:N...]`` sends SIGKILL to the process itself at the N-th
occurrence (1-based) of a point of that kind:

=============  =============================================================
``trace``      half-way through writing the N-th trace event (the file ends in a
               partial line)
``refit``      fitting a recommender for the N-th time (the arm's first fit is 1;
               a ``retrain: true`` arm refits after every round but the last)
``step``       after the N-th step of the run loop, before its events are flushed
``checkpoint`` just before the N-th checkpoint is saved (the step is done, its
               events are flushed, the checkpoint does not say so yet)
=============  =============================================================

Unset (always, outside tests) nothing happens; the cost is one dictionary look-up per point.
"""

from __future__ import annotations

import os
import signal

__all__ = ["CRASH_ENV", "crash_now", "crash_point", "crash_target"]

CRASH_ENV = "RECARENA_CRASH_AT"
_seen: dict[str, int] = {}


def crash_target(kind: str) -> int | None:
    """N of ``KIND:N`` in RECARENA_CRASH_AT, or None."""
    for part in os.environ.get(CRASH_ENV, "").split(","):
        name, _, n = part.strip().partition(":")
        if name == kind and n.isdigit():
            return int(n)
    return None


def crash_now() -> None:
    """SIGKILL this process: no cleanup, no flush, no finally blocks."""
    os.kill(os.getpid(), signal.SIGKILL)


def crash_point(kind: str) -> None:
    """Count one point of ``kind``; die if it is the one RECARENA_CRASH_AT names."""
    target = crash_target(kind)
    if target is None:
        return
    _seen[kind] = _seen.get(kind, 0) + 1
    if _seen[kind] == target:
        crash_now()
