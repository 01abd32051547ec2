"""What a call returns (``ChatReply``, ``ScoreReply``) and what the trace keeps of it
(``CallRecord``)."""

from __future__ import annotations

from dataclasses import dataclass

from agents.llm.cache import CallKind

__all__ = ["CallRecord", "ChatReply", "ScoreReply"]


@dataclass(frozen=True)
class ChatReply:
    """A chat answer. ``native``: asked with the endpoint's structured output (the text is
    then the JSON the endpoint produced); false for plain text and the text fallback."""

    text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cached: bool
    attempts: int
    latency_s: float
    key: str
    charged: bool
    native: bool = False


@dataclass(frozen=True)
class ScoreReply:
    logprobs: list[float]
    input_tokens: int
    cost_usd: float
    cached: bool
    attempts: int
    latency_s: float
    key: str
    charged: bool

    @property
    def best(self) -> int:
        """Index of the most likely option (the first on ties)."""
        return max(range(len(self.logprobs)), key=lambda i: (self.logprobs[i], -i))


@dataclass(frozen=True)
class CallRecord:
    """One finished call, for the trace.

    ``input_tokens``/``output_tokens`` are the call's own usage (as recorded); ``charged``
    says whether they counted against the budget, and ``cost_usd`` is what was charged (0
    for a repeat of a call already charged in this run). ``cached`` (answered without the
    model), ``latency_s`` and ``attempts`` differ between a recording and its replay; the
    other fields do not, so a trace that leaves those three out replays identically.
    """

    agent: str
    purpose: str
    kind: CallKind
    key: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    charged: bool
    cached: bool
    latency_s: float
    attempts: int
