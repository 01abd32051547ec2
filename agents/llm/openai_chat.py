"""The async chat path of the openai backend: the openai SDK's ``AsyncOpenAI`` without
LangChain, over aiohttp.

Why: at a few hundred calls per second the client process is CPU-bound, and profiling the
1,000-user benchmark (docs/benchmarks.md, "LLM users at scale") showed LangChain's
per-call machinery (callback managers, config copies, message conversion) and the SDK's
typed-parameter transform of ``chat.completions.create``/``parse`` as a large share of
the CPU per call. This path builds the request body once per call as plain JSON and posts
it with the SDK's public low-level ``post`` (what the SDK documents for endpoints it has
no method for), so the SDK's errors, timeouts and headers stay as they were and the
client's retry classifier is unchanged. The transport is the SDK's
``DefaultAioHttpClient`` (aiohttp; cheaper per request than httpx's pure-Python pool),
with httpx as the fallback if aiohttp is missing.

The module is the openai seam: the only one that imports the ``openai`` SDK or
``langchain_openai`` (always inside a function, so importing it costs nothing). It also
builds the sync path's ``ChatOpenAI`` (``openai_chat_model``) and the embedding function of
long-term memory's ``openai`` embedder (``make_embedding_fn``).

The request is what ``ChatOpenAI`` sends for the same call (model, messages, temperature,
``max_completion_tokens`` plus ``max_tokens`` for servers that are not OpenAI itself, a
JSON-schema ``response_format`` for native structured output), and the cache key never
depended on the transport: recordings made either way replay either way. The sync path
(``LLMClient.chat``) still uses ``ChatOpenAI``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from agents.llm.endpoint import (
    api_key_of,
    describe_endpoint,
    resolve_base_url,
    wants_classic_max_tokens,
)
from agents.llm.errors import LLMConfigError, LLMUnavailableError, describe_error
from scenarios.schema import LLMConfig

__all__ = ["OpenAIChat", "make_embedding_fn", "openai_chat_model"]


def _http_client(timeout_s: float) -> Any:
    import openai

    aio = getattr(openai, "DefaultAioHttpClient", None)  # newer SDKs only
    if aio is not None:
        try:
            return aio(timeout=timeout_s)
        except RuntimeError:  # the SDK's aiohttp extra is missing
            pass
    return openai.DefaultAsyncHttpxClient(timeout=timeout_s)


class OpenAIChat:
    """Chat completions of ``cfg`` on the running event loop (one instance per loop: its
    HTTP connections belong to that loop).

    Raises:
        LLMConfigError: The API key variable is unset for a non-loopback endpoint.
    """

    def __init__(self, cfg: LLMConfig) -> None:
        import openai

        base_url = resolve_base_url(cfg)
        self._client = openai.AsyncOpenAI(
            api_key=api_key_of(cfg, base_url), base_url=base_url, timeout=cfg.timeout_s,
            max_retries=0,  # LLMClient retries, with its own backoff and accounting
            http_client=_http_client(cfg.timeout_s))
        self._base: dict[str, Any] = {"model": cfg.model, "temperature": cfg.temperature,
                                      "max_completion_tokens": cfg.max_tokens}
        if wants_classic_max_tokens(base_url):
            self._base["max_tokens"] = cfg.max_tokens

    def body(self, messages: Sequence[tuple[str, str]],
             json_schema: dict[str, Any] | None = None) -> dict[str, Any]:
        """The request body of one call: field for field what ``ChatOpenAI`` sends
        (tests/test_executor.py compares them), so the endpoint sees no difference."""
        body = {**self._base, "stream": False,
                "messages": [{"role": r, "content": c} for r, c in messages]}
        if json_schema is not None:
            schema = {k: v for k, v in json_schema.items() if k not in ("title", "description")}
            spec: dict[str, Any] = {"name": str(json_schema.get("title") or "answer")}
            if json_schema.get("description"):
                spec["description"] = json_schema["description"]
            spec.update(schema=schema, strict=False)
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        return body

    async def achat(self, messages: Sequence[tuple[str, str]],
                    json_schema: dict[str, Any] | None = None
                    ) -> tuple[str, int | None, int | None]:
        """(text, prompt tokens, completion tokens); token counts None when the server
        reports no usage."""
        data = await self._client.post("/chat/completions",
                                       body=self.body(messages, json_schema), cast_to=object)
        if not isinstance(data, dict) or not data.get("choices"):
            raise ValueError("the endpoint answered without choices")
        msg = data["choices"][0].get("message") or {}
        text = msg.get("content")
        if not text and msg.get("tool_calls"):
            text = msg["tool_calls"][0].get("function", {}).get("arguments")
        usage = data.get("usage") or {}
        return (str(text or ""), usage.get("prompt_tokens"), usage.get("completion_tokens"))

    async def aclose(self) -> None:
        await self._client.close()


def openai_chat_model(cfg: LLMConfig) -> BaseChatModel:
    """The sync chat model of the openai backend: LangChain's ``ChatOpenAI``."""
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise LLMConfigError("the openai backend needs langchain-openai "
                             "(pip install langchain-openai)") from exc
    import openai
    from pydantic import SecretStr

    base_url = resolve_base_url(cfg)
    key = api_key_of(cfg, base_url)
    extra: dict[str, Any] = {}
    if wants_classic_max_tokens(base_url):
        extra["extra_body"] = {"max_tokens": cfg.max_tokens}
    return ChatOpenAI(
        model=cfg.model,
        base_url=base_url,
        api_key=SecretStr(key),
        temperature=cfg.temperature,
        max_tokens=cfg.max_tokens,
        timeout=cfg.timeout_s,
        max_retries=0,  # LLMClient retries, with its own backoff and accounting
        # An async HTTP client of this model's own: langchain-openai's default is cached
        # for the whole process and bound to the first event loop that used it, so a second
        # asyncio.run (the next run, the next test) would fail with "Event loop is closed".
        http_async_client=openai.DefaultAsyncHttpxClient(timeout=cfg.timeout_s),
        **extra,
    )


def make_embedding_fn(cfg: LLMConfig, model: str) -> Callable[[list[str]], list[list[float]]]:
    """Embeddings from the OpenAI-compatible endpoint of ``cfg`` (same URL and key rules).

    The returned function raises LLMUnavailableError (one line) when the endpoint fails.
    """
    import openai

    base_url = resolve_base_url(cfg)
    key = api_key_of(cfg, base_url)
    client = openai.OpenAI(base_url=base_url, api_key=key, timeout=cfg.timeout_s,
                           max_retries=cfg.max_retries)
    where = describe_endpoint(cfg)

    def embed(texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        try:
            resp = client.embeddings.create(model=model, input=list(texts))
        except openai.OpenAIError as exc:
            raise LLMUnavailableError(
                f"embedding endpoint {where} failed: {describe_error(exc, [key])}") from exc
        return [list(d.embedding) for d in sorted(resp.data, key=lambda d: d.index)]

    return embed
