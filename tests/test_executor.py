"""The default (asyncio) executor: it gives a serial run's results, and it really keeps the
LLM client's concurrency C busy in every LLM phase (counted, never timed)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from agents.aio import EventLoop, gather, run_sync
from agents.llm import FakeChatModel
from agents.llm.fake import Transcript
from bench.stub_server import serve
from scenarios.schema import LLMConfig
from simulations.record.trace import read_trace, strip_volatile
from simulations.run.runner import prepare, run
from tests.test_llm_brain import _answer_all, _llm_scenario


def _scenario(tmp_path: Path, concurrency: int, pages: int = 3) -> Any:
    """LLM users with a three-step static planner (two model steps per page), long-term
    memory reflecting every 3 memories (every page), and an exit interview."""
    loaded = _llm_scenario(tmp_path, concurrency=concurrency)
    lt = loaded.role.memory.long_term.model_copy(update={"reflect_every": 3})
    role = loaded.role.model_copy(update={
        "memory": loaded.role.memory.model_copy(update={"long_term": lt}),
        "planner": loaded.role.planner.model_copy(update={
            "steps": ["summarise_tastes", "pick_history", "decide"]})})
    scn = loaded.scenario.model_copy(update={
        "environment": loaded.scenario.environment.model_copy(update={"max_pages": pages})})
    return dataclasses.replace(loaded, scenario=scn, role=role)


def _kind(transcript: Transcript) -> str:
    last = transcript[-1][1]
    if "what have you learned" in last:
        return "reflection"
    if "Step 1." in last or "Step 2." in last:
        return "plan"
    if "satisfied" in last:
        return "interview"
    return "page"


def _answer(transcript: Transcript) -> str:
    kind = _kind(transcript)
    if kind == "reflection":
        return "I like comedies more than I thought."
    if kind == "plan":
        return "Light comedies.\nFilm A"
    return _answer_all(transcript)


class InFlight:
    """Counts chat calls in flight per LLM phase: the fake calls ``latency`` when a call
    starts waiting and ``responses`` when it is done waiting."""

    def __init__(self, wait: Any) -> None:
        self.wait = wait
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self._lock = threading.Lock()

    def start(self, transcript: Transcript) -> float:
        k = _kind(transcript)
        with self._lock:
            self.now[k] = self.now.get(k, 0) + 1
            self.peak[k] = max(self.peak.get(k, 0), self.now[k])
        return float(self.wait(transcript))

    def done(self, transcript: Transcript) -> str:
        with self._lock:
            self.now[_kind(transcript)] -= 1
        return _answer(transcript)


def _jitter(transcript: Transcript) -> float:
    # 1-20 ms, fixed per prompt: answers finish in another order than they were asked.
    return 0.001 * (1 + zlib.crc32(transcript[-1][1].encode()) % 20)


def _trace(run_dir: Path) -> list[dict[str, Any]]:
    out = []
    for e in read_trace(run_dir):
        e = strip_volatile(e)
        if e["type"] == "run_start":  # its config names llm.concurrency, which differs
            e = {k: v for k, v in e.items() if k != "config"}
        out.append(e)
    return out


def test_async_run_equals_a_serial_run(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    users = 8
    serial = InFlight(_jitter)
    a = run(prepare(_scenario(tmp_path, concurrency=1), users=users), tmp_path / "serial",
            chat_model=FakeChatModel(responses=serial.done, latency=serial.start))
    conc = InFlight(_jitter)
    b = run(prepare(_scenario(tmp_path, concurrency=8), users=users), tmp_path / "async",
            chat_model=FakeChatModel(responses=conc.done, latency=conc.start))
    # The serial run made one call at a time; the async one overlapped them.
    assert max(serial.peak.values()) == 1
    assert conc.peak["page"] == users and conc.peak["plan"] == users
    events = _trace(tmp_path / "serial")
    kinds = {e.get("purpose") for e in events if e["type"] == "llm_call"}
    assert {"page", "interview", "reflection", "plan:summarise_tastes"} <= kinds
    assert a.metrics == b.metrics
    assert events == _trace(tmp_path / "async")
    # The async run wrote chromadb behind its LLM calls (memory.write_behind), the serial
    # one synchronously: the stores of record hold exactly the same rows.
    rows = [_chroma_rows(tmp_path / name / "memory") for name in ("serial", "async")]
    assert rows[0] and rows[0] == rows[1]
    # From this many users a role's store is written by a writer process
    # (memory.store_process): same trace, metrics and rows.
    import agents.population

    monkeypatch.setattr(agents.population, "STORE_PROCESS_MIN_USERS", users)
    proc = InFlight(_jitter)
    c = run(prepare(_scenario(tmp_path, concurrency=8), users=users), tmp_path / "process",
            chat_model=FakeChatModel(responses=proc.done, latency=proc.start))
    assert (tmp_path / "process" / "memory" / "writer.log").exists()
    assert c.metrics == a.metrics
    assert _trace(tmp_path / "process") == events
    assert _chroma_rows(tmp_path / "process" / "memory") == rows[0]


def _chroma_rows(path: Path) -> dict[str, Any]:
    """Every row of every collection in a run's chromadb folder (ids, texts, metadata,
    embeddings), read through chromadb itself."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(path),
                                       settings=Settings(anonymized_telemetry=False))
    try:
        out = {}
        for col in client.list_collections():
            got = col.get(include=["embeddings", "documents", "metadatas"])
            for i, doc, md, emb in zip(got["ids"], got["documents"] or [], got["metadatas"]
                                       or [], got["embeddings"], strict=True):
                out[f"{col.name}/{i}"] = (doc, md, [round(float(x), 6) for x in emb])
        return out
    finally:
        client.close()


