"""The public test double for the LLM seam: a scripted chat model plus provider-like errors.

``FakeChatModel`` answers from a list or a callable, can fail first with injected faults
(timeouts, 429 with Retry-After, 5xx, 401) and reports token usage so the client's limits,
retries, budget and cache are exercised without a server. Token counts are whitespace
words: input = words of every message's content, output = words of the reply; no
tokenizer is loaded (offline, and deterministic).

It supports tool calling, which is how LangChain's generic ``with_structured_output`` asks
for structured output: with tools bound, a scripted reply that is a JSON object comes back
as a call of the first tool with those arguments (anything else as an invalid tool call),
and ``tool_requests`` records the tools each call was given. It answers natively in async
(no worker thread), so thousands of concurrent calls cost no threads. With ``latency`` it
waits like an endpoint (``asyncio.sleep`` in async, ``time.sleep`` in sync) and counts the
calls in flight (``max_in_flight``): how a test sees that an executor reaches its
concurrency without timing anything.

The errors carry ``status_code`` and ``headers`` like the openai SDK's, which is all the
client's retry classifier looks at, so this module needs no provider SDK.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr

__all__ = [
    "FakeChatModel",
    "FakeConnectionError",
    "FakeExhaustedError",
    "FakeProviderError",
    "FakeTimeoutError",
    "Transcript",
    "auth_error",
    "rate_limit_error",
    "server_error",
    "to_transcript",
    "word_count",
]

Transcript = list[tuple[str, str]]
"""Messages as (role, content) with role one of system / user / assistant."""

_ROLE = {"system": "system", "human": "user", "ai": "assistant"}


class FakeProviderError(Exception):
    """An HTTP error as a provider SDK raises it: ``status_code``, ``headers``, ``body``."""

    def __init__(self, status_code: int, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"Error code: {status_code} - {message}")
        self.status_code = status_code
        self.headers: dict[str, str] = dict(headers or {})
        self.body: dict[str, Any] = {"error": {"message": message}}


class FakeTimeoutError(TimeoutError):
    """The request timed out (like ``openai.APITimeoutError``)."""


class FakeConnectionError(ConnectionError):
    """The endpoint could not be reached (like ``openai.APIConnectionError``)."""


class FakeExhaustedError(RuntimeError):
    """The scripted responses ran out (a test bug, not a provider fault)."""


def rate_limit_error(retry_after: float | None = None) -> FakeProviderError:
    """HTTP 429, optionally with a ``Retry-After`` header in seconds."""
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return FakeProviderError(429, "Rate limit reached", headers)


def server_error(status_code: int = 500) -> FakeProviderError:
    return FakeProviderError(status_code, "The server had an error")


def auth_error() -> FakeProviderError:
    return FakeProviderError(401, "Incorrect API key provided")


def word_count(text: str) -> int:
    return len(text.split())


def to_transcript(messages: Sequence[BaseMessage]) -> Transcript:
    """LangChain messages as (role, content) pairs; roles: system, user, assistant."""
    return [(_ROLE.get(m.type, m.type), m.text) for m in messages]


class FakeChatModel(BaseChatModel):
    """A scripted chat model.

    Args:
        responses: Replies in order, or a callable from the transcript (list of
            (role, content)) to the reply.
        cycle: Start over when a list of responses is used up (else FakeExhaustedError).
        faults: One entry per call, consumed first: an exception is raised by that call,
            None lets it answer. After the list, every call answers.
        scorer: ``(prompt, options) -> log-probs`` for ``score_options``; default
            uniform.
        latency: Seconds each chat call waits before answering, or a function of the
            transcript (different waits make answers finish out of order).
    """

    responses: list[str] | Callable[[Transcript], str] = Field(default_factory=list)
    cycle: bool = False
    faults: list[BaseException | None] = Field(default_factory=list)
    scorer: Callable[[str, Sequence[str]], Sequence[float]] | None = None
    latency: float | Callable[[Transcript], float] = 0.0

    _in_flight: int = PrivateAttr(0)
    _max_in_flight: int = PrivateAttr(0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _n_calls: int = PrivateAttr(0)
    _n_answers: int = PrivateAttr(0)
    _seen: list[Transcript] = PrivateAttr(default_factory=list)
    _tool_requests: list[list[dict[str, Any]]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "fake-chat"

    @property
    def calls(self) -> int:
        """Calls received, faults included (chat and score)."""
        with self._lock:
            return self._n_calls

    @property
    def max_in_flight(self) -> int:
        """The most chat calls that were waiting out their latency at the same time."""
        with self._lock:
            return self._max_in_flight

    def _wait_for(self, messages: list[BaseMessage]) -> float:
        lat = self.latency
        return float(lat(to_transcript(messages)) if callable(lat) else lat)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @property
    def transcripts(self) -> list[Transcript]:
        """Every chat call's messages, in order (faulted calls included)."""
        with self._lock:
            return list(self._seen)

    @property
    def tool_requests(self) -> list[list[dict[str, Any]]]:
        """The OpenAI-format tools of every chat call ([] for a plain call), in order."""
        with self._lock:
            return [list(t) for t in self._tool_requests]

    def get_num_tokens(self, text: str) -> int:
        # The fake's tokenizer is the whitespace word (BaseChatModel's default would load a
        # GPT-2 tokenizer from the hub).
        return word_count(text)

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (OpenAI format, pydantic classes or JSON schemas) like a tool-calling
        chat model; ``tool_choice`` is accepted and the first tool is always called."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _next_fault(self) -> BaseException | None:
        with self._lock:
            i = self._n_calls
            self._n_calls += 1
        return self.faults[i] if i < len(self.faults) else None

    def _answer(self, transcript: Transcript) -> str:
        if callable(self.responses):
            return self.responses(transcript)
        with self._lock:
            i = self._n_answers
            self._n_answers += 1
        n = len(self.responses)
        if n and self.cycle:
            return self.responses[i % n]
        if i >= n:
            raise FakeExhaustedError(
                f"FakeChatModel: all {n} scripted responses used; pass more or cycle=True")
        return self.responses[i]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        wait = self._wait_for(messages)
        if wait > 0:
            self._enter()
            try:
                time.sleep(wait)
            finally:
                self._leave()
        return self._reply(messages, **kwargs)

    def _reply(self, messages: list[BaseMessage], **kwargs: Any) -> ChatResult:
        transcript = to_transcript(messages)
        tools: list[dict[str, Any]] = list(kwargs.get("tools") or [])
        with self._lock:
            self._seen.append(transcript)
            self._tool_requests.append(tools)
        fault = self._next_fault()
        if fault is not None:
            raise fault
        text = self._answer(transcript)
        n_in = sum(word_count(c) for _, c in transcript)
        n_out = word_count(text)
        usage = UsageMetadata(input_tokens=n_in, output_tokens=n_out, total_tokens=n_in + n_out)
        if tools:
            return ChatResult(generations=[ChatGeneration(
                message=_tool_call(tools[0], text, usage, len(self._seen)))])
        return ChatResult(generations=[ChatGeneration(
            message=AIMessage(content=text, usage_metadata=usage))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Nothing here blocks: answer on the loop instead of in LangChain's worker thread.
        wait = self._wait_for(messages)
        if wait > 0:
            self._enter()
            try:
                await asyncio.sleep(wait)
            finally:
                self._leave()
        return self._reply(messages, **kwargs)

    def score_with_usage(self, prompt: str, options: Sequence[str]) -> tuple[list[float], int]:
        """Log-probabilities of ``options`` after ``prompt``, and the input tokens (words)."""
        fault = self._next_fault()
        if fault is not None:
            raise fault
        if not options:
            raise ValueError("score_options needs at least one option")
        if self.scorer is None:
            scores = [-math.log(len(options))] * len(options)
        else:
            scores = [float(x) for x in self.scorer(prompt, options)]
            if len(scores) != len(options):
                raise ValueError(f"scorer returned {len(scores)} scores for "
                                 f"{len(options)} options")
        return scores, word_count(prompt)

    def score_options(self, prompt: str, options: Sequence[str]) -> list[float]:
        return self.score_with_usage(prompt, options)[0]


def _tool_call(tool: Mapping[str, Any], text: str, usage: UsageMetadata, n: int) -> AIMessage:
    """The reply as a call of ``tool``: arguments when ``text`` is a JSON object, else an
    invalid tool call carrying the raw text (as providers report unparsable arguments)."""
    name = str(tool.get("function", {}).get("name", "tool"))
    call_id = f"call_fake_{n}"
    try:
        args = json.loads(text)
    except ValueError:
        args = None
    if isinstance(args, dict):
        return AIMessage(content="", usage_metadata=usage, tool_calls=[
            {"name": name, "args": args, "id": call_id, "type": "tool_call"}])
    return AIMessage(content="", usage_metadata=usage, invalid_tool_calls=[
        {"name": name, "args": text, "id": call_id, "error": "arguments are not a JSON object",
         "type": "invalid_tool_call"}])
