"""The default executor's event loop, and running async agent code from sync callers.

Agents run on asyncio: every LLM phase of a step (page decisions, planner steps,
reflections, interviews, conversation turns) is a set of coroutines gathered at once, and
the LLM client's own limits (calls in flight, requests and tokens per minute) decide how
many reach the endpoint together. No thread per agent: one loop serves a population.

- ``EventLoop``: one asyncio loop on one background thread, owned by a population factory.
  ``run(coro)`` blocks the calling thread until the coroutine is done, so the run loop (and
  a Ray actor) keep calling the synchronous ``Population.act``. A background thread rather
  than ``asyncio.run`` in the caller: it works from any thread, including one that already
  runs a loop (a notebook), and the loop (with the HTTP connections its clients opened)
  lives as long as the population instead of one call.
- ``run_sync(coro)``: drives a coroutine that never suspends, for the synchronous face of
  code written once as ``async def`` (the LLM brain's sync methods use the LLM client's
  blocking calls inside it, so nothing ever awaits a pending future).
- ``gather``: ``asyncio.gather`` when the work may wait on an endpoint, a plain sequence
  otherwise (numeric brains: no tasks to create for 100,000 agents).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

__all__ = ["EventLoop", "gather", "gather_all", "run_sync"]

T = TypeVar("T")
X = TypeVar("X")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """The result of ``coro``, which must finish without suspending (no event loop).

    Raises:
        RuntimeError: The coroutine awaited something that was not ready (a bug: the
            synchronous path must call only blocking code).
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("run_sync: the coroutine suspended; call it on an event loop instead")


async def gather(fn: Callable[[X], Awaitable[T]], xs: Iterable[X], *,
                 concurrent: bool = True) -> list[T]:
    """``[await fn(x) for x in xs]``, all at once when ``concurrent``; results in order."""
    items = list(xs)
    if not concurrent or len(items) < 2:
        return [await fn(x) for x in items]
    return await gather_all([fn(x) for x in items])


async def gather_all(coros: Sequence[Awaitable[T]]) -> list[T]:
    """``asyncio.gather`` that cancels the others when one fails (a budget stop must not
    leave calls running), raising the first error as itself (not an ExceptionGroup)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class EventLoop:
    """An asyncio loop running on its own daemon thread until ``close``.

    Started on the first ``run``, so building a population that never acts starts nothing.
    """

    def __init__(self, name: str = "recarena-agents") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __getstate__(self) -> dict[str, Any]:
        # Picklable (a population factory shipped to another process, e.g. a Ray actor):
        # the copy starts its own loop on first use.
        return {"name": self.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["name"])  # type: ignore[misc]

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"event loop {self.name!r} is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=serve, name=self.name, daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result (its exception is raised here).

        The coroutine sees the caller's context variables (a copy), as a direct call would.
        """
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("EventLoop.run called from its own loop: await instead")
        try:
            loop = self._ensure()
        except RuntimeError:
            coro.close()
            raise
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return fut.result()
        except KeyboardInterrupt:
            fut.cancel()
            raise

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coro`` on the loop without waiting for it."""
        return asyncio.run_coroutine_threadsafe(coro, self._ensure())

    def close(self, before: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop the loop and join its thread; ``before`` runs on the loop first (closing
        HTTP clients bound to it). Idempotent."""
        with self._lock:
            loop, thread, self._closed = self._loop, self._thread, True
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            if before is not None:
                asyncio.run_coroutine_threadsafe(_call(before), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            if not thread.is_alive():
                loop.close()


async def _call(fn: Callable[[], Awaitable[None]]) -> None:
    await fn()
