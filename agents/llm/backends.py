"""Chat models behind LangChain's ``BaseChatModel``, one per ``llm:`` block's backend.

- ``openai``: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp's server);
  built by ``agents.llm.openai_chat``, the only module that imports the ``openai`` SDK.
- ``local``: llama.cpp in process (``agents.llm.local.LocalLlamaChat``), the only module
  that imports ``llama_cpp``.
- ``fake``: the tests' scripted model (``agents.llm.fake``).

Where calls go (URL, key, cache-key identity) is ``agents.llm.endpoint``. The names of
those modules are re-exported here, the import path they always had.
"""

from __future__ import annotations

from langchain_core.language_models.chat_models import BaseChatModel

from agents.llm.endpoint import (
    DEFAULT_LOCAL_MODEL,
    LOCAL_FORMAT_VERSION,
    OPENAI_DEFAULT_BASE_URL,
    api_key_of,
    describe_endpoint,
    key_params,
    model_identity,
    resolve_base_url,
    wants_classic_max_tokens,
)
from agents.llm.local import (
    LOCAL_EXTRA_HINT,
    TRANSCRIPT_STOPS,
    LocalLlamaChat,
    LocalTimeoutError,
    llama_server_command,
    quiet_llama_logs,
    run_llama_server,
    transcript_prompt,
    uses_plain_cpu_buffers,
)
from agents.llm.openai_chat import make_embedding_fn, openai_chat_model
from scenarios.schema import LLMConfig

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "LOCAL_EXTRA_HINT",
    "LOCAL_FORMAT_VERSION",
    "OPENAI_DEFAULT_BASE_URL",
    "TRANSCRIPT_STOPS",
    "LocalLlamaChat",
    "LocalTimeoutError",
    "aclose_chat_model",
    "api_key_of",
    "close_chat_model",
    "describe_endpoint",
    "key_params",
    "llama_server_command",
    "make_chat_model",
    "make_embedding_fn",
    "model_identity",
    "quiet_llama_logs",
    "resolve_base_url",
    "run_llama_server",
    "transcript_prompt",
    "uses_plain_cpu_buffers",
    "wants_classic_max_tokens",
]


async def aclose_chat_model(model: BaseChatModel) -> None:
    """Close the async HTTP client a model built by ``make_chat_model`` holds (on the loop
    it is bound to); other models hold none."""
    client = getattr(model, "root_async_client", None)
    if client is not None and hasattr(client, "close"):
        await client.close()


def close_chat_model(model: BaseChatModel) -> None:
    """Close the sync HTTP client a model built by ``make_chat_model`` holds."""
    client = getattr(model, "root_client", None)
    if client is not None and hasattr(client, "close"):
        client.close()


def make_chat_model(cfg: LLMConfig) -> BaseChatModel:
    """The chat model of a scenario's ``llm:`` block.

    Raises:
        LLMConfigError: The API key variable is unset (for a non-loopback endpoint) or a
            package is missing.
    """
    if cfg.backend == "openai":
        return openai_chat_model(cfg)
    if cfg.backend == "local":
        return LocalLlamaChat(model_path=cfg.model_path, n_ctx=cfg.n_ctx,
                              n_threads=cfg.n_threads, temperature=cfg.temperature,
                              max_tokens=cfg.max_tokens, timeout_s=cfg.timeout_s)
    # backend: fake (--llm fake): the tests' scripted model, answering every prompt the
    # shipped roles and teams send with a reply of the shape it asks for. Deterministic (a
    # pure function of the prompt), so a run with it is reproducible from its seed.
    from agents.llm.fake import FakeChatModel
    from agents.llm.fake_replies import plausible_reply

    return FakeChatModel(responses=plausible_reply)

