"""The chat models one ``LLMClient`` talks through, built on first use, per event loop.

An openai model holds HTTP clients, and an async HTTP client is bound to the event loop
that first used it, so async calls on another loop (the next ``asyncio.run``, another
population's loop) need their own: ``amodel`` keeps one model per loop, ``direct`` one
``OpenAIChat`` per loop (the openai backend's async path, agents/llm/openai_chat.py).
Given models (tests' ``FakeChatModel``) and local models hold no loop state: shared, and
never closed here (they are the caller's).
"""

from __future__ import annotations

import asyncio
import threading
import weakref

from langchain_core.language_models.chat_models import BaseChatModel

from agents.llm.backends import aclose_chat_model, close_chat_model, make_chat_model
from agents.llm.openai_chat import OpenAIChat
from agents.llm.tokens import TokenCounter, counter_for
from scenarios.schema import LLMConfig

__all__ = ["ModelPool"]

_Loop = asyncio.AbstractEventLoop


class ModelPool:
    """``cfg``'s chat model (or ``given``), its token counter, and per-loop clients."""

    def __init__(self, cfg: LLMConfig, given: BaseChatModel | None = None) -> None:
        self.cfg = cfg
        self.model: BaseChatModel | None = given
        self.own = given is None
        self.counter: TokenCounter | None = None
        self._lock = threading.Lock()
        self._first_loop: weakref.ref[_Loop] | None = None  # where ``model`` went async
        self._loop_models: weakref.WeakKeyDictionary[_Loop, BaseChatModel] = (
            weakref.WeakKeyDictionary())
        self._direct: weakref.WeakKeyDictionary[_Loop, OpenAIChat] = (
            weakref.WeakKeyDictionary())

    @property
    def _per_loop(self) -> bool:
        return self.own and self.cfg.backend == "openai"

    def get(self) -> tuple[BaseChatModel, TokenCounter]:
        """The model (built on first use) and its token counter."""
        with self._lock:
            if self.model is None:
                self.model = make_chat_model(self.cfg)
            model = self.model
        return model, self.token_counter()

    def token_counter(self) -> TokenCounter:
        """The token counter (built on first use; from the model when one is built). The
        openai backend's depends on the model name alone, so the direct path gets it
        without building the LangChain model."""
        with self._lock:
            if self.counter is None:
                self.counter = counter_for(self.cfg, self.model)
            return self.counter

    def amodel(self) -> tuple[BaseChatModel, TokenCounter]:
        """The model for async calls on the running loop."""
        model, counter = self.get()
        if not self._per_loop:
            return model, counter
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._first_loop is None:
                self._first_loop = weakref.ref(loop)  # the first loop uses the first model
            if self._first_loop() is loop:
                return model, counter
            if loop not in self._loop_models:
                self._loop_models[loop] = make_chat_model(self.cfg)
            return self._loop_models[loop], counter

    def direct(self) -> OpenAIChat | None:
        """The direct SDK path on the running loop (openai backend, model built here)."""
        if not self._per_loop:
            return None
        loop = asyncio.get_running_loop()
        with self._lock:
            chat = self._direct.get(loop)
            if chat is None:
                chat = self._direct[loop] = OpenAIChat(self.cfg)
            return chat

    async def aclose(self) -> None:
        """Close the async HTTP clients built for the running loop (call it on that loop
        before the loop closes)."""
        if not self.own:
            return
        loop = asyncio.get_running_loop()
        with self._lock:
            models = [m for m in (self._loop_models.pop(loop, None),) if m is not None]
            if self.model is not None and self._first_loop is not None \
                    and self._first_loop() is loop:
                models.append(self.model)
            direct = self._direct.pop(loop, None)
        for model in models:
            await aclose_chat_model(model)
        if direct is not None:
            await direct.aclose()

    def close(self) -> None:
        """Close the sync HTTP client of the model built here, if any."""
        if self.own and self.model is not None:
            close_chat_model(self.model)
