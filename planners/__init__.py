"""Planners: how an agent orders its steps (static now; reactive, preactive, reflective later)."""

from planners.static import static_plan

__all__ = ["static_plan"]
