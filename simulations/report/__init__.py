"""The HTML report and the results table."""

__all__: list[str] = []
