"""The pieces of one LLM call that ``LLMClient`` passes through its pipeline: the call
(key, cache reader, model invocations), its outcome, and the LangChain message adapters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from agents.llm.cache import CachedCall, CallKind
from agents.llm.errors import ScoringUnsupportedError
from agents.llm.openai_chat import OpenAIChat
from agents.llm.replies import CallRecord
from agents.llm.tokens import TokenCounter

__all__ = ["Answer", "Call", "Done", "score_on", "to_langchain", "unpack_message"]

T = TypeVar("T")
# (value, input tokens, output tokens) of one live answer
Answer = tuple[T, int, int]


@dataclass
class Call(Generic[T]):
    """One call as the pipeline sees it: its key, how to read it from the cache, how to ask
    the model (sync and async), and what to store."""

    kind: CallKind
    request: dict[str, Any]
    key: str
    from_cache: Callable[[CachedCall], T | None]
    stored: Callable[[T], dict[str, Any]]
    estimate: Callable[[TokenCounter], int]
    invoke: Callable[[BaseChatModel, TokenCounter], Answer[T]]
    ainvoke: Callable[[BaseChatModel, TokenCounter], Awaitable[Answer[T]]]
    native: bool = False
    # The openai backend's async path without LangChain (agents.llm.openai_chat).
    adirect: Callable[[OpenAIChat, TokenCounter], Awaitable[Answer[T]]] | None = None


@dataclass(frozen=True)
class Done(Generic[T]):
    value: T
    n_in: int
    n_out: int
    attempts: int
    key: str
    charged: bool
    rec: CallRecord
    native: bool


def to_langchain(messages: Sequence[tuple[str, str]]) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for role, content in messages:
        if role == "system":
            out.append(SystemMessage(content=content))
        elif role == "user":
            out.append(HumanMessage(content=content))
        else:
            out.append(AIMessage(content=content))
    return out


def unpack_message(msg: Any, msgs: Sequence[tuple[str, str]],
            counter: TokenCounter) -> tuple[str, int, int]:
    text = msg.text if isinstance(msg, AIMessage) else str(msg)
    usage = getattr(msg, "usage_metadata", None) or {}
    n_in = int(usage.get("input_tokens") or 0) or counter.count_messages(msgs)
    n_out = int(usage.get("output_tokens") or 0)
    if not usage.get("output_tokens") and text:
        n_out = counter.count(text)
    return text, n_in, n_out


def score_on(model: BaseChatModel, prompt: str, options: list[str],
              counter: TokenCounter) -> tuple[list[float], int]:
    with_usage = getattr(model, "score_with_usage", None)
    if callable(with_usage):
        scores, n_in = with_usage(prompt, options)
        return [float(x) for x in scores], int(n_in)
    plain = getattr(model, "score_options", None)
    if callable(plain):
        return [float(x) for x in plain(prompt, options)], counter.count(prompt)
    raise ScoringUnsupportedError(
        f"the {type(model).__name__} chat model cannot score answers by log-probability;"
        " use decision_mode: structured")

