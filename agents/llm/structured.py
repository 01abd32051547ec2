"""Structured answers: find the JSON in a reply, validate it, re-ask a bounded number of times.

Bad output never raises: the caller gets a failed ``StructuredResult`` with every raw reply,
to record in the trace (Agent4Rec retried silently forever; we stop and say so). Transport
errors (LLMUnavailableError, BudgetExceededError, ReplayMissError) propagate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from agents.llm.client import LLMClient
    from agents.llm.replies import ChatReply

__all__ = [
    "StructuredResult",
    "aask_structured",
    "ask_structured",
    "extract_json",
    "repair_message",
]

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any:
    """The JSON in a model's reply: the whole text, a fenced block, or the first balanced
    JSON object (or array, when there is no object) inside prose.

    Raises:
        ValueError: No JSON value could be found (a json.JSONDecodeError when the text
            starts like JSON but is broken).
    """
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    for block in _FENCE.findall(text):
        try:
            return json.loads(block.strip())
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    for opener in "{[":
        start = text.find(opener)
        while start != -1:
            try:
                value, _ = decoder.raw_decode(text, start)
                return value
            except ValueError:
                start = text.find(opener, start + 1)
    raise ValueError("no JSON object found in the reply")


@dataclass(frozen=True)
class StructuredResult(Generic[T]):
    """``value`` is the validated answer, or None with ``error`` saying why the last
    attempt failed; ``raw`` holds the text of every attempt."""

    value: T | None
    raw: list[str]
    attempts: int
    error: str | None = None
    replies: list[ChatReply] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.value is not None


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(x) for x in err["loc"]) or "(root)"
            parts.append(f"{loc}: {err['msg']}")
        more = len(exc.errors()) - 5
        return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    return " ".join(str(exc).split()) or type(exc).__name__


def repair_message(error: str) -> str:
    return f"Your answer was invalid: {error}. Answer again with JSON only."


class _Repairs(Generic[T]):
    """The repair loop as a state machine, shared by ``ask_structured`` and its async twin:
    ``next()`` gives the conversation and purpose to send (None when done), ``feed()`` takes
    the reply."""

    def __init__(self, messages: Sequence[tuple[str, str]], schema: type[T], purpose: str,
                 max_repairs: int, check: Callable[[T], None] | None) -> None:
        self.convo = [(str(r), str(c)) for r, c in messages]
        self.schema, self.purpose, self.max_repairs, self.check = (
            schema, purpose, max_repairs, check)
        self.raw: list[str] = []
        self.replies: list[ChatReply] = []
        self.error: str | None = None
        self.value: T | None = None

    def next(self) -> tuple[list[tuple[str, str]], str] | None:
        n = len(self.raw)
        if self.value is not None or n > self.max_repairs:
            return None
        return self.convo, self.purpose if n == 0 else f"{self.purpose}:repair{n}"

    def feed(self, reply: ChatReply) -> None:
        self.replies.append(reply)
        self.raw.append(reply.text)
        try:
            value = self.schema.model_validate(extract_json(reply.text))
            if self.check is not None:
                self.check(value)
        except (ValueError, TypeError) as exc:  # ValidationError is a ValueError
            self.error = _describe(exc)
            self.convo = [*self.convo, ("assistant", reply.text),
                          ("user", repair_message(self.error))]
            return
        self.value, self.error = value, None

    def result(self) -> StructuredResult[T]:
        return StructuredResult(value=self.value, raw=self.raw, attempts=len(self.raw),
                                error=self.error, replies=self.replies)


def ask_structured(
    client: LLMClient,
    messages: Sequence[tuple[str, str]],
    schema: type[T],
    *,
    agent: str,
    purpose: str,
    max_repairs: int,
    check: Callable[[T], None] | None = None,
) -> StructuredResult[T]:
    """Ask for JSON matching ``schema``; on invalid output re-ask at most ``max_repairs``
    times with the error appended (the bad reply as an assistant turn, then a user turn
    naming the error).

    The client asks for the schema natively (JSON-schema response format or a forced tool
    call) or as text, per ``llm.structured_output``; the answer is validated here either
    way, so a native answer that breaks ``check`` is repaired like a text one.

    Args:
        check: Further validation of a parsed value; raise ValueError (or TypeError) with
            a message for the model to fix, e.g. an item id that was not on the page.
    """
    loop = _Repairs(messages, schema, purpose, max_repairs, check)
    while (ask := loop.next()) is not None:
        convo, why = ask
        loop.feed(client.chat(convo, agent=agent, purpose=why, schema=schema))
    return loop.result()


async def aask_structured(
    client: LLMClient,
    messages: Sequence[tuple[str, str]],
    schema: type[T],
    *,
    agent: str,
    purpose: str,
    max_repairs: int,
    check: Callable[[T], None] | None = None,
) -> StructuredResult[T]:
    """``ask_structured`` for asyncio (``LLMClient.achat``)."""
    loop = _Repairs(messages, schema, purpose, max_repairs, check)
    while (ask := loop.next()) is not None:
        convo, why = ask
        loop.feed(await client.achat(convo, agent=agent, purpose=why, schema=schema))
    return loop.result()
