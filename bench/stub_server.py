"""A loopback OpenAI-compatible stub server for benchmarks and tests.

It answers ``/v1/chat/completions`` (plain text, JSON-schema ``response_format``,
``json_object``, and forced tool calls), ``/v1/completions`` and ``/v1/models`` after a
configurable latency, with configurable token counts, and always valid JSON for a requested
JSON schema (a canned instance built from the schema, or your ``responder``'s answer).

It listens on 127.0.0.1 only, on an ephemeral port, and stops itself after ``idle_s``
without requests or ``lifetime_s`` in all, so a forgotten server cannot outlive a run.

Why starlette + uvicorn: both are maintained and already installed (chromadb serves with
them); on asyncio one thread holds thousands of requests sleeping out their latency, which
the stdlib's threading HTTP server would need a thread each for.

Use from Python::

    with serve(latency_s=0.5) as stub:
        cfg = LLMConfig(backend="openai", model="stub", base_url=stub.base_url)
        ...
    stub.stats  # requests, peak in flight

or from a shell (prints the base URL, then serves until idle)::

    python -m bench.stub_server --latency 0.5 --idle 120
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Responder", "StubServer", "StubStats", "instance_of", "main", "serve"]

Responder = Callable[[Mapping[str, Any]], str | None]
"""Given a request body, the reply content (for a schema: its JSON text), or None for the
canned answer."""

_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


def instance_of(schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> Any:
    """A deterministic value valid for ``schema`` (the JSON Schema subset pydantic emits:
    $ref/$defs, anyOf/oneOf/allOf, enum/const, object, array, string, integer, number,
    boolean, null, with minimum/maximum, minItems and minLength)."""
    defs = defs if defs is not None else schema.get("$defs", schema.get("definitions", {}))
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return instance_of(defs[name], defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return instance_of(options[0], defs)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(part)
        return instance_of(merged, defs)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: instance_of(sub, defs) for name, sub in props.items()}
    if kind == "array":
        n = max(1, int(schema.get("minItems", 1)))
        return [instance_of(schema.get("items", {}), defs) for _ in range(n)]
    if kind in ("integer", "number"):
        lo = schema.get("minimum", schema.get("exclusiveMinimum", 1))
        hi = schema.get("maximum", schema.get("exclusiveMaximum"))
        value = lo + (1 if "exclusiveMinimum" in schema else 0)
        if hi is not None:
            value = min(value, hi - (1 if "exclusiveMaximum" in schema else 0))
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    n = max(4, int(schema.get("minLength", 4)))
    return ("stub" * n)[:n] if "maxLength" not in schema else "stub"[: schema["maxLength"]]


def _words(n: int) -> str:
    return " ".join(_WORDS[i % len(_WORDS)] for i in range(max(1, n)))


def _prompt_words(body: Mapping[str, Any]) -> int:
    if "messages" in body:
        return sum(len(str(m.get("content") or "").split()) for m in body["messages"])
    prompt = body.get("prompt", "")
    return len((" ".join(prompt) if isinstance(prompt, list) else str(prompt)).split())


@dataclass
class StubStats:
    """What the server saw (thread-safe through ``StubServer``)."""

    requests: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    peak_in_flight: int = 0
    structured: int = 0
    tool_calls: int = 0


class StubServer:
    """A running stub; ``base_url`` ends in ``/v1``. Build it with ``serve``."""

    def __init__(self, *, latency_s: float, completion_tokens: int,
                 prompt_tokens: int | None, model: str, responder: Responder | None,
                 idle_s: float, lifetime_s: float, report_usage: bool = True) -> None:
        if latency_s < 0 or completion_tokens < 1 or idle_s <= 0 or lifetime_s <= 0:
            raise ValueError("latency_s >= 0, completion_tokens >= 1, idle_s and lifetime_s "
                             "> 0 are required")
        self.latency_s, self.completion_tokens = latency_s, completion_tokens
        self.prompt_tokens, self.model, self.responder = prompt_tokens, model, responder
        self.idle_s, self.lifetime_s, self.report_usage = idle_s, lifetime_s, report_usage
        self._stats = StubStats()
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.stopped_because: str | None = None

    @property
    def stats(self) -> StubStats:
        with self._lock:
            s = self._stats
            return StubStats(s.requests, dict(s.by_path), s.in_flight, s.peak_in_flight,
                             s.structured, s.tool_calls)

    # ------------------------------------------------------------------ answers

    def _usage(self, body: Mapping[str, Any], content: str) -> dict[str, int]:
        n_in = self.prompt_tokens if self.prompt_tokens is not None else _prompt_words(body)
        n_out = max(1, len(content.split())) if content else self.completion_tokens
        return {"prompt_tokens": n_in, "completion_tokens": n_out,
                "total_tokens": n_in + n_out}

    def _n_out(self, body: Mapping[str, Any]) -> int:
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        return min(self.completion_tokens, int(cap)) if cap else self.completion_tokens

    def chat(self, body: Mapping[str, Any]) -> dict[str, Any]:
        fmt = body.get("response_format") or {}
        tools = body.get("tools") or []
        forced = body.get("tool_choice") not in (None, "none", "auto") and tools
        message: dict[str, Any] = {"role": "assistant", "content": None}
        own = self.responder(body) if self.responder is not None else None
        if forced:
            fn = tools[0]["function"]
            choice = body.get("tool_choice")
            if isinstance(choice, Mapping) and "function" in choice:
                fn = next((t["function"] for t in tools
                           if t["function"]["name"] == choice["function"]["name"]), fn)
            args = own if own is not None else json.dumps(instance_of(fn.get("parameters", {})))
            message["tool_calls"] = [{"id": f"call_{self.port}_{id(body)}", "type": "function",
                                      "function": {"name": fn["name"], "arguments": args}}]
            content, finish, kind = args, "tool_calls", "tool_calls"
        elif fmt.get("type") == "json_schema":
            schema = fmt.get("json_schema", {}).get("schema", {})
            content = own if own is not None else json.dumps(instance_of(schema))
            message["content"], finish, kind = content, "stop", "structured"
        elif fmt.get("type") == "json_object":
            content = own if own is not None else json.dumps({"answer": _words(1)})
            message["content"], finish, kind = content, "stop", "structured"
        else:
            content = own if own is not None else _words(self._n_out(body))
            message["content"], finish, kind = content, "stop", ""
        if kind:
            with self._lock:
                if kind == "structured":
                    self._stats.structured += 1
                else:
                    self._stats.tool_calls += 1
        return {
            "id": f"chatcmpl-stub-{self.port}", "object": "chat.completion",
            "created": int(time.time()), "model": str(body.get("model") or self.model),
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": None}],
            **({"usage": self._usage(body, content)} if self.report_usage else {}),
        }

    def completion(self, body: Mapping[str, Any]) -> dict[str, Any]:
        own = self.responder(body) if self.responder is not None else None
        text = own if own is not None else _words(self._n_out(body))
        return {
            "id": f"cmpl-stub-{self.port}", "object": "text_completion",
            "created": int(time.time()), "model": str(body.get("model") or self.model),
            "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
            **({"usage": self._usage(body, text)} if self.report_usage else {}),
        }

    # ------------------------------------------------------------------ serving

    def _app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        def error(status: int, message: str) -> JSONResponse:
            return JSONResponse({"error": {"message": message, "type": "invalid_request_error",
                                           "code": None}}, status_code=status)

        async def answer(request: Request) -> JSONResponse:
            path = request.url.path
            with self._lock:
                self._stats.requests += 1
                self._stats.by_path[path] = self._stats.by_path.get(path, 0) + 1
                self._stats.in_flight += 1
                self._stats.peak_in_flight = max(self._stats.peak_in_flight,
                                                 self._stats.in_flight)
                self._last = time.monotonic()
            try:
                if path.endswith("/models"):
                    return JSONResponse({"object": "list", "data": [
                        {"id": self.model, "object": "model", "owned_by": "stub"}]})
                try:
                    body = await request.json()
                except ValueError:
                    return error(400, "the body is not JSON")
                if not isinstance(body, dict):
                    return error(400, "the body must be a JSON object")
                if body.get("stream"):
                    return error(400, "the stub does not stream")
                await asyncio.sleep(self.latency_s)
                if path.endswith("/chat/completions"):
                    if not body.get("messages"):
                        return error(400, "messages is required")
                    return JSONResponse(self.chat(body))
                return JSONResponse(self.completion(body))
            finally:
                with self._lock:
                    self._stats.in_flight -= 1
                    self._last = time.monotonic()

        return Starlette(routes=[
            Route("/v1/models", answer, methods=["GET"]),
            Route("/v1/chat/completions", answer, methods=["POST"]),
            Route("/v1/completions", answer, methods=["POST"]),
        ])

    def _watch(self) -> None:
        started = time.monotonic()
        while self._server is not None and not self._server.should_exit:
            time.sleep(min(0.2, self.idle_s / 4))
            now = time.monotonic()
            with self._lock:
                idle = self._stats.in_flight == 0 and now - self._last > self.idle_s
            if idle or now - started > self.lifetime_s:
                self.stopped_because = "idle" if idle else "lifetime"
                self._server.should_exit = True

    def start(self) -> None:
        import uvicorn

        config = uvicorn.Config(self._app(), log_level="warning", access_log=False,
                                lifespan="off", backlog=4096, timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]},
                                        name=f"stub-server-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the stub server did not start")
            time.sleep(0.01)
        threading.Thread(target=self._watch, name=f"stub-watch-{self.port}",
                         daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self.stopped_because = self.stopped_because or "stopped"
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._sock.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


@contextmanager
def serve(*, latency_s: float = 0.0, completion_tokens: int = 16,
          prompt_tokens: int | None = None, model: str = "stub-model",
          responder: Responder | None = None, idle_s: float = 60.0,
          lifetime_s: float = 3600.0, report_usage: bool = True) -> Iterator[StubServer]:
    """Run a stub on 127.0.0.1 (ephemeral port) for the ``with`` block.

    Args:
        latency_s: Every answer waits this long (asyncio: waits overlap).
        completion_tokens: Words in a canned text answer (capped by the request's
            max_tokens); reported usage counts the words actually sent.
        prompt_tokens: Reported prompt tokens; default the words of the request's messages.
        responder: Your own answers (see ``Responder``).
        idle_s, lifetime_s: Stop after this long without requests / in all.
        report_usage: Send ``usage`` in answers (some servers do not).
    """
    stub = StubServer(latency_s=latency_s, completion_tokens=completion_tokens,
                      prompt_tokens=prompt_tokens, model=model, responder=responder,
                      idle_s=idle_s, lifetime_s=lifetime_s, report_usage=report_usage)
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Serve an OpenAI-compatible stub on 127.0.0.1.")
    p.add_argument("--latency", type=float, default=0.5, help="seconds per answer")
    p.add_argument("--completion-tokens", type=int, default=16)
    p.add_argument("--idle", type=float, default=120.0, help="stop after this idle time (s)")
    p.add_argument("--lifetime", type=float, default=3600.0, help="stop after this time (s)")
    args = p.parse_args(argv)
    with serve(latency_s=args.latency, completion_tokens=args.completion_tokens,
               idle_s=args.idle, lifetime_s=args.lifetime) as stub:
        print(stub.base_url, flush=True)
        while stub.running:
            time.sleep(0.5)
        print(f"stopped ({stub.stopped_because}); {stub.stats.requests} requests", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
