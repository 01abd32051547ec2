"""Explanation faithfulness by deletion, and citation precision.

A recommender answers a ranking request (the offline tasks' sr instances: a test user's
next liked item among sampled negatives, at the user's clock; simulations/tasks/data.py)
and explains its top item. The catalogue titles the explanation names (other than the
recommended item's) are its citations:

* **citation precision**: the share of cited titles that are in the user's history
  before the clock (what the recommender was allowed to see; a title MovieLens carries
  twice counts when either item is there);
* **deletion**: the cited history items are removed from the user's history, the
  recommender is rebuilt on that history and asked again; the item's new rank minus its
  old one (1) is the *drop*. The same is done removing as many random history items of
  the user (seeded). A faithful explanation cites what the ranking rests on, so its
  items fall further than random ones: the paired difference (cited minus random, per
  user) is the figure, with a t-interval over disjoint samples of test users.

Deletions of all users of a sample are made in one modified history (models are rebuilt
once per sample and condition); a user's deletions change other users' rankings only
through the model's item statistics. Users whose explanation cites no history item have
no deletion pair (counted as ``uncited``).

Contribution explainers (``ContributionExplainer``) serve the classic models whose score
is a sum over history items: item-kNN (``because you watched X``: the neighbours with
the largest similarity) and EASE (the largest weights ``B[i, item]``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.recsys.protocol import ExplainRequest, Ranking, RankRequest, RecommenderAgent
from simulations.analysis.stats import interval
from simulations.run.sampling import disjoint_samples, keyed_rng
from simulations.tasks.baselines import ClassicRecommender, TemplateExplainer
from simulations.tasks.data import RankInstance, TaskSetup, rank_instances
from simulations.tasks.metrics import title_variants
from tools.candidates import CandidateGenerator
from tools.dataset import Catalog, Interactions
from tools.history import UserHistories
from tools.recommenders import make_recommender

__all__ = ["EXPLAINED_MODELS", "AgentFactory", "ContributionExplainer", "TitleFinder",
           "classic_factory", "deletion_study", "remove_items"]

EXPLAINED_MODELS = ("itemknn", "ease")
AgentFactory = Callable[[Interactions], RecommenderAgent]


class TitleFinder:
    """Catalogue items named in a text (whole words, case-insensitive, longest first)."""

    def __init__(self, catalog: Catalog) -> None:
        self.by_form: dict[str, set[int]] = {}
        for i, t in enumerate(catalog.titles):
            for v in title_variants(t):
                self.by_form.setdefault(v, set()).add(i)
        forms = sorted(self.by_form, key=len, reverse=True)
        self._re = re.compile("(?<![a-z0-9])(" + "|".join(re.escape(f) for f in forms)
                              + ")(?![a-z0-9])") if forms else None

    def mentions(self, text: str) -> list[frozenset[int]]:
        """Each title named, as the set of catalogue items carrying it (MovieLens has a
        few titles twice)."""
        if self._re is None:
            return []
        seen = dict.fromkeys(m.group(1) for m in self._re.finditer(text.lower()))
        return [frozenset(self.by_form[f]) for f in seen]

    def items(self, text: str) -> set[int]:
        return {i for g in self.mentions(text) for i in g}


@dataclass
class ContributionExplainer:
    """``TITLE: because you watched A, B and C.``: the history items with the largest
    positive terms in the model's score of the item (at most ``n``)."""

    model: Any  # ItemKNN or EASE: has contributions(history, item)
    catalog: Catalog
    histories: UserHistories
    n: int = 3

    def cited(self, user: int, item: int, now: float | None) -> list[int]:
        hist = np.array(sorted({r.item for r in self.histories.ratings(user, before=now)}),
                        dtype=np.int64)
        if hist.size == 0:
            return []
        c = self.model.contributions(hist, item)
        order = np.lexsort((hist, -c))
        return [int(hist[j]) for j in order[:self.n] if c[j] > 0]

    def __call__(self, user: int, item: int, now: float | None) -> str:
        titles = [self.catalog.titles[i] for i in self.cited(user, item, now)]
        what = self.catalog.titles[item]
        if not titles:
            return f"{what}: popular with viewers like you."
        said = titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]
        return f"{what}: because you watched {said}."


