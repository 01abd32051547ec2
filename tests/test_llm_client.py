"""LLMClient with the fake chat model: retries, limits, budget, record/replay, structured output.

No network, no real waiting: the client's clock and sleep are injected.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from pydantic import BaseModel

from agents.llm import (
    BudgetExceededError,
    CallCache,
    CallRecord,
    FakeChatModel,
    LLMClient,
    LLMConfigError,
    LLMUnavailableError,
    ReplayMissError,
    ScoringUnsupportedError,
    ask_structured,
    extract_json,
    is_transient,
)
from agents.llm.fake import (
    FakeConnectionError,
    FakeProviderError,
    FakeTimeoutError,
    auth_error,
    rate_limit_error,
    server_error,
)
from agents.llm.retry import retry_after_s
from scenarios.schema import BudgetConfig, LLMConfig

SECRET = "sk-test-SECRETVALUE-0123456789abcdef"


class FakeTime:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def cfg(**kw: Any) -> LLMConfig:
    base: dict[str, Any] = {"backend": "fake", "model": "fake-1", "max_retries": 4,
                            "backoff_base_s": 0.5, "backoff_max_s": 30.0}
    base.update(kw)
    return LLMConfig(**base)


def client(model: FakeChatModel, t: FakeTime | None = None, **kw: Any) -> LLMClient:
    t = t or FakeTime()
    c = kw.pop("cfg", None) or cfg()
    return LLMClient(c, chat_model=model, sleep=t.sleep, clock=t, **kw)


USER = [("system", "You are a tester."), ("user", "Say hi")]


# ----------------------------------------------------------------------------- retries


def test_transient_faults_are_retried_until_success() -> None:
    t = FakeTime()
    model = FakeChatModel(responses=["hello there"],
                          faults=[FakeTimeoutError("read timed out"), rate_limit_error(7.0),
                                  server_error(500), None])
    reply = client(model, t).chat(USER, agent="u1", purpose="greet")
    assert reply.text == "hello there"
    assert reply.attempts == 4
    assert model.calls == 4
    assert len(t.sleeps) == 3
    assert t.sleeps[1] >= 7.0  # Retry-After honoured
    assert reply.input_tokens == 6 and reply.output_tokens == 2  # whitespace words


def test_non_transient_error_fails_at_once_without_the_key() -> None:
    t = FakeTime()
    model = FakeChatModel(responses=["x"], faults=[
        FakeProviderError(401, f"Incorrect API key provided: {SECRET}")])
    with pytest.raises(LLMUnavailableError) as ei:
        client(model, t).chat(USER, agent="u1", purpose="greet")
    msg = str(ei.value)
    assert model.calls == 1 and t.sleeps == []
    assert "\n" not in msg and "401" in msg and "rejected" in msg
    assert SECRET not in msg and "SECRETVALUE" not in msg
    assert ei.value.status_code == 401 and ei.value.attempts == 1
    assert ei.value.__cause__ is None  # the provider's text may echo credentials


def test_a_bug_in_the_model_fails_at_once_and_keeps_its_cause() -> None:
    model = FakeChatModel(responses=[])  # exhausted at once: a test bug, not a provider fault
    with pytest.raises(LLMUnavailableError, match=r"failed: FakeExhaustedError: ") as ei:
        client(model).chat(USER, agent="u", purpose="p")
    assert ei.value.__cause__ is not None and model.calls == 1


def test_retries_exhausted_is_one_line() -> None:
    t = FakeTime()
    model = FakeChatModel(responses=["x"], faults=[server_error(503)] * 10)
    with pytest.raises(LLMUnavailableError) as ei:
        client(model, t, cfg=cfg(max_retries=2)).chat(USER, agent="u1", purpose="p")
    msg = str(ei.value)
    assert model.calls == 3
    assert msg == ("LLM endpoint fake:fake-1 failing after 3 attempts: HTTP 503: "
                   "The server had an error")
    conn = FakeChatModel(responses=["x"], faults=[FakeConnectionError("Connection refused")] * 5)
    with pytest.raises(LLMUnavailableError, match=r"unreachable after 2 attempts: Connection "
                       r"refused$"):
        client(conn, cfg=cfg(max_retries=1)).chat(USER, agent="u1", purpose="p")


def test_backoff_grows_with_seeded_jitter() -> None:
    def delays(seed: int) -> list[float]:
        t = FakeTime()
        model = FakeChatModel(responses=["ok"], faults=[server_error(500)] * 6)
        c = client(model, t, cfg=cfg(max_retries=6, backoff_base_s=1.0, backoff_max_s=100.0),
                   seed=seed)
        c.chat(USER, agent="u", purpose="p")
        return t.sleeps

    d = delays(0)
    assert len(d) == 6
    for k, x in enumerate(d):  # step 2**k, waited in [step/2, step]
        assert 2.0 ** k / 2 <= x <= 2.0 ** k
    assert all(b >= a for a, b in itertools.pairwise(d))
    assert d != [2.0 ** k for k in range(6)]  # jittered
    assert delays(0) == d  # seeded
    assert delays(1) != d


def test_backoff_is_capped_and_long_retry_after_fails_fast() -> None:
    t = FakeTime()
    model = FakeChatModel(responses=["ok"], faults=[server_error(502)] * 8)
    client(model, t, cfg=cfg(max_retries=8, backoff_base_s=1.0, backoff_max_s=4.0)).chat(
        USER, agent="u", purpose="p")
    assert max(t.sleeps) <= 4.0
    t2 = FakeTime()
    slow = FakeChatModel(responses=["ok"], faults=[rate_limit_error(3600)])
    with pytest.raises(LLMUnavailableError, match="retry after 3600 s"):
        client(slow, t2).chat(USER, agent="u", purpose="p")
    assert t2.sleeps == []


# ----------------------------------------------------------------------------- classifier


def _request() -> httpx2.Request:
    return httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


def _status(cls: type[openai.APIStatusError], code: int,
            headers: dict[str, str] | None = None) -> openai.APIStatusError:
    resp = httpx2.Response(code, headers=headers or {}, request=_request())
    return cls(f"Error code: {code}", response=resp, body={"error": {"message": "boom"}})


def test_real_openai_exceptions_are_classified() -> None:
    transient = [
        _status(openai.RateLimitError, 429, {"retry-after": "2"}),
        _status(openai.InternalServerError, 500),
        _status(openai.APIStatusError, 503),
        openai.APITimeoutError(request=_request()),
        openai.APIConnectionError(request=_request()),
        FakeTimeoutError(), FakeConnectionError(), rate_limit_error(), server_error(502),
        TimeoutError(), ConnectionRefusedError(),
    ]
    permanent = [
        _status(openai.AuthenticationError, 401), _status(openai.BadRequestError, 400),
        _status(openai.PermissionDeniedError, 403), _status(openai.NotFoundError, 404),
        _status(openai.UnprocessableEntityError, 422), auth_error(), ValueError("bad"),
    ]
    assert all(is_transient(e) for e in transient)
    assert not any(is_transient(e) for e in permanent)
    assert retry_after_s(transient[0]) == 2.0
    assert retry_after_s(_status(openai.RateLimitError, 429, {"retry-after-ms": "1500"})) == 1.5
    assert retry_after_s(transient[1]) is None


def test_real_openai_exceptions_through_the_client() -> None:
    t = FakeTime()
    model = FakeChatModel(responses=["fine"], faults=[
        _status(openai.RateLimitError, 429, {"retry-after": "3"}),
        openai.APITimeoutError(request=_request()), None])
    reply = client(model, t).chat(USER, agent="u", purpose="p")
    assert reply.attempts == 3 and t.sleeps[0] >= 3.0
    bad = FakeChatModel(responses=["x"], faults=[_status(openai.NotFoundError, 404)])
    with pytest.raises(LLMUnavailableError, match=r"rejected the request: HTTP 404: boom"):
        client(bad).chat(USER, agent="u", purpose="p")
    assert bad.calls == 1


# ----------------------------------------------------------------------------- limits


def test_requests_per_minute() -> None:
    t = FakeTime()
    stamps: list[float] = []

    def answer(msgs: list[tuple[str, str]]) -> str:
        stamps.append(t.now)
        return "ok"

    c = client(FakeChatModel(responses=answer), t, cfg=cfg(requests_per_minute=30))
    for i in range(5):
        c.chat([("user", f"q{i}")], agent="u", purpose="p")
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert stamps[0] == 1000.0  # the first call does not wait
    assert all(g >= 2.0 - 1e-9 for g in gaps)  # 30 per minute: one every 2 s
    assert all(g < 2.2 for g in gaps)


def test_tokens_per_minute() -> None:
    t = FakeTime()
    stamps: list[float] = []

    def answer(msgs: list[tuple[str, str]]) -> str:
        stamps.append(t.now)
        return "word " * 30

    # Each call reserves its prompt estimate + max_tokens (~52) of a 120-token bucket, then
    # settles to its real usage (2 + 30 words).
    c = client(FakeChatModel(responses=answer), t,
               cfg=cfg(tokens_per_minute=120, max_tokens=50))
    for i in range(6):
        c.chat([("user", f"question {i}")], agent="u", purpose="p")
    assert stamps[:2] == [1000.0, 1000.0]
    assert stamps[-1] > 1000.0  # later calls waited for the bucket to refill
    used = 6 * 32
    # Over the whole run at most the bucket plus the refill was spent.
    assert used <= 120 + (stamps[-1] - 1000.0) * 2.0 + 52


def test_concurrency_cap() -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def answer(msgs: list[tuple[str, str]]) -> str:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.03)
        with lock:
            state["now"] -= 1
        return "ok"

    c = LLMClient(cfg(concurrency=2), chat_model=FakeChatModel(responses=answer))
    threads = [threading.Thread(target=c.chat, args=([("user", f"q{i}")],),
                                kwargs={"agent": f"a{i}", "purpose": "p"}) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert state["max"] == 2
    assert c.usage.total.calls == 8


# ----------------------------------------------------------------------------- budget


def test_budget_stops_on_tokens() -> None:
    c = client(FakeChatModel(responses=["one two three"], cycle=True),
               cfg=cfg(budget=BudgetConfig(max_tokens=10)))
    c.chat([("user", "a b c")], agent="u", purpose="p")  # 6 tokens
    c.chat([("user", "d e f")], agent="u", purpose="p")  # 12: over, but already asked
    with pytest.raises(BudgetExceededError) as ei:
        c.chat([("user", "g h i")], agent="u", purpose="p")
    assert ei.value.limit == "max_tokens"
    assert str(ei.value) == "run budget reached: 12 tokens used of max_tokens 10"
    assert c.usage.total.total_tokens == 12


def test_budget_stops_on_cost_and_usage_per_agent() -> None:
    budget = BudgetConfig(max_cost_usd=0.05, input_price_per_mtok=1000.0,
                          output_price_per_mtok=4000.0)
    c = client(FakeChatModel(responses=["five words in this reply"], cycle=True),
               cfg=cfg(budget=budget))
    r = c.chat([("user", "two words")], agent="alice", purpose="p")
    assert r.cost_usd == pytest.approx((2 * 1000.0 + 5 * 4000.0) / 1e6)  # 0.022
    c.chat([("user", "three more words")], agent="bob", purpose="p")  # 0.023 -> 0.045
    c.chat([("user", "x")], agent="alice", purpose="p")  # 0.021 -> 0.066
    with pytest.raises(BudgetExceededError, match="max_cost_usd") as ei:
        c.chat([("user", "y")], agent="bob", purpose="p")
    assert ei.value.limit == "max_cost_usd"
    per = c.usage.per_agent
    assert set(per) == {"alice", "bob"}
    assert per["alice"].calls == 2 and per["bob"].calls == 1
    assert per["alice"].input_tokens == 3 and per["alice"].output_tokens == 10
    total = c.usage.total
    assert total.cost_usd == pytest.approx(per["alice"].cost_usd + per["bob"].cost_usd)
    assert total.calls == 3


def test_on_call_records() -> None:
    seen: list[CallRecord] = []
    c = client(FakeChatModel(responses=["a b"]), on_call=seen.append)
    c.chat(USER, agent="u7", purpose="watch")
    assert len(seen) == 1 and seen == c.records
    rec = seen[0]
    assert (rec.agent, rec.purpose, rec.kind, rec.cached, rec.attempts) == (
        "u7", "watch", "chat", False, 1)
    assert rec.input_tokens == 6 and rec.output_tokens == 2


# ----------------------------------------------------------------------------- record/replay


def _session(c: LLMClient) -> list[Any]:
    out: list[Any] = []
    for i in range(3):
        out.append(c.chat([("user", f"question {i}")], agent=f"a{i}", purpose="ask").text)
    out.append(c.chat([("user", "question 0")], agent="a0", purpose="ask").text)  # repeat
    out.append(c.score("Would you watch it? Answer:", ["yes", "no"], agent="a1",
                       purpose="watch").logprobs)
    return out


def _stable(records: list[CallRecord]) -> list[tuple[Any, ...]]:
    return [(r.agent, r.purpose, r.kind, r.key, r.input_tokens, r.output_tokens, r.cost_usd,
             r.charged) for r in records]


def test_record_then_replay_is_identical_without_the_model(tmp_path: Path) -> None:
    budget = BudgetConfig(input_price_per_mtok=1.0, output_price_per_mtok=2.0)
    conf = cfg(budget=budget)
    model = FakeChatModel(responses=lambda m: f"answer to {m[-1][1]}",
                          scorer=lambda p, o: [-0.5, -1.5])
    with CallCache(tmp_path / "run") as cache:  # a folder: run/llm_cache.sqlite
        rec = client(model, cfg=conf, cache=cache)
        first = _session(rec)
        assert len(cache) == 4
    assert model.calls == 4  # the repeat came from the cache
    assert rec.records[3].cached and not rec.records[3].charged

    def boom(m: list[tuple[str, str]]) -> str:
        raise AssertionError("the model must not be called in replay")

    never = FakeChatModel(responses=boom)
    with CallCache(tmp_path / "run", must_exist=True) as cache:
        rep = client(never, cfg=conf, cache=cache, replay=True)
        again = _session(rep)
    assert again == first
    assert never.calls == 0
    assert _stable(rep.records) == _stable(rec.records)
    assert rep.usage.total.total_tokens == rec.usage.total.total_tokens
    assert rep.usage.total.cost_usd == rec.usage.total.cost_usd
    assert all(r.cached for r in rep.records)


def test_replay_builds_no_model_and_misses_loudly(tmp_path: Path) -> None:
    conf = LLMConfig(backend="openai", model="gpt-x", base_url="http://127.0.0.1:9/v1",
                     api_key_env="RECARENA_TEST_NO_SUCH_KEY")
    with CallCache(tmp_path / "c.sqlite") as cache:
        c = LLMClient(conf, cache=cache, replay=True)
        with pytest.raises(ReplayMissError) as ei:
            c.chat(USER, agent="u42", purpose="interview")
    msg = str(ei.value)
    assert "\n" not in msg and "'u42'" in msg and "interview" in msg
    assert ei.value.key[:12] in msg
    assert not c.model_built
    with pytest.raises(FileNotFoundError):
        CallCache(tmp_path / "missing.sqlite", must_exist=True)
    with pytest.raises(ValueError, match="replay needs a cache"):
        LLMClient(conf, replay=True)


def test_a_budget_stop_replays_at_the_same_call(tmp_path: Path) -> None:
    conf = cfg(budget=BudgetConfig(max_tokens=9))

    def run(c: LLMClient) -> list[str]:
        done = []
        try:
            for q in ["a b", "c d", "a b", "e f", "g h"]:
                done.append(c.chat([("user", q)], agent="u", purpose="p").text)
        except BudgetExceededError as e:
            done.append(str(e))
        return done

    with CallCache(tmp_path / "c.sqlite") as cache:
        first = run(client(FakeChatModel(responses=["x y z"], cycle=True), cfg=conf,
                           cache=cache))
        second = run(client(FakeChatModel(responses=[]), cfg=conf, cache=cache, replay=True))
    assert first == second
    assert first[-1].startswith("run budget reached")


def test_cache_key_ignores_the_key_value_and_tracks_what_matters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def key(conf: LLMConfig, msgs: list[tuple[str, str]] = USER) -> str:
        c = client(FakeChatModel(responses=["r"], cycle=True), cfg=conf)
        return c.chat(msgs, agent="u", purpose="p").key

    monkeypatch.setenv("RECARENA_K", "first-secret")
    k1 = key(cfg(api_key_env="RECARENA_K"))
    monkeypatch.setenv("RECARENA_K", "another-secret")
    assert key(cfg(api_key_env="RECARENA_K")) == k1
    assert key(cfg(api_key_env="OTHER_VAR")) == k1
    assert key(cfg(base_url="http://127.0.0.1:1/v1")) == k1  # where it is served: no
    assert key(cfg(model="fake-2")) != k1
    assert key(cfg(temperature=0.7)) != k1
    assert key(cfg(max_tokens=17)) != k1
    assert key(cfg(), [("system", "You are a tester."), ("user", "Say hi!")]) != k1


def test_secrets_stay_out_of_errors_and_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECARENA_TEST_KEY", SECRET)
    conf = LLMConfig(backend="openai", model="m", base_url="http://127.0.0.1:9/v1",
                     api_key_env="RECARENA_TEST_KEY", max_retries=0)
    with CallCache(tmp_path / "c.sqlite") as cache:
        good = client(FakeChatModel(responses=["fine"]), cfg=conf, cache=cache)
        good.chat(USER, agent="u", purpose="p")
        bad = client(FakeChatModel(responses=["x"], faults=[
            FakeProviderError(401, f"Incorrect API key provided: {SECRET}")]), cfg=conf)
        with pytest.raises(LLMUnavailableError) as ei:
            bad.chat([("user", "other")], agent="u", purpose="p")
        assert repr(good).count("sk-") == 0
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert SECRET.encode() not in blob and b"RECARENA_TEST_KEY" not in blob
    assert SECRET not in str(ei.value) and "SECRETVALUE" not in str(ei.value)


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECARENA_TEST_ABSENT", raising=False)
    conf = LLMConfig(backend="openai", model="m", base_url="https://llm.example.com/v1",
                     api_key_env="RECARENA_TEST_ABSENT")
    with pytest.raises(LLMConfigError, match="RECARENA_TEST_ABSENT is not set"):
        LLMClient(conf).chat(USER, agent="u", purpose="p")


def test_score_needs_a_scoring_model() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    c = LLMClient(cfg(), chat_model=FakeListChatModel(responses=["x"]))
    with pytest.raises(ScoringUnsupportedError, match="cannot score"):
        c.score("p", ["a", "b"], agent="u", purpose="p")
    s = client(FakeChatModel()).score("Answer:", ["yes", "no", "maybe"], agent="u", purpose="p")
    assert s.logprobs == pytest.approx([-math.log(3)] * 3)
    assert s.best == 0


def test_importing_the_package_loads_no_provider_sdk() -> None:
    code = ("import sys, agents.llm; "
            "bad = [m for m in ('openai', 'llama_cpp', 'langchain_openai') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


# ----------------------------------------------------------------------------- structured


class Pick(BaseModel):
    item_id: str
    watch: bool
    rating: int | None = None


def _ask(responses: list[str], max_repairs: int = 2,
         check: Callable[[Pick], None] | None = None) -> tuple[Any, FakeChatModel]:
    model = FakeChatModel(responses=responses)
    res = ask_structured(client(model), USER, Pick, agent="u", purpose="page",
                         max_repairs=max_repairs, check=check)
    return res, model


def test_extract_json_is_tolerant() -> None:
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('Sure! Here it is:\n```json\n{"a": [1, 2]}\n```\nEnjoy.') == {"a": [1, 2]}
    assert extract_json('I think {"a": {"b": "}"}} and then {"c": 2}') == {"a": {"b": "}"}}
    assert extract_json("noise {broken} then {\"ok\": true} tail") == {"ok": True}
    assert extract_json("[1, 2]") == [1, 2]
    with pytest.raises(ValueError):
        extract_json("no json here")


def test_structured_valid_and_fenced() -> None:
    res, model = _ask(['{"item_id": "i1", "watch": true, "rating": 4}'])
    assert res.ok and res.value == Pick(item_id="i1", watch=True, rating=4)
    assert res.attempts == 1 and model.calls == 1
    res, _ = _ask(['Here you go:\n```json\n{"item_id": "i2", "watch": false}\n```'])
    assert res.ok and res.value.item_id == "i2"


def test_structured_repairs_garbage_then_wrong_schema() -> None:
    res, model = _ask(["I would watch it!", '{"item_id": "i1", "watch": "maybe"}',
                       '{"item_id": "i1", "watch": true}'])
    assert res.ok and res.attempts == 3 and len(res.raw) == 3
    second = model.transcripts[1]
    assert second[-2] == ("assistant", "I would watch it!")
    assert second[-1][0] == "user"
    assert second[-1][1].startswith("Your answer was invalid: no JSON object found")
    assert second[-1][1].endswith("Answer again with JSON only.")
    assert "watch" in model.transcripts[2][-1][1]  # the pydantic error names the field


def test_structured_check_and_failure_after_max_repairs() -> None:
    def on_page(p: Pick) -> None:
        if p.item_id not in {"i1", "i2"}:
            raise ValueError(f"item {p.item_id} is not on the page")

    bad = '{"item_id": "i9", "watch": true}'
    res, model = _ask([bad, "nope", bad], max_repairs=2, check=on_page)
    assert not res.ok and res.value is None
    assert res.attempts == 3 and res.raw == [bad, "nope", bad]
    assert res.error == "item i9 is not on the page"
    assert model.calls == 3
    assert [r.text for r in res.replies] == res.raw


def test_structured_propagates_transport_errors() -> None:
    model = FakeChatModel(responses=["x"], faults=[server_error(500)] * 3)
    c = client(model, cfg=cfg(max_retries=1))
    with pytest.raises(LLMUnavailableError):
        ask_structured(c, USER, Pick, agent="u", purpose="p", max_repairs=2)
