"""The ``llm:`` block: which chat model a brain or a recommender agent talks to."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from scenarios.schema.base import FrozenModel

__all__ = ["BudgetConfig", "LLMConfig"]


class BudgetConfig(FrozenModel):
    """Stop the run cleanly when a limit is reached (prices in USD per million tokens)."""

    max_tokens: int | None = Field(None, ge=1)
    max_cost_usd: float | None = Field(None, gt=0)
    input_price_per_mtok: float = Field(0.0, ge=0)
    output_price_per_mtok: float = Field(0.0, ge=0)


class LLMConfig(FrozenModel):
    """Which chat model the llm brain talks to. Never put an API key here: name the
    environment variable that holds it."""

    backend: Literal["openai", "local", "fake"] = "openai"
    model: str = Field("gpt-4o-mini", min_length=1)
    base_url: str | None = Field(None, description="Default: OPENAI_BASE_URL, as the SDK.")
    api_key_env: str = Field("OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(400, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    concurrency: int = Field(4, ge=1, le=1024)
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: int | None = Field(None, gt=0)
    budget: BudgetConfig = BudgetConfig()
    model_path: str | None = Field(
        None, description="local: a GGUF file; default the Gemma 3 270M package's model."
    )
    n_ctx: int | None = Field(
        None, ge=256,
        description="local: context window in tokens; default: sized from the prompts "
        "(grown as requests need, up to the model's trained length).")
    n_threads: int | None = Field(
        None, ge=1, description="local: CPU threads; default: one fewer than the cores "
        "(at least 1), which leaves a core to the rest of the run.")
    structured_output: Literal["auto", "native", "text"] = Field(
        "auto",
        description=(
            "How JSON answers are asked: native (the endpoint's JSON-schema response format "
            "or a forced tool call), text (instructions in the prompt, parsed from the reply; "
            "invalid output is repaired either way), or auto (native for the openai backend, "
            "falling back to text if the endpoint refuses; text for local and fake)."),
    )
