"""Agents: user profiles, brains and the user-agent graph nodes."""

__all__: list[str] = []
