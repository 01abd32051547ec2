"""The one door to a chat model: cache, rate limits, retries, budget and usage accounting.

Every LLM call of a run goes through ``LLMClient.chat`` or ``LLMClient.score``:

1. Budget: a call that would be charged is refused once the run reached a limit
   (``BudgetExceededError``; the run loop stops cleanly and writes the reason).
2. Cache: a recorded call is answered from the cache, with no limiter and no model. In
   replay mode a miss is ``ReplayMissError`` and the model is never built.
3. Limits: requests per minute (LangChain's ``InMemoryRateLimiter``), tokens per minute
   (a token bucket of our own: LangChain's limiter counts requests only, not their size),
   and a cap on calls in flight.
4. Retries on transient errors (429, 5xx, timeouts, connection errors) with exponential
   backoff and seeded jitter, honouring Retry-After; anything else fails at once. A final
   failure is ``LLMUnavailableError`` with a one-line message without secrets.

Charging (tokens and cost against the budget, per agent and per run): with a cache, each
distinct call is charged once per client (run), the first time it is asked, whether it was
answered live or from the cache; repeats are free. Recording and replaying the same run
therefore charge the same calls and stop at the same call, and a replayed trace equals the
original. Without a cache every live call is charged.
"""

from __future__ import annotations

import email.utils
import functools
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.rate_limiters import InMemoryRateLimiter

from agents.llm.cache import CachedCall, CallCache, CallKind, cache_key
from scenarios.schema import BudgetConfig, LLMConfig

__all__ = [
    "BudgetExceededError",
    "CallRecord",
    "ChatReply",
    "LLMClient",
    "LLMConfigError",
    "LLMError",
    "LLMUnavailableError",
    "ReplayMissError",
    "ScoreReply",
    "ScoringUnsupportedError",
    "TokenBucket",
    "Usage",
    "UsageMeter",
    "describe_error",
    "is_transient",
    "retry_after_s",
]

ROLES = ("system", "user", "assistant")
_T = TypeVar("_T")


# ----------------------------------------------------------------------------- errors


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


# ----------------------------------------------------------------------------- classify

# What the openai SDK itself retries, plus 425 Too Early.
_TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
# Timeouts and connection failures of the openai SDK and httpx, matched by class name so
# that this module needs no provider SDK (and fakes need none either).
_TRANSIENT_TYPES = frozenset({
    "APITimeoutError", "APIConnectionError", "TimeoutException", "ConnectError",
    "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout", "ReadError",
    "WriteError", "RemoteProtocolError", "NetworkError",
})


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: 408/409/425/429, 5xx, timeouts, connection errors."""
    status = _status_of(exc)
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


_SECRET_PATTERNS = (
    re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_*\-]{6,}"),
    re.compile(r"(?i)\bbearer\s+\S+"),
)


def _one_line(text: str, secrets: Sequence[str], limit: int = 240) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    for pat in _SECRET_PATTERNS:
        text = pat.sub("***", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reason(exc: BaseException) -> str:
    """A short human reason: the provider's message, or the root cause of a network error."""
    status = _status_of(exc)
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
    return _one_line(_reason(exc), secrets)


# ----------------------------------------------------------------------------- usage


@dataclass(frozen=True)
class Usage:
    """Charged tokens and cost (see the module doc), and how many calls were made."""

    calls: int = 0
    cached_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, *, cached: bool, input_tokens: int, output_tokens: int,
            cost_usd: float) -> Usage:
        return Usage(calls=self.calls + 1, cached_calls=self.cached_calls + int(cached),
                     input_tokens=self.input_tokens + input_tokens,
                     output_tokens=self.output_tokens + output_tokens,
                     cost_usd=self.cost_usd + cost_usd)


class UsageMeter:
    """Tokens and cost per agent and for the run, checked against the run budget."""

    def __init__(self, budget: BudgetConfig) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self._total = Usage()
        self._agents: dict[str, Usage] = {}

    def cost_of(self, input_tokens: int, output_tokens: int) -> float:
        b = self.budget
        return (input_tokens * b.input_price_per_mtok
                + output_tokens * b.output_price_per_mtok) / 1e6

    def add(self, agent: str, *, cached: bool, input_tokens: int, output_tokens: int,
            cost_usd: float) -> None:
        with self._lock:
            self._total = self._total.add(cached=cached, input_tokens=input_tokens,
                                          output_tokens=output_tokens, cost_usd=cost_usd)
            self._agents[agent] = self._agents.get(agent, Usage()).add(
                cached=cached, input_tokens=input_tokens, output_tokens=output_tokens,
                cost_usd=cost_usd)

    def check(self) -> None:
        """Raise BudgetExceededError when the run has reached a limit."""
        b, total = self.budget, self.total
        if b.max_tokens is not None and total.total_tokens >= b.max_tokens:
            raise BudgetExceededError(
                f"run budget reached: {total.total_tokens:,} tokens used of max_tokens "
                f"{b.max_tokens:,}", limit="max_tokens")
        if b.max_cost_usd is not None and total.cost_usd >= b.max_cost_usd:
            raise BudgetExceededError(
                f"run budget reached: ${total.cost_usd:.4f} spent of max_cost_usd "
                f"${b.max_cost_usd:.4f}", limit="max_cost_usd")

    @property
    def total(self) -> Usage:
        with self._lock:
            return self._total

    @property
    def per_agent(self) -> dict[str, Usage]:
        with self._lock:
            return dict(self._agents)


