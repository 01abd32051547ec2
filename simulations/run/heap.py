"""Full garbage collections that do not rescan what the run keeps.

A run accumulates long-lived objects (the agents' memories, call records, sessions), and
CPython's full (generation 2) collection traverses every one of them each time it runs,
which is each time the heap has grown by a quarter. On the 1,000-user benchmark
(docs/benchmarks.md, "LLM users at scale") 15 full collections took 4.4 s of a 62 s run,
every one with the agents' event loop stopped. While a run is going, the survivors of each
full collection are frozen (``gc.freeze``: moved to the permanent generation, which
collections skip), so the next full collection scans only what came since; when the run
ends they are unfrozen, and collectable again. The youngest generation is also collected
every 50,000 allocations instead of 700: the run allocates fast and most of it dies young
by reference counting (on the same benchmark, collections in all took 0.9 s instead of
3.2 s with the freezing alone; 1.9 s at 10,000).

The cost: a reference cycle among objects that survived a full collection and later became
garbage is reclaimed only when the run ends (objects freed by reference counting, nearly
all, are freed at once, frozen or not). A process that froze objects itself (e.g. before
forking) keeps its own policy: nothing is changed then.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["survivors_frozen"]

_lock = threading.Lock()
_depth = 0  # runs in progress in this process that installed the policy
_YOUNG = 50_000  # allocations between collections of the youngest generation
_saved: tuple[int, int, int] = (700, 10, 10)


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    # After a full collection the younger generations are empty: what is tracked now is
    # what survived it.
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


@contextmanager
def survivors_frozen() -> Iterator[None]:
    """Freeze the survivors of every full collection until the block ends (nested and
    concurrent runs share one policy, removed when the last ends)."""
    global _depth, _saved
    with _lock:
        if _depth == 0 and gc.get_freeze_count() > 0:  # someone else's policy
            installed = False
        else:
            installed = True
            _depth += 1
            if _depth == 1:
                gc.callbacks.append(_freeze_survivors)
                _saved = gc.get_threshold()
                gc.set_threshold(max(_YOUNG, _saved[0]), *_saved[1:])
    try:
        yield
    finally:
        if installed:
            with _lock:
                _depth -= 1
                if _depth == 0:
                    gc.callbacks.remove(_freeze_survivors)
                    gc.set_threshold(*_saved)
                    gc.unfreeze()
