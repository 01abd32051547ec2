"""Poisoned item text: the injection corpus, target picks and a poisoned catalogue.

Item text reaches every agent from one place, the :class:`~tools.dataset.Catalog`
(titles and descriptions): BM25 and vector search index ``tools.search.item_text``,
``item_info`` and user pages render ``descriptions``, candidate lists, histories and
knowledge-graph answers render ``titles``. :func:`poison_catalog` therefore returns a new
catalogue whose target items carry the injected text, and a run (or a measurement) built on
it shows the poison wherever the item's text appears.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import numpy as np
import yaml

from tools.data_model import Catalog, default_description

__all__ = [
    "Poisoned",
    "attack_keywords",
    "focus_keywords",
    "load_corpus",
    "pick_targets",
    "poison_catalog",
]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(re.findall(r"\S+", "the a an of and in on to for with from at by is it its "
                                      "de la le"))


@dataclass(frozen=True)
class Poisoned:
    """One poisoned item: which family and template, and the text added."""

    item: int
    family: str
    template: int
    text: str


def load_corpus(text: str | None = None) -> dict[str, list[str]]:
    """The injection corpus: family -> templates (``{title}``, ``{keywords}``).

    ``text``: a YAML document to read instead of the shipped
    ``scenarios/data/injection_corpus.yaml``.
    """
    if text is None:
        text = (resources.files("scenarios") / "data" / "injection_corpus.yaml").read_text(
            encoding="utf-8")
    data: Any = yaml.safe_load(text)
    if not isinstance(data, dict) or not all(
            isinstance(v, list) and v and all(isinstance(t, str) for t in v)
            for v in data.values()):
        raise ValueError("injection corpus: expected family -> non-empty list of templates")
    return {str(k): list(v) for k, v in data.items()}


def attack_keywords(catalog: Catalog, n_words: int = 12) -> str:
    """The attacker's query words: every genre name and the ``n_words`` words found in
    most titles. Built from the public catalogue only (no user's query is known)."""
    genres = [g.lower() for g in catalog.genre_names if g.lower() != "unknown"]
    df: Counter[str] = Counter()
    for t in catalog.titles:
        df.update({w for w in _WORD.findall(t.lower()) if len(w) > 2 and w not in _STOP
                   and not w.isdigit()})
    common = [w for w, _ in sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))
              if w not in genres][:n_words]
    return " ".join([*genres, *common])


def focus_keywords(catalog: Catalog) -> str:
    """The likeliest broad query: the catalogue's two commonest genres and "movies"."""
    counts = Counter(g for gs in catalog.genres for g in gs if g.lower() != "unknown")
    top = [g.lower() for g, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:2]]
    return " ".join([*top, "movies"])


def pick_targets(popularity: np.ndarray, count: int, seed: int) -> list[int]:
    """``count`` items drawn with ``seed`` among the less popular half (the items an
    attacker has a reason to push), in catalogue order."""
    n = len(popularity)
    if count <= 0 or n == 0:
        return []
    order = np.lexsort((np.arange(n), popularity))  # least popular first, ties by index
    pool = order[: max(count, n // 2)]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2101]))
    return sorted(int(i) for i in rng.choice(pool, size=min(count, len(pool)), replace=False))


def poison_catalog(catalog: Catalog, targets: Sequence[int], families: Sequence[str],
                   placement: Sequence[str], seed: int,
                   corpus: dict[str, list[str]] | None = None,
                   ) -> tuple[Catalog, list[Poisoned]]:
    """``catalog`` with injected text in each target's title and/or description.

    Target ``i`` (in the given order) gets family ``families[i % len(families)]`` and a
    template of it drawn with ``seed``. A poisoned title is ``TITLE — TEXT``; a poisoned
    description is the item's description followed by the text.
    """
    corpus = corpus if corpus is not None else load_corpus()
    unknown = [f for f in families if f not in corpus]
    if unknown:
        raise ValueError(f"injection corpus has no family {unknown[0]!r}")
    keywords = attack_keywords(catalog)
    focus = focus_keywords(catalog)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2102]))
    titles, descs = list(catalog.titles), list(catalog.descriptions)
    done: list[Poisoned] = []
    for n, item in enumerate(targets):
        family = families[n % len(families)]
        k = int(rng.integers(len(corpus[family])))
        text = corpus[family][k].format(title=catalog.titles[item], keywords=keywords,
                                          focus=focus)
        if "description" in placement:
            descs[item] = f"{descs[item]} {text}".strip()
        if "title" in placement:
            if descs[item] == default_description(titles[item], catalog.years[item],
                                                  catalog.genres[item]):
                # A default description follows its title: keep it the clean default.
                descs[item] = default_description(f"{titles[item]} — {text}",
                                                  catalog.years[item], catalog.genres[item])
            titles[item] = f"{titles[item]} — {text}"
        done.append(Poisoned(item, family, k, text))
    return replace(catalog, titles=tuple(titles), descriptions=tuple(descs)), done