# ----------------------------------------------------------------------------- limits


class _ClockedRateLimiter(InMemoryRateLimiter):
    """LangChain's request limiter (a token bucket) reading an injected clock.

    LangChain's ``_consume`` reads ``time.monotonic()`` and its blocking ``acquire`` calls
    ``time.sleep``; we keep its bucket and non-blocking ``acquire`` but read our clock and
    wait with our sleep, so tests need no real waiting. The bucket starts with one
    request's credit, so the first call of a run does not wait a full interval.
    """

    def __init__(self, *, requests_per_second: float, clock: Callable[[], float]) -> None:
        super().__init__(requests_per_second=requests_per_second,
                         check_every_n_seconds=min(0.1, 0.25 / requests_per_second),
                         max_bucket_size=1)
        self._clock = clock
        self.available_tokens = 1.0

    def _consume(self) -> bool:
        with self._consume_lock:
            now = self._clock()
            if self.last is None:
                self.last = now
            elapsed = now - self.last
            if elapsed * self.requests_per_second >= 1:
                self.available_tokens += elapsed * self.requests_per_second
                self.last = now
            self.available_tokens = min(self.available_tokens, self.max_bucket_size)
            if self.available_tokens >= 1:
                self.available_tokens -= 1
                return True
            return False


class TokenBucket:
    """Tokens-per-minute limit: a bucket of ``per_minute`` tokens refilled continuously.

    A call takes an estimate up front (its prompt plus ``max_tokens``, as providers count
    it) and ``settle`` corrects it with the real usage afterwards (the bucket may go
    negative: later calls then wait). A request larger than the whole bucket takes the
    whole bucket rather than waiting forever.
    """

    def __init__(self, per_minute: int, *, clock: Callable[[], float]) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def try_take(self, n: int) -> float:
        """Take ``n`` tokens and return 0, or return the seconds to wait before retrying."""
        need = min(float(n), self.capacity)
        with self._lock:
            self._refill()
            if self._tokens >= need:
                self._tokens -= need
                return 0.0
            return (need - self._tokens) / self.rate

    def settle(self, delta: int) -> None:
        """Charge ``delta`` more tokens (negative: give back an over-estimate)."""
        with self._lock:
            self._refill()
            self._tokens = min(self.capacity, self._tokens - delta)


# ----------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class ChatReply:
    text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cached: bool
    attempts: int
    latency_s: float
    key: str
    charged: bool


@dataclass(frozen=True)
class ScoreReply:
    logprobs: list[float]
    input_tokens: int
    cost_usd: float
    cached: bool
    attempts: int
    latency_s: float
    key: str
    charged: bool

    @property
    def best(self) -> int:
        """Index of the most likely option (the first on ties)."""
        return max(range(len(self.logprobs)), key=lambda i: (self.logprobs[i], -i))


@dataclass(frozen=True)
class CallRecord:
    """One finished call, for the trace.

    ``input_tokens``/``output_tokens`` are the call's own usage (as recorded); ``charged``
    says whether they counted against the budget, and ``cost_usd`` is what was charged (0
    for a repeat of a call already charged in this run). ``cached`` (answered without the
    model), ``latency_s`` and ``attempts`` differ between a recording and its replay; the
    other fields do not, so a trace that leaves those three out replays identically.
    """

    agent: str
    purpose: str
    kind: CallKind
    key: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    charged: bool
    cached: bool
    latency_s: float
    attempts: int
    request: Mapping[str, Any] | None = None  # {"messages": [[role, text]...]} or prompt+options
    response: Mapping[str, Any] | None = None  # {"text": ...} or {"logprobs": [...]}


# ----------------------------------------------------------------------------- client


@dataclass(frozen=True)
class _Done(Generic[_T]):
    """A finished call as ``_cached_call`` returns it."""

    value: _T
    n_in: int
    n_out: int
    attempts: int
    key: str
    charged: bool
    rec: CallRecord


