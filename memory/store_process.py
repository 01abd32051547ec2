"""chromadb's writes in a process of their own, off the agents' CPU.

Why: in the 1,000-user benchmark (``bench/scale_llm.py``) chromadb's upserts took 29 s of
the agents' process's 62 s of CPU (about 1.3 ms a row: the HNSW insert, sqlite, the
full-text index), and chromadb's bindings hold the GIL through an upsert, so neither a
writer thread nor the write-behind on the event loop (``memory.write_behind``) takes them
off the core the agents run on. A second process does, on a machine's other core.

One writer process per store folder and agents' process, shared by every
:class:`~memory.long_term.LongTermStore` opened on that folder with ``writes="process"``.
While it lives it does all of that folder's chromadb work, so that one process writes a
folder (chromadb's rule): it opens and checks the collections, sends back what they hold
(the store warms its in-process index from it) and applies upserts in the order they were
sent. Upserts need no answer; a failed one is reported back and raised by the store's next
``add``, ``flush`` or ``close``. ``flush`` returns once every earlier write is applied. If
the agents' process dies, its end of the pipe closes: the writer applies what it already
received and exits.

The writer is ``python -m memory.store_process FOLDER`` (not ``multiprocessing``, whose
"spawn" start re-runs the parent's main script: a user's script without a ``__main__``
guard would run again) and speaks pickled messages over its stdin and stdout; its stderr
goes to ``FOLDER/writer.log``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ClassVar

from memory.chroma import LongTermStoreError

__all__ = ["StoreProcess", "serve"]

_POLL_S = 1.0  # how often a waiting call checks that the writer is alive
_STOP = object()


class StoreProcess:
    """The writer process of one store folder (get it with :meth:`acquire`)."""

    _live: ClassVar[dict[Path, StoreProcess]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        # The child imports this package as the agents' process does.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        with open(path / "writer.log", "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "memory.store_process", str(path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env)
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._replies: queue.SimpleQueue[tuple[str, int, Any]] = queue.SimpleQueue()
        self._refs = 0
        self._seq = 0
        self._errors: list[str] = []
        self._call_lock = threading.Lock()
        # Threads so that a post never blocks the agents' loop on a full pipe (the writer
        # may be a second behind) and replies are read as they come.
        self._sender = threading.Thread(target=self._send_loop, daemon=True,
                                        name="recarena-store-send")
        self._receiver = threading.Thread(target=self._receive_loop, daemon=True,
                                          name="recarena-store-receive")
        self._sender.start()
        self._receiver.start()

    @classmethod
    def acquire(cls, path: Path) -> StoreProcess:
        """The writer of ``path`` (started if none runs); :meth:`release` it when done."""
        key = path.resolve()
        with cls._lock:
            proc = cls._live.get(key)
            if proc is None or proc._proc.poll() is not None:
                proc = cls._live[key] = StoreProcess(key)
            proc._refs += 1
            return proc

    def release(self) -> None:
        """Drop one user; the last one waits for every write and stops the process."""
        with StoreProcess._lock:
            self._refs -= 1
            last = self._refs <= 0
            if last and StoreProcess._live.get(self.path) is self:
                del StoreProcess._live[self.path]
        if not last:
            return
        try:
            if self._proc.poll() is None:
                self.call("close")
        finally:
            self._outbox.put(_STOP)
            try:
                self._proc.wait(timeout=60)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck chromadb
                self._proc.kill()
                self._proc.wait()
            self._sender.join(timeout=5)

    def _send_loop(self) -> None:
        pipe = self._proc.stdin
        assert pipe is not None
        try:
            while (msg := self._outbox.get()) is not _STOP:
                pickle.dump(msg, pipe, protocol=pickle.HIGHEST_PROTOCOL)
                pipe.flush()
        except (BrokenPipeError, OSError):
            pass  # the writer died; calls see it exit
        finally:
            with contextlib.suppress(OSError):
                pipe.close()

    def _receive_loop(self) -> None:
        pipe = self._proc.stdout
        assert pipe is not None
        try:
            while True:
                self._replies.put(pickle.load(pipe))
        except (EOFError, OSError, pickle.UnpicklingError):
            return

    def post(self, op: str, *args: Any) -> None:
        """Send a request that needs no answer (an upsert)."""
        self._outbox.put((op, 0, args))

    def call(self, op: str, *args: Any) -> Any:
        """Send a request and wait for its answer (after every earlier request).

        Raises:
            LongTermStoreError: The request failed, or the writer process exited.
        """
        with self._call_lock:
            self._seq += 1
            seq = self._seq
            self._outbox.put((op, seq, args))
            while True:
                try:
                    kind, got, payload = self._replies.get(timeout=_POLL_S)
                except queue.Empty:
                    if self._proc.poll() is not None and self._replies.empty():
                        raise LongTermStoreError(
                            f"the memory writer process of {self.path} exited (code "
                            f"{self._proc.returncode}; see {self.path / 'writer.log'})"
                        ) from None
                    continue
                if got != seq:  # a failed upsert's report
                    self._errors.append(str(payload))
                    continue
                if kind == "fail":
                    raise LongTermStoreError(str(payload))
                return payload

    def raise_failed(self) -> None:
        """Raise the first write failure reported so far (once), if any.

        Raises:
            LongTermStoreError: A write failed in the writer process.
        """
        with self._call_lock:  # never take a waiting call's answer
            while True:
                try:
                    self._errors.append(str(self._replies.get_nowait()[2]))
                except queue.Empty:
                    break
        if self._errors:
            first, self._errors = self._errors[0], []
            raise LongTermStoreError(f"a memory write failed in the writer process: {first}")


def serve(path: Path, receive: Callable[[], Any], reply: Callable[[Any], None]) -> None:
    """Answer requests until ``close`` or the end of input (the writer's loop)."""
    from memory.chroma import client_for, collection_rows, open_collection, upsert_rows

    client, _ = client_for(path, "memories")
    cols: dict[str, Any] = {}
    try:
        while True:
            try:
                op, seq, args = receive()
            except EOFError:
                return  # the agents' process is gone; everything it sent is applied
            try:
                out: Any = None
                if op == "open":
                    name, embedder, dim = args
                    cols[name] = open_collection(client, name, embedder, dim, path)
                    out = int(client.get_max_batch_size())
                elif op == "rows":
                    name, batch = args
                    out = list(collection_rows(cols[name], batch))
                elif op == "upsert":  # in chunks chromadb takes
                    name, ids, emb, docs, mds = args
                    step = max(1, int(client.get_max_batch_size()))
                    for lo in range(0, len(ids), step):
                        hi = lo + step
                        upsert_rows(cols[name], ids[lo:hi], emb[lo:hi], docs[lo:hi],
                                    mds[lo:hi])
                elif op == "close":
                    reply(("ok", seq, None))
                    return
                elif op != "flush":
                    raise ValueError(f"unknown request {op!r}")
            except Exception as err:  # reported to the agents' process, raised there
                reply(("fail", seq, f"{type(err).__name__}: {err}"))
                continue
            if seq:
                reply(("ok", seq, out))
    finally:
        client.close()


def _main(argv: list[str]) -> int:
    # Replies get their own copy of stdout, and stdout itself points at stderr: nothing
    # chromadb prints can corrupt the message stream.
    out: IO[bytes] = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer

    def reply(msg: Any) -> None:
        pickle.dump(msg, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    serve(Path(argv[0]), lambda: pickle.load(inp), reply)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
