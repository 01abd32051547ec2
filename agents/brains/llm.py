"""The LLM brain: an Agent4Rec-style user simulator driven by a chat model.

Two decision modes, one set of trace events:

* ``structured`` (chat models): one prompt per page asks for JSON naming items by
  catalogue id; the answer is validated by pydantic plus a check that every shown item
  is answered exactly once; invalid output is re-asked up to ``max_repairs`` times, then
  raised as a ``DecisionFailure`` that the run records.
* ``scored`` (base models such as the local Gemma 270M): each sub-decision is read from
  next-token log-probabilities over a fixed answer set (yes/no, 1-5 stars, one-ten), so
  every decision is valid by construction.

Calibrated watch decisions (scored mode). A small base model's "yes" beats its "no" for
nearly every item, so "yes > no" watches everything. Instead each user gets a threshold
on the margin log P(yes) - log P(no) relative to its own distribution: the margins of
``calibration_items`` catalogue items (drawn by popularity, fixed per user) are scored
once, and the threshold is their (1 - r) quantile, where r is the role's watch rate for
the user's activity trait; an item is watched when its margin clears the threshold. The
margin minus the threshold is the decision's ``score`` (what threshold-free evaluations
rank by).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agents.brains.base import (
    DecisionFailure,
    InterviewAnswer,
    ItemDecision,
    PageDecision,
    PageObservation,
    SessionSummary,
)
from agents.brains.utility import World
from agents.profile import UserProfile
from agents.prompts import item_line, page_vars, profile_vars, render, session_vars
from scenarios.schema import BrainConfig

if TYPE_CHECKING:
    from agents.llm import LLMClient

__all__ = ["InterviewReply", "ItemReply", "LLMBrain", "PageReply", "RatingsReply"]

_NUMBER_WORDS = (" one", " two", " three", " four", " five", " six", " seven", " eight",
                 " nine", " ten")


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ItemReply(_Reply):
    item_id: str
    watch: bool
    confidence: float | None = Field(None, ge=0, le=1)
    rating: int | None = Field(None, ge=1, le=5)
    reason: str = ""


class PageReply(_Reply):
    items: list[ItemReply]
    feeling: str = ""
    leave: bool


class InterviewReply(_Reply):
    satisfaction: int = Field(ge=1, le=10)
    reason: str


class RatingReply(_Reply):
    item_id: str
    rating: int = Field(ge=1, le=5)


class RatingsReply(_Reply):
    ratings: list[RatingReply]


def _check_ids(shown: list[str], answered: list[str]) -> None:
    missing = [i for i in shown if i not in answered]
    unknown = [i for i in answered if i not in shown]
    dupes = sorted({i for i in answered if answered.count(i) > 1})
    problems = []
    if missing:
        problems.append(f"missing item ids {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown item ids {', '.join(unknown)} (use only {', '.join(shown)})")
    if dupes:
        problems.append(f"item ids answered twice: {', '.join(dupes)}")
    if problems:
        raise ValueError("; ".join(problems))


def _r(x: float) -> float:
    return round(float(x), 4)


def _stated_score(reply: ItemReply) -> float:
    """The stated confidence of watching, else the decision itself (1 watch, 0 skip).

    A confidence that contradicts the decision (watch at 0.2) is read as given: it ranks
    items, the decision is still the decision.
    """
    if reply.confidence is not None:
        return _r(reply.confidence)
    return 1.0 if reply.watch else 0.0


class LLMBrain:
    """Decides with a chat model through ``LLMClient`` (limits, cache, budget live there)."""

    name = "llm"

    def __init__(
        self,
        world: World,
        config: BrainConfig,
        client: LLMClient,
        *,
        role: str,
        instructions: str = "",
        max_pages: int = 5,
        mode: Literal["structured", "scored"] = "structured",
    ) -> None:
        self.world, self.cfg, self.client = world, config, client
        self.role, self.instructions, self.max_pages, self.mode = (
            role, instructions, max_pages, mode)
        self.prompts = config.prompts
        self._thresholds: dict[int, float] = {}

    # ------------------------------------------------------------------ helpers

    def _vars(self, profile: UserProfile, **more: Any) -> dict[str, Any]:
        return {**profile_vars(profile, self.world.catalog, self.role, self.instructions),
                **more}

    def _messages(self, profile: UserProfile, user_prompt: str) -> list[tuple[str, str]]:
        return [("system", render(self.prompts.system, self._vars(profile))),
                ("user", user_prompt)]

    def _ask(self, profile: UserProfile, prompt: str, schema: type[BaseModel], purpose: str,
             check: Any = None) -> Any:
        from agents.llm import ask_structured

        res = ask_structured(self.client, self._messages(profile, prompt), schema,
                             agent=profile.user_id, purpose=purpose,
                             max_repairs=self.cfg.max_repairs, check=check)
        if res.value is None:
            raise DecisionFailure(purpose, res.error or "invalid output", list(res.raw),
                                  res.attempts)
        return res.value, res.attempts

    def _score(self, profile: UserProfile, template: str, options: tuple[str, ...],
               purpose: str, **more: Any) -> np.ndarray:
        prompt = render(template, self._vars(profile, **more))
        reply = self.client.score(prompt, list(options), agent=profile.user_id,
                                  purpose=purpose)
        return np.asarray(reply.logprobs, dtype=np.float64)

    def _line(self, item: int) -> str:
        return item_line(self.world.catalog, item, float(self.world.item_mean[item]))

    # ------------------------------------------------------------------ decisions

    def decide_page(self, obs: PageObservation, rng: np.random.Generator) -> PageDecision:
        if self.mode == "scored":
            return self._decide_scored(obs)
        cat = self.world.catalog
        shown = [cat.item_ids[i] for i in obs.items]
        prompt = render(self.prompts.page, self._vars(
            obs.profile, **page_vars(obs, cat, self.world.item_mean, self.max_pages)))

        def check(reply: BaseModel) -> None:
            assert isinstance(reply, PageReply)
            _check_ids(shown, [it.item_id for it in reply.items])
            unrated = [it.item_id for it in reply.items if it.watch and it.rating is None]
            if unrated:
                raise ValueError(f"watched items need a rating 1-5: {', '.join(unrated)}")

        reply, attempts = self._ask(obs.profile, prompt, PageReply, "page", check)
        by_id = {it.item_id: it for it in reply.items}
        items = tuple(
            ItemDecision(
                item=i, watch=by_id[cat.item_ids[i]].watch,
                rating=by_id[cat.item_ids[i]].rating if by_id[cat.item_ids[i]].watch else None,
                reason=by_id[cat.item_ids[i]].reason,
                inputs={"attempts": attempts,
                        "score": _stated_score(by_id[cat.item_ids[i]])},
            )
            for i in obs.items
        )
        return PageDecision(items=items, leave=reply.leave, feeling=reply.feeling,
                            inputs={"attempts": attempts})

    def _margin(self, prof: UserProfile, item: int) -> tuple[float, np.ndarray]:
        yes_no = self._score(prof, self.prompts.scored_watch, (" yes", " no"), "watch",
                             item=self._line(item))
        return float(yes_no[0] - yes_no[1]), yes_no

    def calibration_items(self, prof: UserProfile) -> list[int]:
        """The items whose margins set this user's threshold (seeded by the user)."""
        pop = self.world.popularity.astype(np.float64) + 1.0
        k = min(self.cfg.calibration_items, len(pop))
        rng = np.random.default_rng(np.random.SeedSequence([prof.user, 53]))
        return [int(i) for i in rng.choice(len(pop), size=k, replace=False, p=pop / pop.sum())]

    def watch_threshold(self, prof: UserProfile) -> float:
        """Margin a scored decision must clear: the user's calibrated quantile (cached)."""
        hit = self._thresholds.get(prof.user)
        if hit is None:
            if self.cfg.calibration_items == 0:
                hit = 0.0
            else:
                margins = [self._margin(prof, i)[0] for i in self.calibration_items(prof)]
                rate = self.cfg.watch_rates[min(max(prof.activity, 1), 3) - 1]
                hit = float(np.quantile(margins, 1.0 - rate))
            self._thresholds[prof.user] = hit
        return hit

    def _decide_scored(self, obs: PageObservation) -> PageDecision:
        prof = obs.profile
        threshold = self.watch_threshold(prof)
        decisions = []
        for i in obs.items:
            margin, yes_no = self._margin(prof, i)
            watch = margin > threshold
            rating = None
            inputs: dict[str, Any] = {"logprob_yes": _r(yes_no[0]), "logprob_no": _r(yes_no[1]),
                                      "threshold": _r(threshold),
                                      "score": _r(margin - threshold)}
            if watch:
                stars = self._score(prof, self.prompts.scored_rating,
                                    tuple(f" {k}" for k in range(1, 6)), "rating",
                                    item=self._line(i))
                rating = int(np.argmax(stars)) + 1
                inputs["rating_logprobs"] = [_r(x) for x in stars]
            reason = (f"{'watch' if watch else 'skip'}: log P(yes) - log P(no) = "
                      f"{margin:+.2f} vs threshold {threshold:+.2f}")
            decisions.append(ItemDecision(i, watch, rating, reason, inputs))
        n_watched = sum(d.watch for d in decisions)
        leave_lp = self._score(prof, self.prompts.scored_leave, (" yes", " no"), "leave",
                               page=obs.page, max_pages=self.max_pages, n_watched=n_watched,
                               n_shown=len(decisions))
        leave = bool(leave_lp[0] > leave_lp[1])
        feeling = "pleased" if n_watched >= len(decisions) / 2 else \
            "mixed" if n_watched else "bored"
        return PageDecision(tuple(decisions), leave, feeling,
                            {"logprob_leave": _r(leave_lp[0]), "logprob_stay": _r(leave_lp[1])})

    def interview(self, session: SessionSummary, rng: np.random.Generator) -> InterviewAnswer:
        sv = session_vars(session, self.world.catalog)
        if self.mode == "scored":
            lp = self._score(session.profile, self.prompts.scored_satisfaction, _NUMBER_WORDS,
                             "interview", **sv)
            sat = int(np.argmax(lp)) + 1
            return InterviewAnswer(
                sat, f"scored answer: satisfaction {sat}/10 (most likely of one..ten); "
                f"watched {sv['n_watched']} of {sv['n_shown']}",
                {"logprob_best": _r(lp.max())})
        prompt = render(self.prompts.interview, self._vars(session.profile, **sv))
        reply, attempts = self._ask(session.profile, prompt, InterviewReply, "interview")
        return InterviewAnswer(reply.satisfaction, reply.reason, {"attempts": attempts})

    def rate_items(
        self, profile: UserProfile, items: tuple[int, ...], rng: np.random.Generator
    ) -> list[int]:
        if self.mode == "scored":
            return [int(np.argmax(self._score(profile, self.prompts.scored_rating,
                                              tuple(f" {k}" for k in range(1, 6)), "rating",
                                              item=self._line(i)))) + 1 for i in items]
        cat = self.world.catalog
        ids = [cat.item_ids[i] for i in items]
        prompt = ("You have watched these movies:\n"
                  + "\n".join(self._line(i) for i in items)
                  + "\nRate each from 1 to 5 stars. Answer with JSON only: "
                  + '{"ratings": [{"item_id": "ID", "rating": 4}]}')

        def check(reply: BaseModel) -> None:
            assert isinstance(reply, RatingsReply)
            _check_ids(ids, [r.item_id for r in reply.ratings])

        reply, _ = self._ask(profile, prompt, RatingsReply, "rate", check)
        by_id = {r.item_id: r.rating for r in reply.ratings}
        return [by_id[i] for i in ids]

    def reflect(self, profile: UserProfile, memories: list[str],
                rng: np.random.Generator) -> str:
        prompt = render(self.prompts.reflection,
                        self._vars(profile, reflection_input="\n".join(memories)))
        if self.mode == "scored":
            # A base model rambles; a reflection from its scored choices is more honest.
            watched = sum(1 for m in memories if m.startswith("watched"))
            return f"I watched {watched} of the last {len(memories)} recommendations."
        return self.client.chat(self._messages(profile, prompt), agent=profile.user_id,
                                purpose="reflection").text.strip()[:500]
