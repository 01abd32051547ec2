"""A SQLite index of a trace, so one agent's story or a search does not rescan the JSON.

``trace_index.sqlite`` sits in the run folder beside ``trace.jsonl``. The runner writes it
when the run ends; every ``recarena trace`` command (re)builds it on demand when it is
missing or older than the trace (a run still going, a run made before indexes existed, a
trace cut off by a crash). It is a derived cache: deleting it loses nothing.

Tables: ``events`` (one row per trace line: line, seq, id, type, arm, round, user, role
and the event's JSON), ``event_items`` (which items an event concerns: shown on a page,
decided on, recommended, accepted, a conversation's target), ``items`` (the catalogue:
id, title, year, genres) and ``meta`` (the trace's size and mtime it was built from and
where the trace ends). Parsing and validation run inside SQLite's JSON functions (C), so
indexing 280,000 events takes seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulations.inspection.items import ITEMS_FILENAME, Item, items_from_config, read_items

__all__ = ["INDEX_FILENAME", "TraceEnd", "TraceIndex", "Where", "add_lines", "begin_index",
           "build_index", "end_index", "open_index", "trace_path"]

INDEX_FILENAME = "trace_index.sqlite"
INDEX_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (
    line INTEGER PRIMARY KEY,
    seq INTEGER,
    id TEXT,
    type TEXT NOT NULL,
    arm TEXT,
    round INTEGER,
    user TEXT,
    role TEXT,
    doc TEXT NOT NULL
);
CREATE TABLE event_items (line INTEGER NOT NULL, item TEXT NOT NULL);
CREATE TABLE items (id TEXT PRIMARY KEY, title TEXT, year TEXT, genres TEXT);
"""
_INDEXES = """
CREATE INDEX events_user ON events(user, line);
CREATE INDEX events_type ON events(type, line);
CREATE INDEX events_id ON events(id);
CREATE INDEX event_items_item ON event_items(item, line);
"""
# Which fields of which events name items (lists and single ids).
_ITEM_LISTS = ("page", "recommendation", "event", "item_update")
_ITEM_FIELDS = (("decision", "$.item"), ("verdict", "$.accept"),
                ("conversation_start", "$.target"))
_COLUMNS = ("seq", "id", "type", "arm", "round", "user", "role")


def trace_path(run: str | Path) -> Path:
    """``RUN/trace.jsonl`` for a run folder, or the trace file itself."""
    p = Path(run)
    if p.is_dir():
        p = p / "trace.jsonl"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no trace here (expected a run folder or trace.jsonl)")
    return p


# ----------------------------------------------------------------------------- where a trace ends


@dataclass(frozen=True)
class TraceEnd:
    """How a trace ends: cleanly (``run_end``), cut off mid-line, or just stopping."""

    path: str
    events: int
    last_line: int
    last_seq: int | None
    last_id: str | None
    last_type: str | None
    cut_line: int | None  # the partial line a crash left (not indexed), if any
    status: str | None  # run_end's status; None without run_end
    reason: str | None

    @property
    def complete(self) -> bool:
        return self.status is not None and self.cut_line is None

    def describe(self) -> str | None:
        """One line saying where an incomplete trace ends; None for a complete one."""
        if self.complete:
            return None
        last = (f"it ends after event seq {self.last_seq} ({self.last_type} {self.last_id}) "
                f"on line {self.last_line}" if self.events else "it holds no complete event")
        if self.cut_line is not None:
            return (f"{self.path}: trace cut off mid-write at line {self.cut_line}; {last}; "
                    "no run_end")
        return f"{self.path}: trace incomplete (no run_end); {last}"

    def as_dict(self) -> dict[str, Any]:
        return {"complete": self.complete, "events": self.events, "last_line": self.last_line,
                "last_seq": self.last_seq, "last_id": self.last_id,
                "last_type": self.last_type, "cut_line": self.cut_line,
                "status": self.status, "reason": self.reason, "note": self.describe()}


