"""Reading a trace: metrics, per-user statistics, intervals, paired tests."""

__all__: list[str] = []
