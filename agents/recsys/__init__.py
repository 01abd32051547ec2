"""Recommender agents: LLM roles and teams that rank, rate and explain (issue 8).

The protocol (``agents.recsys.protocol``) is what environments and offline tasks call; a
classic model adapted to it, a single LLM role and a managed team all implement it.
"""

from agents.recsys.protocol import (
    ExplainRequest,
    Explanation,
    Ranking,
    RankRequest,
    RateRequest,
    Rating,
    RecommenderAgent,
)

__all__ = [
    "ExplainRequest",
    "Explanation",
    "RankRequest",
    "Ranking",
    "RateRequest",
    "Rating",
    "RecommenderAgent",
]
