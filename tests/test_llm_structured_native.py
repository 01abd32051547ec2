"""Native structured output (fake model's tool calls; ChatOpenAI's JSON-schema response
format against the loopback stub server), the text fallback, and token counting with the
model's tokenizer."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from agents.llm import (
    CallCache,
    FakeChatModel,
    LLMClient,
    LLMUnavailableError,
    aask_structured,
    ask_structured,
    counter_for,
)
from agents.llm.fake import FakeProviderError
from agents.llm.tokens import ESTIMATE, encoding_for_model
from bench.stub_server import instance_of, serve
from scenarios.schema import LLMConfig

REPO = Path(__file__).resolve().parents[1]
KEY_ENV = "RECARENA_TEST_STUB_KEY"


class Item(BaseModel):
    item_id: str
    watch: bool
    rating: int | None = Field(None, ge=1, le=5)


class Page(BaseModel):
    items: list[Item]
    feeling: str = ""
    leave: bool


USER = [("system", "You rate films."), ("user", "Page 1: i1, i2. Answer with JSON.")]
GOOD = '{"items": [{"item_id": "i1", "watch": true, "rating": 4}], "leave": false}'


def fake_cfg(**kw: Any) -> LLMConfig:
    return LLMConfig(**{"backend": "fake", "model": "fake-1", **kw})


def only_i1(p: Page) -> None:
    if [it.item_id for it in p.items] != ["i1"]:
        raise ValueError("answer item i1 only")


# ----------------------------------------------------------------------------- config


def test_structured_output_is_validated_at_load() -> None:
    assert LLMConfig().structured_output == "auto"
    with pytest.raises(ValidationError, match="structured_output"):
        LLMConfig(structured_output="json")  # type: ignore[arg-type]
    assert LLMClient(fake_cfg(), chat_model=FakeChatModel()).structured_mode == "text"
    assert LLMClient(fake_cfg(structured_output="native"),
                     chat_model=FakeChatModel()).structured_mode == "native"
    openai_cfg = LLMConfig(backend="openai", base_url="http://127.0.0.1:9/v1")
    assert LLMClient(openai_cfg).structured_mode == "native"


# ----------------------------------------------------------------------------- fake model


def test_native_path_with_the_fake_sends_the_schema_as_a_forced_tool() -> None:
    model = FakeChatModel(responses=[GOOD])
    c = LLMClient(fake_cfg(structured_output="native"), chat_model=model)
    res = ask_structured(c, USER, Page, agent="u", purpose="page", max_repairs=1,
                         check=only_i1)
    assert res.ok and res.value == Page(items=[Item(item_id="i1", watch=True, rating=4)],
                                        leave=False)
    assert res.replies[0].native and json.loads(res.raw[0]) == json.loads(GOOD)
    (tools,) = model.tool_requests
    assert len(tools) == 1 and tools[0]["function"]["name"] == "Page"
    params = tools[0]["function"]["parameters"]
    assert set(params["properties"]) == {"items", "feeling", "leave"}
    assert params["required"] == ["items", "leave"]
    assert "rating" in params["$defs"]["Item"]["properties"]


def test_text_path_with_the_fake_sends_no_tools() -> None:
    model = FakeChatModel(responses=["Sure:\n```json\n" + GOOD + "\n```"])
    c = LLMClient(fake_cfg(structured_output="text"), chat_model=model)
    res = ask_structured(c, USER, Page, agent="u", purpose="page", max_repairs=0)
    assert res.ok and not res.replies[0].native
    assert model.tool_requests == [[]]


def test_native_answers_are_repaired_like_text_ones() -> None:
    bad_ids = '{"items": [{"item_id": "i9", "watch": false}], "leave": false}'
    model = FakeChatModel(responses=["not json at all", bad_ids, GOOD])
    c = LLMClient(fake_cfg(structured_output="native"), chat_model=model)
    res = ask_structured(c, USER, Page, agent="u", purpose="page", max_repairs=2,
                         check=only_i1)
    assert res.ok and res.attempts == 3
    assert res.raw[0] == "not json at all"  # an invalid tool call keeps the raw text
    assert model.transcripts[2][-1] == ("user", "Your answer was invalid: answer item i1 "
                                                "only. Answer again with JSON only.")
    assert all(len(t) == 1 for t in model.tool_requests)  # every repair asked natively


def test_native_and_text_keys_differ_and_text_keys_stay_as_before(tmp_path: Path) -> None:
    def first_key(mode: str) -> str:
        c = LLMClient(fake_cfg(structured_output=mode),
                      chat_model=FakeChatModel(responses=[GOOD]))
        return ask_structured(c, USER, Page, agent="u", purpose="p",
                              max_repairs=0).replies[0].key

    plain = LLMClient(fake_cfg(), chat_model=FakeChatModel(responses=[GOOD]))
    assert first_key("text") == plain.chat(USER, agent="u", purpose="p").key
    assert first_key("native") != first_key("text")


def test_auto_falls_back_to_text_when_the_endpoint_refuses(tmp_path: Path) -> None:
    # An openai-backend config whose (fake) endpoint rejects tool calling with HTTP 400.
    conf = LLMConfig(backend="openai", model="m", base_url="http://127.0.0.1:9/v1",
                     api_key_env=KEY_ENV, max_retries=0)
    refuse = FakeProviderError(400, "tool_choice is not supported")
    model = FakeChatModel(responses=[GOOD, GOOD], faults=[refuse])
    with CallCache(tmp_path / "run") as cache:
        c = LLMClient(conf, chat_model=model, cache=cache)
        res = ask_structured(c, USER, Page, agent="u", purpose="page", max_repairs=0)
        assert res.ok and not res.replies[0].native
        assert c.structured_mode == "text"
        assert c.structured_fallback is not None and "400" in c.structured_fallback
        assert [len(t) for t in model.tool_requests] == [1, 0]
        again = ask_structured(c, USER, Page, agent="v", purpose="page", max_repairs=0)
        assert again.ok and model.calls == 2  # text from now on: the repeat is a cache hit
    # Replay of the fallen-back run: the native key is missing, the text one is there.
    with CallCache(tmp_path / "run", must_exist=True) as cache:
        r = LLMClient(conf, cache=cache, replay=True)
        rep = ask_structured(r, USER, Page, agent="u", purpose="page", max_repairs=0)
        assert rep.ok and rep.raw == res.raw and r.structured_mode == "text"
        assert not r.model_built


def test_native_mode_does_not_fall_back_and_other_errors_propagate() -> None:
    refuse = FakeProviderError(400, "response_format is not supported")
    strict = LLMClient(fake_cfg(structured_output="native", max_retries=0),
                       chat_model=FakeChatModel(responses=[GOOD], faults=[refuse]))
    with pytest.raises(LLMUnavailableError, match="rejected the request: HTTP 400"):
        ask_structured(strict, USER, Page, agent="u", purpose="p", max_repairs=0)
    conf = LLMConfig(backend="openai", model="m", base_url="http://127.0.0.1:9/v1",
                     api_key_env=KEY_ENV, max_retries=0)
    auth = LLMClient(conf, chat_model=FakeChatModel(responses=[GOOD], faults=[
        FakeProviderError(401, "bad key")]))
    with pytest.raises(LLMUnavailableError, match="401"):
        ask_structured(auth, USER, Page, agent="u", purpose="p", max_repairs=0)
    assert auth.structured_mode == "native"


def test_async_structured_matches_sync() -> None:
    def run_sync() -> Any:
        c = LLMClient(fake_cfg(structured_output="native"),
                      chat_model=FakeChatModel(responses=["oops", GOOD]))
        return ask_structured(c, USER, Page, agent="u", purpose="p", max_repairs=1)

    async def run_async() -> Any:
        c = LLMClient(fake_cfg(structured_output="native"),
                      chat_model=FakeChatModel(responses=["oops", GOOD]))
        return await aask_structured(c, USER, Page, agent="u", purpose="p", max_repairs=1)

    a, b = run_sync(), asyncio.run(run_async())
    assert (a.value, a.raw, a.attempts) == (b.value, b.raw, b.attempts)
    assert [r.key for r in a.replies] == [r.key for r in b.replies]


# ----------------------------------------------------------------------------- real server


def test_native_path_against_an_openai_compatible_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "stub-key")
    seen: list[dict[str, Any]] = []

    def responder(body: Any) -> str | None:
        seen.append(dict(body))
        fmt = body.get("response_format")
        return GOOD if fmt and len(seen) > 1 else None  # first: the canned instance

    with serve(latency_s=0.0, responder=responder) as stub:
        conf = LLMConfig(backend="openai", model="gpt-4o-mini", base_url=stub.base_url,
                         api_key_env=KEY_ENV, max_retries=0)
        with CallCache(tmp_path / "run") as cache:
            c = LLMClient(conf, cache=cache)
            res = ask_structured(c, USER, Page, agent="u", purpose="page", max_repairs=1,
                                 check=only_i1)
        assert stub.stats.structured == 2
    assert res.ok and res.attempts == 2 and res.replies[0].native
    # The canned instance is valid for the schema but names item "stub": repaired.
    assert Page.model_validate_json(res.raw[0]).items[0].item_id == "stub"
    fmt = seen[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Page"
    assert fmt["json_schema"]["schema"]["properties"]["items"]["type"] == "array"
    assert "tools" not in seen[0]
    # Replay without the server gives the same answer.
    with CallCache(tmp_path / "run", must_exist=True) as cache:
        r = LLMClient(conf, cache=cache, replay=True)
        rep = ask_structured(r, USER, Page, agent="u", purpose="page", max_repairs=1,
                             check=only_i1)
    assert rep.raw == res.raw and not r.model_built


def test_async_calls_against_the_server_across_event_loops(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "stub-key")
    with serve(latency_s=0.05) as stub:
        conf = LLMConfig(backend="openai", model="gpt-4o-mini", base_url=stub.base_url,
                         api_key_env=KEY_ENV, max_retries=0, concurrency=8)
        c = LLMClient(conf)

        async def burst(tag: str) -> list[Any]:
            return await asyncio.gather(*(c.achat([("user", f"{tag} {i}")], agent=f"a{i}",
                                                  purpose="p") for i in range(24)))

        first = asyncio.run(burst("one"))
        second = asyncio.run(burst("two"))  # a new loop: the client must still work
        assert stub.stats.peak_in_flight <= 8
        assert stub.stats.requests == 48
    assert all(r.text and r.attempts == 1 for r in first + second)


# ----------------------------------------------------------------------------- tokens

# Token ids computed by tiktoken's own engine over the official encoding files.
REFERENCE = {
    ("o200k_base", "hello world"): [24912, 2375],
    ("o200k_base", "tiktoken is great!"): [83, 8251, 2488, 382, 2212, 0],
    ("cl100k_base", "hello world"): [15339, 1917],
    ("cl100k_base", "tiktoken is great!"): [83, 1609, 5963, 374, 2294, 0],
}
OFFICIAL_SHA256 = {  # as tiktoken_ext.openai_public expects them
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}


def test_openai_encodings_are_the_official_ones_and_load_offline(tmp_path: Path) -> None:
    from agents.llm.tokens import openai_encoding

    for name, digest in OFFICIAL_SHA256.items():
        blob = gzip.decompress((files("bpe_openai.data") / f"{name}.tiktoken.gz").read_bytes())
        assert hashlib.sha256(blob).hexdigest() == digest
    for (name, text), ids in REFERENCE.items():
        assert openai_encoding(name).encode_ordinary(text) == ids
    # A fresh process with an empty tiktoken cache counts without any download.
    code = ("from agents.llm import counter_for; from scenarios.schema import LLMConfig; "
            "c = counter_for(LLMConfig(backend='openai', model='gpt-4o-mini')); "
            "print(c.name, c.count('hello world'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "TIKTOKEN_CACHE_DIR": str(tmp_path),
                               "PYTHONPATH": str(REPO), "NO_PROXY": "*",
                               "HTTPS_PROXY": "http://127.0.0.1:9"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["o200k_base", "2"]


def test_counters_follow_the_model() -> None:
    assert encoding_for_model("gpt-4o-mini") == "o200k_base"
    assert encoding_for_model("gpt-4") == "cl100k_base"
    assert encoding_for_model("llama-3.1-8b-instruct") is None
    gpt = counter_for(LLMConfig(backend="openai", model="gpt-4o-mini"))
    msgs = [("system", "hello world"), ("user", "tiktoken is great!")]
    assert gpt.count_messages(msgs) == (3 + 2) + (3 + 6) + 3
    other = counter_for(LLMConfig(backend="openai", model="qwen2.5-7b"))
    assert other.name == ESTIMATE and other.count("x" * 40) == 10
    fake = counter_for(LLMConfig(backend="fake"), FakeChatModel())
    assert fake.count("three short words") == 3


def test_usage_missing_from_the_server_is_counted_with_the_tokenizer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.llm.tokens import openai_encoding

    monkeypatch.setenv(KEY_ENV, "stub-key")
    msgs = [("system", "You are a movie fan."), ("user", "Name one film, please.")]
    with serve(latency_s=0.0, report_usage=False, completion_tokens=5) as stub:
        conf = LLMConfig(backend="openai", model="gpt-4o-mini", base_url=stub.base_url,
                         api_key_env=KEY_ENV, max_retries=0)
        c = LLMClient(conf)
        reply = c.chat(msgs, agent="u", purpose="p")
    enc = openai_encoding("o200k_base")
    assert c.token_counter == "o200k_base"
    assert reply.input_tokens == sum(3 + len(enc.encode_ordinary(t)) for _, t in msgs) + 3
    assert reply.output_tokens == len(enc.encode_ordinary(reply.text))
    assert reply.output_tokens != len(reply.text) // 4 or len(reply.text) < 8


# ----------------------------------------------------------------------------- stub


def test_stub_schema_instances_validate() -> None:
    for model in (Page, Item):
        model.model_validate(instance_of(model.model_json_schema()))

    class Bounded(BaseModel):
        n: int = Field(ge=7, le=9)
        x: float = Field(gt=0.5)
        tags: list[str] = Field(min_length=2)

    Bounded.model_validate(instance_of(Bounded.model_json_schema()))


def test_stub_serves_tools_completions_and_stops_when_idle() -> None:
    import openai

    with serve(latency_s=0.0, completion_tokens=3, idle_s=0.5) as stub:
        client = openai.OpenAI(base_url=stub.base_url, api_key="k", max_retries=0)
        tool = {"type": "function", "function": {"name": "Item",
                                                 "parameters": Item.model_json_schema()}}
        resp = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], tools=[tool],
            tool_choice={"type": "function", "function": {"name": "Item"}})
        call = resp.choices[0].message.tool_calls[0]
        Item.model_validate_json(call.function.arguments)
        done = client.completions.create(model="m", prompt="Once upon a time", max_tokens=2)
        assert len(done.choices[0].text.split()) == 2 and done.usage.prompt_tokens == 4
        assert [m.id for m in client.models.list()] == ["stub-model"]
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="m", messages=[])
        import time

        deadline = time.monotonic() + 10
        while stub.running and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not stub.running and stub.stopped_because == "idle"
    assert stub.base_url.startswith("http://127.0.0.1:")