def classic_factory(model: str, catalog: Catalog, n_users: int, *, seed: int = 0,
                    explainer: str = "contribution", n_cited: int = 3,
                    **params: Any) -> AgentFactory:
    """Builds, from a history, the protocol recommender of a classic model that explains
    with its contributions (item-kNN, EASE) or the post-hoc template (any model: the most
    recent liked title sharing a genre, simulations/tasks/baselines.py)."""
    if explainer == "contribution" and model not in EXPLAINED_MODELS:
        raise ValueError(f"{model}: no contribution explanations (they exist for "
                         f"{', '.join(EXPLAINED_MODELS)}); use the template explainer")

    def build(history: Interactions) -> RecommenderAgent:
        m = make_recommender(model, seed=seed, **params)
        m.fit(history.matrix(n_users, catalog.n_items, binary=True))
        hist = UserHistories(history, n_users)
        expl: Callable[[int, int, float | None], str] = (
            ContributionExplainer(m, catalog, hist, n_cited) if explainer == "contribution"
            else TemplateExplainer(catalog, hist))

        def scorer(u: int, items: np.ndarray) -> np.ndarray:
            return np.asarray(m.score(np.array([u])), dtype=np.float64)[0][items]

        name = model if explainer == "contribution" else f"{model}+template"
        return ClassicRecommender(name, scorer=scorer, explainer=expl)

    return build


def remove_items(history: Interactions, removed: dict[int, set[int]]) -> Interactions:
    """``history`` without the (user, item) rows in ``removed``."""
    if not removed:
        return history
    keys = {(u, i) for u, items in removed.items() for i in items}
    drop = np.array([(int(u), int(i)) in keys for u, i in zip(history.user, history.item,
                                                              strict=True)], dtype=bool)
    return history.select(~drop)


def _rank(agent: RecommenderAgent, inst: Sequence[RankInstance], batch: int,
          where: Callable[[RankInstance], dict[str, Any]] | None) -> list[Ranking]:
    out: list[Ranking] = []
    for lo in range(0, len(inst), batch):
        chunk = inst[lo:lo + batch]
        reqs = [RankRequest(user=x.user, candidates=list(x.candidates), k=len(x.candidates),
                            now=int(x.now) if np.isfinite(x.now) else None,
                            where=where(x) if where else {}) for x in chunk]
        out += agent.rank(reqs)
    return out


def _position(ranking: Sequence[int], item: int, candidates: Sequence[int]) -> int:
    """1-based rank; items the answer left out follow it in presented order."""
    order = list(dict.fromkeys([*(i for i in ranking if i in candidates), *candidates]))
    return order.index(item) + 1


@dataclass(frozen=True)
class _UserRow:
    user: int
    cited: int
    precision: float | None
    drop_cited: int | None
    drop_random: int | None


