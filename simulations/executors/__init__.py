"""Executors: how a run's agents are scheduled (in this process, or sharded over Ray).

``make_executor`` picks one from the scenario's ``executor:`` block; see
``simulations.executors.base`` for the contract and docs/scaling.md for Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from scenarios.schema import ExecutorConfig
from simulations.executors.base import ClientView, Executor, ExecutorError
from simulations.executors.default import DefaultExecutor

__all__ = ["ClientView", "DefaultExecutor", "Executor", "ExecutorError", "make_executor"]


def make_executor(cfg: ExecutorConfig, factory_args: dict[str, Any],
                  emit: Callable[..., None], run_dir: Path) -> Executor:
    """The executor ``cfg`` names, building agents from ``factory_args``
    (``PopulationFactory`` keyword arguments without ``emit``)."""
    if cfg.kind == "ray":
        from simulations.executors.ray_shards import RayExecutor

        return RayExecutor(cfg, factory_args, emit, run_dir)
    return DefaultExecutor(factory_args, emit)
