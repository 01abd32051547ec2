"""The LLM layer: chat models behind LangChain, one client with cache, limits, retries and
budget, and structured answers.

Modules, one job each: ``errors`` (exceptions, secret-free messages), ``retry`` (what to
retry, how long to wait), ``limits`` (token buckets, slots shared by threads and asyncio),
``budget`` (prices, charging, limits), ``usage`` (per-agent totals), ``tokens`` (token
counting with the model's tokenizer), ``cache`` (the SQLite call store), ``replay`` (record
/ replay policy over it), ``native`` (structured output asked of the endpoint),
``structured`` (JSON parsing and the repair loop), ``backends`` (building chat models:
``openai_chat``, ``local``, ``endpoint``),
``fake`` (the test double), ``replies`` (what calls return), and ``client`` (``LLMClient``,
which composes them).

Importing this package imports no provider SDK: ``openai`` and ``langchain_openai`` are
imported by ``agents.llm.openai_chat`` only, and ``llama_cpp`` by ``agents.llm.local`` only,
both when a model is built (``endpoint`` holds the SDK-free URL and key rules).
"""

from agents.llm.backends import (
    LocalLlamaChat,
    describe_endpoint,
    make_chat_model,
    make_embedding_fn,
    model_identity,
    transcript_prompt,
)
from agents.llm.cache import (
    CACHE_FILENAME,
    CachedCall,
    CacheNotFoundError,
    CallCache,
    cache_key,
    resolve_cache_path,
)
from agents.llm.client import LLMClient
from agents.llm.errors import (
    BudgetExceededError,
    LLMConfigError,
    LLMError,
    LLMUnavailableError,
    ReplayMissError,
    ScoringUnsupportedError,
    describe_error,
)
from agents.llm.fake import FakeChatModel
from agents.llm.fake_replies import plausible_reply
from agents.llm.replies import CallRecord, ChatReply, ScoreReply
from agents.llm.retry import is_transient, retry_after_s
from agents.llm.structured import (
    StructuredResult,
    aask_structured,
    ask_structured,
    extract_json,
)
from agents.llm.tokens import TokenCounter, counter_for
from agents.llm.usage import Usage, UsageMeter

__all__ = [
    "CACHE_FILENAME",
    "BudgetExceededError",
    "CacheNotFoundError",
    "CachedCall",
    "CallCache",
    "CallRecord",
    "ChatReply",
    "FakeChatModel",
    "LLMClient",
    "LLMConfigError",
    "LLMError",
    "LLMUnavailableError",
    "LocalLlamaChat",
    "ReplayMissError",
    "ScoreReply",
    "ScoringUnsupportedError",
    "StructuredResult",
    "TokenCounter",
    "Usage",
    "UsageMeter",
    "aask_structured",
    "ask_structured",
    "cache_key",
    "counter_for",
    "describe_endpoint",
    "describe_error",
    "extract_json",
    "is_transient",
    "make_chat_model",
    "make_embedding_fn",
    "model_identity",
    "plausible_reply",
    "resolve_cache_path",
    "retry_after_s",
    "transcript_prompt",
]
