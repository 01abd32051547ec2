"""Command-line vocabulary shared by the CLI and the agent wiring.

No imports: the CLI loads this for its help text without loading the agents.
"""

__all__ = ["LLM_FLAG_HELP"]

LLM_FLAG_HELP = (
    "local (in-process Gemma 3 270M), openai (the scenario's or OPENAI_BASE_URL's model), "
    "openai:MODEL, or fake (scripted answers of the right shape, no model: to try LLM roles "
    "and teams)"
)
