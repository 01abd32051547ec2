"""Reading run folders: the trace index and the ``recarena trace`` views built on it.

Nothing here imports the simulation (agents, numpy) unless a view needs it, so the trace
commands start fast.
"""

__all__: list[str] = []
