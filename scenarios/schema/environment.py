"""The ``environment:`` block and the metrics each environment computes."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from scenarios.environment_kinds import PluggableEnvironment
from scenarios.schema.base import FrozenModel

__all__ = [
    "ENVIRONMENT_METRICS",
    "ConversationConfig",
    "ConversationMetric",
    "EnvironmentConfig",
    "FeedMetric",
    "MetricName",
    "SocialMetric",
]

FeedMetric = Literal[
    "watch_rate", "mean_rating", "exit_page", "satisfaction", "coverage", "gini",
    "genre_entropy", "new_item_impressions", "new_item_watches",
]
ConversationMetric = Literal["success_rate", "turns_to_success", "recall_at_k"]
SocialMetric = Literal[
    "watch_rate", "mean_rating", "shown_entropy", "watched_entropy", "gini", "coverage",
    "feed_share", "search_share", "friend_share", "social_lift", "mentions", "chat_lines",
    "posts", "cascades", "cascade_size", "cascade_depth", "virality",
]
MetricName = Literal[FeedMetric, ConversationMetric, SocialMetric]
ENVIRONMENT_METRICS: dict[str, tuple[str, ...]] = {
    "feed": get_args(FeedMetric), "conversation": get_args(ConversationMetric),
    "social": get_args(SocialMetric)}


class ConversationConfig(FrozenModel):
    """The conversation environment: a user looks for a hidden target item."""

    items_per_turn: int = Field(5, ge=1, le=100, description="k items recommended per turn.")
    max_turns: int = Field(6, ge=1, le=50, description="Hard limit on turns.")
    patience: int = Field(
        3, ge=1, le=50, description="Turns an average user tries before giving up; "
        "activity 1 gives up a turn earlier, activity 3 a turn later.")
    description_noise: float = Field(
        0.2, ge=0, le=1, description="utility brain: chance to leave out or confuse each "
        "fact it mentions about the target.")
    genre_weight: float = Field(1.0, ge=0, description="Re-ranker: mentioned genres.")
    keyword_weight: float = Field(0.5, ge=0, description="Re-ranker: words in titles.")
    similar_weight: float = Field(2.0, ge=0, description="Re-ranker: 'more like X'.")


class EnvironmentConfig(PluggableEnvironment, FrozenModel):  # kind, settings: plug-ins too
    items_per_page: int = Field(4, ge=1, le=100)
    max_pages: int = Field(5, ge=1, le=100)
    rounds: int = Field(1, ge=1, le=1000)
    conversation: ConversationConfig = ConversationConfig()
