"""The run's garbage-collection policy (simulations/run/heap.py): survivors of full
collections frozen during a run, thresholds and freezing undone after it, nested runs
sharing it, and a process that froze objects itself left alone."""

from __future__ import annotations

import gc

from simulations.run.heap import survivors_frozen


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_survivors_are_frozen_during_the_run_and_released_after() -> None:
    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    keep = [_Node() for _ in range(100)]
    with survivors_frozen():
        assert gc.get_threshold()[0] >= 50_000
        gc.collect()
        frozen = gc.get_freeze_count()
        assert frozen >= len(keep), "the survivors of the full collection are frozen"
        with survivors_frozen():  # a nested run shares the policy
            gc.collect()
        assert gc.get_freeze_count() >= frozen
        fresh = _Node()
        del fresh
        assert gc.collect() >= 1, "garbage made after the freeze is still collected"
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
    del keep


def test_a_process_that_froze_objects_keeps_its_own_policy() -> None:
    before = gc.get_threshold()
    gc.freeze()
    try:
        mine = gc.get_freeze_count()
        with survivors_frozen():
            assert gc.get_threshold() == before
            gc.collect()
            assert gc.get_freeze_count() == mine
        assert gc.get_freeze_count() == mine
    finally:
        gc.unfreeze()
