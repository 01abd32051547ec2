"""The utility brain: a RecSim-style numeric choice model, no LLM.

Per item on a page the utility is

    taste_weight      * z(user taste . item embedding) / 2   (z: per-user standardised)
  + conformity_weight * (conformity - 1) / 2 * (item mean rating - global mean)
  + popularity_weight * log-popularity in [0, 1]
  - fatigue           * (page - 1)
  - repetition        * (genres already watched this session, less for diverse users)
  + noise             * N(0, 1)

and the item is watched when the utility clears ``watch_threshold`` (lower by
``activity_shift`` per activity level above 2). The taste embedding is a low-rank EASE
model of the history (tools/item_space.py), so "matches my taste" means what a strong
collaborative model predicts for this user. A watched item's rating is

    global mean + rating_conformity * (item mean - global mean) + the user's rating bias
  + rating_taste * (liking . item embedding)

stretched by ``rating_spread`` around the global mean, plus rating_noise * N(0, 1), and
rounded to 1-5 stars. After each page the user leaves with probability
sigmoid(exit_base + exit_per_page * (page - 1) - exit_satisfaction * page satisfaction);
the exit interview maps the session's watch rate and ratings to 1-10 through a sigmoid
centred on ``satisfaction_center``. The shipped parameters are fitted on tuning users by
bench/tune_utility.py.
"""

from __future__ import annotations

import numpy as np

from agents.brains.base import (
    ConversationView,
    InterviewAnswer,
    ItemDecision,
    PageDecision,
    PageObservation,
    Said,
    SessionSummary,
    TurnVerdict,
)
from agents.brains.social import UtilitySocial, conformity_factor
from agents.profile import UserProfile
from scenarios.schema import UtilityParams
from tools.world import World

# World lives in tools.world; re-exported here for callers of the old path.
__all__ = ["UtilityBrain", "World"]


def _r(x: float) -> float:
    # Rounded floats keep traces short and byte-stable across platforms' last-digit noise.
    return round(float(x), 5)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


