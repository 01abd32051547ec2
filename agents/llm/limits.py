"""Rate and concurrency limits shared by threads and asyncio tasks.

- ``TokenBucket``: requests per minute (cost 1 per request) and tokens per minute (cost =
  the request's size). Non-blocking: ``try_take`` answers how long to wait, and the caller
  sleeps with ``time.sleep`` or ``asyncio.sleep`` (injected clocks make tests instant).
- ``Slots``: a semaphore that threads (``acquire``) and asyncio tasks (``aacquire``) can
  share, first come first served, so the cap on calls in flight holds for both.
- ``KeyLocks``: one holder per key (identical calls wait for the first), built on Slots.

Why our own bucket rather than LangChain's ``InMemoryRateLimiter``: its public API
(``acquire`` / ``aacquire``) polls on the real clock in fixed steps and sleeps itself, so a
test of a 30-per-minute limit would wait minutes, and it counts requests only, not their
tokens; overriding its private ``_consume`` to inject a clock breaks silently when
langchain-core changes. One small bucket serves both limits and is tested directly.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

__all__ = ["KeyLocks", "Slots", "TokenBucket"]

# Float rounding must not make a caller that slept exactly the advertised wait sleep again.
_EPS = 1e-9


class TokenBucket:
    """A bucket of ``capacity`` credits refilled at ``per_second``; starts with ``initial``.

    A taker may ask for more than the bucket holds: it takes the whole bucket once it is
    full (it waits, but not forever). ``settle`` corrects an estimate after the fact and may
    leave the bucket negative, so that later takers wait.
    """

    def __init__(self, capacity: float, per_second: float, *, clock: Callable[[], float],
                 initial: float | None = None) -> None:
        if capacity <= 0 or per_second <= 0:
            raise ValueError("a token bucket needs a positive capacity and rate")
        self.capacity = float(capacity)
        self.rate = float(per_second)
        self._clock = clock
        self._tokens = self.capacity if initial is None else float(initial)
        self._last = clock()
        self._lock = threading.Lock()

    @classmethod
    def per_minute(cls, n: float, *, clock: Callable[[], float],
                   burst: float | None = None) -> TokenBucket:
        """``n`` per minute, at most ``burst`` (default ``n``) at once; starts full."""
        return cls(burst if burst is not None else n, n / 60.0, clock=clock)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    @property
    def available(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens

    def try_take(self, n: float) -> float:
        """Take ``n`` credits and return 0, or return the seconds to wait before asking
        again (nothing is taken then)."""
        need = min(float(n), self.capacity)
        with self._lock:
            self._refill()
            if self._tokens >= need - _EPS:
                self._tokens -= need
                return 0.0
            return (need - self._tokens) / self.rate

    def settle(self, delta: float) -> None:
        """Charge ``delta`` more credits (negative: give back an over-estimate)."""
        with self._lock:
            self._refill()
            self._tokens = min(self.capacity, self._tokens - delta)


class _AsyncWaiter:
    __slots__ = ("fut", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.fut: asyncio.Future[None] = loop.create_future()


class Slots:
    """``n`` slots for threads and asyncio tasks alike, handed over in arrival order.

    A release passes the slot straight to the oldest waiter (a thread's Event, or a task's
    future resolved on its own loop), so no waiter can be overtaken by a newcomer.
    """

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError("Slots needs n >= 1")
        self.n = n
        self._free = n
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event | _AsyncWaiter] = deque()

    @property
    def in_use(self) -> int:
        with self._lock:
            return self.n - self._free

    def acquire(self) -> None:
        """Block the calling thread until a slot is its own."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            ev = threading.Event()
            self._waiters.append(ev)
        ev.wait()

    async def aacquire(self) -> None:
        """Wait (without blocking the loop) until a slot is the task's own."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            w = _AsyncWaiter(asyncio.get_running_loop())
            self._waiters.append(w)
        try:
            await w.fut
        except asyncio.CancelledError:
            with self._lock:
                queued = w in self._waiters
                if queued:
                    self._waiters.remove(w)
            if not queued and w.fut.done() and not w.fut.cancelled():
                self.release()  # granted just before the cancel: pass the slot on
            raise

    def release(self) -> None:
        with self._lock:
            if not self._waiters:
                if self._free >= self.n:
                    raise RuntimeError("Slots released more often than acquired")
                self._free += 1
                return
            w = self._waiters.popleft()
        if isinstance(w, threading.Event):
            w.set()
        else:
            w.loop.call_soon_threadsafe(self._grant, w.fut)

    def _grant(self, fut: asyncio.Future[None]) -> None:
        if fut.cancelled():  # its task gave up meanwhile: the next waiter gets the slot
            self.release()
        else:
            fut.set_result(None)

    @contextmanager
    def hold(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    @asynccontextmanager
    async def ahold(self) -> AsyncIterator[None]:
        await self.aacquire()
        try:
            yield
        finally:
            self.release()


class KeyLocks:
    """One holder per key at a time, for threads and tasks; idle keys are forgotten."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[str, tuple[Slots, int]] = {}

    def _enter(self, key: str) -> Slots:
        with self._lock:
            slots, users = self._locks.get(key, (None, 0))
            if slots is None:
                slots = Slots(1)
            self._locks[key] = (slots, users + 1)
            return slots

    def _leave(self, key: str) -> None:
        with self._lock:
            slots, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (slots, users - 1)

    def __len__(self) -> int:
        with self._lock:
            return len(self._locks)

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        slots = self._enter(key)
        try:
            with slots.hold():
                yield
        finally:
            self._leave(key)

    @asynccontextmanager
    async def ahold(self, key: str) -> AsyncIterator[None]:
        slots = self._enter(key)
        try:
            async with slots.ahold():
                yield
        finally:
            self._leave(key)
