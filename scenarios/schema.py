"""Pydantic models of scenario and role files: validated once, at load, then frozen.

A scenario file says which data, which users (and the role they play), which recommenders,
which environment, which scripted events, which metrics, and where output goes. A role
file says how one kind of agent behaves: its instructions, trait overrides, memory,
planner and brain.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

__all__ = [
    "SCHEMA_VERSION",
    "AddItemsEvent",
    "BrainConfig",
    "DatasetConfig",
    "EnvironmentConfig",
    "Event",
    "MemoryConfig",
    "OutputConfig",
    "PlannerConfig",
    "PopulationConfig",
    "RecommenderConfig",
    "RoleConfig",
    "Scenario",
    "SwitchRecommenderEvent",
    "SyntheticConfig",
    "TraitOverrides",
    "UtilityParams",
    "scenario_problems",
]

SCHEMA_VERSION = 1

MetricName = Literal[
    "watch_rate", "mean_rating", "exit_page", "satisfaction", "coverage", "gini",
    "genre_entropy",
]
ModelName = Literal["random", "pop", "itemknn", "ease", "als", "bpr"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ----------------------------------------------------------------------------- role


class UtilityParams(_Frozen):
    """Weights of the numeric choice model (see agents/brains/utility.py)."""

    taste_weight: float = Field(1.0, ge=0, description="Weight of taste similarity.")
    conformity_weight: float = Field(
        0.6, ge=0, description="Weight of the crowd's mean rating, scaled by conformity trait."
    )
    popularity_weight: float = Field(0.15, ge=0, description="Pull of popular items.")
    fatigue: float = Field(0.12, ge=0, description="Utility lost per page already seen.")
    noise: float = Field(0.35, ge=0, description="Std. dev. of seeded Gaussian noise.")
    watch_threshold: float = Field(
        0.35, description="Utility above which an item is watched (shifted by activity)."
    )
    exit_base: float = Field(-1.8, description="Log-odds of leaving after the first page.")
    exit_per_page: float = Field(0.6, ge=0, description="Added log-odds per page seen.")
    exit_satisfaction: float = Field(
        2.0, ge=0, description="Log-odds removed per unit of page satisfaction."
    )
    rating_noise: float = Field(0.6, ge=0, description="Std. dev. of rating noise in stars.")


class BrainConfig(_Frozen):
    kind: Literal["utility"] = "utility"
    params: UtilityParams = UtilityParams()


class MemoryConfig(_Frozen):
    short_term_window: int = Field(8, ge=0, le=1000, description="Recent events kept.")


class PlannerConfig(_Frozen):
    kind: Literal["static"] = "static"


class TraitOverrides(_Frozen):
    """Fix a trait for every agent of the role instead of scoring it from data (1-3)."""

    activity: int | None = Field(None, ge=1, le=3)
    conformity: int | None = Field(None, ge=1, le=3)
    diversity: int | None = Field(None, ge=1, le=3)


class RoleConfig(_Frozen):
    kind: Literal["role"] = "role"
    name: str = Field(min_length=1)
    description: str = ""
    instructions: str = ""
    traits: TraitOverrides = TraitOverrides()
    memory: MemoryConfig = MemoryConfig()
    planner: PlannerConfig = PlannerConfig()
    brain: BrainConfig = BrainConfig()


# ----------------------------------------------------------------------------- scenario


class SyntheticConfig(_Frozen):
    n_users: int = Field(300, ge=2, le=1_000_000)
    n_items: int = Field(400, ge=10, le=1_000_000)
    n_genres: int = Field(10, ge=2, le=18)
    dim: int = Field(8, ge=2, le=128, description="Latent taste dimensions.")
    history_mean: float = Field(30.0, gt=0, description="Mean interactions per user.")


class DatasetConfig(_Frozen):
    source: Literal["synthetic", "files"] = "synthetic"
    path: str | None = Field(
        None, description="Data folder for source=files; --data or RECARENA_DATA override it."
    )
    history_fraction: float = Field(
        0.8, gt=0, le=1, description="Per user, the earliest share kept as profile history."
    )
    synthetic: SyntheticConfig = SyntheticConfig()


class PopulationConfig(_Frozen):
    size: int | None = Field(None, ge=1, description="How many users; null means all.")
    sampling: Literal["random", "first"] = "random"
    role: Annotated[
        Annotated[str, Tag("file")] | Annotated[RoleConfig, Tag("inline")],
        Discriminator(lambda v: "file" if isinstance(v, str) else "inline"),
    ] = Field(
        "roles/utility_user.yaml",
        description="A role file (relative to the scenario file) or an inline role.",
    )


class RecommenderConfig(_Frozen):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    model: ModelName
    params: dict[str, Any] = {}
    retrain: bool = Field(
        False, description="Refit between rounds on history plus simulated watches."
    )


class EnvironmentConfig(_Frozen):
    kind: Literal["feed"] = "feed"
    items_per_page: int = Field(4, ge=1, le=100)
    max_pages: int = Field(5, ge=1, le=100)
    rounds: int = Field(1, ge=1, le=1000)


class AddItemsEvent(_Frozen):
    """Withhold ``count`` items from the start and release them at ``at_round``."""

    action: Literal["add_items"]
    at_round: int = Field(ge=2)
    count: int = Field(ge=1)


class SwitchRecommenderEvent(_Frozen):
    """From ``at_round`` on, the arm ``recommender`` uses another model."""

    action: Literal["switch_recommender"]
    at_round: int = Field(ge=2)
    recommender: str
    model: ModelName
    params: dict[str, Any] = {}


Event = Annotated[AddItemsEvent | SwitchRecommenderEvent, Field(discriminator="action")]


class OutputConfig(_Frozen):
    dir: str = Field("runs", description="Parent folder of run folders (relative to cwd).")


class Scenario(_Frozen):
    kind: Literal["scenario"] = "scenario"
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = Field(0, ge=0, description="Seed of every random choice in the run.")
    dataset: DatasetConfig = DatasetConfig()
    population: PopulationConfig = PopulationConfig()
    recommenders: list[RecommenderConfig] = Field(min_length=1)
    environment: EnvironmentConfig = EnvironmentConfig()
    events: list[Event] = []
    metrics: list[MetricName] = list(get_args(MetricName))
    output: OutputConfig = OutputConfig()


def scenario_problems(scn: Scenario) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-field problems as (location, message); the loader maps locations to lines."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    names = [r.name for r in scn.recommenders]
    for i, r in enumerate(scn.recommenders):
        if names.index(r.name) != i:
            problems.append((("recommenders", i, "name"), f"duplicate recommender name {r.name!r}"))
    for i, ev in enumerate(scn.events):
        if ev.at_round > scn.environment.rounds:
            problems.append((
                ("events", i, "at_round"),
                f"round {ev.at_round} is after the last round ({scn.environment.rounds})",
            ))
        if isinstance(ev, SwitchRecommenderEvent) and ev.recommender not in names:
            problems.append((
                ("events", i, "recommender"),
                f"unknown recommender {ev.recommender!r}; known: {', '.join(names)}",
            ))
    return problems
