"""The LLM brain: an Agent4Rec-style user simulator driven by a chat model.

Two decision modes, one set of trace events:

* ``structured`` (chat models): one prompt per page asks for JSON naming items by
  catalogue id; the answer is validated by pydantic plus a check that every shown item
  is answered exactly once; invalid output is re-asked up to ``max_repairs`` times, then
  raised as a ``DecisionFailure`` that the run records.
* ``scored`` (base models such as the local Gemma 270M): each sub-decision is read from
  next-token log-probabilities over a fixed answer set (yes/no, 1-5 stars, one-ten, the
  page feeling among ``FEELINGS``), so every decision is valid by construction.

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

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agents.aio import run_sync
from agents.brains.base import (
    ConversationView,
    DecisionFailure,
    InterviewAnswer,
    ItemDecision,
    PageDecision,
    PageObservation,
    Said,
    SessionSummary,
    TurnVerdict,
)
from agents.brains.llm_social import LLMSocial
from agents.brains.prompts import (
    conversation_vars,
    item_line,
    page_vars,
    profile_vars,
    render,
    session_vars,
)
from agents.profile import UserProfile
from scenarios.schema import SATISFACTION_WORDS, BrainConfig
from tools.world import World

if TYPE_CHECKING:
    from agents.llm import ChatReply, LLMClient, StructuredResult

T = TypeVar("T", bound=BaseModel)

__all__ = ["FEELINGS", "InterviewReply", "ItemReply", "LLMBrain", "PageReply", "RatingsReply"]

# The fixed answers of the scored page-feeling question (the utility brain's words too).
FEELINGS = ("pleased", "mixed", "bored")
_NUMBER_WORDS = tuple(f" {w}" for w in SATISFACTION_WORDS)


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


class VerdictReply(_Reply):
    accept: str | None = None
    give_up: bool = False
    feedback: str = ""


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


class _Calls:
    """How the brain reaches its client: blocking (the sync methods, run by ``run_sync``)
    or awaiting (the async ones, on the population's event loop). The decision code is
    written once, as coroutines, against this."""

    def __init__(self, client: LLMClient, blocking: bool) -> None:
        self.client, self.blocking = client, blocking

    async def chat(self, messages: Sequence[tuple[str, str]], *, agent: str,
                   purpose: str) -> ChatReply:
        if self.blocking:
            return self.client.chat(messages, agent=agent, purpose=purpose)
        return await self.client.achat(messages, agent=agent, purpose=purpose)

    async def score(self, prompt: str, options: Sequence[str], *, agent: str,
                    purpose: str) -> list[float]:
        if self.blocking:
            reply = self.client.score(prompt, list(options), agent=agent, purpose=purpose)
        else:
            reply = await self.client.ascore(prompt, list(options), agent=agent,
                                             purpose=purpose)
        return list(reply.logprobs)

    async def structured(self, messages: Sequence[tuple[str, str]], schema: type[T], *,
                         agent: str, purpose: str, max_repairs: int,
                         check: Callable[[T], None] | None) -> StructuredResult[T]:
        from agents.llm import aask_structured, ask_structured

        if self.blocking:
            return ask_structured(self.client, messages, schema, agent=agent,
                                  purpose=purpose, max_repairs=max_repairs, check=check)
        return await aask_structured(self.client, messages, schema, agent=agent,
                                     purpose=purpose, max_repairs=max_repairs, check=check)


class LLMBrain(LLMSocial):
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
        self._sync, self._async = _Calls(client, True), _Calls(client, False)

    # ------------------------------------------------------------------ helpers

    def _render(self, name: str, profile: UserProfile, **more: Any) -> str:
        """The role's template ``name`` filled with the profile's variables and ``more``."""
        values = {**profile_vars(profile, self.world.catalog, self.role, self.instructions),
                  **more}
        return render(getattr(self.prompts, name), name, values)

    def _page_vars(self, obs: PageObservation) -> dict[str, Any]:
        return page_vars(obs, self.world.catalog, self.world.item_mean, self.max_pages)

    def _messages(self, profile: UserProfile, user_prompt: str) -> list[tuple[str, str]]:
        return [("system", self._render("system", profile)), ("user", user_prompt)]

    async def _ask(self, io: _Calls, profile: UserProfile, prompt: str, schema: type[T],
                   purpose: str, check: Any = None) -> tuple[T, int]:
        res = await io.structured(self._messages(profile, prompt), schema,
                                  agent=profile.user_id, purpose=purpose,
                                  max_repairs=self.cfg.max_repairs, check=check)
        if res.value is None:
            raise DecisionFailure(purpose, res.error or "invalid output", list(res.raw),
                                  res.attempts)
        return res.value, res.attempts

    async def _score(self, io: _Calls, profile: UserProfile, name: str,
                     options: tuple[str, ...], purpose: str, **more: Any) -> np.ndarray:
        prompt = self._render(name, profile, **more)
        lp = await io.score(prompt, options, agent=profile.user_id, purpose=purpose)
        return np.asarray(lp, dtype=np.float64)

    def _line(self, item: int) -> str:
        return item_line(self.world.catalog, item, float(self.world.item_mean[item]))

    # ------------------------------------------------------------------ sync and async faces
    # Each decision is one coroutine taking the way to call the client; the sync method
    # drives it with blocking calls, the async one (the population's executor) awaits.

    def decide_page(self, obs: PageObservation, rng: np.random.Generator) -> PageDecision:
        return run_sync(self._decide_page(self._sync, obs))

    async def adecide_page(self, obs: PageObservation,
                           rng: np.random.Generator) -> PageDecision:
        return await self._decide_page(self._async, obs)

    def interview(self, session: SessionSummary, rng: np.random.Generator) -> InterviewAnswer:
        return run_sync(self._interview(self._sync, session))

    async def ainterview(self, session: SessionSummary,
                         rng: np.random.Generator) -> InterviewAnswer:
        return await self._interview(self._async, session)

    def rate_items(
        self, profile: UserProfile, items: tuple[int, ...], rng: np.random.Generator
    ) -> list[int]:
        return run_sync(self._rate_items(self._sync, profile, items))

    def reflect(self, profile: UserProfile, memories: list[str],
                rng: np.random.Generator) -> str:
        return run_sync(self._reflect(self._sync, profile, memories))

    async def areflect(self, profile: UserProfile, memories: list[str],
                       rng: np.random.Generator) -> str:
        return await self._reflect(self._async, profile, memories)

    def think(self, agent: str, purpose: str, prompt: str) -> str:
        """Free text for a planner step (the planner parses it)."""
        return run_sync(self._think(self._sync, agent, purpose, prompt))

    async def athink(self, agent: str, purpose: str, prompt: str) -> str:
        return await self._think(self._async, agent, purpose, prompt)

    def describe(self, view: ConversationView, rng: np.random.Generator) -> Said:
        return run_sync(self._describe(self._sync, view))

    async def adescribe(self, view: ConversationView, rng: np.random.Generator) -> Said:
        return await self._describe(self._async, view)

    def judge(self, view: ConversationView, rng: np.random.Generator) -> TurnVerdict:
        return run_sync(self._judge(self._sync, view))

    async def ajudge(self, view: ConversationView, rng: np.random.Generator) -> TurnVerdict:
        return await self._judge(self._async, view)

    def watch_threshold(self, prof: UserProfile) -> float:
        """Margin a scored decision must clear: the user's calibrated quantile (cached)."""
        return run_sync(self._threshold(self._sync, prof))

    # ------------------------------------------------------------------ decisions

    async def _decide_page(self, io: _Calls, obs: PageObservation) -> PageDecision:
        if self.mode == "scored":
            return await self._decide_scored(io, obs)
        cat = self.world.catalog
        shown = [cat.item_ids[i] for i in obs.items]
        prompt = self._render("page", obs.profile, **self._page_vars(obs))

        def check(reply: BaseModel) -> None:
            assert isinstance(reply, PageReply)
            _check_ids(shown, [it.item_id for it in reply.items])
            unrated = [it.item_id for it in reply.items if it.watch and it.rating is None]
            if unrated:
                raise ValueError(f"watched items need a rating 1-5: {', '.join(unrated)}")

        reply, attempts = await self._ask(io, obs.profile, prompt, PageReply, "page", check)
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
                            inputs={"attempts": attempts, "feeling_source": "model"})

    async def _margin(self, io: _Calls, prof: UserProfile, item: int,
                      page: dict[str, Any]) -> tuple[float, np.ndarray]:
        yes_no = await self._score(io, prof, "scored_watch", (" yes", " no"), "watch",
                                   item=self._line(item), **page)
        return float(yes_no[0] - yes_no[1]), yes_no

    def calibration_items(self, prof: UserProfile) -> list[int]:
        """The items whose margins set this user's threshold (seeded by the user)."""
        pop = self.world.popularity.astype(np.float64) + 1.0
        k = min(self.cfg.calibration_items, len(pop))
        rng = np.random.default_rng(np.random.SeedSequence([prof.user, 53]))
        return [int(i) for i in rng.choice(len(pop), size=k, replace=False, p=pop / pop.sum())]

    async def _threshold(self, io: _Calls, prof: UserProfile) -> float:
        hit = self._thresholds.get(prof.user)
        if hit is None:
            if self.cfg.calibration_items == 0:
                hit = 0.0
            else:
                # Each calibration item as if alone on a fresh first page.
                margins = [(await self._margin(io, prof, i, self._page_vars(PageObservation(
                    profile=prof, round=0, page=1, items=(i,), memory=()))))[0]
                    for i in self.calibration_items(prof)]
                rate = self.cfg.watch_rates[min(max(prof.activity, 1), 3) - 1]
                hit = float(np.quantile(margins, 1.0 - rate))
            self._thresholds[prof.user] = hit
        return hit

    async def _decide_scored(self, io: _Calls, obs: PageObservation) -> PageDecision:
        prof = obs.profile
        page = self._page_vars(obs)
        threshold = await self._threshold(io, prof)
        decisions = []
        for i in obs.items:
            margin, yes_no = await self._margin(io, prof, i, page)
            watch = margin > threshold
            rating = None
            inputs: dict[str, Any] = {"logprob_yes": _r(yes_no[0]), "logprob_no": _r(yes_no[1]),
                                      "threshold": _r(threshold),
                                      "score": _r(margin - threshold)}
            if watch:
                stars = await self._score(io, prof, "scored_rating",
                                          tuple(f" {k}" for k in range(1, 6)), "rating",
                                          item=self._line(i))
                rating = int(np.argmax(stars)) + 1
                inputs["rating_logprobs"] = [_r(x) for x in stars]
            reason = (f"{'watch' if watch else 'skip'}: log P(yes) - log P(no) = "
                      f"{margin:+.2f} vs threshold {threshold:+.2f}")
            decisions.append(ItemDecision(i, watch, rating, reason, inputs))
        n_watched = sum(d.watch for d in decisions)
        # The feeling is the model's own answer too (asked before the leave question, so
        # the persona prefix of the item prompts is still in the KV cache).
        feel_lp = await self._score(io, prof, "scored_feeling",
                                    tuple(f" {f}" for f in FEELINGS), "feeling",
                                    n_watched=n_watched, n_shown=len(decisions), **page)
        feeling = FEELINGS[int(np.argmax(feel_lp))]
        leave_lp = await self._score(io, prof, "scored_leave", (" yes", " no"), "leave",
                                     n_watched=n_watched, n_shown=len(decisions), **page)
        leave = bool(leave_lp[0] > leave_lp[1])
        return PageDecision(tuple(decisions), leave, feeling,
                            {"logprob_leave": _r(leave_lp[0]), "logprob_stay": _r(leave_lp[1]),
                             "feeling_logprobs": dict(zip(FEELINGS, (_r(x) for x in feel_lp),
                                                          strict=True)),
                             "feeling_source": "model"})

    async def _interview(self, io: _Calls, session: SessionSummary) -> InterviewAnswer:
        sv = session_vars(session, self.world.catalog)
        if self.mode == "scored":
            lp = await self._score(io, session.profile, "scored_satisfaction", _NUMBER_WORDS,
                                   "interview", **sv)
            sat = int(np.argmax(lp)) + 1
            return InterviewAnswer(
                sat, f"scored answer: satisfaction {sat}/10 (most likely of one..ten); "
                f"watched {sv['n_watched']} of {sv['n_shown']}",
                {"logprob_best": _r(lp.max())})
        prompt = self._render("interview", session.profile, **sv)
        reply, attempts = await self._ask(io, session.profile, prompt, InterviewReply,
                                          "interview")
        return InterviewAnswer(reply.satisfaction, reply.reason, {"attempts": attempts})

    async def _rate_items(self, io: _Calls, profile: UserProfile,
                          items: tuple[int, ...]) -> list[int]:
        if self.mode == "scored":
            return [int(np.argmax(await self._score(
                io, profile, "scored_rating", tuple(f" {k}" for k in range(1, 6)), "rating",
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

        reply, _ = await self._ask(io, profile, prompt, RatingsReply, "rate", check)
        by_id = {r.item_id: r.rating for r in reply.ratings}
        return [by_id[i] for i in ids]

    async def _reflect(self, io: _Calls, profile: UserProfile, memories: list[str]) -> str:
        prompt = self._render("reflection", profile, reflection_input="\n".join(memories))
        if self.mode == "scored":
            # A base model rambles; a reflection from its scored choices is more honest.
            watched = sum(1 for m in memories if m.startswith("watched"))
            return f"I watched {watched} of the last {len(memories)} recommendations."
        reply = await io.chat(self._messages(profile, prompt), agent=profile.user_id,
                              purpose="reflection")
        return reply.text.strip()[:500]

    async def _think(self, io: _Calls, agent: str, purpose: str, prompt: str) -> str:
        messages = [("system", "You help a movie viewer decide. Answer only in the format "
                     "asked."), ("user", prompt)]
        return (await io.chat(messages, agent=agent, purpose=purpose)).text

    # ------------------------------------------------------------------ conversations

    def _redact(self, text: str, target: int) -> tuple[str, bool]:
        # The user must describe the target, not name it: a title in the text is masked.
        title = self.world.catalog.titles[target]
        if title and title.lower() in text.lower():
            i = text.lower().index(title.lower())
            return text[:i] + "that movie" + text[i + len(title):], True
        return text, False

    async def _describe(self, io: _Calls, view: ConversationView) -> Said:
        cv = conversation_vars(view, self.world.catalog, self.world.item_mean)
        prompt = self._render("conversation_open", view.profile, **cv)
        raw = (await io.chat(self._messages(view.profile, prompt),
                             agent=view.profile.user_id, purpose="describe")).text
        text, redacted = self._redact(raw.strip().split("\n")[0][:400], view.target)
        return Said(text or "I'm looking for a movie I'll like.", {"redacted": redacted})

    async def _judge(self, io: _Calls, view: ConversationView) -> TurnVerdict:
        cat = self.world.catalog
        if self.mode == "scored":
            margins = []
            for i in view.recommended:
                lp = await self._score(io, view.profile, "scored_match", (" yes", " no"),
                                       "match", item=self._line(i),
                                       target=self._line(view.target))
                margins.append(float(lp[0] - lp[1]))
            best = int(np.argmax(margins)) if margins else -1
            accept = view.recommended[best] if best >= 0 and margins[best] > 0 else None
            patience = max(1, view.patience + (view.profile.activity - 2))
            give_up = accept is None and view.turn >= patience
            genres = ", ".join(cat.genres[view.target]) or "something else"
            feedback = "" if accept is not None else f"Not these; I want {genres}."
            return TurnVerdict(accept, give_up, feedback, {
                "margins": [_r(m) for m in margins], "feedback_source": "computed",
                "give_up_source": "patience"})
        shown = [cat.item_ids[i] for i in view.recommended]
        cv = conversation_vars(view, cat, self.world.item_mean)
        prompt = self._render("conversation_turn", view.profile, **cv)

        def check(reply: BaseModel) -> None:
            assert isinstance(reply, VerdictReply)
            if reply.accept not in (None, "null", "") and reply.accept not in shown:
                raise ValueError(f"accept must be one of {', '.join(shown)} or null")

        reply, attempts = await self._ask(io, view.profile, prompt, VerdictReply, "judge",
                                          check)
        accept = (cat.index[reply.accept] if reply.accept not in (None, "null", "")
                  else None)
        feedback, redacted = self._redact(reply.feedback, view.target)
        return TurnVerdict(accept, bool(reply.give_up) and accept is None, feedback,
                           {"attempts": attempts, "redacted": redacted})
