"""Preparing, running and resuming a run: data, worlds, users, the run folder."""

__all__: list[str] = []
