"""Record / replay store: every LLM call, keyed by what determines its answer.

The key is the sha256 of canonical JSON of {kind, backend, model, request, params}. It never
holds an API key, the name of the variable holding it, or the endpoint URL: the same model
asked the same thing with the same parameters is the same call wherever it is served, so a
run recorded against one server replays anywhere (CI, a laptop without the server).

One SQLite file (stdlib ``sqlite3``) in WAL mode, written through after every call so a
killed run keeps what it paid for. The first answer recorded for a key wins.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

__all__ = [
    "CACHE_FILENAME",
    "CacheNotFoundError",
    "CachedCall",
    "CallCache",
    "CallKind",
    "cache_key",
    "open_run_cache",
    "resolve_cache_path",
]

CACHE_FILENAME = "llm_cache.sqlite"
CallKind = Literal["chat", "score"]
_KEY_VERSION = 1  # bump when the meaning of a key changes, so old recordings miss loudly

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    text TEXT,
    logprobs TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


class CacheNotFoundError(FileNotFoundError):
    """A replay source holds no call cache."""


def cache_key(
    *,
    kind: CallKind,
    backend: str,
    model: str,
    request: Mapping[str, Any],
    params: Mapping[str, Any],
) -> str:
    """sha256 hex digest of the canonical JSON of everything that shapes the answer."""
    doc = {
        "v": _KEY_VERSION,
        "kind": kind,
        "backend": backend,
        "model": model,
        "request": request,
        "params": params,
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def resolve_cache_path(path: Path | str) -> Path:
    """A run folder means its ``llm_cache.sqlite``; anything else is the cache file itself."""
    p = Path(path)
    return p / CACHE_FILENAME if p.is_dir() else p


@dataclass(frozen=True)
class CachedCall:
    key: str
    kind: CallKind
    text: str | None
    logprobs: tuple[float, ...] | None
    input_tokens: int
    output_tokens: int
    created: float


class CallCache:
    """Thread-safe SQLite store of LLM calls.

    Args:
        path: The cache file, or a run folder (then ``<folder>/llm_cache.sqlite``).
        must_exist: For replay: a missing file is an error rather than an empty cache.

    Raises:
        CacheNotFoundError: ``must_exist`` and there is no cache at ``path``.
    """

    def __init__(self, path: Path | str, *, must_exist: bool = False) -> None:
        self.path = resolve_cache_path(path)
        if must_exist and not self.path.is_file():
            raise CacheNotFoundError(f"no LLM call cache at {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # One connection shared by threads, serialised by the lock; the timeout covers
        # another process (a second executor) holding the write lock for a moment.
        self._db = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._db.commit()

    def get(self, key: str) -> CachedCall | None:
        with self._lock:
            row = self._db.execute(
                "SELECT kind, text, logprobs, input_tokens, output_tokens, created "
                "FROM calls WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        kind, text, logprobs, n_in, n_out, created = row
        lp = None if logprobs is None else tuple(float(x) for x in json.loads(logprobs))
        return CachedCall(key=key, kind=kind, text=text, logprobs=lp, input_tokens=int(n_in),
                          output_tokens=int(n_out), created=float(created))

    def put(
        self,
        key: str,
        *,
        kind: CallKind,
        backend: str,
        model: str,
        request: Mapping[str, Any],
        text: str | None = None,
        logprobs: Sequence[float] | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
    ) -> None:
        """Store one call; a key already present keeps its first answer."""
        req = json.dumps(request, sort_keys=True, ensure_ascii=False)
        # json writes -inf as -Infinity and reads it back: an impossible option stays so.
        lp = None if logprobs is None else json.dumps([float(x) for x in logprobs])
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO calls (key, kind, backend, model, request, text, "
                "logprobs, input_tokens, output_tokens, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, kind, backend, model, req, text, lp, int(input_tokens),
                 int(output_tokens), time.time()))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM calls").fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> CallCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CallCache({str(self.path)!r})"


def _copy_cache(src: Path, dest: Path) -> None:
    # The SQLite backup API copies a consistent snapshot even if the source has a WAL.
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as s, sqlite3.connect(dest) as d:
        s.backup(d)


def open_run_cache(run_dir: Path, replay_from: str | None,
                   warm_from: str | None = None) -> CallCache:
    """The run's LLM cache: recording into ``run_dir``, or a copy of another run's to
    replay; ``warm_from`` records on top of a copy of another run's cache (calls it
    already holds are not asked again)."""
    dest = run_dir / CACHE_FILENAME
    if warm_from is not None and replay_from is None:
        src = resolve_cache_path(warm_from)
        if src.is_file():
            _copy_cache(src, dest)
    if replay_from is not None:
        src = resolve_cache_path(replay_from)
        if not src.is_file():
            raise FileNotFoundError(f"--replay: no LLM cache at {src}")
        _copy_cache(src, dest)
        return CallCache(dest, must_exist=True)
    return CallCache(dest)
