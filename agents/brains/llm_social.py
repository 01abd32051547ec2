"""The LLM brain in a social world: what to do at a tick, and what to say (structured).

Mixed into ``LLMBrain``. Both answers are JSON with catalogue ids (never titles read back
from free text); an id the user was not shown, a partner who is not a free tie, or an
activity the world does not allow now is sent back for repair like any invalid answer,
and after the role's repairs the step is a traced decision failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from agents.brains.prompts import item_line, render
from agents.brains.social import Heard, SocialDecision, SocialView, SpeakView, Utterance
from scenarios.schema import TEMPLATE_VARIABLES

if TYPE_CHECKING:
    from agents.profile import UserProfile
    from tools.world import World

T = TypeVar("T", bound=BaseModel)

__all__ = ["ChoiceReply", "LLMSocial", "SpeakReply"]


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ChoiceReply(_Reply):
    activity: str
    partner: str | None = None
    item_id: str | None = None
    query: str = ""
    reason: str = ""


class SpeakReply(_Reply):
    text: str
    mentions: list[str] = []


def _memories(memory: tuple[dict[str, Any], ...]) -> str:
    lines = [f"- {m['action']} {m.get('title', m.get('item', ''))}" for m in memory]
    return "\n".join(lines) or "- nothing yet"


class LLMSocial:
    """Social capabilities of ``LLMBrain`` (``SocialActor``, ``SocialSpeaker``)."""

    if TYPE_CHECKING:  # provided by LLMBrain
        world: World
        _async: Any
        mode: str
        prompts: Any

        async def _score(self, io: Any, profile: UserProfile, name: str,
                         options: tuple[str, ...], purpose: str, **more: Any) -> np.ndarray: ...

        def _render(self, name: str, profile: UserProfile, **more: Any) -> str: ...

        async def _ask(self, io: Any, profile: UserProfile, prompt: str, schema: type[T],
                       purpose: str, check: Any = None) -> tuple[T, int]: ...

    def _lines(self, items: list[int]) -> str:
        return "\n".join(f"- {item_line(self.world.catalog, i)}" for i in items) or "- none"

    def _heard_lines(self, heard: tuple[Heard, ...]) -> str:
        return "\n".join(
            f"- {item_line(self.world.catalog, h.item)} | told by user {h.source} in a "
            f"{h.via} (tie {h.tie:.2f})" for h in heard) or "- nothing"

    async def achoose(self, view: SocialView,
                      rng: np.random.Generator) -> SocialDecision:
        if self.mode == "scored":
            return await self._choose_scored(view)
        cat = self.world.catalog
        heard_ids = {cat.item_ids[h.item]: h.item for h in view.heard}
        friends = {str(u): u for u in view.neighbours}
        prompt = self._render(
            "social_choice", view.profile, memories=_memories(view.memory), tick=view.tick,
            heard=self._heard_lines(view.heard),
            recent=self._lines([i for i, _ in view.recent]),
            activities=", ".join(view.allowed),
            friends="\n".join(f"- user {u} (tie {t:.2f})"
                              for u, t in zip(view.neighbours, view.ties, strict=True))
            or "- nobody is free")

        def check(reply: BaseModel) -> None:
            assert isinstance(reply, ChoiceReply)
            if reply.activity not in view.allowed:
                raise ValueError(f"activity must be one of {', '.join(view.allowed)}")
            if reply.activity == "chat" and str(reply.partner) not in friends:
                raise ValueError("partner must be the user id of a free friend "
                                 f"({', '.join(friends) or 'none'})")
            if reply.activity == "search" and not (reply.query or reply.item_id):
                raise ValueError("search needs an item_id you heard about or a query")
            if reply.item_id not in (None, "", "null") and reply.item_id not in heard_ids:
                raise ValueError(f"item_id must be one you heard about "
                                 f"({', '.join(heard_ids) or 'none'}) or null")

        reply, attempts = await self._ask(self._async, view.profile, prompt, ChoiceReply,
                                          "social_choice", check)
        item = heard_ids.get(reply.item_id or "")
        query = reply.query or (cat.titles[item] if item is not None else "")
        return SocialDecision(
            reply.activity, partner=friends.get(str(reply.partner))  # type: ignore[arg-type]
            if reply.activity == "chat" else None,
            item=item if reply.activity == "search" else None, query=query,
            reason=reply.reason[:300], inputs={"attempts": attempts})

    async def _choose_scored(self, view: SocialView) -> SocialDecision:
        """A base model picks the activity (the most likely allowed word); whom to chat
        with and what to search for follow the strongest tie and the latest heard item."""
        cat = self.world.catalog
        allowed = [a for a in view.allowed if a != "chat" or view.neighbours]
        allowed = [a for a in allowed if a != "search" or view.heard]
        words = tuple(f" {a}" for a in allowed)
        lp = await self._score(
            self._async, view.profile, "scored_social_choice", words, "social_choice",
            tick=view.tick, activities=", ".join(allowed),
            heard="; ".join(cat.titles[h.item] for h in view.heard) or "nothing")
        # Contextual calibration (Zhao et al., 2021): a small base model prefers some words
        # whoever asks; what this user's profile adds is the difference from a prompt that
        # says nothing about anyone.
        prior = await self._social_prior(view.profile.user_id, tuple(allowed))
        act = allowed[int(np.argmax(lp - prior))]
        inputs = {"logprobs": {a: round(float(x), 4) for a, x in zip(allowed, lp,
                                                                      strict=True)},
                  "prior": {a: round(float(x), 4) for a, x in zip(allowed, prior,
                                                                  strict=True)}}
        if act == "chat":
            k = int(np.argmax(view.ties))
            return SocialDecision("chat", partner=view.neighbours[k], inputs=inputs,
                                  reason=f"talks to the closest free tie ({view.ties[k]:.2f})")
        if act == "search":
            h = view.heard[-1]
            return SocialDecision("search", item=h.item, query=cat.titles[h.item],
                                  reason="looks for what a friend told", inputs=inputs)
        return SocialDecision(act, reason=f"the model's most likely: {act}",
                              inputs=inputs)

    async def _social_prior(self, agent: str, allowed: tuple[str, ...]) -> np.ndarray:
        """Log-probabilities of the activity words for a content-free prompt (every
        variable "N/A"), once per set of allowed activities."""
        cache: dict[tuple[str, ...], np.ndarray] = self.__dict__.setdefault("_priors", {})
        if allowed not in cache:
            name = "scored_social_choice"
            values = dict.fromkeys(TEMPLATE_VARIABLES[name], "N/A")
            values["activities"] = ", ".join(allowed)
            prompt = render(getattr(self.prompts, name), name, values)
            lp = await self._async.score(prompt, tuple(f" {a}" for a in allowed),
                                         agent=agent, purpose="social_prior")
            cache[allowed] = np.asarray(lp, dtype=np.float64)
        return cache[allowed]

    async def _speak_scored(self, view: SpeakView) -> Utterance:
        """The movie told is chosen as the utility brain would (the best recent watch not
        yet mentioned); the base model writes the line about it."""
        fresh = [(i, r) for i, r in reversed(view.recent) if r >= 4 and i not in view.mentioned]
        if not fresh:
            return Utterance("Nothing new from me lately.", (), {"source": "computed"})
        item, _ = max(fresh, key=lambda x: x[1])
        prompt = self._render(
            "scored_social_text", view.profile, mode=view.mode,
            partner=f"user {view.partner}" if view.partner is not None else "followers",
            item=item_line(self.world.catalog, item),
            transcript="".join(f"{who}: {text}\n" for who, text in view.transcript))
        reply = await self._async.chat([("user", prompt)], agent=view.profile.user_id,
                                       purpose=f"social_{view.mode}")
        text = reply.text.split('"')[0].strip()[:300] or \
            f"I watched {self.world.catalog.titles[item]}."
        return Utterance(text, (item,), {"source": "model"})

    async def aspeak(self, view: SpeakView, rng: np.random.Generator) -> Utterance:
        if self.mode == "scored":
            return await self._speak_scored(view)
        cat = self.world.catalog
        known = {cat.item_ids[i]: i for i, _ in view.recent}
        known.update({cat.item_ids[h.item]: h.item for h in view.heard})
        prompt = self._render(
            "social_speak", view.profile, memories="- nothing yet", tick=view.tick,
            heard=self._heard_lines(view.heard),
            recent="\n".join(f"- {item_line(cat, i)} | you rated it {r}/5"
                             for i, r in view.recent) or "- nothing",
            mode=view.mode, partner=str(view.partner) if view.partner is not None else "",
            transcript="\n".join(f"{who}: {text}" for who, text in view.transcript)
            or "(nothing yet)")

        def check(reply: BaseModel) -> None:
            assert isinstance(reply, SpeakReply)
            unknown = [m for m in reply.mentions if m not in known]
            if unknown:
                allowed = ", ".join(known) or "none"
                raise ValueError(f"mentions must be ids from the lists ({allowed}); "
                                 f"unknown: {', '.join(unknown)}")

        reply, attempts = await self._ask(self._async, view.profile, prompt, SpeakReply,
                                          f"social_{view.mode}", check)
        mentions = tuple(dict.fromkeys(known[m] for m in reply.mentions))
        return Utterance(reply.text.strip()[:500], mentions, {"attempts": attempts})