@pytest.mark.parametrize("limit", [4, 8])
def test_every_llm_phase_reaches_the_concurrency_limit(tmp_path: Path, limit: int) -> None:
    users = 3 * limit
    seen = InFlight(lambda t: 0.02)
    fake = FakeChatModel(responses=seen.done, latency=seen.start)
    res = run(prepare(_scenario(tmp_path, concurrency=limit, pages=2), users=users),
              tmp_path / "run", chat_model=fake)
    assert res.status == "completed"
    # Page decisions, planner steps, reflections and interviews: each phase had exactly
    # C calls in flight at its peak (never more: the client's limit holds).
    assert seen.peak == {"page": limit, "plan": limit, "reflection": limit,
                         "interview": limit}
    assert fake.max_in_flight == limit


# ----------------------------------------------------------------------------- the loop


def test_event_loop_runs_coroutines_from_any_thread_and_closes() -> None:
    loop = EventLoop()
    assert not loop.running  # nothing starts before the first run

    async def where() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert loop.run(where()) == "recarena-agents"

    async def inside_another_loop() -> str:
        # A caller that runs its own loop (a notebook) can still use the population.
        return loop.run(where())

    assert asyncio.run(inside_another_loop()) == "recarena-agents"
    closed: list[bool] = []

    async def before() -> None:
        closed.append(True)

    loop.close(before=before)
    loop.close()  # idempotent
    assert closed == [True] and not loop.running
    with pytest.raises(RuntimeError, match="closed"):
        loop.run(where())


def test_event_loop_raises_the_coroutines_error() -> None:
    loop = EventLoop()

    async def boom() -> None:
        raise ValueError("bad step")

    with pytest.raises(ValueError, match="bad step"):
        loop.run(boom())
    loop.close()


def test_run_sync_drives_a_coroutine_that_never_waits() -> None:
    async def plain(x: int) -> int:
        return x + 1

    assert run_sync(plain(1)) == 2

    class Pending:
        def __await__(self) -> Any:
            yield  # what a pending future does: hand control to an event loop

    async def waits() -> None:
        await Pending()

    with pytest.raises(RuntimeError, match="suspended"):
        run_sync(waits())


def test_gather_cancels_the_others_when_one_fails() -> None:
    finished: list[int] = []

    async def one(x: int) -> int:
        if x == 0:
            raise ValueError("budget")
        await asyncio.sleep(0.05)
        finished.append(x)
        return x

    with pytest.raises(ValueError, match="budget"):
        asyncio.run(gather(one, range(4)))
    assert finished == []


def test_event_loop_pickles_as_a_fresh_loop() -> None:
    import pickle

    loop = EventLoop("x")

    async def one() -> int:
        return 1

    assert loop.run(one()) == 1
    copy = pickle.loads(pickle.dumps(loop))
    assert copy.name == "x" and not copy.running and copy.run(one()) == 1
    loop.close()
    copy.close()


def test_gather_keeps_order_and_runs_together() -> None:
    active, peak = [0], [0]

    async def one(x: int) -> int:
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await asyncio.sleep(0.001 * (5 - x))  # later items finish first
        active[0] -= 1
        return x

    assert asyncio.run(gather(one, range(5))) == [0, 1, 2, 3, 4] and peak[0] == 5
    peak[0] = 0
    assert asyncio.run(gather(one, range(5), concurrent=False)) == [0, 1, 2, 3, 4]
    assert peak[0] == 1