# ----------------------------------------------------------------------------- building


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def _lines(trace: Path, cut: list[int]) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank line; a final line a crash cut off (no
    newline, not JSON) is left out and its number put in ``cut``."""
    with trace.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                try:
                    text = raw.decode("utf-8")
                    json.loads(text)
                except ValueError:  # UnicodeDecodeError is a ValueError
                    cut.append(lineno)
                    return
                if text.strip():
                    yield lineno, text
                return
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise ValueError(f"{trace}:{lineno}: not UTF-8 text") from None
            if text.strip():
                yield lineno, text


def _repair(conn: sqlite3.Connection, trace: Path) -> None:
    """Lines SQLite's strict JSON rejects: Python-only JSON (NaN) is normalised; anything
    else is an error naming the line, as ``read_trace`` reports it."""
    bad = conn.execute(
        "SELECT line, doc FROM raw WHERE CASE WHEN json_valid(doc) "
        "THEN json_type(doc, '$.type') IS NOT 'text' ELSE 1 END").fetchall()
    for lineno, doc in bad:
        try:
            event = json.loads(doc)
        except json.JSONDecodeError as e:
            raise ValueError(f"{trace}:{lineno}: not a JSON event: {e.msg}") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ValueError(f"{trace}:{lineno}: type: every event needs a 'type'")
        conn.execute("UPDATE raw SET doc = ? WHERE line = ?",
                     (json.dumps(_finite(event), sort_keys=True, separators=(",", ":")),
                      lineno))


def _catalogue(run_dir: Path, conn: sqlite3.Connection) -> list[Item]:
    p = run_dir / ITEMS_FILENAME
    if p.is_file():
        return read_items(p)
    row = conn.execute("SELECT doc FROM events WHERE type = 'run_start' "
                       "ORDER BY line LIMIT 1").fetchone()
    return (items_from_config(json.loads(row[0])) or []) if row else []


def begin_index(conn: sqlite3.Connection, *, indexes: bool) -> None:
    """The tables of an empty index (``indexes``: with the lookup indexes now, so that rows
    added later keep them up to date; else ``end_index`` creates them, which is faster
    for a one-pass build)."""
    conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
                       "PRAGMA temp_store=FILE;" + _SCHEMA + (_INDEXES if indexes else ""))


def add_lines(conn: sqlite3.Connection, trace: Path, lines: Iterable[tuple[int, str]]) -> None:
    """Index these (line number, text) lines of ``trace``."""
    conn.execute("CREATE TEMP TABLE raw (line INTEGER PRIMARY KEY, doc TEXT NOT NULL)")
    conn.executemany("INSERT INTO raw VALUES (?, ?)", lines)
    _repair(conn, trace)
    # Ids are text everywhere (a user "7", an item "23"), whatever a writer made them.
    cols = ", ".join(f"CAST(json_extract(doc, '$.{c}') AS TEXT)" if c == "user"
                     else f"json_extract(doc, '$.{c}')" for c in _COLUMNS)
    conn.execute(f"INSERT INTO events SELECT line, {cols}, doc FROM raw ORDER BY line")
    types = ", ".join(f"'{t}'" for t in _ITEM_LISTS)
    conn.execute(
        "INSERT INTO event_items SELECT r.line, CAST(j.value AS TEXT) FROM raw r, "
        f"json_each(r.doc, '$.items') j WHERE json_extract(r.doc, '$.type') IN ({types}) "
        "AND j.type IN ('text', 'integer')")
    for t, path in _ITEM_FIELDS:
        conn.execute(
            f"INSERT INTO event_items SELECT line, CAST(json_extract(doc, '{path}') AS TEXT) "
            f"FROM raw WHERE json_extract(doc, '$.type') = '{t}' AND json_type(doc, "
            f"'{path}') IN ('text', 'integer')")
    conn.execute("DROP TABLE raw")


def end_index(conn: sqlite3.Connection, trace: Path, cut: int | None, *,
              indexes: bool) -> None:
    """The catalogue, the lookup indexes (``indexes``: not made by ``begin_index``) and
    the meta rows (``cut``: the line a crash cut off, if any)."""
    st = trace.stat()
    conn.executemany("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?)",
                     ((it.id, it.title, it.year, json.dumps(list(it.genres)))
                      for it in _catalogue(trace.parent, conn)))
    if indexes:
        conn.executescript(_INDEXES)
    last = conn.execute("SELECT line, seq, id, type FROM events ORDER BY line DESC "
                        "LIMIT 1").fetchone() or (0, None, None, None)
    end = conn.execute("SELECT json_extract(doc, '$.status'), json_extract(doc, '$.reason') "
                       "FROM events WHERE type = 'run_end' ORDER BY line DESC "
                       "LIMIT 1").fetchone() or (None, None)
    (n,) = conn.execute("SELECT COUNT(*) FROM events").fetchone()
    meta = {"version": INDEX_VERSION, "trace_size": st.st_size,
            "trace_mtime_ns": st.st_mtime_ns, "events": n, "last_line": last[0],
            "last_seq": last[1], "last_id": last[2], "last_type": last[3],
            "cut_line": cut, "status": end[0], "reason": end[1]}
    conn.executemany("INSERT INTO meta VALUES (?, ?)",
                     ((k, json.dumps(v)) for k, v in meta.items()))


def _fill(conn: sqlite3.Connection, trace: Path) -> None:
    begin_index(conn, indexes=False)
    cut: list[int] = []
    add_lines(conn, trace, _lines(trace, cut))
    end_index(conn, trace, cut[0] if cut else None, indexes=True)


def build_index(run: str | Path, dest: Path | None = None) -> Path:
    """Index the trace of ``run`` into ``dest`` (default ``RUN/trace_index.sqlite``).

    Written to a temporary file and renamed, so a reader never sees half an index.

    Raises:
        FileNotFoundError: No trace.
        ValueError: A line other than a cut-off last one is not a JSON event
            (``FILE:LINE: ...``).
    """
    trace = trace_path(run)
    dest = dest or trace.parent / INDEX_FILENAME
    tmp = dest.with_name(f"{dest.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        _fill(conn, trace)
        conn.commit()
        conn.close()
        os.replace(tmp, dest)
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _fresh(index: Path, trace: Path) -> bool:
    if not index.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{index}?mode=ro", uri=True)) as c:
            meta = dict(c.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error:
        return False
    st = trace.stat()
    return (meta.get("version") == str(INDEX_VERSION)
            and meta.get("trace_size") == str(st.st_size)
            and meta.get("trace_mtime_ns") == str(st.st_mtime_ns))


def open_index(run: str | Path) -> TraceIndex:
    """The index of a run's trace, built (or rebuilt) first if missing or stale.

    A run folder that cannot be written to gets its index in the temporary directory.
    """
    trace = trace_path(run)
    index = trace.parent / INDEX_FILENAME
    if _fresh(index, trace):
        return TraceIndex(index, trace)
    if os.access(trace.parent, os.W_OK):
        with contextlib.suppress(PermissionError, sqlite3.OperationalError):
            build_index(trace, index)
            return TraceIndex(index, trace)
    tag = hashlib.sha256(str(trace.resolve()).encode()).hexdigest()[:16]
    index = Path(tempfile.gettempdir()) / f"recarena-{tag}-{INDEX_FILENAME}"
    if not _fresh(index, trace):
        build_index(trace, index)
    return TraceIndex(index, trace)


# ----------------------------------------------------------------------------- where clauses

_WHERE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(!=|>=|<=|=|>|<)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Where:
    """``field OP value`` on an event's JSON: OP is ``= != > >= < <=``; ``field`` may be a
    dotted path (``inputs.attempts``); ``=`` on a list field means "contains"."""

    field: str
    op: str
    value: Any
    text: str

    @classmethod
    def parse(cls, spec: str) -> Where:
        m = _WHERE.match(spec)
        if m is None:
            raise ValueError(f"--where: expected FIELD=VALUE (or != > >= < <=); got {spec!r}")
        field, op, raw = m.groups()
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        if isinstance(value, list | dict):
            value = raw
        return cls(field, op, value, raw)

    def sql(self) -> tuple[str, list[Any]]:
        path = "$." + self.field
        v = int(self.value) if isinstance(self.value, bool) else self.value
        if self.op in ("=", "!="):
            if v is None:
                cond = "json_type(doc, ?) = 'null'"
                return (cond if self.op == "=" else f"json_type(doc, ?) IS NOT NULL AND NOT "
                        f"{cond}", [path] if self.op == "=" else [path, path])
            alts = [v, self.text] if not isinstance(v, str) else [v]
            marks = ", ".join("?" * len(alts))
            if self.field in _COLUMNS:  # indexed column, no JSON parsing
                col = f"{self.field} IN ({marks})"
                return (col if self.op == "=" else f"NOT ({col})"), alts
            has = f"EXISTS (SELECT 1 FROM json_each(doc, ?) WHERE value IN ({marks}))"
            if self.op == "=":
                return has, [path, *alts]
            return f"json_type(doc, ?) IS NOT NULL AND NOT {has}", [path, path, *alts]
        return f"json_extract(doc, ?) {self.op} ?", [path, v]


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# ----------------------------------------------------------------------------- reading


class TraceIndex:
    """Read-only queries over an indexed trace. Events come back as dicts, in trace order."""

    def __init__(self, index: Path, trace: Path) -> None:
        self.path, self.trace = index, trace
        self.run_dir = trace.parent
        self._db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
        meta = {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}
        self.end = TraceEnd(
            path=str(trace), events=int(meta["events"]), last_line=int(meta["last_line"]),
            last_seq=meta["last_seq"], last_id=meta["last_id"], last_type=meta["last_type"],
            cut_line=meta["cut_line"], status=meta["status"], reason=meta["reason"])
        self._items: dict[str, Item] | None = None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TraceIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ generic

    def docs(self, where: str = "1", params: Sequence[Any] = (),
             limit: int | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT doc FROM events WHERE {where} ORDER BY line"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [json.loads(d) for (d,) in self._db.execute(sql, list(params))]

    def iter_docs(self, where: str = "1", params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        for (d,) in self._db.execute(f"SELECT doc FROM events WHERE {where} ORDER BY line",
                                     list(params)):
            yield json.loads(d)

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return self.docs(f"type IN ({', '.join('?' * len(types))})", types)

    def first(self, type_: str) -> dict[str, Any] | None:
        found = self.docs("type = ?", [type_], limit=1)
        return found[0] if found else None

    def counts(self) -> dict[str, int]:
        return dict(self._db.execute(
            "SELECT type, COUNT(*) FROM events GROUP BY type ORDER BY type").fetchall())

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._db.execute(sql, list(params)).fetchone()
        return row[0] if row else None

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, list(params)).fetchall()

    # ------------------------------------------------------------------ runs, agents, steps

    def run_start(self) -> dict[str, Any]:
        return self.first("run_start") or {}

    def users(self) -> list[str]:
        return [u for (u,) in self._db.execute(
            "SELECT DISTINCT user FROM events WHERE type = 'profile' ORDER BY line")]

    def agent(self, user: str) -> list[dict[str, Any]]:
        """Every event of one agent, in order (its profile first)."""
        return self.docs("user = ?", [user])

    def by_id(self, id_: str) -> dict[str, Any] | None:
        found = self.docs("id = ?", [id_], limit=1)
        return found[0] if found else None

    def under(self, prefix: str) -> list[dict[str, Any]]:
        """The event ``prefix`` and every event below it (``prefix/...``)."""
        # '/' + 1 is '0': a range scan of the id index instead of LIKE.
        return self.docs("id = ? OR (id >= ? AND id < ?)", [prefix, prefix + "/", prefix + "0"])

    # ------------------------------------------------------------------ items

    def items(self) -> dict[str, Item]:
        if self._items is None:
            self._items = {
                i: Item(i, t or "", y or "", tuple(json.loads(g or "[]")))
                for i, t, y, g in self._db.execute("SELECT id, title, year, genres FROM items")}
        return self._items

    def item(self, id_: Any) -> Item | None:
        return self.items().get(str(id_))

    def title(self, id_: Any) -> str:
        it = self.item(id_)
        return it.label() if it else f"item {id_}"

    # ------------------------------------------------------------------ search

    def search(self, query: str | None = None, *, types: Sequence[str] = (),
               agent: str | None = None, item: str | None = None,
               where: Sequence[Where] = (), limit: int | None = 50) -> list[dict[str, Any]]:
        """Events matching every filter given, in trace order.

        ``query`` matches the event's text (case-insensitive) or the title of an item the
        event concerns.
        """
        clauses: list[str] = []
        params: list[Any] = []
        if types:
            clauses.append(f"type IN ({', '.join('?' * len(types))})")
            params += list(types)
        if agent is not None:
            clauses.append("user = ?")
            params.append(agent)
        if item is not None:
            clauses.append("line IN (SELECT line FROM event_items WHERE item = ?)")
            params.append(item)
        for w in where:
            sql, p = w.sql()
            clauses.append(sql)
            params += p
        if query:
            forms = {query, json.dumps(query)[1:-1]}  # as typed, and as JSON escapes it
            text = " OR ".join("doc LIKE ? ESCAPE '\\'" for _ in forms)
            params += [_like(f) for f in sorted(forms)]
            q = query.lower()
            hits = [i for i, it in self.items().items() if q in it.title.lower()]
            if hits:
                text += (" OR line IN (SELECT line FROM event_items WHERE item IN "
                         f"({', '.join('?' * len(hits))}))")
                params += hits
            clauses.append(f"({text})")
        return self.docs(" AND ".join(clauses) or "1", params, limit)
