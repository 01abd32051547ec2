"""Poisoned item text on the deterministic paths: catalogue search with and without defences.

What is measured (docs/attacks-text.md):

- **Attack success** on the two search paths agents use (``search_catalog``: BM25,
  ``semantic_search``: vectors in the long-term store): the share of users whose query
  returns a poisoned target first. A user's query is what a searcher or a search-based
  recommender would ask for that user, built from the *clean* catalogue and the user's
  history before the clock: their two most-watched liked genres and the title of their
  latest liked movie. The same rate on the clean catalogue (the targets' own share of first
  places) is reported beside it; success above it is the attack's doing.
- **Clean quality**: HR@10 of the search-based recommender (the user's query, history
  excluded) against the user's held-out liked items, on the same users with and without
  each defence, as a paired difference with its interval over users.

Every figure is over seeds (targets and corpus templates drawn with the seed) on test users
(``simulations.run.sampling``); a measurement is a pure function of the dataset, the split
and the seed, so a rerun gives the same numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memory.embedders import Embedder, HashEmbedder
from simulations.analysis.stats import interval, paired_interval
from simulations.run.sampling import users_by_split
from tools.data_model import Catalog, Dataset, Interactions
from tools.poison import pick_targets, poison_catalog
from tools.search import BM25Index, item_texts
from tools.text_guard import defend_catalog

__all__ = [
    "PATHS",
    "QUERY_KINDS",
    "SearchSetup",
    "Searcher",
    "TextCell",
    "clean_quality",
    "false_positive_rate",
    "quality_rows",
    "search_setup",
    "search_success",
    "text_table",
]

PATHS = ("bm25", "vector")


QUERY_KINDS = ("genres", "title")


@dataclass(frozen=True)
class SearchSetup:
    """Users, their queries and held-out liked items, and the history's popularity.

    ``queries[kind][n]`` is user ``n``'s query of that kind: ``genres`` (their two
    most-watched liked genres, "comedy drama movies": a broad request) or ``title``
    ("movies like TITLE", their latest liked movie: a narrow one).
    """

    dataset: Dataset
    users: tuple[int, ...]
    queries: dict[str, tuple[str, ...]]
    seen: tuple[frozenset[int], ...]  # history items per user (excluded by the recommender)
    liked_future: tuple[frozenset[int], ...]  # may be empty (no held-out liked item)
    popularity: np.ndarray


def _queries(cat: Catalog, liked: Sequence[int]) -> tuple[str, str]:
    genres = Counter(g for i in liked for g in cat.genres[i] if g != "unknown")
    top = [g for g, _ in sorted(genres.items(), key=lambda kv: (-kv[1], kv[0]))[:2]]
    return " ".join([*top, "movies"]), f"movies like {cat.titles[liked[-1]]}"


def search_setup(dataset: Dataset, history: Interactions, future: Interactions, *,
                 n_users: int = 300, seed: int = 0) -> SearchSetup:
    """Up to ``n_users`` test users (drawn with ``seed``) with a liked history item, and
    their queries from the clean catalogue and the history only."""
    cat = dataset.catalog
    test = users_by_split(dataset.user_ids)["test"]
    order = np.lexsort((history.ts, history.user))
    liked_hist: dict[int, list[int]] = {}
    seen: dict[int, set[int]] = {}
    for k in order:
        u, i = int(history.user[k]), int(history.item[k])
        seen.setdefault(u, set()).add(i)
        if history.rating[k] >= 4:
            liked_hist.setdefault(u, []).append(i)
    fut: dict[int, set[int]] = {}
    for u, i, r in zip(future.user, future.item, future.rating, strict=True):
        if r >= 4:
            fut.setdefault(int(u), set()).add(int(i))
    ok = [u for u in test if liked_hist.get(u)]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2103]))
    users = sorted(int(u) for u in rng.choice(ok, size=min(n_users, len(ok)), replace=False))
    pairs = [_queries(cat, liked_hist[u]) for u in users]
    return SearchSetup(
        dataset, tuple(users),
        {"genres": tuple(p[0] for p in pairs), "title": tuple(p[1] for p in pairs)},
        tuple(frozenset(seen[u]) for u in users),
        tuple(frozenset(fut.get(u, set()) - seen[u]) for u in users),
        dataset.with_interactions(history).item_popularity)


class Searcher:
    """Both search paths over the clean catalogue and its variants.

    BM25 is rebuilt per variant (bm25s indexes the catalogue in a fraction of a second);
    vector search embeds the clean texts once and re-embeds only the items whose text a
    variant changes, then ranks by exact cosine, as the long-term store's in-process index
    answers ``semantic_search`` (``memory.item_index``).
    """

    def __init__(self, catalog: Catalog, embedder: Embedder | None = None) -> None:
        self.catalog = catalog
        self.embedder = embedder or HashEmbedder()
        self.texts = item_texts(catalog)
        self.vectors = self.embedder.embed(self.texts)
        self.queries: dict[str, np.ndarray] = {}  # query vectors, shared by every variant

    def variant(self, catalog: Catalog) -> _Variant:
        texts = item_texts(catalog)
        changed = [i for i, (a, b) in enumerate(zip(texts, self.texts, strict=True)) if a != b]
        vecs = self.vectors
        if changed:
            vecs = vecs.copy()
            vecs[changed] = self.embedder.embed([texts[i] for i in changed])
        return _Variant(BM25Index(texts), vecs, self)


class _Variant:
    def __init__(self, bm25: BM25Index, vectors: np.ndarray, searcher: Searcher) -> None:
        self.bm25, self.vectors, self.searcher = bm25, vectors, searcher

    def top(self, path: str, query: str, k: int) -> list[int]:
        if path == "bm25":
            return [i for i, _ in self.bm25.search(query, k)]
        q = self.searcher.queries.get(query)
        if q is None:
            q = self.searcher.queries[query] = self.searcher.embedder.embed([query])[0]
        sims = self.vectors @ q
        order = np.lexsort((np.arange(len(sims)), -sims))  # ties to the lower item
        return [int(i) for i in order[:k]]


def search_success(setup: SearchSetup, searcher: Searcher, catalog: Catalog,
                   targets: Sequence[int], *, paths: Sequence[str] = PATHS,
                   ) -> dict[tuple[str, str], list[int]]:
    """Per (path, query kind), per user: 1 when the query returns a target first."""
    v = searcher.variant(catalog)
    tset = set(targets)
    return {(p, kind): [int(bool(hits) and hits[0] in tset)
                        for hits in (v.top(p, q, 1) for q in setup.queries[kind])]
            for p in paths for kind in QUERY_KINDS}


def clean_quality(setup: SearchSetup, searcher: Searcher, catalog: Catalog, *,
                  k: int = 10, paths: Sequence[str] = PATHS,
                  ) -> dict[tuple[str, str], list[float]]:
    """Per (path, query kind), per user with a held-out liked item: hit (1/0) of the
    search-based recommender's top ``k`` (the user's query, history excluded)."""
    v = searcher.variant(catalog)
    out: dict[tuple[str, str], list[float]] = {}
    for p in paths:
        for kind in QUERY_KINDS:
            hits = []
            for q, seen, fut in zip(setup.queries[kind], setup.seen, setup.liked_future,
                                    strict=True):
                if not fut:
                    continue
                top = [i for i in v.top(p, q, k + len(seen)) if i not in seen][:k]
                hits.append(float(bool(set(top) & fut)))
            out[(p, kind)] = hits
    return out


def false_positive_rate(catalog: Catalog) -> dict[str, float | int]:
    """The filter on a clean catalogue: items it changes, out of all (each is a false
    positive, since nothing in it was injected)."""
    _, flagged = defend_catalog(catalog, ["filter"])
    return {"items": catalog.n_items, "flagged": len(flagged),
            "rate": len(flagged) / catalog.n_items if catalog.n_items else 0.0}


@dataclass(frozen=True)
class TextCell:
    """One cell of the table: family, number of targets, path, query kind and defence."""

    family: str
    n_targets: int
    path: str
    query: str
    defence: str
    success: dict[str, Any]  # interval over seeds of the per-seed success rate
    clean: dict[str, Any]  # the same targets' first places on the clean catalogue
    cut: dict[str, Any] | None  # 1 - excess(defence) / excess(none), over seeds


def text_table(setup: SearchSetup, searcher: Searcher, *, families: Sequence[str],
               counts: Sequence[int], seeds: Sequence[int],
               defences: Sequence[str] = ("none", "delimit", "filter"),
               placement: Sequence[str] = ("description",),
               paths: Sequence[str] = PATHS) -> list[TextCell]:
    """Attack success per family x number of targets x path x query kind x defence, with
    intervals over seeds (each seed draws the targets and the corpus templates).

    ``hierarchy`` changes only system prompts, never the catalogue, so on these paths it
    equals ``none`` by construction; pass it to have the row computed anyway.
    """
    cat = setup.dataset.catalog
    cells: list[TextCell] = []
    keys = [(p, kind) for p in paths for kind in QUERY_KINDS]
    for family in families:
        for n in counts:
            rates: dict[tuple[str, str, str], list[float]] = {}
            clean: dict[tuple[str, str], list[float]] = {}
            for seed in seeds:
                targets = pick_targets(setup.popularity, n, seed)
                base = search_success(setup, searcher, cat, targets, paths=paths)
                for key in keys:
                    clean.setdefault(key, []).append(float(np.mean(base[key])))
                poisoned, _ = poison_catalog(cat, targets, [family], placement, seed)
                for d in defences:
                    shown, _ = defend_catalog(poisoned, [] if d == "none" else [d])
                    got = search_success(setup, searcher, shown, targets, paths=paths)
                    for key in keys:
                        rates.setdefault((*key, d), []).append(float(np.mean(got[key])))
            for p, kind in keys:
                for d in defences:
                    cut = (None if d == "none" else
                           _cut(rates[(p, kind, "none")], rates[(p, kind, d)], clean[(p, kind)]))
                    cells.append(TextCell(family, n, p, kind, d, interval(rates[(p, kind, d)]),
                                          interval(clean[(p, kind)]), cut))
    return cells


def _cut(none: Sequence[float], defended: Sequence[float],
         clean: Sequence[float]) -> dict[str, Any] | None:
    """How much of the attack's excess success (over the clean rate) the defence removes,
    per seed; None when the attack had no excess in any seed (nothing to cut)."""
    per = [1.0 - (d - c) / (a - c) for a, d, c in zip(none, defended, clean, strict=True)
           if a - c > 0]
    return interval(per) if per else None


def quality_rows(setup: SearchSetup, searcher: Searcher, defences: Sequence[str], *,
                 paths: Sequence[str] = PATHS) -> list[dict[str, Any]]:
    """Clean-run HR@10 per path and query kind without and with each defence, on the same
    users, and the paired difference (interval over users)."""
    cat = setup.dataset.catalog
    base = clean_quality(setup, searcher, cat, paths=paths)
    rows: list[dict[str, Any]] = []
    for d in defences:
        shown, _ = defend_catalog(cat, [d])
        changed = [i for i in range(cat.n_items) if shown.titles[i] != cat.titles[i]
                   or shown.descriptions[i] != cat.descriptions[i]]
        got = clean_quality(setup, searcher, shown, paths=paths)
        for (p, kind), hits in base.items():
            rows.append({"path": p, "query": kind, "defence": d,
                         "items_changed": len(changed), "hr10_none": interval(hits),
                         "hr10_defended": interval(got[(p, kind)]),
                         "difference": paired_interval(got[(p, kind)], hits)})
    return rows
