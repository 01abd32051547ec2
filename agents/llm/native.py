"""Structured output asked of the endpoint itself (JSON-schema ``response_format`` or a
forced tool call), through LangChain's ``with_structured_output(..., include_raw=True)``.

The chat model decides how: ``ChatOpenAI`` sends a JSON-schema ``response_format`` (OpenAI,
vLLM, llama.cpp's server and Ollama constrain decoding to it); models with tool calling only
(``FakeChatModel``) get the schema as the one tool they must call. Either way the answer is
read back as JSON text from the raw message, and validated by ``agents.llm.structured``
exactly as a text answer is, so the repair loop and the item-id checks stay the same.

``llm.structured_output`` chooses: ``text`` (instructions in the prompt, parsed from the
reply), ``native``, or ``auto`` (native for the openai backend, falling back to text for
the rest of the run when the endpoint rejects the request; text for local and fake).
"""

from __future__ import annotations

import functools
import json
from typing import Any, Literal

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable
from pydantic import BaseModel

from agents.llm.errors import LLMUnavailableError
from scenarios.schema import LLMConfig

__all__ = [
    "UNSUPPORTED_STATUS",
    "initial_mode",
    "json_schema_of",
    "native_runnable",
    "raw_text",
    "rejected_as_unsupported",
]

# A server that does not implement response_format / tool_choice answers with one of these.
UNSUPPORTED_STATUS = frozenset({400, 404, 405, 415, 422, 501})


def initial_mode(cfg: LLMConfig) -> Literal["native", "text"]:
    """How structured answers are asked first (``auto`` may later fall back to text)."""
    if cfg.structured_output == "auto":
        return "native" if cfg.backend == "openai" else "text"
    return cfg.structured_output


@functools.lru_cache(maxsize=256)
def json_schema_of(schema: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema sent to the endpoint (and part of the cache key); built once per
    class (pydantic rebuilds it on every call, about 0.5 ms: a tenth of a call's CPU at a
    few hundred calls per second). Shared: do not modify it."""
    return schema.model_json_schema()


def native_runnable(model: BaseChatModel, json_schema: dict[str, Any]) -> Runnable[Any, Any]:
    """``model`` asked to answer in ``json_schema``; invoking it gives ``{"raw": AIMessage,
    "parsed": ..., "parsing_error": ...}``.

    The schema goes as a dict, not a pydantic class: with a class, the openai SDK validates
    the answer itself and raises on invalid output, which would bypass the repair loop.
    """
    return model.with_structured_output(json_schema, include_raw=True)


def raw_text(out: Any) -> AIMessage:
    """The raw message of a ``native_runnable`` result, with its JSON as ``content``: the
    forced tool call's arguments, or the JSON-schema content as sent."""
    raw = out["raw"] if isinstance(out, dict) else out
    if not isinstance(raw, AIMessage):
        raise TypeError(f"structured output returned {type(raw).__name__}, not a message")
    if raw.tool_calls:
        text = json.dumps(raw.tool_calls[0]["args"], ensure_ascii=False)
    elif raw.invalid_tool_calls:
        text = str(raw.invalid_tool_calls[0].get("args") or "")
    else:
        return raw
    return AIMessage(content=text, usage_metadata=raw.usage_metadata)


def rejected_as_unsupported(exc: BaseException) -> bool:
    """The endpoint refused the request itself (not the network, not a rate limit)."""
    return isinstance(exc, LLMUnavailableError) and exc.status_code in UNSUPPORTED_STATUS
