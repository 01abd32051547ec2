"""The run's LLM service: user agents and recommender agents share one object (cache, model,
limits, budget per model config), while each caller keeps its own trace sink, usage and
records."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from agents.llm import BudgetExceededError, CallRecord, FakeChatModel
from agents.llm.service import LLMService
from agents.population import USERS
from agents.recsys.runtime import RECOMMENDERS
from scenarios.schema import BudgetConfig, LLMConfig


def _cfg(**kw: object) -> LLMConfig:
    return LLMConfig.model_validate({"backend": "fake", "model": "fake-1", **kw})


def test_callers_share_cache_model_and_limits_but_not_sinks(tmp_path: Path) -> None:
    model = FakeChatModel(responses=["hello"], cycle=True)
    svc = LLMService(tmp_path, seed=0, chat_model=model)
    seen: dict[str, list[CallRecord]] = {USERS: [], RECOMMENDERS: []}
    users = svc.client(_cfg(), caller=USERS, on_call=seen[USERS].append)
    recs = svc.client(_cfg(), caller=RECOMMENDERS, on_call=seen[RECOMMENDERS].append)
    assert users is not recs
    assert svc.client(_cfg(), caller=USERS, on_call=print) is users  # built once
    assert users.share is recs.share  # model pool, slots, buckets, budget
    assert users.recorder.cache is recs.recorder.cache is svc.cache
    users.chat([("user", "hi")], agent="u1", purpose="page")
    # The same request from the other caller is a cache hit: one cache for the run.
    reply = recs.chat([("user", "hi")], agent="rec", purpose="rank")
    assert reply.cached
    assert [r.agent for r in seen[USERS]] == ["u1"]
    assert [r.agent for r in seen[RECOMMENDERS]] == ["rec"]
    assert len(users.records) == 1 and len(recs.records) == 1  # totals add up once
    assert svc.clients(USERS).keys() == svc.clients(RECOMMENDERS).keys()  # one model config
    assert len(svc.all_clients()) == 2
    svc.set_replay(True, USERS)
    assert users.recorder.replay and not recs.recorder.replay
    svc.close()


def test_a_budget_spans_every_caller_of_the_model(tmp_path: Path) -> None:
    model = FakeChatModel(responses=["one two three"], cycle=True)
    svc = LLMService(tmp_path, seed=0, chat_model=model)
    cfg = _cfg(budget=BudgetConfig(max_tokens=10))
    users = svc.client(cfg, caller=USERS, on_call=lambda r: None)
    recs = svc.client(cfg, caller=RECOMMENDERS, on_call=lambda r: None)
    users.chat([("user", "a b c")], agent="u1", purpose="p")  # 6 tokens
    users.chat([("user", "d e f")], agent="u1", purpose="p")  # 12: over
    with pytest.raises(BudgetExceededError, match="12 tokens used of max_tokens 10"):
        recs.chat([("user", "g h i")], agent="rec", purpose="p")
    assert svc.usage() == (6, 6, 0.0)
    assert svc.usage(RECOMMENDERS) == (0, 0, 0.0)
    svc.close()


def test_a_recommender_runtime_uses_the_given_service(tmp_path: Path) -> None:
    from agents.recsys.runtime import RecRuntime

    svc = LLMService(tmp_path, seed=0, chat_model=FakeChatModel(responses=["x"], cycle=True))
    users = svc.client(_cfg(), caller=USERS, on_call=lambda r: None)
    # The library is only read by tasks, none of which run here.
    rt = RecRuntime(library=cast(Any, None), seed=0, run_dir=tmp_path, service=svc,
                    caller="recommenders:a")
    client = rt.client(_cfg())
    assert svc.clients("recommenders:a") == rt.clients
    assert list(rt.clients.values()) == [client]
    assert client.share is users.share
    rt.close()  # not the owner: the service stays open
    assert svc.cache is not None
    svc.close()
