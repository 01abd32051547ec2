"""What a run writes: the trace, redaction of secrets, crash points for tests."""

__all__: list[str] = []
