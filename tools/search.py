"""Lexical catalogue search: BM25 (the ``bm25s`` library) over item texts.

An item's text is its title, year, genres and description (:func:`item_text`); the same
text feeds the vector index of :mod:`memory.item_index`, so both searches see the same
words. English stop words are dropped; stemming is optional (pass any callable that maps
a list of words to their stems, e.g. PyStemmer's ``stemWords``). Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import bm25s
import numpy as np

from tools.dataset import Catalog, default_description

__all__ = ["BM25Index", "item_text", "item_texts"]


def item_text(catalog: Catalog, item: int) -> str:
    """Title (year). Genres. Description — the description only when it adds words."""
    title, year, genres = catalog.titles[item], catalog.years[item], catalog.genres[item]
    head = f"{title} ({year})" if year else title
    text = f"{head}. {', '.join(genres) or 'unclassified'}."
    desc = catalog.descriptions[item]
    if desc and desc != default_description(title, year, genres):
        text += f" {desc}"
    return text


def item_texts(catalog: Catalog) -> list[str]:
    return [item_text(catalog, i) for i in range(catalog.n_items)]


class BM25Index:
    """BM25 over one text per item (row ``i`` is item ``i``).

    Args:
        texts: One text per item.
        stemmer: Maps a list of words to their stems; None: no stemming.
        k1, b: The BM25 parameters (bm25s' defaults).
    """

    def __init__(self, texts: Sequence[str],
                 stemmer: Callable[[list[str]], list[str]] | None = None,
                 k1: float = 1.5, b: float = 0.75) -> None:
        self.n = len(texts)
        self._stemmer = stemmer
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        if self.n:
            self._bm25.index(self._tokens(list(texts)), show_progress=False)

    @classmethod
    def for_catalog(cls, catalog: Catalog,
                    stemmer: Callable[[list[str]], list[str]] | None = None) -> BM25Index:
        return cls(item_texts(catalog), stemmer)

    def _tokens(self, texts: list[str]) -> bm25s.tokenization.Tokenized:
        return bm25s.tokenize(texts, stopwords="en", stemmer=self._stemmer,
                              show_progress=False)

    def search(self, query: str, k: int = 10,
               exclude: set[int] | frozenset[int] = frozenset()) -> list[tuple[int, float]]:
        """The ``k`` best items for ``query`` as (item, score), best first; items that
        share no word with the query are not returned. Ties go to the lower item."""
        if k <= 0 or not self.n:
            return []
        words = bm25s.tokenize([query], stopwords="en", stemmer=self._stemmer,
                               return_ids=False, show_progress=False)[0]
        if not words:
            return []
        scores = np.asarray(self._bm25.get_scores(words), dtype=np.float64)
        if exclude:
            scores[np.fromiter(exclude, np.int64)] = 0.0
        hits = np.flatnonzero(scores > 0)
        order = hits[np.lexsort((hits, -scores[hits]))][:k]
        return [(int(i), float(scores[i])) for i in order]
