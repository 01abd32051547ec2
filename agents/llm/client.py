"""The one door to a chat model, composed of small parts with one job each.

Every LLM call of a run goes through ``LLMClient.chat`` / ``achat`` or ``score`` /
``ascore``; in order:

1. One call per cache key at a time (``limits.KeyLocks``): identical concurrent calls wait
   for the first, then hit its cache entry.
2. Budget (``budget.Budget``): a call that would be charged is refused once the run reached
   a limit (``BudgetExceededError``; the run loop stops cleanly and writes the reason).
3. Cache (``replay.Recorder``): a recorded call is answered from the cache, with no limiter
   and no model. In replay mode a miss is ``ReplayMissError`` and the model is never built.
4. Limits (``limits``): requests and tokens per minute (token buckets; tokens counted with
   the model's tokenizer, ``tokens``), and a cap on calls in flight shared by threads and
   asyncio tasks.
5. Retries (``retry.RetryPolicy``) on transient errors with exponential backoff and seeded
   jitter, honouring Retry-After; a final failure is one line without secrets.
6. Usage (``usage.UsageMeter``) per agent and for the run, and a ``CallRecord`` per call.

The sync methods block the calling thread; the async ones never block the event loop on a
limit or the network (``FakeChatModel`` and ``ChatOpenAI`` answer natively in async; the
local llama.cpp model runs in a worker thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from langchain_core.language_models.chat_models import BaseChatModel
from pydantic import BaseModel

from agents.llm import native as nat
from agents.llm.cache import CallCache, CallKind, cache_key
from agents.llm.calls import Answer, Call, Done, score_on, to_langchain, unpack_message
from agents.llm.endpoint import describe_endpoint, key_params, model_identity
from agents.llm.errors import LLMError, ReplayMissError
from agents.llm.openai_chat import OpenAIChat
from agents.llm.replay import Recorder
from agents.llm.replies import CallRecord, ChatReply, ScoreReply
from agents.llm.retry import RetryPolicy
from agents.llm.share import ModelShare
from agents.llm.tokens import TokenCounter, counter_for
from agents.llm.usage import UsageMeter
from scenarios.schema import LLMConfig

__all__ = ["LLMClient"]

ROLES = ("system", "user", "assistant")
_T = TypeVar("_T")


class LLMClient:
    """Cached, limited, retried and metered access to the chat model of ``cfg``.

    Args:
        cfg: The scenario's ``llm:`` block.
        chat_model: Use this model (tests: ``FakeChatModel``); default: built from
            ``cfg`` on the first call that needs it (never in replay).
        cache: Record every call here and answer repeats from it.
        replay: Answer only from ``cache``; a miss raises ReplayMissError.
        seed: Seeds the retry jitter.
        sleep, asleep, clock: Injected for tests (no real waiting).
        on_call: Called with a CallRecord after each finished call (from the calling
            thread or task).
        share: The model, limits and budget this client shares with the run's other
            clients of ``cfg`` (``agents.llm.service.LLMService``); default: its own
            (``chat_model`` is then its model).
        note: Put first in every system prompt (a scored prompt's first line): the
            delimit and hierarchy defences against poisoned item text
            (``tools.text_guard.guard_note``); empty: nothing added.
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
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_call: Callable[[CallRecord], None] | None = None,
        share: ModelShare | None = None,
        note: str = "",
    ) -> None:
        self.cfg = cfg
        self.note = note
        self.recorder = Recorder(cache, replay=replay)
        self.on_call = on_call
        self.meter = UsageMeter()
        self.retry = RetryPolicy(cfg, endpoint=describe_endpoint(cfg), seed=seed)
        self._sleep, self._asleep, self._clock = sleep, asleep, clock
        if share is None:
            share = ModelShare.build(cfg, chat_model=chat_model, cached=cache is not None,
                                     clock=clock)
            share.spend = self.meter  # alone: the budget is checked on this client's usage
        self.share = share
        self.budget = share.budget
        self._models, self._slots, self._keys = share.models, share.slots, share.keys
        self._rpm, self._tpm = share.rpm, share.tpm
        self._structured: Literal["native", "text"] = nat.initial_mode(cfg)
        self.structured_fallback: str | None = None
        self._state_lock = threading.Lock()
        self._records: list[CallRecord] = []

    def __repr__(self) -> str:
        return (f"LLMClient(backend={self.cfg.backend!r}, model={self.cfg.model!r}, "
                f"mode={self.mode!r})")

    # ------------------------------------------------------------------ public state

    @property
    def cache(self) -> CallCache | None:
        return self.recorder.cache

    @property
    def replay(self) -> bool:
        return self.recorder.replay

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
        return self.recorder.mode

    @property
    def model_built(self) -> bool:
        """Whether a chat model exists (false throughout a replay)."""
        return self._models.model is not None

    @property
    def structured_mode(self) -> Literal["native", "text"]:
        """How the next structured chat is asked (``auto`` may have fallen back to text)."""
        return self._structured

    @property
    def token_counter(self) -> str:
        """What counts tokens for limits and estimates (known once the model is built)."""
        counter = self._models.counter
        return counter.name if counter is not None else counter_for(self.cfg).name

    # ------------------------------------------------------------------ chat

    def chat(self, messages: Sequence[tuple[str, str]], *, agent: str, purpose: str,
             schema: type[BaseModel] | None = None) -> ChatReply:
        """Send a conversation of (role, content) pairs; roles: system, user, assistant.

        ``schema``: the answer should be JSON of this model; asked natively or as text per
        ``llm.structured_output`` (the reply is still text: ``agents.llm.ask_structured``
        validates it).
        """
        msgs = self._noted(self._check_messages(messages))
        native = schema if self._structured == "native" else None
        try:
            return self._chat_reply(self._run(self._chat_call(msgs, native), agent, purpose))
        except LLMError as exc:
            if native is None or not self._may_fall_back(exc, msgs):
                raise
            first = exc
        reply = self._chat_reply(self._run(self._chat_call(msgs, None), agent, purpose))
        self._fall_back(first)
        return reply

    async def achat(self, messages: Sequence[tuple[str, str]], *, agent: str, purpose: str,
                    schema: type[BaseModel] | None = None) -> ChatReply:
        """``chat`` for asyncio: waits on limits and the network without blocking the loop."""
        msgs = self._noted(self._check_messages(messages))
        native = schema if self._structured == "native" else None
        try:
            return self._chat_reply(
                await self._arun(self._chat_call(msgs, native), agent, purpose))
        except LLMError as exc:
            if native is None or not self._may_fall_back(exc, msgs):
                raise
            first = exc
        reply = self._chat_reply(await self._arun(self._chat_call(msgs, None), agent, purpose))
        self._fall_back(first)
        return reply

    @staticmethod
    def _chat_reply(d: Done[str]) -> ChatReply:
        return ChatReply(text=d.value, input_tokens=d.n_in, output_tokens=d.n_out,
                         cost_usd=d.rec.cost_usd, cached=d.rec.cached, attempts=d.attempts,
                         latency_s=d.rec.latency_s, key=d.key, charged=d.charged,
                         native=d.native)

    def _noted(self, msgs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The defences' note first in the system message (one is added if none)."""
        if not self.note:
            return msgs
        if msgs[0][0] == "system":
            return [("system", f"{self.note}\n\n{msgs[0][1]}"), *msgs[1:]]
        return [("system", self.note), *msgs]

    @staticmethod
    def _check_messages(messages: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        msgs = [(str(r), str(c)) for r, c in messages]
        bad = [r for r, _ in msgs if r not in ROLES]
        if bad or not msgs:
            raise ValueError(f"messages need roles in {ROLES} (got {bad or 'no messages'})")
        return msgs

    def _may_fall_back(self, exc: BaseException, msgs: list[tuple[str, str]]) -> bool:
        """``auto`` only: the endpoint refused native output (or, in replay, the recording
        fell back and holds the text call instead)."""
        if self.cfg.structured_output != "auto":
            return False
        if isinstance(exc, ReplayMissError):
            return self.recorder.has(self._chat_call(msgs, None).key)
        return nat.rejected_as_unsupported(exc)

    def _fall_back(self, exc: BaseException) -> None:
        with self._state_lock:
            if self._structured == "native":
                self._structured = "text"
                self.structured_fallback = (
                    "replay: the recording used text output" if isinstance(exc, ReplayMissError)
                    else f"endpoint refused native structured output: {exc}")

    def _chat_call(self, msgs: list[tuple[str, str]],
                   schema: type[BaseModel] | None) -> Call[str]:
        request: dict[str, Any] = {"messages": [[r, c] for r, c in msgs]}
        json_schema = None if schema is None else nat.json_schema_of(schema)
        if json_schema is not None:
            # Text-mode requests keep their old shape, so existing recordings still replay.
            request["response_schema"] = json_schema

        def estimate(counter: TokenCounter) -> int:
            return counter.count_messages(msgs) + self.cfg.max_tokens

        def runnable(model: BaseChatModel) -> Any:
            return model if json_schema is None else nat.native_runnable(model, json_schema)

        def read(out: Any, counter: TokenCounter) -> Answer[str]:
            msg = out if json_schema is None else nat.raw_text(out)
            return unpack_message(msg, msgs, counter)

        def invoke(model: BaseChatModel, counter: TokenCounter) -> Answer[str]:
            return read(runnable(model).invoke(to_langchain(msgs)), counter)

        async def ainvoke(model: BaseChatModel, counter: TokenCounter) -> Answer[str]:
            return read(await runnable(model).ainvoke(to_langchain(msgs)), counter)

        async def adirect(chat: OpenAIChat, counter: TokenCounter) -> Answer[str]:
            text, n_in, n_out = await chat.achat(msgs, json_schema)
            return (text, n_in or counter.count_messages(msgs),
                    n_out if n_out is not None else (counter.count(text) if text else 0))

        return Call(kind="chat", request=request, key=self._key("chat", request),
                     from_cache=lambda hit: hit.text, stored=lambda text: {"text": text},
                     estimate=estimate, invoke=invoke, ainvoke=ainvoke,
                     native=json_schema is not None, adirect=adirect)

    # ------------------------------------------------------------------ score

    def score(self, prompt: str, options: Sequence[str], *, agent: str,
              purpose: str) -> ScoreReply:
        """Log-probability of each option as the continuation of ``prompt`` (the sum over
        the option's tokens). The local backend puts a space between a prompt ending in a
        non-space and an option starting with one ("Answer:" + "yes" = "Answer: yes").

        Raises:
            ScoringUnsupportedError: The backend cannot read log-probabilities.
        """
        prompt = f"{self.note}\n\n{prompt}" if self.note else prompt
        return self._score_reply(self._run(self._score_call(prompt, options), agent, purpose))

    async def ascore(self, prompt: str, options: Sequence[str], *, agent: str,
                     purpose: str) -> ScoreReply:
        """``score`` for asyncio (a local model scores in a worker thread)."""
        prompt = f"{self.note}\n\n{prompt}" if self.note else prompt
        return self._score_reply(
            await self._arun(self._score_call(prompt, options), agent, purpose))

    @staticmethod
    def _score_reply(d: Done[list[float]]) -> ScoreReply:
        return ScoreReply(logprobs=d.value, input_tokens=d.n_in, cost_usd=d.rec.cost_usd,
                          cached=d.rec.cached, attempts=d.attempts,
                          latency_s=d.rec.latency_s, key=d.key, charged=d.charged)

    def _score_call(self, prompt: str, options: Sequence[str]) -> Call[list[float]]:
        opts = [str(o) for o in options]
        if not opts:
            raise ValueError("score needs at least one option")
        request: dict[str, Any] = {"prompt": prompt, "options": opts}

        def estimate(counter: TokenCounter) -> int:
            return counter.count(prompt) + sum(counter.count(o) for o in opts)

        def invoke(model: BaseChatModel, counter: TokenCounter) -> Answer[list[float]]:
            logprobs, n_in = score_on(model, prompt, opts, counter)
            return logprobs, n_in, 0

        async def ainvoke(model: BaseChatModel,
                          counter: TokenCounter) -> Answer[list[float]]:
            return await asyncio.to_thread(invoke, model, counter)

        return Call(kind="score", request=request, key=self._key("score", request),
                     from_cache=lambda hit: None if hit.logprobs is None else list(hit.logprobs),
                     stored=lambda logprobs: {"logprobs": logprobs}, estimate=estimate,
                     invoke=invoke, ainvoke=ainvoke)

    # ------------------------------------------------------------------ the pipeline

    def _run(self, call: Call[_T], agent: str, purpose: str) -> Done[_T]:
        with self._keys.hold(call.key):
            t0 = self._clock()
            charged, hit = self._begin(call, agent, purpose)
            if hit is not None:
                value, n_in, n_out, attempts = hit
            else:
                value, n_in, n_out, attempts = self._live(call)
                self._record(call, value, n_in, n_out)
            return self._finish(call, agent, purpose, value, n_in, n_out, charged,
                                attempts, t0)

    async def _arun(self, call: Call[_T], agent: str, purpose: str) -> Done[_T]:
        async with self._keys.ahold(call.key):
            t0 = self._clock()
            charged, hit = self._begin(call, agent, purpose)
            if hit is not None:
                value, n_in, n_out, attempts = hit
            else:
                value, n_in, n_out, attempts = await self._alive(call)
                self._record(call, value, n_in, n_out)
            return self._finish(call, agent, purpose, value, n_in, n_out, charged,
                                attempts, t0)

    def _begin(self, call: Call[_T], agent: str,
               purpose: str) -> tuple[bool, tuple[_T, int, int, int] | None]:
        """Budget check and cache lookup: (charged?, the cached answer or None)."""
        charged = self.budget.will_charge(call.key)
        if charged:
            self.budget.check(self.share.spend.total)
        hit = self.recorder.lookup(call.key)
        value = call.from_cache(hit) if hit is not None else None
        if hit is not None and value is not None:
            return charged, (value, hit.input_tokens, hit.output_tokens, 0)
        self.recorder.must_call(call.key, agent=agent, purpose=purpose)
        return charged, None

    def _live(self, call: Call[_T]) -> tuple[_T, int, int, int]:
        model, counter = self._models.get()
        estimate = call.estimate(counter)
        attempt = 0
        while True:
            attempt += 1
            self._wait_limits(estimate)
            try:
                with self._slots.hold():
                    value, n_in, n_out = call.invoke(model, counter)
            except LLMError:
                raise
            except Exception as exc:
                error = exc
            else:
                self._settle(estimate, n_in + n_out)
                return value, n_in, n_out, attempt
            # Raised outside the except block: a provider's error must not ride along as
            # the context of ours (its text may echo credentials).
            self._sleep(self.retry.after_failure(error, attempt))

    async def awarm(self) -> None:
        """Build what the first async call on the running loop needs (the SDK's client,
        its TLS context, the token counter: about a second of CPU at start-up), so that it
        is done while the run sets up rather than with every agent waiting. A failure is
        left for that first call to report."""
        with contextlib.suppress(Exception):
            if self._models.direct() is not None:
                self._models.token_counter()

    async def _alive(self, call: Call[_T]) -> tuple[_T, int, int, int]:
        direct = self._models.direct() if call.adirect is not None else None
        model: BaseChatModel | None = None
        if direct is None:
            model, counter = self._models.amodel()
        else:  # the SDK directly: ChatOpenAI (costly to build) is never needed
            counter = self._models.token_counter()
        estimate = call.estimate(counter)
        attempt = 0
        while True:
            attempt += 1
            await self._await_limits(estimate)
            try:
                async with self._slots.ahold():
                    if direct is not None and call.adirect is not None:
                        value, n_in, n_out = await call.adirect(direct, counter)
                    else:
                        assert model is not None
                        value, n_in, n_out = await call.ainvoke(model, counter)
            except LLMError:
                raise
            except Exception as exc:
                error = exc
            else:
                self._settle(estimate, n_in + n_out)
                return value, n_in, n_out, attempt
            await self._asleep(self.retry.after_failure(error, attempt))

    def _wait_limits(self, estimate: int) -> None:
        for bucket, n in ((self._rpm, 1), (self._tpm, estimate)):
            if bucket is not None:
                while (wait := bucket.try_take(n)) > 0:
                    self._sleep(wait)

    async def _await_limits(self, estimate: int) -> None:
        for bucket, n in ((self._rpm, 1), (self._tpm, estimate)):
            if bucket is not None:
                while (wait := bucket.try_take(n)) > 0:
                    await self._asleep(wait)

    def _settle(self, estimate: int, used: int) -> None:
        if self._tpm is not None:
            self._tpm.settle(used - estimate)

    def _record(self, call: Call[_T], value: _T, n_in: int, n_out: int) -> None:
        self.recorder.record(call.key, kind=call.kind, backend=self.cfg.backend,
                             model=model_identity(self.cfg), request=call.request,
                             input_tokens=n_in, output_tokens=n_out, **call.stored(value))

    def _finish(self, call: Call[_T], agent: str, purpose: str, value: _T, n_in: int,
                n_out: int, charged: bool, attempts: int, t0: float) -> Done[_T]:
        cost = self.budget.cost_of(n_in, n_out) if charged else 0.0
        if charged:
            self.budget.mark_charged(call.key)
        cached = attempts == 0
        self.meter.add(agent, cached=cached, input_tokens=n_in if charged else 0,
                       output_tokens=n_out if charged else 0, cost_usd=cost)
        if self.share.spend is not self.meter:
            self.share.spend.add(agent, cached=cached, input_tokens=n_in if charged else 0,
                                 output_tokens=n_out if charged else 0, cost_usd=cost)
        rec = CallRecord(agent=agent, purpose=purpose, kind=call.kind, key=call.key,
                         input_tokens=n_in, output_tokens=n_out, cost_usd=cost,
                         charged=charged, cached=cached, latency_s=self._clock() - t0,
                         attempts=attempts, request=call.request,
                         response=call.stored(value))
        with self._state_lock:
            self._records.append(rec)
        if self.on_call is not None:
            self.on_call(rec)
        return Done(value, n_in, n_out, attempts, call.key, charged, rec, call.native)

    # ------------------------------------------------------------------ closing

    async def aclose(self) -> None:
        """Close the async HTTP clients this client built for the running loop (call it on
        that loop before the loop closes). Given models are the caller's."""
        await self._models.aclose()

    def close(self) -> None:
        """Close the sync HTTP client of the model this client built, if any."""
        self._models.close()

    # ------------------------------------------------------------------ helpers

    def _key(self, kind: CallKind, request: Mapping[str, Any]) -> str:
        return cache_key(kind=kind, backend=self.cfg.backend, model=model_identity(self.cfg),
                         request=request, params=key_params(self.cfg, kind))
