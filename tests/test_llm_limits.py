"""The LLM layer's own limiter parts: token buckets, slots shared by threads and asyncio
tasks, per-key locks, and the async client path that waits on them."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

import pytest

from agents.llm import FakeChatModel, LLMClient
from agents.llm.fake import rate_limit_error, server_error
from agents.llm.limits import KeyLocks, Slots, TokenBucket
from scenarios.schema import LLMConfig


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s

    async def asleep(self, s: float) -> None:
        self.sleep(s)
        await asyncio.sleep(0)


def cfg(**kw: Any) -> LLMConfig:
    return LLMConfig(**{"backend": "fake", "model": "fake-1", **kw})


# ----------------------------------------------------------------------------- buckets


def test_bucket_waits_exactly_as_long_as_the_refill_needs() -> None:
    clock = Clock()
    b = TokenBucket(capacity=10, per_second=2, clock=clock)
    assert b.try_take(10) == 0.0
    assert b.try_take(4) == pytest.approx(2.0)  # 4 credits at 2/s
    clock.sleep(2.0)
    assert b.try_take(4) == 0.0
    assert b.available == pytest.approx(0.0)


def test_bucket_settle_and_oversized_requests() -> None:
    clock = Clock()
    b = TokenBucket.per_minute(120, clock=clock)  # 2 per second, burst 120
    assert b.try_take(100) == 0.0
    b.settle(+50)  # the call used 50 more than estimated: the bucket goes negative
    assert b.available == pytest.approx(-30.0)
    assert b.try_take(1) == pytest.approx(31 / 2)
    b.settle(-1000)  # giving back never overfills
    assert b.available == pytest.approx(120.0)
    assert b.try_take(500) == 0.0  # larger than the bucket: takes the whole (full) bucket
    assert b.try_take(500) == pytest.approx(60.0)  # ...and waits a full refill next time
    with pytest.raises(ValueError):
        TokenBucket(0, 1, clock=clock)


def test_requests_per_minute_spacing_in_async() -> None:
    clock = Clock()
    stamps: list[float] = []

    def answer(msgs: list[tuple[str, str]]) -> str:
        stamps.append(clock.now)
        return "ok"

    c = LLMClient(cfg(requests_per_minute=30), chat_model=FakeChatModel(responses=answer),
                  sleep=clock.sleep, asleep=clock.asleep, clock=clock)

    async def go() -> None:
        for i in range(4):
            await c.achat([("user", f"q{i}")], agent="u", purpose="p")

    asyncio.run(go())
    assert stamps[0] == 0.0
    assert [round(b - a, 6) for a, b in itertools.pairwise(stamps)] == [2.0] * 3


# ----------------------------------------------------------------------------- slots


def test_slots_cap_threads_and_tasks_together() -> None:
    slots = Slots(3)
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def enter() -> None:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])

    def leave() -> None:
        with lock:
            state["now"] -= 1

    def thread_work() -> None:
        with slots.hold():
            enter()
            time.sleep(0.01)
            leave()

    async def task_work() -> None:
        async with slots.ahold():
            enter()
            await asyncio.sleep(0.01)
            leave()

    async def tasks() -> None:
        await asyncio.gather(*(task_work() for _ in range(12)))

    threads = [threading.Thread(target=thread_work) for _ in range(12)]
    for t in threads:
        t.start()
    asyncio.run(tasks())
    for t in threads:
        t.join()
    assert state["max"] == 3 and state["now"] == 0
    assert slots.in_use == 0


def test_slots_hand_over_in_arrival_order_and_survive_cancellation() -> None:
    slots = Slots(1)
    order: list[int] = []

    async def worker(i: int) -> None:
        async with slots.ahold():
            order.append(i)
            await asyncio.sleep(0)

    async def go() -> None:
        await slots.aacquire()  # hold the only slot
        tasks = [asyncio.create_task(worker(i)) for i in range(5)]
        await asyncio.sleep(0)  # all five queue up
        tasks[1].cancel()  # a waiter gives up: it must not keep or lose the slot
        await asyncio.sleep(0)
        slots.release()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(go())
    assert order == [0, 2, 3, 4]
    assert slots.in_use == 0
    with pytest.raises(RuntimeError, match="released more often"):
        slots.release()


def test_key_locks_serialise_one_key_and_forget_idle_keys() -> None:
    locks = KeyLocks()
    inside: list[str] = []

    async def hold(key: str, tag: str) -> None:
        async with locks.ahold(key):
            inside.append(f"+{tag}")
            await asyncio.sleep(0.01)
            inside.append(f"-{tag}")

    async def go() -> None:
        await asyncio.gather(hold("k", "a"), hold("k", "b"), hold("other", "c"))

    asyncio.run(go())
    a, b = inside.index("+a"), inside.index("+b")
    first, second = ("a", "b") if a < b else ("b", "a")
    assert inside.index(f"-{first}") < inside.index(f"+{second}")  # never both inside
    assert len(locks) == 0


# ----------------------------------------------------------------------------- async client


def test_async_client_caps_calls_in_flight_without_threads() -> None:
    state = {"now": 0, "max": 0}

    class Slow(FakeChatModel):
        async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None,
                             **kwargs: Any) -> Any:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            await asyncio.sleep(0.01)
            state["now"] -= 1
            return self._generate(messages, stop=stop, **kwargs)

    c = LLMClient(cfg(concurrency=4), chat_model=Slow(responses=["ok"], cycle=True))
    before = threading.active_count()

    async def go() -> list[Any]:
        return await asyncio.gather(*(c.achat([("user", f"q{i}")], agent=f"a{i}", purpose="p")
                                      for i in range(40)))

    replies = asyncio.run(go())
    assert state["max"] == 4
    assert len(replies) == 40 and all(r.text == "ok" for r in replies)
    assert c.usage.total.calls == 40
    assert threading.active_count() <= before + 1  # no thread per call


def test_async_retries_and_identical_calls_share_one_answer() -> None:
    clock = Clock()
    model = FakeChatModel(responses=["first", "second"],
                          faults=[rate_limit_error(5.0), server_error(502)])
    c = LLMClient(cfg(), chat_model=model, sleep=clock.sleep, asleep=clock.asleep,
                  clock=clock)

    async def go() -> list[Any]:
        return await asyncio.gather(c.achat([("user", "same")], agent="a", purpose="p"),
                                    c.achat([("user", "same")], agent="b", purpose="p"))

    # Without a cache both are live, one after the other (the key lock).
    one, two = asyncio.run(go())
    assert (one.text, one.attempts) == ("first", 3)
    assert clock.sleeps[0] >= 5.0  # Retry-After honoured in async too
    assert (two.text, two.attempts) == ("second", 1)