def _sample(factory: AgentFactory, setup: TaskSetup, users: Sequence[int], seed: int,
            negatives: int, batch: int, finder: TitleFinder,
            where: Callable[[str, RankInstance], dict[str, Any]] | None,
            generator: CandidateGenerator | None) -> list[_UserRow]:
    inst = rank_instances(setup, users, negatives, seed, generator)
    hist = UserHistories(setup.history, setup.dataset.n_users)
    def w(label: str) -> Callable[[RankInstance], dict[str, Any]] | None:
        if where is None:
            return None
        return lambda x: where(label, x)

    agent = factory(setup.history)
    try:
        answers = _rank(agent, inst, batch, w("original"))
        ranks = [list(a.items) for a in answers]
        tops = [next((i for i in r if i in x.candidates), x.candidates[0])
                for r, x in zip(ranks, inst, strict=True)]
        # The ranking's own explanation of its top item, else one asked for (as the
        # offline gen task does, simulations/tasks/suite.py).
        texts = [a.explanations.get(t, "").strip() for a, t in zip(answers, tops,
                                                                  strict=True)]
        ask = [j for j, t in enumerate(texts) if not t]
        ex = w("explain")
        for lo in range(0, len(ask), batch):
            js = ask[lo:lo + batch]
            reqs = [ExplainRequest(user=inst[j].user, item=tops[j],
                                   now=int(inst[j].now) if np.isfinite(inst[j].now) else None,
                                   where=ex(inst[j]) if ex else {})
                    for j in js]
            for j, e in zip(js, agent.explain(reqs), strict=True):
                texts[j] = e.text
    finally:
        agent.close()
    cited_hist: dict[int, set[int]] = {}
    random_del: dict[int, set[int]] = {}
    rows: dict[int, tuple[int, float | None]] = {}
    for x, top, text in zip(inst, tops, texts, strict=True):
        past = {r.item for r in hist.ratings(x.user, before=x.now)}
        cited = [g for g in finder.mentions(text) if top not in g]
        # A title is a correct citation when an item carrying it is in the history.
        inside = {i for g in cited for i in g & past}
        correct = sum(bool(g & past) for g in cited)
        rows[x.user] = (len(cited), correct / len(cited) if cited else None)
        if inside and len(past) > len(inside):
            cited_hist[x.user] = inside
            pool = np.array(sorted(past), dtype=np.int64)
            rng = keyed_rng(seed, x.user, 71)
            random_del[x.user] = {int(i) for i in rng.choice(pool, size=len(inside),
                                                              replace=False)}
    after: dict[str, list[list[int]]] = {}
    for label, removed in (("cited", cited_hist), ("random", random_del)):
        if not removed:
            after[label] = []
            continue
        agent = factory(remove_items(setup.history, removed))
        try:
            after[label] = [list(a.items) for a in _rank(
                agent, [x for x in inst if x.user in removed], batch, w(f"deleted_{label}"))]
        finally:
            agent.close()
    out = []
    k = 0
    for x, top, first in zip(inst, tops, ranks, strict=True):
        n_cited, precision = rows[x.user]
        d_c = d_r = None
        if x.user in cited_hist:
            base = _position(first, top, x.candidates)
            d_c = _position(after["cited"][k], top, x.candidates) - base
            d_r = _position(after["random"][k], top, x.candidates) - base
            k += 1
        out.append(_UserRow(x.user, n_cited, precision, d_c, d_r))
    return out


def deletion_study(factory: AgentFactory, setup: TaskSetup, *, users: int = 50,
                   samples: int = 3, negatives: int = 19, seed: int = 0, batch: int = 8,
                   candidates: str | None = None,
                   where: Callable[[str, RankInstance], dict[str, Any]] | None = None
                   ) -> dict[str, Any]:
    """Citation precision and deletion drops of one recommender on disjoint samples of
    test users: per sample the means over its users, then the mean and a 95% t-interval
    over samples (the paired difference: cited minus random drop, per user).

    ``candidates``: a classic model whose top ``negatives + 1`` unseen items (fitted on
    the history) are the candidates, instead of the next liked item among sampled
    negatives; competitive candidates make a drop easier to see."""
    finder = TitleFinder(setup.dataset.catalog)
    ds = setup.dataset
    gen = (CandidateGenerator(candidates, setup.history, ds.n_users, ds.n_items, seed=seed)
           if candidates else None)
    groups = disjoint_samples(setup.test, samples, users, seed)
    per: list[dict[str, float | None]] = []
    counts = {"users": 0, "explained_with_citations": 0, "deletion_pairs": 0}
    for s, group in enumerate(groups):
        rows = _sample(factory, setup, group, seed + 1000 * s, negatives, batch, finder,
                       where, gen)
        prec = [r.precision for r in rows if r.precision is not None]
        pairs = [r for r in rows if r.drop_cited is not None and r.drop_random is not None]
        counts["users"] += len(rows)
        counts["explained_with_citations"] += sum(r.cited > 0 for r in rows)
        counts["deletion_pairs"] += len(pairs)

        def mean(xs: list[float]) -> float | None:
            return float(np.mean(xs)) if xs else None

        per.append({
            "citation_precision": mean(prec),
            "cited_per_explanation": float(np.mean([r.cited for r in rows])),
            "drop_cited": mean([float(r.drop_cited or 0) for r in pairs]),
            "drop_random": mean([float(r.drop_random or 0) for r in pairs]),
            "paired_difference": mean([float((r.drop_cited or 0) - (r.drop_random or 0))
                                       for r in pairs]),
            "left_top_cited": mean([float((r.drop_cited or 0) > 0) for r in pairs]),
            "left_top_random": mean([float((r.drop_random or 0) > 0) for r in pairs]),
        })
    return {"samples": len(groups), "users_per_sample": len(groups[0]),
            "negatives": negatives, "candidates": candidates or "sampled",
            "seed": seed, **counts,
            "metrics": {m: interval([v for p in per if (v := p[m]) is not None])
                        for m in per[0]}}
