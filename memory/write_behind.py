"""Write-behind on the caller's event loop: slow writes interleaved with the waiting.

:class:`~memory.long_term.LongTermStore` uses it to take chromadb's ``upsert`` (the store of
record) off the agents' critical path: the in-process index, which answers every read, is
updated synchronously, so what a run recalls is unchanged; only the disk write runs later,
while the agents' next LLM calls are in flight.

Not a thread: chromadb's bindings hold the GIL through a whole ``upsert`` (about 0.4 ms a
row), so a writer thread took the GIL from the event loop at every socket read or write
the loop made, and the run got slower (measured: 80 s against 75 s for 1,000 users x 5
pages, docs/benchmarks.md). Here the jobs (small chunks) run as one task on the event loop
that queued them, one chunk per loop iteration: the loop handles every reply that arrived
between two chunks, so a reply waits at most one chunk.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

__all__ = ["WriteBehind"]

Job = Callable[[], None]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class WriteBehind:
    """Runs jobs in submission order, behind the caller when it runs on an event loop.

    Flushing runs held jobs too.

    Called from a coroutine's thread (a running loop), :meth:`submit` queues the jobs for a
    task on that loop; called without a running loop it runs them at once. A failed job's
    exception is raised by the next :meth:`submit`, :meth:`flush` or :meth:`aflush` (never
    swallowed); later jobs still run (each is a self-contained upsert), and the first error
    is raised, once.

    Args:
        rest: On a loop, after each job the writer sleeps ``rest`` times as long as the job
            took (0: one job per loop iteration).
    """

    def __init__(self, rest: float = 2.0) -> None:
        self.rest = rest
        self._queue: deque[Job] = deque()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._held = False

    def hold(self) -> None:
        """Stop running queued jobs (after the current one) until :meth:`release`.

        The agents hold their stores' writers except while their LLM calls are in flight
        (``AgentGroup.amap``): between two steps the run loop's thread writes the trace
        and asks the recommender, and a chunk holding the GIL only slowed that thread down
        (measured: the steps' bookkeeping went from 0.6 s to 5.8 s); before a step's calls
        start, chunks only delayed them.
        """
        self._held = True

    def release(self) -> None:
        """Run queued jobs again (call on the writer's loop)."""
        self._held = False
        self._start()

    def _start(self) -> None:
        if self._queue and not self._held and (self._task is None or self._task.done()):
            loop = _running_loop()
            if loop is not None:
                self._loop = loop
                self._task = loop.create_task(self._drain(), name="recarena-write-behind")

    @property
    def pending(self) -> int:
        """Jobs not run yet."""
        return len(self._queue)

    def submit(self, *jobs: Job) -> None:
        """Queue ``jobs`` (on a running loop) or run them now (no loop).

        Raises:
            Exception: An earlier job's error (before anything of these jobs is queued).
        """
        self._raise()
        loop = _running_loop()
        if loop is None:
            self.flush()
            self._queue.extend(jobs)
            self._run_queued()
            self._raise()
            return
        self._loop = loop
        self._queue.extend(jobs)
        self._start()

    async def _drain(self) -> None:
        # Yield first: tasks created after release() in the same step (the LLM calls the
        # writes are meant to hide behind) send their requests before the first chunk.
        await asyncio.sleep(0)
        while self._queue and not self._held:
            t0 = time.perf_counter()
            self._run_one()
            # Rest twice as long as the chunk took: the loop keeps two thirds of its time
            # for the replies (a chunk per loop iteration stretched the calls' waves by
            # up to a half).
            await asyncio.sleep(self.rest * (time.perf_counter() - t0))

    def _run_one(self) -> None:
        job = self._queue.popleft()
        try:
            job()
        except Exception as err:  # raised later on the caller's side, see _raise
            if self._error is None:
                self._error = err

    def _run_queued(self) -> None:
        while self._queue:
            self._run_one()

    def _raise(self) -> None:
        err, self._error = self._error, None
        if err is not None:
            raise err

    async def aflush(self) -> None:
        """Wait (on the loop) until every queued job has run; raise the first error."""
        self._run_queued()
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            # Nothing left for it; ended here so a loop closed next leaves no pending task
            # (it may be resting between two chunks).
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._raise()

    def flush(self) -> None:
        """Run or wait for every queued job, from any thread; raise the first error.

        From another thread while the writer's loop runs, the loop does the work (the
        queue is the loop's); otherwise (the same thread, or the loop stopped) the caller
        runs what is left itself.
        """
        loop = self._loop
        if loop is not None and loop.is_running() and _running_loop() is not loop:
            asyncio.run_coroutine_threadsafe(self.aflush(), loop).result()
            return
        self._run_queued()
        self._raise()