class UtilityBrain(UtilitySocial):
    """Decides watch / skip, rating, leave and satisfaction from numbers alone (and, in a
    social world, what to do at a tick and what to tell: ``UtilitySocial``)."""

    name = "utility"

    def __init__(self, world: World, params: UtilityParams | None = None) -> None:
        self.world = world
        self.p = params or UtilityParams()
        self._baselines: dict[int, tuple[float, float]] = {}

    def utilities(
        self, obs: PageObservation, noise: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Utility of each item on the page and its named components."""
        w, p, prof = self.world, self.p, obs.profile
        items = np.asarray(obs.items, dtype=np.int64)
        mu, sd = self._baseline(prof)
        taste = 0.5 * p.taste_weight * (w.embeddings[items] @ prof.taste - mu) / sd
        conform = (p.conformity_weight * (prof.conformity - 1) / 2.0
                   * (w.item_mean[items] - w.global_mean))
        pop = p.popularity_weight * w.popularity_score(items)
        fatigue = np.full(items.shape, -p.fatigue * (obs.page - 1))
        watched_genres = {g for m in obs.memory if m.get("action") == "watch"
                          for g in m.get("genres", ())}
        overlap = np.array([
            len(watched_genres.intersection(w.catalog.genres[i]))
            / max(len(w.catalog.genres[i]), 1) for i in items
        ])
        repetition = -p.repetition * (4 - prof.diversity) / 2.0 * overlap
        eps = p.noise * noise
        parts = {"taste": taste, "conformity": conform, "popularity": pop,
                 "fatigue": fatigue, "repetition": repetition, "noise": eps}
        total = taste + conform + pop + fatigue + repetition + eps
        if obs.social_weight and obs.heard_ties:  # a social world: heard from a tie
            social = (obs.social_weight * conformity_factor(prof)
                      * np.asarray(obs.heard_ties, dtype=np.float64))
            parts["social"] = social
            total = total + social
        return total, parts

    def _baseline(self, prof: UserProfile) -> tuple[float, float]:
        """Mean and spread of the user's taste similarity over the catalogue (cached).

        Similarities are standardised per user so that "matches my taste" means "better
        than a typical item for me", whatever the user's history length.
        """
        hit = self._baselines.get(prof.user)
        if hit is None:
            sims = self.world.embeddings @ prof.taste
            hit = (float(sims.mean()), float(sims.std()) or 1.0)
            self._baselines[prof.user] = hit
        return hit

    def threshold(self, activity: int) -> float:
        return self.p.watch_threshold - self.p.activity_shift * (activity - 2)

    def expected_rating(self, prof: UserProfile, item: int) -> float:
        """The rating before noise and rounding, in stars."""
        w, p = self.world, self.p
        taste = float(w.embeddings[item] @ prof.liking)
        return (w.global_mean + p.rating_conformity * (float(w.item_mean[item]) - w.global_mean)
                + prof.rating_bias + p.rating_taste * taste)

    def rate(self, obs: PageObservation, item: int, noise: float) -> int:
        gm = self.world.global_mean
        stars = (gm + self.p.rating_spread * (self.expected_rating(obs.profile, item) - gm)
                 + self.p.rating_noise * noise)
        return int(np.clip(np.rint(stars), 1, 5))

    def decide_page(self, obs: PageObservation, rng: np.random.Generator) -> PageDecision:
        n = len(obs.items)
        noise = rng.standard_normal(n)
        rating_noise = rng.standard_normal(n)
        util, parts = self.utilities(obs, noise)
        thr = self.threshold(obs.profile.activity)
        decisions = []
        for k, item in enumerate(obs.items):
            watch = bool(util[k] > thr)
            inputs = {name: _r(v[k]) for name, v in parts.items()}
            inputs["utility"] = _r(util[k])
            inputs["threshold"] = _r(thr)
            # The decision's margin before noise: what a threshold-free evaluation ranks by.
            inputs["score"] = _r(util[k] - parts["noise"][k] - thr)
            rating = self.rate(obs, item, float(rating_noise[k])) if watch else None
            top = max(("taste", "conformity", "popularity"), key=lambda c: inputs[c])
            reason = (f"watch: {top} pulls" if watch else
                      f"skip: utility {inputs['utility']:.2f} below {inputs['threshold']:.2f}")
            decisions.append(ItemDecision(item, watch, rating, reason, inputs))
        watched = [d for d in decisions if d.watch]
        share = len(watched) / max(n, 1)
        mean_r = float(np.mean([d.rating for d in watched])) if watched else 0.0
        page_sat = share * (0.5 + (mean_r - 1.0) / 8.0) if watched else 0.0
        logit = (self.p.exit_base + self.p.exit_per_page * (obs.page - 1)
                 - self.p.exit_satisfaction * page_sat
                 + 0.3 * (2 - obs.profile.activity))
        p_leave = _sigmoid(logit)
        draw = float(rng.random())
        leave = draw < p_leave
        feeling = ("pleased" if page_sat >= 0.5 else "mixed" if page_sat > 0 else "bored")
        return PageDecision(
            items=tuple(decisions),
            leave=leave,
            feeling=feeling,
            inputs={"page_satisfaction": _r(page_sat), "p_leave": _r(p_leave),
                    "draw": _r(draw), "feeling_source": "computed"},
        )

    def rate_items(
        self, profile: UserProfile, items: tuple[int, ...], rng: np.random.Generator
    ) -> list[int]:
        obs = PageObservation(profile, 0, 1, items, ())
        noise = rng.standard_normal(len(items))
        return [self.rate(obs, it, float(noise[k])) for k, it in enumerate(items)]

    def reflect(self, profile: UserProfile, memories: list[str],
                rng: np.random.Generator) -> str:
        watched = sum(1 for m in memories if m.startswith("watched"))
        return (f"Of my last {len(memories)} recommendations I watched {watched}; "
                f"I still like {', '.join(profile.liked_genres) or 'many genres'} most.")

    def interview(self, session: SessionSummary, rng: np.random.Generator) -> InterviewAnswer:
        p = self.p
        watch_rate = len(session.watched) / max(session.shown, 1)
        mean_r = float(np.mean(session.ratings)) if session.ratings else 0.0
        liking = (mean_r - session.profile.rating_mean) if session.ratings else -1.0
        x = (p.satisfaction_slope * (watch_rate - p.satisfaction_center) + liking
             + 0.1 * (session.pages - 3))
        noise = float(rng.standard_normal()) * p.satisfaction_noise
        sat = int(np.clip(np.rint(1.0 + 9.0 * _sigmoid(x) + noise), 1, 10))
        genres: dict[str, int] = {}
        for i in session.watched:
            for g in self.world.catalog.genres[i]:
                genres[g] = genres.get(g, 0) + 1
        top = sorted(genres, key=lambda g: (-genres[g], g))[:2]
        watched_txt = (f"watched {len(session.watched)} of {session.shown} "
                       f"recommendations" + (f", mostly {' and '.join(top)}" if top else ""))
        rated_txt = f"; rated them {mean_r:.1f} on average" if session.ratings else ""
        left_txt = (f"; left after page {session.pages}" if session.left_early
                    else f"; browsed all {session.pages} pages")
        return InterviewAnswer(
            satisfaction=sat,
            reason=f"I {watched_txt}{rated_txt}{left_txt}.",
            inputs={"watch_rate": _r(watch_rate), "mean_rating": _r(mean_r),
                    "x": _r(x), "noise": _r(noise)},
        )

    # ------------------------------------------------------------------ capabilities
    # The agent graph awaits a brain's capabilities (agents.brains.capabilities); numeric
    # decisions have nothing to wait for, so these only wrap the plain methods.

    async def adecide_page(self, obs: PageObservation,
                           rng: np.random.Generator) -> PageDecision:
        return self.decide_page(obs, rng)

    async def ainterview(self, session: SessionSummary,
                         rng: np.random.Generator) -> InterviewAnswer:
        return self.interview(session, rng)

    async def areflect(self, profile: UserProfile, memories: list[str],
                       rng: np.random.Generator) -> str:
        return self.reflect(profile, memories, rng)

    async def adescribe(self, view: ConversationView, rng: np.random.Generator) -> Said:
        return self.describe(view, rng)

    async def ajudge(self, view: ConversationView, rng: np.random.Generator) -> TurnVerdict:
        return self.judge(view, rng)

    # ------------------------------------------------------------------ conversations

    def _facts(self, view: ConversationView, rng: np.random.Generator) -> list[str]:
        """What this user can say about the target, most telling first, with noise.

        Genres (each left out with probability ``noise``, and a wrong one slipped in with
        the same probability), the decade, and the liked past movies closest to the target
        ("something like X"). Never the target's own title.
        """
        cat, t = self.world.catalog, view.target
        genres = [g for g in cat.genres[t] if rng.random() >= view.noise] or list(cat.genres[t][:1])
        if rng.random() < view.noise:
            others = sorted({g for gs in cat.genres for g in gs} - set(cat.genres[t]))
            if others:
                genres.append(others[int(rng.integers(len(others)))])
        facts = [f"a {' and '.join(genres)} movie"] if genres else []
        year = cat.years[t]
        if year[:4].isdigit() and rng.random() >= view.noise:
            facts.append(f"from the {year[2]}0s")
        liked = [cat.index[i] for i in view.profile.liked_items if i in cat.index and
                 cat.index[i] != t]
        if liked:
            sims = self.world.embeddings[liked] @ self.world.embeddings[t]
            for k in np.argsort(-sims, kind="stable")[:3]:
                facts.append(f"something like {cat.titles[liked[int(k)]]}")
        return facts

    def describe(self, view: ConversationView, rng: np.random.Generator) -> Said:
        facts = self._facts(view, rng)
        said = [f for f in facts if not any(f in s for s in view.said)]
        first = said[:2] or facts[:1]
        text = ("I'm looking for " + ", ".join(first) + "." if first
                else "I'm looking for something I'll like.")
        return Said(text, {"facts": first, "known_facts": len(facts)})

    def judge(self, view: ConversationView, rng: np.random.Generator) -> TurnVerdict:
        patience = max(1, view.patience + (view.profile.activity - 2))
        inputs = {"patience": patience, "target_shown": view.target in view.recommended}
        if view.target in view.recommended:
            return TurnVerdict(view.target, False, "Yes, that one.", inputs)
        if view.turn >= patience:
            return TurnVerdict(None, True, "None of these; I give up.", inputs)
        facts = self._facts(view, rng)
        # Genres were said when the conversation opened; new leads are more telling.
        new = [f for f in facts[1:] if not any(f in s for s in view.said)]
        hint = new[0] if new else (facts[0] if facts else "something else")
        return TurnVerdict(None, False, f"Not these. I want {hint}.", inputs)
