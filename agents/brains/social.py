"""What a brain sees and decides in a social world, and how the utility brain decides it.

Two capabilities (typed protocols, checked for every role at load like the others in
agents.brains.capabilities): ``SocialActor`` picks what an active agent does at a tick
(browse the recommender, search for something, chat with a neighbour, post to followers,
or nothing), and ``SocialSpeaker`` writes one chat line or one post. Items are catalogue
indices; what an agent mentions is a list of them (structured, never parsed from text).

``UtilitySocial`` is the utility brain's numeric version, so a social world runs at scale
without a language model. Its social term is RecAgent's: what a user hears from a close
tie pulls harder, and more so for a conforming user (trait ``conformity`` 1-3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from agents.profile import UserProfile
from tools.world import World

__all__ = [
    "ACTIVITIES",
    "Activity",
    "Heard",
    "SocialActor",
    "SocialDecision",
    "SocialSpeaker",
    "SocialView",
    "SpeakView",
    "UtilitySocial",
    "Utterance",
    "conformity_factor",
]

Activity = Literal["browse", "search", "chat", "post", "idle"]
ACTIVITIES: tuple[Activity, ...] = ("browse", "search", "chat", "post", "idle")


@dataclass(frozen=True)
class Heard:
    """An item an agent heard about and has not watched: from whom, how close, how."""

    item: int
    source: int  # the user index who mentioned it
    tie: float  # tie strength in (0, 1]
    via: Literal["post", "chat"]
    tick: int


@dataclass(frozen=True)
class SocialView:
    """An active agent at one tick: whom it can talk to, what it heard, what it watched."""

    profile: UserProfile
    round: int
    tick: int
    allowed: tuple[Activity, ...]  # what the world lets it do now
    weights: dict[str, float]  # base propensity of each activity (the scenario's)
    neighbours: tuple[int, ...] = ()  # ties free to chat now
    ties: tuple[float, ...] = ()  # aligned with neighbours
    heard: tuple[Heard, ...] = ()  # newest last
    recent: tuple[tuple[int, int], ...] = ()  # (item, rating) watched and not yet posted
    social_weight: float = 1.0
    memory: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class SocialDecision:
    activity: Activity
    partner: int | None = None  # chat: whom
    item: int | None = None  # search: the heard item looked for
    query: str = ""  # search: the words typed
    reason: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpeakView:
    """One line of a chat, or one post, as its author sees it."""

    profile: UserProfile
    round: int
    tick: int
    mode: Literal["chat", "post"]
    partner: int | None = None  # chat: with whom
    tie: float = 0.0
    transcript: tuple[tuple[str, str], ...] = ()  # (speaker, text) so far, oldest first
    recent: tuple[tuple[int, int], ...] = ()  # (item, rating) watched lately
    heard: tuple[Heard, ...] = ()
    mentioned: tuple[int, ...] = ()  # items already mentioned in this chat (either side)


@dataclass(frozen=True)
class Utterance:
    text: str
    mentions: tuple[int, ...] = ()  # catalogue indices, in the order said
    inputs: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class SocialActor(Protocol):
    """What an active agent does at a tick of a social world."""

    async def achoose(self, view: SocialView, rng: np.random.Generator) -> SocialDecision: ...


@runtime_checkable
class SocialSpeaker(Protocol):
    """One chat line or one post, with the catalogue items it mentions."""

    async def aspeak(self, view: SpeakView, rng: np.random.Generator) -> Utterance: ...


def conformity_factor(profile: UserProfile) -> float:
    """0.5 for the least conforming user (trait 1), 1.5 for the most (trait 3)."""
    return 0.5 + (float(profile.conformity) - 1.0) / 2.0


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


class UtilitySocial:
    """The utility brain's social decisions (mixed into ``UtilityBrain``)."""

    world: World

    def _baseline(self, prof: UserProfile) -> tuple[float, float]:
        """Mean and spread of the user's taste similarity (``UtilityBrain`` caches it)."""
        sims = self.world.embeddings @ prof.taste
        return float(sims.mean()), float(sims.std()) or 1.0

    def _taste_z(self, profile: UserProfile, item: int) -> float:
        mu, sd = self._baseline(profile)
        return float((self.world.embeddings[item] @ profile.taste - mu) / sd)

    def choose(self, view: SocialView, rng: np.random.Generator) -> SocialDecision:
        """Search for the heard item that pulls most if the pull wins a draw, else draw an
        activity from the scenario's propensities (posting more likely with good watches
        to tell, chatting only with someone free)."""
        c = conformity_factor(view.profile)
        inputs: dict[str, Any] = {"conformity": round(c, 3)}
        if "search" in view.allowed and view.heard:
            pulls = [view.social_weight * h.tie * c
                     + 0.25 * float(np.clip(self._taste_z(view.profile, h.item), -2, 2))
                     for h in view.heard]
            best = int(np.argmax(pulls))
            p_search = _sigmoid(3.0 * (pulls[best] - 1.0))
            draw = float(rng.random())
            inputs.update(pull=round(pulls[best], 4), p_search=round(p_search, 4),
                          draw=round(draw, 4))
            if draw < p_search:
                h = view.heard[best]
                title = self.world.catalog.titles[h.item]
                return SocialDecision("search", item=h.item, query=title,
                                      reason=f"heard about it from a tie ({h.tie:.2f})",
                                      inputs=inputs)
        good = sum(1 for _, r in view.recent if r >= 4)
        weights = {a: view.weights.get(a, 0.0) for a in view.allowed if a != "search"}
        if "post" in weights:
            weights["post"] *= good
        if "chat" in weights and not view.neighbours:
            weights["chat"] = 0.0
        total = sum(weights.values())
        if total <= 0:
            return SocialDecision("idle", reason="nothing to do", inputs=inputs)
        names = sorted(weights)
        probs = np.array([weights[a] for a in names]) / total
        act: Activity = names[int(rng.choice(len(names), p=probs))]
        inputs["p"] = {a: round(float(p), 4) for a, p in zip(names, probs, strict=True)}
        if act == "chat":
            ties = np.asarray(view.ties, dtype=np.float64)
            k = int(rng.choice(len(ties), p=ties / ties.sum()))
            return SocialDecision("chat", partner=view.neighbours[k],
                                  reason=f"talks to a tie ({ties[k]:.2f})", inputs=inputs)
        return SocialDecision(act, reason=f"{act} (p {inputs['p'][act]:.2f})", inputs=inputs)

    def speak(self, view: SpeakView, rng: np.random.Generator) -> Utterance:
        """Tell the best recent watch not yet mentioned in this chat (a 4 or 5), else say
        there is nothing new."""
        cat = self.world.catalog
        fresh = [(it, r) for it, r in reversed(view.recent)
                 if r >= 4 and it not in view.mentioned]
        if not fresh:
            return Utterance("Nothing new from me lately." if view.mode == "chat"
                             else "Quiet week, no movie worth telling.")
        item, rating = max(fresh, key=lambda x: x[1])  # latest among the best (stable max)
        genres = " and ".join(cat.genres[item][:2]) or "a"
        text = (f"I watched '{cat.titles[item]}', a {genres} movie, and rated it "
                f"{rating}/5.")
        return Utterance(text, (item,), {"rating": rating})

    async def achoose(self, view: SocialView, rng: np.random.Generator) -> SocialDecision:
        return self.choose(view, rng)

    async def aspeak(self, view: SpeakView, rng: np.random.Generator) -> Utterance:
        return self.speak(view, rng)
