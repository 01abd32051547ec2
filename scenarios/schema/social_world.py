"""``environment.settings`` of the social world (``environment.kind: social``).

Engine-free like the rest of the schema; the graph block is ``scenarios.schema.social``'s
``GraphConfig``.
"""

from __future__ import annotations

from pydantic import Field

from scenarios.schema.base import FrozenModel
from scenarios.schema.social import GraphConfig

__all__ = ["ActivityWeights", "SocialSettings"]


class ActivityWeights(FrozenModel):
    """Base propensities of what an active agent does (the utility brain draws from them;
    searching is driven by what the agent heard, not drawn)."""

    browse: float = Field(1.0, ge=0)
    chat: float = Field(0.5, ge=0)
    post: float = Field(0.5, ge=0, description="Scaled by the good watches to tell.")
    idle: float = Field(0.5, ge=0)


class SocialSettings(FrozenModel):
    """A social world: users on a graph who browse, search, chat and post, tick by tick."""

    graph: GraphConfig
    ticks: int = Field(10, ge=1, le=10_000, description="Ticks per round; the recommender "
                       "retrains between rounds (recommenders[].retrain).")
    activity: float = Field(0.3, gt=0, le=1, description="Chance that a user of activity "
                            "trait 2 is active at a tick.")
    activity_step: float = Field(0.1, ge=0, le=0.5, description="Added per activity trait "
                                 "step above 2 (subtracted below).")
    idle_growth: float = Field(0.0, ge=0, le=1, description="RecAgent's option: each idle "
                               "tick adds this to a user's chance to act, until it acts.")
    weights: ActivityWeights = ActivityWeights()
    chat_turns: int = Field(2, ge=1, le=10, description="Lines each side says in a chat.")
    social_weight: float = Field(1.0, ge=0, description="Pull of an item heard from a tie "
                                 "of strength 1 (utility brain), times the conformity factor.")
    heard_limit: int = Field(20, ge=1, le=1000, description="Heard items a user keeps.")
    rec_random_k: int = Field(0, ge=0, le=100, description="Random unseen items mixed into "
                              "each page (RecAgent's rec_random_k).")
    rewire_heterophily: float = Field(0.0, ge=0, le=1, description="Share of within-group "
                                      "ties rewired to between-group ties before the run.")
    social: bool = Field(True, description="False: no chats, posts or heard pull (the "
                         "social-features-off intervention); users only browse or idle.")
