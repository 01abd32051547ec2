"""The local model's context window is sized from what requests need (agents/llm/context.py).

Issue 18, point 3: the shipped MACRec team with the local model failed at default settings
with "Requested tokens (2538) exceed context window of 2048".
"""

from __future__ import annotations

import pytest

from agents.llm.context import AUTO_START, ContextTooSmallError, fit_context
from agents.llm.errors import LLMConfigError
from scenarios.schema import LLMConfig

GEMMA_TRAINED = 32768  # Gemma 3 270M's trained context length (GGUF metadata)


def test_the_default_window_is_sized_automatically() -> None:
    assert LLMConfig(backend="local").n_ctx is None


@pytest.mark.parametrize(("need", "window"), [
    (1, AUTO_START),
    (AUTO_START, AUTO_START),
    (2538 + 65, 4096),  # the team prompt that failed, plus a 64-token reply
    (4097, 8192),
    (GEMMA_TRAINED, GEMMA_TRAINED),
])
def test_auto_window_is_the_smallest_doubling_that_holds_the_request(need: int,
                                                                       window: int) -> None:
    assert fit_context(need, trained=GEMMA_TRAINED, configured=None) == window


def test_auto_window_never_exceeds_the_trained_length() -> None:
    assert fit_context(20000, trained=24000, configured=None) == 24000
    assert fit_context(20000, trained=0, configured=None) == 32768  # length unknown


def test_auto_window_only_grows() -> None:
    # A loaded window that holds the request is kept (no reload); a larger one is not
    # shrunk for a small request.
    assert fit_context(300, trained=GEMMA_TRAINED, configured=None, current=8192) == 8192
    assert fit_context(9000, trained=GEMMA_TRAINED, configured=None, current=8192) == 16384


def test_a_request_beyond_the_trained_length_names_the_fix() -> None:
    with pytest.raises(ContextTooSmallError, match=r"needs 40000 tokens but gemma\.gguf "
                       r"supports at most 32768: shorten .*reply_tokens"):
        fit_context(40000, trained=GEMMA_TRAINED, configured=None, model="gemma.gguf")


def test_a_configured_window_is_kept_and_checked() -> None:
    assert fit_context(1000, trained=GEMMA_TRAINED, configured=1024) == 1024
    with pytest.raises(ContextTooSmallError) as e:
        fit_context(2603, trained=GEMMA_TRAINED, configured=2048, model="gemma.gguf")
    msg = str(e.value)
    assert "\n" not in msg
    assert "needs 2603 tokens but gemma.gguf's context window is 2048" in msg
    assert "--llm-ctx" in msg and "at least 3072" in msg and "leave it unset" in msg
    assert isinstance(e.value, LLMConfigError)  # the client reports it in one line


def test_need_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        fit_context(0, trained=GEMMA_TRAINED, configured=None)
