"""What agents and environments call: data, catalogue lookups, classic recommenders."""

__all__: list[str] = []
