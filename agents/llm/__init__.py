"""The LLM layer: chat models behind LangChain, one client with cache, limits, retries and
budget, and structured answers.

Importing this package imports no provider SDK: ``openai``, ``langchain_openai`` and
``llama_cpp`` are imported by ``agents.llm.backends`` only when a model is built.
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
from agents.llm.client import (
    BudgetExceededError,
    CallRecord,
    ChatReply,
    LLMClient,
    LLMConfigError,
    LLMError,
    LLMUnavailableError,
    ReplayMissError,
    ScoreReply,
    ScoringUnsupportedError,
    Usage,
    UsageMeter,
    is_transient,
)
from agents.llm.fake import FakeChatModel
from agents.llm.structured import StructuredResult, ask_structured, extract_json

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
    "Usage",
    "UsageMeter",
    "ask_structured",
    "cache_key",
    "describe_endpoint",
    "extract_json",
    "is_transient",
    "make_chat_model",
    "make_embedding_fn",
    "model_identity",
    "resolve_cache_path",
    "transcript_prompt",
]
