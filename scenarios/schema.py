"""Pydantic models of scenario and role files: validated once, at load, then frozen.

A scenario file says which data, which users (and the role they play), which recommenders,
which environment, which scripted events, which metrics, and where output goes. A role
file says how one kind of agent behaves: its instructions, trait overrides, memory,
planner and brain.
"""

from __future__ import annotations

import string
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

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


PROMPT_VARIABLES: dict[str, str] = {
    "role": "the role's name",
    "instructions": "the role's instructions",
    "activity": "activity trait 1-3, in words",
    "conformity": "conformity trait 1-3, in words",
    "diversity": "diversity trait 1-3, in words",
    "liked_genres": "comma-separated liked genres",
    "disliked_genres": "comma-separated disliked genres",
    "liked_titles": "titles of liked items from the user's history",
    "disliked_titles": "titles of disliked items from the user's history",
    "memories": "retrieved memories, one per line (short-term and long-term)",
    "page": "the page number, 1-based",
    "max_pages": "the last page number",
    "items": "the page's items, one per line: id, title (year), genres, mean rating, description",
    "item_ids": "the page's item ids, comma-separated",
    "item": "one item, as a line of `items` (scored decisions)",
    "watched": "titles watched so far this session with ratings",
    "n_watched": "how many items were watched this session",
    "n_shown": "how many items were shown this session",
    "pages_seen": "pages seen this session",
    "reflection_input": "the memories being reflected on, one per line",
}

DEFAULT_SYSTEM = (
    "You are {role}, a person browsing a movie recommendation feed. {instructions}\n"
    "Your profile: activity {activity}; conformity {conformity}; diversity {diversity}.\n"
    "You like: {liked_genres}. You dislike: {disliked_genres}.\n"
    "Movies you loved: {liked_titles}. Movies you disliked: {disliked_titles}.\n"
    "Stay in character and answer only in the format asked."
)
DEFAULT_PAGE = (
    "What you remember:\n{memories}\n\n"
    "Page {page} of at most {max_pages}. The recommendations are:\n{items}\n\n"
    "For every item decide whether you watch it and how sure you are (confidence 0-1 that "
    "you would watch it). Give a 1-5 rating to each movie you "
    "watch (null if you skip), a short reason for each, how you feel about this page, and "
    "whether you leave the feed now. Refer to items only by their id ({item_ids}).\n"
    'Answer with JSON only: {{"items": [{{"item_id": "ID", "watch": true, "confidence": '
    '0.8, "rating": 4, "reason": "..."}}], "feeling": "...", "leave": false}}'
)
DEFAULT_INTERVIEW = (
    "You left the feed after {pages_seen} pages. You were shown {n_shown} movies and "
    "watched {n_watched}: {watched}.\n"
    "How satisfied are you with the recommendations, from 1 (not at all) to 10 (very), and "
    'why? Answer with JSON only: {{"satisfaction": 7, "reason": "..."}}'
)
DEFAULT_REFLECTION = (
    "Here are things you recently did and saw:\n{reflection_input}\n"
    "In one or two sentences, what have you learned about your taste and how satisfied "
    "are you with these recommendations?"
)
# Scored decisions (base models): the answer is read from next-token log-probabilities.
DEFAULT_SCORED_WATCH = (
    "{role} likes {liked_genres} movies such as {liked_titles}, and dislikes "
    "{disliked_genres}.\nThe feed shows: {item}\nQuestion: Would {role} watch it? "
    "Answer yes or no.\nAnswer:"
)
DEFAULT_SCORED_RATING = (
    "{role} likes {liked_genres} movies such as {liked_titles}, and dislikes "
    "{disliked_genres}.\n{role} watched: {item}\nOn a scale of 1 to 5 stars, {role} "
    "rates it:"
)
DEFAULT_SCORED_LEAVE = (
    "{role} is browsing movie recommendations, page {page} of at most {max_pages}, and "
    "has watched {n_watched} of {n_shown} movies shown so far.\nQuestion: Does {role} "
    "stop browsing now? Answer yes or no.\nAnswer:"
)
DEFAULT_SCORED_SATISFACTION = (
    "{role} browsed {pages_seen} pages of movie recommendations and watched {n_watched} "
    "of {n_shown}: {watched}.\nOn a scale of 1 to 9, {role}'s satisfaction is:"
)


class PromptTemplates(_Frozen):
    """Prompt templates (Python ``str.format``); variables: see ``PROMPT_VARIABLES``."""

    system: str = DEFAULT_SYSTEM
    page: str = DEFAULT_PAGE
    interview: str = DEFAULT_INTERVIEW
    reflection: str = DEFAULT_REFLECTION
    scored_watch: str = DEFAULT_SCORED_WATCH
    scored_rating: str = DEFAULT_SCORED_RATING
    scored_leave: str = DEFAULT_SCORED_LEAVE
    scored_satisfaction: str = DEFAULT_SCORED_SATISFACTION

    @field_validator("*")
    @classmethod
    def _known_variables(cls, v: str) -> str:
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        except ValueError as e:
            raise ValueError(f"bad template: {e}") from None
        unknown = sorted(n for n in names if n.split(".")[0].split("[")[0]
                         not in PROMPT_VARIABLES)
        if unknown:
            raise ValueError(f"unknown template variable(s): {', '.join(unknown)}; known: "
                             f"{', '.join(PROMPT_VARIABLES)}")
        return v


class BrainConfig(_Frozen):
    kind: Literal["utility", "llm"] = "utility"
    params: UtilityParams = UtilityParams()
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


class MemoryWeights(_Frozen):
    relevance: float = Field(1.0, ge=0)
    recency: float = Field(1.0, ge=0)
    importance: float = Field(1.0, ge=0)


class LongTermMemoryConfig(_Frozen):
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


class MemoryConfig(_Frozen):
    short_term_window: int = Field(8, ge=0, le=1000, description="Recent events kept.")
    long_term: LongTermMemoryConfig = LongTermMemoryConfig()


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


class BudgetConfig(_Frozen):
    """Stop the run cleanly when a limit is reached (prices in USD per million tokens)."""

    max_tokens: int | None = Field(None, ge=1)
    max_cost_usd: float | None = Field(None, gt=0)
    input_price_per_mtok: float = Field(0.0, ge=0)
    output_price_per_mtok: float = Field(0.0, ge=0)


class LLMConfig(_Frozen):
    """Which chat model the llm brain talks to. Never put an API key here: name the
    environment variable that holds it."""

    backend: Literal["openai", "local", "fake"] = "openai"
    model: str = Field("gpt-4o-mini", min_length=1)
    base_url: str | None = Field(None, description="Default: OPENAI_BASE_URL, as the SDK.")
    api_key_env: str = Field("OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(400, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    concurrency: int = Field(4, ge=1, le=1024)
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: int | None = Field(None, gt=0)
    budget: BudgetConfig = BudgetConfig()
    model_path: str | None = Field(
        None, description="local: a GGUF file; default the Gemma 3 270M package's model."
    )
    n_ctx: int = Field(2048, ge=256)
    n_threads: int | None = Field(None, ge=1)


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
    llm: LLMConfig | None = None
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
