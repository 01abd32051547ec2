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

from agents.brains.prompts import item_line
from agents.brains.social import Heard, SocialDecision, SocialView, SpeakView, Utterance

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

    async def aspeak(self, view: SpeakView, rng: np.random.Generator) -> Utterance:
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
