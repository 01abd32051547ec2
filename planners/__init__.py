"""Planners: how an agent orders its steps before it acts, each a LangGraph subgraph.

``static`` (a fixed path), ``reactive`` (ReAct), ``preactive`` (plan ahead, re-plan on
failure) and ``reflective`` (Reflexion). See :mod:`planners.base` for what they take.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from planners.base import (
    FinalAnswer,
    PlannerRuntime,
    PlanRequest,
    PlanResult,
    PlanState,
    Tool,
    initial_state,
)
from planners.preactive import build_preactive_planner
from planners.reactive import build_reactive_planner
from planners.reflective import build_reflective_planner
from planners.static import STATIC_STEPS, build_static_planner, static_plan

__all__ = [
    "PLANNERS",
    "STATIC_STEPS",
    "FinalAnswer",
    "PlanRequest",
    "PlanResult",
    "PlanState",
    "PlannerRuntime",
    "Tool",
    "build_planner",
    "initial_state",
    "static_plan",
]

PLANNERS = ("static", "reactive", "preactive", "reflective")


def build_planner(kind: str, steps: Sequence[str] = ("decide",)) -> Any:
    """The compiled subgraph of planner ``kind`` (``steps``: the static planner's path)."""
    if kind == "static":
        return build_static_planner(steps)
    if kind == "reactive":
        return build_reactive_planner()
    if kind == "preactive":
        return build_preactive_planner()
    if kind == "reflective":
        return build_reflective_planner()
    raise ValueError(f"unknown planner {kind!r}; known: {', '.join(PLANNERS)}")
