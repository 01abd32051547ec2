"""Role files (``kind: role``): instructions, traits, memory, planner, tools and brain."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from scenarios.schema.base import FrozenModel
from scenarios.schema.llm import LLMConfig
from scenarios.schema.prompts import PromptTemplates
from scenarios.taste import TasteConfig

__all__ = [
    "LLM_PLANNERS",
    "BrainConfig",
    "LongTermMemoryConfig",
    "MemoryConfig",
    "MemoryWeights",
    "PlannerConfig",
    "PlannerKind",
    "RoleConfig",
    "StaticStep",
    "ToolName",
    "TraitOverrides",
    "UtilityParams",
]


class UtilityParams(FrozenModel):
    """Weights of the numeric choice model (see agents/brains/utility.py).

    The shipped role's values are fitted on tuning users by bench/tune_utility.py.
    """

    taste_weight: float = Field(1.0, ge=0, description="Weight of taste similarity.")
    conformity_weight: float = Field(
        0.6, ge=0, description="Weight of the crowd's mean rating, scaled by conformity trait."
    )
    popularity_weight: float = Field(0.4, ge=0, description="Pull of popular items.")
    fatigue: float = Field(0.12, ge=0, description="Utility lost per page already seen.")
    repetition: float = Field(
        0.1, ge=0, description="Utility lost for genres already watched this session, "
        "scaled by (4 - diversity) / 2."
    )
    noise: float = Field(0.2, ge=0, description="Std. dev. of seeded Gaussian noise.")
    watch_threshold: float = Field(
        0.5, description="Utility above which an item is watched (shifted by activity)."
    )
    activity_shift: float = Field(
        0.12, ge=0, description="Threshold lowered per activity level above 2."
    )
    exit_base: float = Field(-1.8, description="Log-odds of leaving after the first page.")
    exit_per_page: float = Field(0.6, ge=0, description="Added log-odds per page seen.")
    exit_satisfaction: float = Field(
        2.0, ge=0, description="Log-odds removed per unit of page satisfaction."
    )
    rating_noise: float = Field(0.0, ge=0, description="Std. dev. of rating noise in stars.")
    rating_spread: float = Field(
        1.0, ge=0, description="Stretch of the expected rating around the global mean "
        "before rounding (> 1 widens the star histogram at some cost in RMSE)."
    )
    rating_taste: float = Field(
        1.0, ge=0, description="Stars per unit of liking . item embedding (the user's "
        "residual taste)."
    )
    rating_conformity: float = Field(
        1.0, ge=0, description="Weight of the item's mean rating (minus the global mean) in "
        "the user's rating."
    )
    satisfaction_slope: float = Field(
        4.0, ge=0, description="Interview: log-odds of satisfaction per unit of watch rate."
    )
    satisfaction_center: float = Field(
        0.25, description="Interview: the watch rate at which satisfaction is mid-scale "
        "(before the rating and pages terms)."
    )
    satisfaction_noise: float = Field(
        0.6, ge=0, description="Interview: std. dev. of satisfaction noise (1-10 scale)."
    )

class BrainConfig(FrozenModel):
    kind: Literal["utility", "llm"] = "utility"
    params: UtilityParams = UtilityParams()
    taste: TasteConfig = Field(TasteConfig(), description="utility brain: the item space of "
                               "the user's taste (scenarios/taste.py).")
    prompts: PromptTemplates = PromptTemplates()
    decision_mode: Literal["auto", "structured", "scored"] = Field(
        "auto",
        description="llm brain: 'structured' asks for JSON (chat models), 'scored' reads "
        "answers from next-token log-probabilities (base models); 'auto' scores with the "
        "local backend and asks for JSON otherwise.",
    )
    max_repairs: int = Field(
        2, ge=0, le=10, description="Re-asks after invalid output before recording a failure."
    )
    calibration_items: int = Field(
        10, ge=0, le=200, description="Scored decisions: catalogue items (drawn by "
        "popularity, fixed per user) whose yes-minus-no margins set the user's watch "
        "threshold; 0 watches whenever 'yes' beats 'no'."
    )
    watch_rates: tuple[float, float, float] = Field(
        (0.35, 0.5, 0.65), description="Scored decisions: the share of calibration items "
        "a user of activity 1, 2, 3 would watch (the threshold is that quantile of the "
        "margins)."
    )

    @field_validator("watch_rates")
    @classmethod
    def _rates_in_unit_interval(cls, v: tuple[float, float, float]) -> tuple[float, ...]:
        if not all(0.0 < x < 1.0 for x in v):
            raise ValueError("each watch rate must be between 0 and 1 (exclusive)")
        return v


class MemoryWeights(FrozenModel):
    relevance: float = Field(1.0, ge=0)
    recency: float = Field(1.0, ge=0)
    importance: float = Field(1.0, ge=0)


class LongTermMemoryConfig(FrozenModel):
    enabled: bool = False
    embedder: Literal["minilm", "hash", "openai"] = Field(
        "minilm", description="minilm: offline all-MiniLM-L6-v2; hash: fast, for tests; "
        "openai: the scenario's OpenAI-compatible endpoint."
    )
    embedding_model: str = "text-embedding-3-small"
    top_k: int = Field(5, ge=0, le=100)
    weights: MemoryWeights = MemoryWeights()
    recency_decay: float = Field(
        0.995, gt=0, le=1, description="Recency score = decay ** (steps since written)."
    )
    reflect_every: int = Field(
        10, ge=0, description="Write a reflection after this many new memories (0: never)."
    )


class MemoryConfig(FrozenModel):
    short_term_window: int = Field(8, ge=0, le=1000, description="Recent events kept.")
    long_term: LongTermMemoryConfig = LongTermMemoryConfig()
    shared: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]+$",
        description="Name of a shared (collaborative) store this role's agents read and "
        "write; agents of any role naming the same store share it.")


PlannerKind = Literal["static", "reactive", "preactive", "reflective"]
StaticStep = Literal["summarise_tastes", "pick_history", "decide"]
ToolName = Literal["search_memory", "read_shared", "item_info", "similar_items",
                   "search_catalog", "semantic_search", "kg_neighbours", "kg_paths",
                   "kg_shared", "user_profile", "user_history", "candidates"]
LLM_PLANNERS: frozenset[str] = frozenset({"reactive", "preactive", "reflective"})


class PlannerConfig(FrozenModel):
    """How the agent orders its steps before it acts (see planners/ and docs/architecture.md).

    ``static`` follows ``steps`` (default: decide straight away, as Agent4Rec; NIR's
    three-step prompting is ``[summarise_tastes, pick_history, decide]``); ``reactive`` is
    ReAct (thought, tool call, observation, until a final answer); ``preactive`` writes a
    plan naming what could go wrong, executes it and re-plans on failure; ``reflective``
    is Reflexion (attempt, self-critique, retry with the lesson, which is remembered).
    The last three need an LLM brain.
    """

    kind: PlannerKind = "static"
    steps: list[StaticStep] = Field(
        default_factory=lambda: list[StaticStep](["decide"]),
        description="static: the fixed path; must end with 'decide'.")
    max_steps: int = Field(4, ge=1, le=20, description="reactive/preactive: tool steps.")
    max_replans: int = Field(1, ge=0, le=5, description="preactive: re-plans on failure.")
    max_attempts: int = Field(2, ge=1, le=5, description="reflective: attempts per decision.")

    @field_validator("steps")
    @classmethod
    def _ends_with_decide(cls, v: list[str]) -> list[str]:
        if not v or v[-1] != "decide" or v.count("decide") != 1:
            raise ValueError("steps must end with 'decide' (once)")
        return v


class TraitOverrides(FrozenModel):
    """Fix a trait for every agent of the role instead of scoring it from data (1-3)."""

    activity: int | None = Field(None, ge=1, le=3)
    conformity: int | None = Field(None, ge=1, le=3)
    diversity: int | None = Field(None, ge=1, le=3)


class RoleConfig(FrozenModel):
    kind: Literal["role", "user"] = Field(
        "role", description="role or user: a user-side role (recommender roles are "
        "scenarios/recsys.py's kind: recommender)")
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    instructions: str = ""
    traits: TraitOverrides = TraitOverrides()
    memory: MemoryConfig = MemoryConfig()
    planner: PlannerConfig = PlannerConfig()
    tools: list[ToolName] = Field(
        default_factory=lambda: list[ToolName](["search_memory", "item_info",
                                                "similar_items"]),
        description="Tools the planner may call (reactive / preactive).")
    brain: BrainConfig = BrainConfig()
    llm: LLMConfig | None = Field(
        None, description="This role's own model; default: the scenario's llm: block.")

    @model_validator(mode="after")
    def _planner_fits_brain(self) -> RoleConfig:
        if self.planner.kind in LLM_PLANNERS and self.brain.kind != "llm":
            raise ValueError(f"planner {self.planner.kind!r} needs brain.kind: llm "
                             f"(the {self.brain.kind} brain has no language model to plan with)")
        if self.brain.kind != "llm" and any(
                s != "decide" for s in self.planner.steps):
            # Numeric brains have no language to summarise tastes in.
            raise ValueError("planner steps other than 'decide' need brain.kind: llm")
        return self

