"""Which failures are worth retrying, how long to wait, and the one-line final error.

``RetryPolicy.after_failure`` is pure decision: it returns the delay before the next
attempt or raises the final ``LLMUnavailableError``; the client's sync and async loops do
the waiting, so both share one policy.
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from collections.abc import Callable, Sequence

from agents.llm.errors import LLMUnavailableError, describe_error, one_line, status_of
from scenarios.schema import LLMConfig

__all__ = ["RetryPolicy", "is_transient", "retry_after_s"]

# What the openai SDK itself retries, plus 425 Too Early.
_TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
# Timeouts and connection failures of the openai SDK and httpx, matched by class name so
# that this module needs no provider SDK (and fakes need none either).
_TRANSIENT_TYPES = frozenset({
    "APITimeoutError", "APIConnectionError", "TimeoutException", "ConnectError",
    "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout", "ReadError",
    "WriteError", "RemoteProtocolError", "NetworkError",
})


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: 408/409/425/429, 5xx, timeouts, connection errors."""
    status = status_of(exc)
    if status is not None:
        return status in _TRANSIENT_STATUS or status >= 500
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    return any(c.__name__ in _TRANSIENT_TYPES for c in type(exc).__mro__)


def _headers_of(exc: BaseException) -> dict[str, str]:
    headers = getattr(exc, "headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    items = getattr(headers, "items", None)
    if not callable(items):
        return {}
    try:
        return {str(k).lower(): str(v) for k, v in items()}
    except Exception:  # a header object we do not understand: no hint, not a failure
        return {}


def retry_after_s(exc: BaseException, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` / ``retry-after``), if any."""
    h = _headers_of(exc)
    try:
        if "retry-after-ms" in h:
            return max(0.0, float(h["retry-after-ms"]) / 1000.0)
        if "retry-after" in h:
            value = h["retry-after"].strip()
            try:
                return max(0.0, float(value))
            except ValueError:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - now())
    except (ValueError, TypeError, OverflowError):
        return None
    return None


def _give_up(text: str, *, error: BaseException, status: int | None, attempts: int,
             secrets: Sequence[str]) -> LLMUnavailableError:
    err = LLMUnavailableError(one_line(text, secrets), status_code=status, attempts=attempts)
    # Provider and network errors are not chained: their text may echo credentials.
    provider = status is not None or is_transient(error)
    err.__cause__ = None if provider else error
    err.__suppress_context__ = True
    return err


class RetryPolicy:
    """Exponential backoff with seeded jitter, Retry-After, and a bounded number of tries.

    Args:
        cfg: ``max_retries``, ``backoff_base_s``, ``backoff_max_s`` and the name of the
            API key variable (its value is masked in messages).
        endpoint: Where calls go, for messages (no credentials).
        seed: Seeds the jitter.
    """

    def __init__(self, cfg: LLMConfig, *, endpoint: str, seed: int = 0) -> None:
        self.cfg, self.endpoint = cfg, endpoint
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt + 1``."""
        # Exponential step d = min(max, base * 2**attempt), waited with jitter uniformly in
        # [d/2, d]: clients spread apart, and a later retry never waits less than half the
        # step, so waits keep growing until the cap.
        cfg = self.cfg
        d = min(cfg.backoff_max_s, cfg.backoff_base_s * 2.0 ** attempt)
        with self._lock:
            return d / 2 + self._rng.uniform(0.0, d / 2)

    def after_failure(self, error: BaseException, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``.

        Raises:
            LLMUnavailableError: The error is not transient, retries are exhausted, or the
                server asked for a wait longer than ``backoff_max_s``.
        """
        cfg = self.cfg
        where = self.endpoint
        secrets = [os.environ.get(cfg.api_key_env, "")]
        reason = describe_error(error, secrets)
        status = status_of(error)

        def fail(text: str) -> LLMUnavailableError:
            return _give_up(text, error=error, status=status, attempts=attempt,
                            secrets=secrets)

        if not is_transient(error):
            if status is None:
                raise fail(f"LLM endpoint {where} failed: {type(error).__name__}: {reason}")
            raise fail(f"LLM endpoint {where} rejected the request: {reason}")
        if attempt > cfg.max_retries:
            verb = "unreachable" if status is None else "failing"
            raise fail(f"LLM endpoint {where} {verb} after {attempt} attempt"
                       f"{'s' if attempt > 1 else ''}: {reason}")
        delay = self.backoff(attempt - 1)
        asked = retry_after_s(error)
        if asked is not None:
            if asked > cfg.backoff_max_s:
                raise fail(f"LLM endpoint {where} asked to retry after {asked:g} s, more "
                           f"than backoff_max_s={cfg.backoff_max_s:g}: {reason}")
            delay = max(delay, asked)
        return delay
