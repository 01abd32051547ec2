"""The social graph block: who is tied to whom, generated or read from an edge list.

``GraphConfig`` is a union told apart by ``kind``: ``sbm`` (a stochastic block model over
user attributes), ``barabasi_albert``, ``watts_strogatz`` or ``file``. The graph itself is
built by tools/social_graph.py; this module only says what a scenario may ask for.

The ``age_band`` attribute is a MovieLens-1M age band of the user's age
(scenarios/demographics.py, re-exported here; the analysis of a run bands ages the same way).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, TypeAdapter, field_validator

from scenarios.demographics import AGE_BANDS, age_band
from scenarios.schema.base import FrozenModel

__all__ = [
    "AGE_BANDS",
    "BLOCK_ATTRIBUTES",
    "GRAPH_KINDS",
    "BarabasiAlbertGraph",
    "BlockAttribute",
    "FileGraph",
    "GraphConfig",
    "SBMGraph",
    "WattsStrogatzGraph",
    "age_band",
    "graph_config",
]

BlockAttribute = Literal["age_band", "gender", "occupation"]
BLOCK_ATTRIBUTES: tuple[str, ...] = get_args(BlockAttribute)


class _Graph(FrozenModel):
    seed_offset: int = Field(
        0, ge=0, description="Added to the run's seed: another graph for the same run seed.")
    allow_disconnected: bool = Field(
        False, description="Accept a graph in several pieces (by default it is an error, "
        "except that a generated graph's few stray nodes are tied to the main piece).")


def _default_blocks() -> list[BlockAttribute]:
    return ["age_band", "gender"]


class SBMGraph(_Graph):
    """A stochastic block model: users fall in blocks by their attributes; a tie inside a
    block is more likely than one across blocks, by ``homophily``."""

    kind: Literal["sbm"]
    blocks_by: list[BlockAttribute] = Field(
        default_factory=_default_blocks, min_length=1,
        description="The attributes whose combination is a user's block.")
    mean_degree: float = Field(10.0, gt=0, description="Expected ties per user.")
    homophily: float = Field(
        0.5, ge=0, le=1, description="0: ties ignore blocks; 1: ties only within a block. "
        "The expected share of ties inside blocks is s0 + homophily * (1 - s0), s0 being "
        "the share with no homophily (Coleman's index); the mean degree stays mean_degree.")

    @field_validator("blocks_by")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"blocks_by names an attribute twice: {v}")
        return v


class BarabasiAlbertGraph(_Graph):
    """Preferential attachment: a few hubs, many users with few ties (mean degree ~2m)."""

    kind: Literal["barabasi_albert"]
    m: int = Field(5, ge=1, description="Ties each new user makes to earlier users.")


class WattsStrogatzGraph(_Graph):
    """A small world: a ring lattice of ``k`` neighbours, each tie rewired with chance p."""

    kind: Literal["watts_strogatz"]
    k: int = Field(10, ge=2, description="Ring neighbours per user (even).")
    p: float = Field(0.1, ge=0, le=1, description="Chance that a tie is rewired.")

    @field_validator("k")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError(f"k must be even (k/2 neighbours on each side), got {v}")
        return v


class FileGraph(_Graph):
    """An edge list: ``source,target[,weight]`` per line (commas or whitespace), an
    optional header, ``#`` comments; ids are the dataset's user ids."""

    kind: Literal["file"]
    path: str = Field(min_length=1, description="Relative to the scenario file's folder.")
    directed: bool = Field(False, description="source follows target (else a mutual tie).")
    weighted: bool = Field(False, description="Read the third column as tie strength.")


GraphConfig = Annotated[SBMGraph | BarabasiAlbertGraph | WattsStrogatzGraph | FileGraph,
                        Field(discriminator="kind")]
GRAPH_KINDS: tuple[str, ...] = tuple(
    get_args(c.model_fields["kind"].annotation)[0]
    for c in (SBMGraph, BarabasiAlbertGraph, WattsStrogatzGraph, FileGraph))

_ADAPTER: TypeAdapter[Any] | None = None


def graph_config(data: Any) -> SBMGraph | BarabasiAlbertGraph | WattsStrogatzGraph | FileGraph:
    """Validate a ``graph:`` block (a mapping, or a model already validated).

    Raises:
        pydantic.ValidationError: As for any scenario block.
    """
    global _ADAPTER
    if _ADAPTER is None:  # built at first use: nothing at import time
        _ADAPTER = TypeAdapter(GraphConfig)
    out: SBMGraph | BarabasiAlbertGraph | WattsStrogatzGraph | FileGraph = \
        _ADAPTER.validate_python(data)
    return out
