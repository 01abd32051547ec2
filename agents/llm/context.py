"""How large a local model's context window is: sized from what the prompts need.

A llama.cpp context is allocated when the model loads, and a request that does not fit
fails (``Requested tokens (2538) exceed context window of 2048``). A fixed default is
wrong in both directions: team prompts carry tool results and members' reports and need
more than 2048 tokens, while a large window costs memory on every load. So the local
backend sizes it from the requests themselves (``fit_context``): it starts at
``AUTO_START`` tokens and doubles, reloading the model, whenever a prompt plus the tokens
it may generate would not fit, up to what the model was trained for. An answer never
depends on the window: a request always gets its full ``max_tokens``.

A window given in ``llm.n_ctx`` (``--llm-ctx``) is kept as given, and a request that does
not fit is a one-line error naming the size that would.
"""

from __future__ import annotations

from agents.llm.errors import LLMConfigError

__all__ = ["AUTO_START", "ContextTooSmallError", "fit_context"]

# The first window of an automatically sized context (tokens). Feed prompts of user agents
# are 150-700 tokens; team prompts with tool results reach 2,500-4,000.
AUTO_START = 2048


class ContextTooSmallError(LLMConfigError):
    """A request does not fit the context window and the window may not grow."""


def fit_context(need: int, *, trained: int, configured: int | None,
                current: int | None = None, model: str = "the local model") -> int:
    """The context window (tokens) to run a request needing ``need`` tokens in.

    Args:
        need: Prompt tokens plus the tokens the request may generate (or, for scoring,
            plus the longest option).
        trained: The context length the model was trained for (the most it can use);
            0 or less when unknown.
        configured: ``llm.n_ctx`` when the scenario or ``--llm-ctx`` set it, else None
            (size it automatically).
        current: The window the model is loaded with now, if it is loaded.
        model: The model's name, for messages.

    Returns:
        ``configured`` when given; else ``current`` when the request fits it; else the
        smallest of ``AUTO_START`` doubled that holds ``need``, capped at ``trained``.

    Raises:
        ContextTooSmallError: ``need`` exceeds ``configured`` (the message names the size
            to set, or to leave it unset), or exceeds what the model was trained for.
    """
    if need < 1:
        raise ValueError(f"need must be at least 1 token, got {need}")
    if configured is not None:
        if need > configured:
            raise ContextTooSmallError(
                f"a request needs {need} tokens but {model}'s context window is "
                f"{configured} (llm.n_ctx / --llm-ctx): set it to at least "
                f"{_round_up(need)}, or leave it unset to size it from the prompts")
        return configured
    if trained > 0 and need > trained:
        raise ContextTooSmallError(
            f"a request needs {need} tokens but {model} supports at most {trained}: "
            "shorten the role's prompt templates or lower llm.max_tokens / "
            "brain.reply_tokens")
    if current is not None and need <= current:
        return current
    size = max(AUTO_START, current or 0)
    while size < need:
        size *= 2
    return min(size, trained) if trained > 0 else size


def _round_up(n: int, step: int = 512) -> int:
    return -(-n // step) * step
