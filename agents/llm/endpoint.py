"""Where an ``llm:`` block's calls go: base URL, API key, cache-key identity and error-message
form of the endpoint. No provider SDK here (see ``agents.llm.openai_chat`` and
``agents.llm.local``), so anything may import it cheaply."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from agents.llm.errors import LLMConfigError
from scenarios.schema import LLMConfig

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "LOCAL_FORMAT_VERSION",
    "OPENAI_DEFAULT_BASE_URL",
    "api_key_of",
    "describe_endpoint",
    "key_params",
    "model_identity",
    "resolve_base_url",
    "wants_classic_max_tokens",
]

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_LOCAL_MODEL = "gemma-3-270m-q4_k_m.gguf"
# Changing the transcript format or the scoring convention changes local answers: the
# version is part of the cache key, so old recordings miss loudly instead of lying.
LOCAL_FORMAT_VERSION = "transcript-v1"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


# ----------------------------------------------------------------------------- config


def resolve_base_url(cfg: LLMConfig) -> str | None:
    """``base_url`` from the config, else OPENAI_BASE_URL, else None (the SDK default)."""
    return cfg.base_url or os.environ.get("OPENAI_BASE_URL") or None


def _strip_credentials(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def describe_endpoint(cfg: LLMConfig) -> str:
    """Where calls go, for error messages: a URL without credentials or query, or a file."""
    if cfg.backend == "local":
        return f"local:{Path(cfg.model_path).name if cfg.model_path else DEFAULT_LOCAL_MODEL}"
    if cfg.backend == "fake":
        return f"fake:{cfg.model}"
    return _strip_credentials(resolve_base_url(cfg) or OPENAI_DEFAULT_BASE_URL)


def model_identity(cfg: LLMConfig) -> str:
    """The model part of a cache key: the model name, or the local GGUF file's name."""
    if cfg.backend == "local":
        return Path(cfg.model_path).name if cfg.model_path else DEFAULT_LOCAL_MODEL
    return cfg.model


def key_params(cfg: LLMConfig, kind: str) -> dict[str, Any]:
    """The parameters that shape an answer (part of the cache key)."""
    params: dict[str, Any] = {}
    if kind == "chat":
        params = {"temperature": cfg.temperature, "max_tokens": cfg.max_tokens}
    if cfg.backend == "local":
        params["format"] = LOCAL_FORMAT_VERSION
    return params


def _is_loopback(url: str | None) -> bool:
    if not url:
        return False
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def wants_classic_max_tokens(base_url: str | None) -> bool:
    """True for servers that are not OpenAI itself: langchain-openai (and OpenAI) send only
    ``max_completion_tokens``, which llama.cpp's server and some older servers ignore (they
    would generate to the end of the context), so they also get the classic ``max_tokens``."""
    return bool(base_url) and urlsplit(base_url or "").hostname != "api.openai.com"


def api_key_of(cfg: LLMConfig, base_url: str | None) -> str:
    """The API key for ``base_url`` from ``cfg.api_key_env`` (any key for loopback)."""
    key = os.environ.get(cfg.api_key_env, "")
    if key:
        return key
    if _is_loopback(base_url):
        return "not-needed"  # local servers (llama.cpp, vLLM, Ollama) accept any key
    where = _strip_credentials(base_url or OPENAI_DEFAULT_BASE_URL)
    raise LLMConfigError(
        f"environment variable {cfg.api_key_env} is not set; it must hold the API key for "
        f"{where} (llm.api_key_env names it)")

