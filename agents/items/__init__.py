"""Item agents (AgentCF): items that describe who likes them, trained with users."""

__all__: list[str] = []
