"""Classic baselines behind the recommender-agent protocol, so the offline tasks ask them
exactly what they ask an LLM team: the same requests, candidates and clock.

Every baseline is fitted on the tasks' history (each user's earlier ratings) only.
Ranking: random, popularity, EASE, the item's mean rating, item-kNN and BPR (the last two
with the project's defaults, tools/recommenders). Rating: the global mean, the
user's mean, the item's (shrunk) mean, and the global + user + item bias model whose
regularisation is chosen on tuning users. Explanations are a template naming the item's
genres and the user's most recent liked title before the clock that shares one: grounded
by construction, a reference for the grounding figures, not a competitor in fluency.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from agents.recsys.protocol import (
    ExplainRequest,
    Explanation,
    Ranking,
    RankRequest,
    RateRequest,
    Rating,
)
from simulations.eval.baselines import fit_bias_model, user_means
from tools.dataset import Catalog, Interactions
from tools.history import UserHistories
from tools.recommenders import Recommender, make_recommender

__all__ = [
    "RANKING_BASELINES",
    "RATING_BASELINES",
    "ClassicRecommender",
    "TemplateExplainer",
    "item_means",
    "ranking_baselines",
    "rating_baselines",
]

RANKING_BASELINES = ("random", "pop", "ease", "item_mean", "itemknn", "bpr")
RATING_BASELINES = ("global_mean", "user_mean", "item_mean", "bias")
Scorer = Callable[[int, np.ndarray], np.ndarray]  # (user, items) -> higher is better
Rater = Callable[[int, int], float]  # (user, item) -> predicted rating


class TemplateExplainer:
    """``TITLE: GENRES, like LIKED TITLE you rated R/5.`` from history before the clock."""

    def __init__(self, catalog: Catalog, histories: UserHistories) -> None:
        self.catalog, self.histories = catalog, histories

    def __call__(self, user: int, item: int, now: float | None) -> str:
        cat = self.catalog
        genres = set(cat.genres[item])
        what = f"{cat.titles[item]}: {', '.join(cat.genres[item]) or 'unclassified'}"
        liked = [r for r in self.histories.ratings(user, before=now)
                 if r.rating is not None and r.rating >= 4]
        near = [r for r in liked if genres & set(cat.genres[r.item])] or liked
        if not near:
            return f"{what}, often watched by others."
        r = near[-1]
        return f"{what}, like {cat.titles[r.item]}, which you rated {r.rating:g}/5."


class ClassicRecommender:
    """A protocol recommender from a scorer (ranking) and/or a rater (rating).

    Ranking orders the candidates by score, ties in presented order. Ratings are clipped
    to 1..5. Asking for what it was not given (a rating from ``pop``) is a ``TypeError``.
    """

    def __init__(self, name: str, *, scorer: Scorer | None = None,
                 rater: Rater | None = None,
                 explainer: Callable[[int, int, float | None], str] | None = None) -> None:
        self.name = name
        self._scorer, self._rater, self._explainer = scorer, rater, explainer

    @property
    def ranks(self) -> bool:
        return self._scorer is not None

    @property
    def rates(self) -> bool:
        return self._rater is not None

    def llm_usage(self) -> tuple[int, int, float]:
        return 0, 0, 0.0

    def close(self) -> None:
        pass

    def rank(self, requests: Sequence[RankRequest]) -> list[Ranking]:
        if self._scorer is None:
            raise TypeError(f"{self.name} does not rank")
        out = []
        for r in requests:
            cand = np.asarray(r.candidates, dtype=np.int64)
            s = np.asarray(self._scorer(r.user, cand), dtype=np.float64)
            order = np.argsort(-s, kind="stable")[:r.k]
            items = [int(cand[j]) for j in order]
            expl = ({items[0]: self._explainer(r.user, items[0], r.now)}
                    if self._explainer is not None and items else {})
            out.append(Ranking(items=items, explanations=expl))
        return out

    def rate(self, requests: Sequence[RateRequest]) -> list[Rating]:
        if self._rater is None:
            raise TypeError(f"{self.name} does not rate")
        return [Rating(value=float(np.clip(self._rater(r.user, r.item), 1.0, 5.0)))
                for r in requests]

    def explain(self, requests: Sequence[ExplainRequest]) -> list[Explanation]:
        if self._explainer is None:
            raise TypeError(f"{self.name} does not explain")
        return [Explanation(text=self._explainer(r.user, r.item, r.now)) for r in requests]


def item_means(history: Interactions, n_items: int, shrink: float = 5.0) -> np.ndarray:
    """Mean history rating per item, shrunk towards the global mean (``shrink``
    pseudo-ratings), as the simulation's world computes it."""
    g = float(history.rating.mean()) if len(history) else 3.0
    s = np.bincount(history.item, weights=history.rating, minlength=n_items)
    c = np.bincount(history.item, minlength=n_items)
    return (s + shrink * g) / (c + shrink)


def ranking_baselines(history: Interactions, n_users: int, catalog: Catalog, seed: int,
                      explainer: TemplateExplainer | None = None,
                      ease_l2: float = 500.0) -> list[ClassicRecommender]:
    """random, pop, EASE, item mean, item-kNN and BPR, fitted on ``history``."""
    n_items = catalog.n_items
    pop = np.bincount(history.item, minlength=n_items).astype(np.float64)
    imean = item_means(history, n_items)
    train = history.matrix(n_users, n_items, binary=True)
    fitted: dict[str, Recommender] = {}
    for name, params in (("ease", {"l2": ease_l2}), ("itemknn", {}), ("bpr", {})):
        fitted[name] = make_recommender(name, seed=seed, **params)
        fitted[name].fit(train)

    def model_score(name: str) -> Scorer:
        def score(u: int, items: np.ndarray) -> np.ndarray:
            s = fitted[name].score(np.array([u]))
            return np.asarray(s, dtype=np.float64)[0][items]
        return score

    def random(u: int, items: np.ndarray) -> np.ndarray:
        return np.random.default_rng([seed, u, 31]).random(n_items)[items]

    scorers: dict[str, Scorer] = {
        "random": random, "pop": lambda u, items: pop[items], "ease": model_score("ease"),
        "item_mean": lambda u, items: imean[items], "itemknn": model_score("itemknn"),
        "bpr": model_score("bpr")}
    return [ClassicRecommender(n, scorer=scorers[n], explainer=explainer)
            for n in RANKING_BASELINES]


def rating_baselines(history: Interactions, n_users: int, n_items: int,
                     reg: tuple[float, float] = (10.0, 25.0)) -> list[ClassicRecommender]:
    """global mean, user mean, item mean and the bias model (``reg``: user, item)."""
    g = float(history.rating.mean()) if len(history) else 3.0
    umean = user_means(history, n_users)
    imean = item_means(history, n_items)
    bias = fit_bias_model(history, n_users, n_items, *reg)
    raters: dict[str, Rater] = {
        "global_mean": lambda u, i: g, "user_mean": lambda u, i: float(umean[u]),
        "item_mean": lambda u, i: float(imean[i]),
        "bias": lambda u, i: float(bias.predict(np.array([u]), np.array([i]))[0])}
    return [ClassicRecommender(n, rater=raters[n]) for n in RATING_BASELINES]
