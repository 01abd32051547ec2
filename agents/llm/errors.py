"""The LLM layer's errors, and one-line descriptions of provider errors without secrets.

Depends on nothing else in the package, so every other module (backends included) can raise
these without an import cycle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = [
    "BudgetExceededError",
    "LLMConfigError",
    "LLMError",
    "LLMUnavailableError",
    "ReplayMissError",
    "ScoringUnsupportedError",
    "describe_error",
    "one_line",
    "status_of",
]


class LLMError(Exception):
    """Base of the client's errors; ``str()`` is always one line without secrets."""


class LLMUnavailableError(LLMError):
    """The endpoint failed for good: retries exhausted, or a non-transient error.

    ``status_code`` is the last HTTP status (None for network errors), ``attempts`` how many
    requests were made. A provider's own exception is not chained (its text may echo
    credentials); other errors (bugs) are, for debugging.
    """

    def __init__(self, message: str, *, status_code: int | None = None,
                 attempts: int = 0) -> None:
        super().__init__(message)
        self.status_code, self.attempts = status_code, attempts


class BudgetExceededError(LLMError):
    """The run reached its token or cost budget; ``limit`` is "max_tokens" or
    "max_cost_usd"."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class ReplayMissError(LLMError):
    """Replay found no recorded answer for a call."""

    def __init__(self, message: str, *, agent: str, purpose: str, key: str) -> None:
        super().__init__(message)
        self.agent, self.purpose, self.key = agent, purpose, key


class ScoringUnsupportedError(LLMError):
    """The chat model cannot score answers by log-probability."""


class LLMConfigError(LLMError):
    """The ``llm:`` block cannot be used as is (an unset API key variable, no model file)."""


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a provider error (openai SDK style), or None."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


_SECRET_PATTERNS = (
    re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_*\-]{6,}"),
    re.compile(r"(?i)\bbearer\s+\S+"),
)


def one_line(text: str, secrets: Sequence[str] = (), limit: int = 240) -> str:
    """``text`` on one line, at most ``limit`` characters, with ``secrets`` and key-like
    strings masked."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    for pat in _SECRET_PATTERNS:
        text = pat.sub("***", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reason(exc: BaseException) -> str:
    """A short human reason: the provider's message, or the root cause of a network error."""
    status = status_of(exc)
    if status is not None:
        body = getattr(exc, "body", None)
        msg = None
        if isinstance(body, Mapping):
            err = body.get("error", body)
            msg = err.get("message") if isinstance(err, Mapping) else err
        if not isinstance(msg, str) or not msg:
            msg = str(exc)
        return f"HTTP {status}: {msg}"
    root: BaseException = exc
    seen = {id(root)}
    while True:  # the SDK's "Connection error." hides httpx's "Connection refused"
        nxt = root.__cause__ or root.__context__
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        root = nxt
    text = str(root) or str(exc) or type(exc).__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    if isinstance(root, TimeoutError) or "Timeout" in type(root).__name__:
        text = f"timed out ({text})" if "time" not in text.lower() else text
    return text


def describe_error(exc: BaseException, secrets: Sequence[str] = ()) -> str:
    """One line saying why a call failed, with ``secrets`` and key-like strings masked."""
    return one_line(_reason(exc), secrets)