# ----------------------------------------------------------------------------- a real endpoint


def _stub_answer(body: Mapping[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    return _answer([(str(m.get("role")), str(m.get("content") or "")) for m in messages])


def _openai(loaded: Any, url: str, concurrency: int) -> Any:
    llm = LLMConfig(backend="openai", model="stub", base_url=url, concurrency=concurrency,
                    max_tokens=200, max_retries=1, timeout_s=60)
    return dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(
        update={"llm": llm}))


def test_openai_backend_on_the_executor_against_a_real_server(tmp_path: Path) -> None:
    """Over HTTP (the async path posts through the openai SDK without LangChain): the
    server sees C requests at once and native structured output; a replay gives the same
    trace with no server."""
    limit, users = 4, 8
    with serve(latency_s=0.2, responder=_stub_answer) as stub:
        loaded = _openai(_scenario(tmp_path, concurrency=limit, pages=2), stub.base_url,
                         limit)
        res = run(prepare(loaded, users=users), tmp_path / "live")
        stats = stub.stats
    assert res.status == "completed" and res.llm is not None
    assert stats.peak_in_flight == limit
    assert stats.requests == res.llm["calls"]
    events = _trace(tmp_path / "live")
    pages = [e for e in events if e["type"] == "llm_call" and e["purpose"] == "page"]
    assert len(pages) == 2 * users and stats.structured >= len(pages)
    assert not [e for e in events if e["type"] == "decision_failure"]
    again = run(prepare(loaded, users=users), tmp_path / "replay",
                replay=str(tmp_path / "live"))
    assert again.metrics == res.metrics and _trace(tmp_path / "replay") == events


def test_the_async_request_is_the_one_langchain_sends() -> None:
    """The direct SDK path and ChatOpenAI (the sync path) send the same request."""
    from agents.brains.llm import InterviewReply
    from agents.llm import LLMClient

    bodies: list[dict[str, Any]] = []

    def record(body: Mapping[str, Any]) -> str:
        bodies.append(dict(body))
        return '{"satisfaction": 5, "reason": "fine"}'

    with serve(responder=record) as stub:
        cfg = LLMConfig(backend="openai", model="stub", base_url=stub.base_url,
                        max_tokens=50, temperature=0.3)
        client = LLMClient(cfg)
        msgs = [("system", "You are a viewer."), ("user", "How satisfied are you?")]
        sync = client.chat(msgs, agent="u1", purpose="t", schema=InterviewReply)

        async def go() -> Any:
            try:
                return await client.achat(msgs, agent="u2", purpose="t2",
                                          schema=InterviewReply)
            finally:
                await client.aclose()

        asynced = asyncio.run(go())
        client.close()
    assert sync.text == asynced.text and (sync.input_tokens, sync.output_tokens) == (
        asynced.input_tokens, asynced.output_tokens)
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert bodies[0]["response_format"]["json_schema"]["name"] == "InterviewReply"


def test_conversation_turns_run_together_and_match_a_serial_run(tmp_path: Path) -> None:
    from scenarios.schema import LLMConfig as Cfg
    from tests.test_conversation import _chat_user, _llm, _loaded

    def with_limit(limit: int) -> Any:
        loaded = _llm(_loaded(max_turns=3))
        return dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(update={
            "llm": Cfg(backend="fake", model="fake", concurrency=limit)}))

    users, peaks = 12, {}
    for limit in (1, 6):
        seen: dict[str, int] = {"now": 0, "peak": 0}

        def start(t: Transcript, seen: dict[str, int] = seen) -> float:
            seen["now"] += 1
            seen["peak"] = max(seen["peak"], seen["now"])
            return _jitter(t)

        def done(t: Transcript, seen: dict[str, int] = seen) -> str:
            seen["now"] -= 1
            return _chat_user(t)

        run(prepare(with_limit(limit), users=users), tmp_path / f"c{limit}",
            chat_model=FakeChatModel(responses=done, latency=start))
        peaks[limit] = seen["peak"]
    assert peaks == {1: 1, 6: 6}  # openings and verdicts: C at once
    events = _trace(tmp_path / "c1")
    assert {e["purpose"] for e in events if e["type"] == "llm_call"} >= {"describe", "judge"}
    assert events == _trace(tmp_path / "c6")
