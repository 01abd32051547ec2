"""MACRec's offline tasks: instances, baselines, metrics and the runner."""

__all__: list[str] = []
