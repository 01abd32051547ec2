"""Executors: how a run's agents are scheduled (in this process, or sharded over Ray).

``make_executor`` picks one from the scenario's ``executor:`` block; see
``simulations.executors.base`` for the contract and docs/scaling.md for Ray.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

from scenarios.schema import ExecutorConfig, LLMConfig, RoleConfig, sharding_problem
from simulations.executors.base import NO_RAY, ClientView, Executor, ExecutorError
from simulations.executors.default import DefaultExecutor
from simulations.executors.spec import LibrarySpec, PopulationSpec

__all__ = ["ClientView", "DefaultExecutor", "Executor", "ExecutorError", "LibrarySpec",
           "PopulationSpec", "check_executor", "make_executor"]


def check_executor(cfg: ExecutorConfig, roles: Sequence[RoleConfig], llm: LLMConfig | None,
                   *, from_flags: bool) -> None:
    """Refuse, before any work, what ``cfg`` cannot run (the file's own block was checked
    at load; ``from_flags``: it carries ``recarena run`` flags, named in the message).

    Raises:
        ValueError: A flag combination or scenario the executor cannot run (exit 2).
        ExecutorError: The ray executor without the ``ray`` extra.
    """
    if from_flags and cfg.kind == "default" and cfg.address is not None:
        raise ValueError("--ray-address: only the ray executor joins a cluster; add "
                         "--executor ray")
    if cfg.kind != "ray":
        return
    problem = sharding_problem(roles, llm) if from_flags else None
    if problem:
        raise ValueError(f"--executor: {problem}")
    if importlib.util.find_spec("ray") is None:
        raise ExecutorError(NO_RAY)


def make_executor(cfg: ExecutorConfig, spec: PopulationSpec,
                  emit: Callable[..., None], run_dir: Path) -> Executor:
    """The executor ``cfg`` names, building agents from ``spec``."""
    if cfg.kind == "ray":
        from simulations.executors.ray_shards import RayExecutor

        return RayExecutor(cfg, spec, emit, run_dir)
    return DefaultExecutor(spec, emit)