def _to_lc(messages: Sequence[tuple[str, str]]) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for role, content in messages:
        if role == "system":
            out.append(SystemMessage(content=content))
        elif role == "user":
            out.append(HumanMessage(content=content))
        else:
            out.append(AIMessage(content=content))
    return out


def _estimate_tokens(text: str) -> int:
    # ~4 characters per token for English; only used for limits and when a server
    # reports no usage, never for the cache key.
    return max(1, math.ceil(len(text) / 4))


def _give_up(text: str, *, error: BaseException, status: int | None, attempts: int,
             secrets: Sequence[str]) -> LLMUnavailableError:
    err = LLMUnavailableError(_one_line(text, secrets), status_code=status, attempts=attempts)
    # Provider and network errors are not chained: their text may echo credentials.
    provider = status is not None or is_transient(error)
    err.__cause__ = None if provider else error
    err.__suppress_context__ = True
    return err


class LLMClient:
    """Cached, limited, retried and metered access to the chat model of ``cfg``.

    Args:
        cfg: The scenario's ``llm:`` block.
        chat_model: Use this model (tests: ``FakeChatModel``); default: built from
            ``cfg`` on the first call that needs it (never in replay).
        cache: Record every call here and answer repeats from it.
        replay: Answer only from ``cache``; a miss raises ReplayMissError.
        seed: Seeds the retry jitter.
        sleep, clock: Injected for tests (no real waiting).
        on_call: Called with a CallRecord after each finished call (from the calling
            thread).
    """

    def __init__(
        self,
        cfg: LLMConfig,
        *,
        chat_model: BaseChatModel | None = None,
        cache: CallCache | None = None,
        replay: bool = False,
        seed: int = 0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_call: Callable[[CallRecord], None] | None = None,
    ) -> None:
        if replay and cache is None:
            raise ValueError("replay needs a cache to replay from")
        self.cfg = cfg
        self.cache = cache
        self.replay = replay
        self.on_call = on_call
        self._model = chat_model
        self._sleep, self._clock = sleep, clock
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(cfg.concurrency)
        self._rpm = (None if cfg.requests_per_minute is None else _ClockedRateLimiter(
            requests_per_second=cfg.requests_per_minute / 60.0, clock=clock))
        self._tpm = (None if cfg.tokens_per_minute is None
                     else TokenBucket(cfg.tokens_per_minute, clock=clock))
        self.meter = UsageMeter(cfg.budget)
        self._charged: set[str] = set()
        self._key_locks: dict[str, threading.Lock] = {}
        self._state_lock = threading.Lock()
        self._records: list[CallRecord] = []

    def __repr__(self) -> str:
        return (f"LLMClient(backend={self.cfg.backend!r}, model={self.cfg.model!r}, "
                f"mode={self.mode!r})")

    # ------------------------------------------------------------------ public

    @property
    def usage(self) -> UsageMeter:
        """``usage.total`` and ``usage.per_agent`` (charged tokens and cost)."""
        return self.meter

    @property
    def records(self) -> list[CallRecord]:
        with self._state_lock:
            return list(self._records)

    @property
    def mode(self) -> str:
        """"record" (write-through cache), "replay" (cache only) or "off" (no cache)."""
        return "replay" if self.replay else ("record" if self.cache is not None else "off")

    @property
    def model_built(self) -> bool:
        """Whether a chat model exists (false throughout a replay)."""
        return self._model is not None

    def chat(self, messages: Sequence[tuple[str, str]], *, agent: str,
             purpose: str) -> ChatReply:
        """Send a conversation of (role, content) pairs; roles: system, user, assistant."""
        msgs = [(str(r), str(c)) for r, c in messages]
        bad = [r for r, _ in msgs if r not in ROLES]
        if bad or not msgs:
            raise ValueError(f"messages need roles in {ROLES} (got {bad or 'no messages'})")
        request: dict[str, Any] = {"messages": [[r, c] for r, c in msgs]}

        def live() -> tuple[str, int, int, int]:
            estimate = sum(_estimate_tokens(c) for _, c in msgs) + self.cfg.max_tokens
            lc = _to_lc(msgs)
            msg, attempts = self._call(lambda m: m.invoke(lc), estimate)
            text, n_in, n_out = self._unpack(msg, msgs)
            if self._tpm is not None:
                self._tpm.settle(n_in + n_out - estimate)
            return text, n_in, n_out, attempts

        d = self._cached_call("chat", request, agent=agent, purpose=purpose,
                              from_cache=lambda hit: hit.text, live=live,
                              stored=lambda text: {"text": text})
        return ChatReply(text=d.value, input_tokens=d.n_in, output_tokens=d.n_out,
                         cost_usd=d.rec.cost_usd, cached=d.rec.cached, attempts=d.attempts,
                         latency_s=d.rec.latency_s, key=d.key, charged=d.charged)

    def score(self, prompt: str, options: Sequence[str], *, agent: str,
              purpose: str) -> ScoreReply:
        """Log-probability of each option as the continuation of ``prompt`` (the sum over
        the option's tokens). The local backend puts a space between a prompt ending in a
        non-space and an option starting with one ("Answer:" + "yes" = "Answer: yes").

        Raises:
            ScoringUnsupportedError: The backend cannot read log-probabilities.
        """
        opts = [str(o) for o in options]
        if not opts:
            raise ValueError("score needs at least one option")
        request: dict[str, Any] = {"prompt": prompt, "options": opts}

        def live() -> tuple[list[float], int, int, int]:
            estimate = _estimate_tokens(prompt) + sum(_estimate_tokens(o) for o in opts)
            (logprobs, n_in), attempts = self._call(
                lambda m: self._score_on(m, prompt, opts), estimate)
            if self._tpm is not None:
                self._tpm.settle(n_in - estimate)
            return logprobs, n_in, 0, attempts

        d = self._cached_call(
            "score", request, agent=agent, purpose=purpose,
            from_cache=lambda hit: None if hit.logprobs is None else list(hit.logprobs),
            live=live, stored=lambda logprobs: {"logprobs": logprobs})
        return ScoreReply(logprobs=d.value, input_tokens=d.n_in, cost_usd=d.rec.cost_usd,
                          cached=d.rec.cached, attempts=d.attempts,
                          latency_s=d.rec.latency_s, key=d.key, charged=d.charged)

    def _cached_call(
        self,
        kind: CallKind,
        request: dict[str, Any],
        *,
        agent: str,
        purpose: str,
        from_cache: Callable[[CachedCall], _T | None],
        live: Callable[[], tuple[_T, int, int, int]],
        stored: Callable[[_T], dict[str, Any]],
    ) -> _Done[_T]:
        """What chat and score share: one call per key at a time, the budget check, the
        cache (hit, replay miss, write-through) and the accounting."""
        key = self._key(kind, request)
        with self._key_lock(key):
            t0 = self._clock()
            charged = self._will_charge(key)
            if charged:
                self.meter.check()
            hit = self.cache.get(key) if self.cache is not None else None
            value = from_cache(hit) if hit is not None else None
            if hit is not None and value is not None:
                n_in, n_out, attempts = hit.input_tokens, hit.output_tokens, 0
            else:
                self._miss(key, agent, purpose)
                value, n_in, n_out, attempts = live()
                if self.cache is not None:
                    self.cache.put(key, kind=kind, backend=self.cfg.backend,
                                   model=self._model_id(), request=request,
                                   input_tokens=n_in, output_tokens=n_out, **stored(value))
            rec = self._finish(agent, purpose, kind, key, n_in, n_out, charged,
                               cached=attempts == 0, t0=t0, attempts=attempts,
                               request=request, response=stored(value))
        return _Done(value, n_in, n_out, attempts, key, charged, rec)

    # ------------------------------------------------------------------ internals

    def _model_id(self) -> str:
        from agents.llm.backends import model_identity

        return model_identity(self.cfg)

    def _key(self, kind: CallKind, request: Mapping[str, Any]) -> str:
        from agents.llm.backends import key_params

        return cache_key(kind=kind, backend=self.cfg.backend, model=self._model_id(),
                         request=request, params=key_params(self.cfg, kind))

    @contextmanager
    def _key_lock(self, key: str) -> Iterator[None]:
        # Identical concurrent calls wait for the first, then hit its cache entry: with
        # temperature > 0 two live answers could differ, and replay keeps only one.
        with self._state_lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def _will_charge(self, key: str) -> bool:
        if self.cache is None:
            return True
        with self._state_lock:
            return key not in self._charged

    def _miss(self, key: str, agent: str, purpose: str) -> None:
        if self.replay:
            raise ReplayMissError(
                f"replay: no recorded LLM call for agent {agent!r} ({purpose}), key "
                f"{key[:12]}; the scenario, prompts or model differ from the recording",
                agent=agent, purpose=purpose, key=key)

    def _finish(self, agent: str, purpose: str, kind: CallKind, key: str, n_in: int,
                n_out: int, charged: bool, *, cached: bool, t0: float, attempts: int,
                request: Mapping[str, Any] | None = None,
                response: Mapping[str, Any] | None = None) -> CallRecord:
        cost = self.meter.cost_of(n_in, n_out)
        if charged:
            with self._state_lock:
                self._charged.add(key)
        self.meter.add(agent, cached=cached, input_tokens=n_in if charged else 0,
                       output_tokens=n_out if charged else 0,
                       cost_usd=cost if charged else 0.0)
        rec = CallRecord(agent=agent, purpose=purpose, kind=kind, key=key, input_tokens=n_in,
                         output_tokens=n_out, cost_usd=cost if charged else 0.0,
                         charged=charged, cached=cached, latency_s=self._clock() - t0,
                         attempts=attempts, request=request, response=response)
        with self._state_lock:
            self._records.append(rec)
        if self.on_call is not None:
            self.on_call(rec)
        return rec

    def _get_model(self) -> BaseChatModel:
        with self._model_lock:
            if self._model is None:
                from agents.llm.backends import make_chat_model

                self._model = make_chat_model(self.cfg)
            return self._model

    @staticmethod
    def _score_on(model: BaseChatModel, prompt: str,
                  options: list[str]) -> tuple[list[float], int]:
        with_usage = getattr(model, "score_with_usage", None)
        if callable(with_usage):
            scores, n_in = with_usage(prompt, options)
            return [float(x) for x in scores], int(n_in)
        plain = getattr(model, "score_options", None)
        if callable(plain):
            return [float(x) for x in plain(prompt, options)], _estimate_tokens(prompt)
        raise ScoringUnsupportedError(
            f"the {type(model).__name__} chat model cannot score answers by log-probability;"
            " use decision_mode: structured")

    def _unpack(self, msg: Any, msgs: Sequence[tuple[str, str]]) -> tuple[str, int, int]:
        text = msg.text if isinstance(msg, AIMessage) else str(msg)
        usage = getattr(msg, "usage_metadata", None) or {}
        n_in = int(usage.get("input_tokens") or 0) or sum(_estimate_tokens(c) for _, c in msgs)
        n_out = int(usage.get("output_tokens") or 0)
        if not usage.get("output_tokens") and text:
            n_out = _estimate_tokens(text)
        return text, n_in, n_out

    def _wait_limits(self, estimate: int) -> None:
        if self._rpm is not None:
            while not self._rpm.acquire(blocking=False):
                self._sleep(self._rpm.check_every_n_seconds)
        if self._tpm is not None:
            while (wait := self._tpm.try_take(estimate)) > 0:
                self._sleep(wait)

    def _backoff(self, attempt: int) -> float:
        # Exponential step d = min(max, base * 2**attempt), waited with jitter uniformly in
        # [d/2, d]: clients spread apart, and a later retry never waits less than half the
        # step, so waits keep growing until the cap.
        cfg = self.cfg
        d = min(cfg.backoff_max_s, cfg.backoff_base_s * 2.0 ** attempt)
        with self._rng_lock:
            return d / 2 + self._rng.uniform(0.0, d / 2)

    def _call(self, fn: Callable[[BaseChatModel], _T], estimate: int) -> tuple[_T, int]:
        """Run ``fn(model)`` with limits and retries; return its result and the attempts."""
        from agents.llm.backends import describe_endpoint

        cfg = self.cfg
        attempt = 0
        while True:
            attempt += 1
            self._wait_limits(estimate)
            try:
                with self._slots:
                    return fn(self._get_model()), attempt
            except LLMError:
                raise
            except Exception as exc:
                error = exc
            where = describe_endpoint(cfg)
            secrets = [os.environ.get(cfg.api_key_env, "")]
            reason = describe_error(error, secrets)
            status = _status_of(error)
            transient = is_transient(error)
            fail = functools.partial(_give_up, error=error, status=status, attempts=attempt,
                                     secrets=secrets)

            if not transient:
                if status is None:
                    raise fail(f"LLM endpoint {where} failed: {type(error).__name__}: {reason}")
                raise fail(f"LLM endpoint {where} rejected the request: {reason}")
            if attempt > cfg.max_retries:
                verb = "unreachable" if status is None else "failing"
                raise fail(f"LLM endpoint {where} {verb} after {attempt} attempt"
                           f"{'s' if attempt > 1 else ''}: {reason}")
            delay = self._backoff(attempt - 1)
            asked = retry_after_s(error)
            if asked is not None:
                if asked > cfg.backoff_max_s:
                    raise fail(f"LLM endpoint {where} asked to retry after {asked:g} s, more "
                               f"than backoff_max_s={cfg.backoff_max_s:g}: {reason}")
                delay = max(delay, asked)
            self._sleep(delay)
