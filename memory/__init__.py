"""Agent memory: short-term windows now; long-term stores come with the LLM brain."""

from memory.short_term import ShortTermMemory

__all__ = ["ShortTermMemory"]
