"""Token counts for limits and estimates: the model's own tokenizer where one is known.

- ``fake``: whitespace words, as ``FakeChatModel`` reports its usage.
- ``local``: the GGUF model's own tokenizer over the exact transcript prompt it is sent.
- ``openai``: models whose encoding tiktoken knows (``tiktoken.encoding_name_for_model``:
  gpt-4o, gpt-4.1, gpt-5, o-series -> o200k_base; gpt-4, gpt-3.5 -> cl100k_base) are
  counted with that encoding, plus the chat format's per-message overhead. tiktoken itself
  downloads its encoding files at first use, which fails offline; the ``bpe-openai``
  package ships the same files (identical sha256) and encodes to identical ids, so it does
  the counting. Other models (Llama, Qwen, ... served by vLLM or Ollama) have no tokenizer
  here: their counts are estimated at 4 characters per token, and ``name`` says so.

Counts set the tokens-per-minute reservation of a call and stand in for usage when a server
reports none; the budget charges what the server reports.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from scenarios.schema import LLMConfig

__all__ = [
    "ESTIMATE",
    "TokenCounter",
    "counter_for",
    "encoding_for_model",
    "estimate_tokens",
    "openai_encoding",
]

ESTIMATE = "estimate: 4 characters per token"
# OpenAI's chat format: each message is wrapped in about 3 tokens, and the reply is primed
# with 3 more (the counting recipe of OpenAI's cookbook).
_PER_MESSAGE, _REPLY_PRIMING = 3, 3

_ENCODINGS: dict[str, Any] = {}
_ENC_LOCK = threading.Lock()


def estimate_tokens(text: str) -> int:
    # ~4 characters per token for English: the fallback when no tokenizer is known.
    return max(1, math.ceil(len(text) / 4))


def encoding_for_model(model: str) -> str | None:
    """The tiktoken encoding name of an OpenAI model, or None if tiktoken does not know it
    (a table lookup: nothing is downloaded)."""
    import tiktoken

    try:
        return str(tiktoken.encoding_name_for_model(model))
    except KeyError:
        return None


def openai_encoding(name: str) -> Any:
    """The loaded encoding ``name`` (o200k_base, cl100k_base), from files shipped in the
    ``bpe-openai`` package; loaded once per process (about 0.7 s)."""
    with _ENC_LOCK:
        enc = _ENCODINGS.get(name)
        if enc is None:
            with warnings.catch_warnings():
                # bpe-openai reads its files with a deprecated importlib.resources call.
                warnings.simplefilter("ignore", DeprecationWarning)
                import bpe_openai

                enc = _ENCODINGS[name] = bpe_openai.get_encoding(name)
        return enc


class TokenCounter:
    """Counts tokens of texts and of chat messages for one model.

    Args:
        name: What counts (shown in summaries): a tokenizer or ``ESTIMATE``.
        count: Tokens of one text.
        per_message, priming: Chat-format overhead per message and for the reply.
        render: Turns messages into the exact text sent (local models), instead of
            counting contents one by one.
    """

    def __init__(self, name: str, count: Callable[[str], int], *, per_message: int = 0,
                 priming: int = 0,
                 render: Callable[[Sequence[tuple[str, str]]], str] | None = None) -> None:
        self.name = name
        self._count = count
        self.per_message, self.priming, self._render = per_message, priming, render

    def count(self, text: str) -> int:
        return int(self._count(text))

    def count_messages(self, messages: Sequence[tuple[str, str]]) -> int:
        if self._render is not None:
            return self.count(self._render(messages))
        return sum(self.per_message + self.count(c) for _, c in messages) + self.priming

    def __repr__(self) -> str:
        return f"TokenCounter({self.name!r})"


def _encoding_counter(encoding: str) -> TokenCounter:
    def count(text: str) -> int:
        return len(openai_encoding(encoding).encode_ordinary(text))

    return TokenCounter(encoding, count, per_message=_PER_MESSAGE, priming=_REPLY_PRIMING)


def counter_for(cfg: LLMConfig, model: Any = None) -> TokenCounter:
    """The counter for the model of ``cfg`` (``model``: the built chat model, if any)."""
    from agents.llm.fake import FakeChatModel, word_count

    if isinstance(model, FakeChatModel):
        return TokenCounter("words (fake model)", word_count)
    if cfg.backend == "local" and model is not None and hasattr(model, "get_num_tokens"):
        from agents.llm.backends import transcript_prompt

        return TokenCounter("model tokenizer (llama.cpp)", model.get_num_tokens,
                            render=transcript_prompt)
    if cfg.backend == "openai":
        encoding = encoding_for_model(cfg.model)
        if encoding is not None:
            return _encoding_counter(encoding)
    return TokenCounter(ESTIMATE, estimate_tokens)
