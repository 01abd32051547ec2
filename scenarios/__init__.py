"""Scenario and role files that ship with RecArena, and their schema."""

__all__: list[str] = []
