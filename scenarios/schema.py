"""Pydantic models of scenario and role files: validated once, at load, then frozen.

A scenario file says which data, which users (and the role they play), which recommenders,
which environment, which scripted events, which metrics, and where output goes. A role
file says how one kind of agent behaves: its instructions, trait overrides, memory,
planner and brain.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from scenarios.dataset_schema import CsvColumns, DatasetConfig, SyntheticConfig
from scenarios.environment_kinds import PluggableEnvironment
from scenarios.taste import TasteConfig

__all__ = [
    "MODEL_PARAMS",
    "PROMPT_VARIABLES",
    "SATISFACTION_WORDS",
    "SCHEMA_VERSION",
    "TEMPLATE_VARIABLES",
    "ALSParams",
    "AddItemsEvent",
    "BPRParams",
    "BrainConfig",
    "BudgetConfig",
    "CandidateConfig",
    "ColdStartConfig",
    "CsvColumns",
    "DatasetConfig",
    "EASEParams",
    "EnvironmentConfig",
    "Event",
    "ExecutorConfig",
    "ItemKNNParams",
    "LLMConfig",
    "LongTermMemoryConfig",
    "MemoryConfig",
    "NoParams",
    "OutputConfig",
    "PlannerConfig",
    "PopulationConfig",
    "PromptTemplates",
    "RecommenderConfig",
    "RoleConfig",
    "Scenario",
    "SwitchRecommenderEvent",
    "SyntheticConfig",
    "TasteConfig",
    "TraitOverrides",
    "UtilityParams",
    "scenario_problems",
    "sharding_problem",
    "template_names",
]

SCHEMA_VERSION = 1

FeedMetric = Literal[
    "watch_rate", "mean_rating", "exit_page", "satisfaction", "coverage", "gini",
    "genre_entropy", "new_item_impressions", "new_item_watches",
]
ConversationMetric = Literal["success_rate", "turns_to_success", "recall_at_k"]
MetricName = Literal[FeedMetric, ConversationMetric]
ENVIRONMENT_METRICS: dict[str, tuple[str, ...]] = {
    "feed": get_args(FeedMetric), "conversation": get_args(ConversationMetric)}
BuiltinModel = Literal["random", "pop", "itemknn", "ease", "als", "bpr"]
# Your own recommender: an import path (mypkg.module:Class) or an installed entry point of
# the group recarena.recommenders; found and its params checked by scenarios/plugins.py.
PluginModel = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w.-]*(:[A-Za-z_][\w.]*)?$")]
ModelName = BuiltinModel | PluginModel
ArmModel = Literal["random", "pop", "itemknn", "ease", "als", "bpr", "agent"] | PluginModel


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ----------------------------------------------------------------------------- llm


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
    n_ctx: int | None = Field(
        None, ge=256,
        description="local: context window in tokens; default: sized from the prompts "
        "(grown as requests need, up to the model's trained length).")
    n_threads: int | None = Field(
        None, ge=1, description="local: CPU threads; default: one fewer than the cores "
        "(at least 1), which leaves a core to the rest of the run.")
    structured_output: Literal["auto", "native", "text"] = Field(
        "auto",
        description=(
            "How JSON answers are asked: native (the endpoint's JSON-schema response format "
            "or a forced tool call), text (instructions in the prompt, parsed from the reply; "
            "invalid output is repaired either way), or auto (native for the openai backend, "
            "falling back to text if the endpoint refuses; text for local and fake)."),
    )


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
    "item": "one item, as a line of `items`",
    "watched": "titles watched this session with their ratings",
    "n_watched": "items watched: on this page (scored_leave), else this session",
    "n_shown": "items shown: on this page (scored_leave), else this session",
    "pages_seen": "pages seen this session",
    "reflection_input": "the memories being reflected on, one per line",
    "plan": "what the planner concluded for this step (empty with the default planner)",
    "target": "conversation: the movie the user is looking for, as a line of `items`",
    "said": "conversation: what the user said so far, one line each",
    "recommended": "conversation: this turn's recommendations, as lines of `items`",
    "turn": "conversation: the turn number, 1-based",
    "reply": "conversation: 'The recommender says: ...' and a newline when a recommender "
             "agent said something with its recommendations, else empty",
}

_PROFILE_VARS = ("role", "instructions", "activity", "conformity", "diversity",
                 "liked_genres", "disliked_genres", "liked_titles", "disliked_titles")
_PAGE_VARS = ("memories", "page", "max_pages", "items", "item_ids", "plan")
_SESSION_VARS = ("watched", "n_watched", "n_shown", "pages_seen")
_CONVERSATION_VARS = ("target", "said", "recommended", "turn", "plan", "reply")

# Exactly the variables each template is rendered with: the loader rejects any other
# name in a template, and the LLM brain renders every template with exactly this set
# (agents.prompts.render checks it), so the two cannot drift apart.
TEMPLATE_VARIABLES: dict[str, tuple[str, ...]] = {
    "system": _PROFILE_VARS,
    "page": _PROFILE_VARS + _PAGE_VARS,
    "interview": _PROFILE_VARS + _SESSION_VARS,
    "reflection": (*_PROFILE_VARS, "reflection_input"),
    "scored_watch": _PROFILE_VARS + _PAGE_VARS + ("item",),
    # Also used to rate items outside any page (eval alignment): no page variables.
    "scored_rating": (*_PROFILE_VARS, "item"),
    "scored_leave": _PROFILE_VARS + _PAGE_VARS + ("n_watched", "n_shown"),
    "scored_feeling": _PROFILE_VARS + _PAGE_VARS + ("n_watched", "n_shown"),
    "scored_satisfaction": _PROFILE_VARS + _SESSION_VARS,
    "conversation_open": _PROFILE_VARS + _CONVERSATION_VARS,
    "conversation_turn": _PROFILE_VARS + _CONVERSATION_VARS,
    "scored_match": (*_PROFILE_VARS, "item", "target"),
}

# Scored answers are read as the most likely of these next words (satisfaction 1-10).
SATISFACTION_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine", "ten")

DEFAULT_SYSTEM = (
    "You are {role}, a person browsing a movie recommendation feed. {instructions}\n"
    "Your profile: activity {activity}; conformity {conformity}; diversity {diversity}.\n"
    "You like: {liked_genres}. You dislike: {disliked_genres}.\n"
    "Movies you loved: {liked_titles}. Movies you disliked: {disliked_titles}.\n"
    "Stay in character and answer only in the format asked."
)
DEFAULT_PAGE = (
    "What you remember:\n{memories}\n\n"
    "{plan}"
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
DEFAULT_CONVERSATION_OPEN = (
    "You want to watch this movie, but you must not name it or quote its title:\n{target}\n"
    "Tell a movie recommender in one or two sentences what you are looking for."
)
DEFAULT_CONVERSATION_TURN = (
    "You want to watch this movie (never name it):\n{target}\n"
    "So far you said:\n{said}\n"
    "Turn {turn}. The recommender suggests:\n{recommended}\n{reply}"
    "If the movie you want is among them, accept it by id. Otherwise reject them and say "
    "in one sentence what is wrong, without naming the movie; give up if you are tired of "
    'trying. Answer with JSON only: {{"accept": "ID or null", "give_up": false, '
    '"feedback": "..."}}'
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
    "watched {n_watched} of the {n_shown} movies on this page.\nQuestion: Does {role} "
    "stop browsing now? Answer yes or no.\nAnswer:"
)
DEFAULT_SCORED_FEELING = (
    "{role} likes {liked_genres} movies such as {liked_titles}, and dislikes "
    "{disliked_genres}.\nThe feed showed {role} these movies:\n{items}\n{role} watched "
    "{n_watched} of these {n_shown}.\nQuestion: How does {role} feel about these "
    "recommendations? Answer pleased, mixed or bored.\nAnswer:"
)
DEFAULT_SCORED_SATISFACTION = (
    "{role} browsed {pages_seen} pages of movie recommendations and watched {n_watched} "
    "of {n_shown}: {watched}.\nOn a scale of "
    f"{SATISFACTION_WORDS[0]} to {SATISFACTION_WORDS[-1]}, {{role}}'s satisfaction is:"
)


def template_names(template: str) -> set[str]:
    """The variable names a ``str.format`` template refers to (``{a.b}`` counts as ``a``)."""
    names = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            names.add(field.split(".")[0].split("[")[0])
    return names


def _prompt_field(name: str, default: str, use: str) -> Any:
    return Field(default, description=f"{use} Variables: {', '.join(TEMPLATE_VARIABLES[name])}.")


DEFAULT_SCORED_MATCH = (
    "{role} is looking for this movie: {target}\nThe recommender suggests: {item}\n"
    "Question: Is the suggestion the movie {role} is looking for? Answer yes or no.\n"
    "Answer:"
)


class PromptTemplates(_Frozen):
    """Prompt templates (Python ``str.format``). Each template may use only its own
    variables (``TEMPLATE_VARIABLES``; meanings in ``PROMPT_VARIABLES``)."""

    system: str = _prompt_field("system", DEFAULT_SYSTEM, "System message of every chat.")
    page: str = _prompt_field("page", DEFAULT_PAGE, "Structured mode: one page, JSON answer.")
    interview: str = _prompt_field(
        "interview", DEFAULT_INTERVIEW, "Structured mode: exit interview, JSON answer.")
    reflection: str = _prompt_field(
        "reflection", DEFAULT_REFLECTION, "Structured mode: reflection on recent memories.")
    scored_watch: str = _prompt_field(
        "scored_watch", DEFAULT_SCORED_WATCH,
        "Scored mode: watch one item of the page? Answer read as ' yes' / ' no'.")
    scored_rating: str = _prompt_field(
        "scored_rating", DEFAULT_SCORED_RATING,
        "Scored mode: rating of a watched item, read as ' 1'..' 5'.")
    scored_leave: str = _prompt_field(
        "scored_leave", DEFAULT_SCORED_LEAVE,
        "Scored mode: leave after this page? Answer read as ' yes' / ' no'.")
    scored_feeling: str = _prompt_field(
        "scored_feeling", DEFAULT_SCORED_FEELING,
        "Scored mode: the page's feeling, read as ' pleased' / ' mixed' / ' bored'.")
    scored_satisfaction: str = _prompt_field(
        "scored_satisfaction", DEFAULT_SCORED_SATISFACTION,
        "Scored mode: satisfaction read as ' one'..' ten' (reported out of 10).")
    conversation_open: str = _prompt_field(
        "conversation_open", DEFAULT_CONVERSATION_OPEN,
        "Conversation: say what you are looking for (free text).")
    conversation_turn: str = _prompt_field(
        "conversation_turn", DEFAULT_CONVERSATION_TURN,
        "Conversation, structured mode: accept, reject with feedback or give up (JSON).")
    scored_match: str = _prompt_field(
        "scored_match", DEFAULT_SCORED_MATCH,
        "Conversation, scored mode: is this suggestion the target? ' yes' / ' no'.")

    @field_validator("*")
    @classmethod
    def _known_variables(cls, v: str, info: ValidationInfo) -> str:
        try:
            names = template_names(v)
        except ValueError as e:
            raise ValueError(f"bad template: {e}") from None
        allowed = TEMPLATE_VARIABLES[str(info.field_name)]
        fields = [f for _, f, _, _ in string.Formatter().parse(v) if f]
        access = sorted({f for f in fields if "." in f or "[" in f})
        if access:
            # {items.upper} would send a bound method's repr (with a memory address) to the
            # model: the prompt, and so the replay key, would change from run to run.
            raise ValueError(f"{{{access[0]}}}: attribute and index access are not allowed "
                             "in templates; use the variable itself")
        unknown = sorted(names - set(allowed))
        if unknown:
            raise ValueError(f"variable(s) {', '.join(unknown)} not available in this "
                             f"template; it gets: {', '.join(allowed)}")
        return v


class BrainConfig(_Frozen):
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


class PlannerConfig(_Frozen):
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


class TraitOverrides(_Frozen):
    """Fix a trait for every agent of the role instead of scoring it from data (1-3)."""

    activity: int | None = Field(None, ge=1, le=3)
    conformity: int | None = Field(None, ge=1, le=3)
    diversity: int | None = Field(None, ge=1, le=3)


class RoleConfig(_Frozen):
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


# ----------------------------------------------------------------------------- scenario


RoleRef = Annotated[
    Annotated[str, Tag("file")] | Annotated[RoleConfig, Tag("inline")],
    Discriminator(lambda v: "file" if isinstance(v, str) else "inline"),
]


class RoleShare(_Frozen):
    """One role of a mixed population: a share of the users or a fixed count."""

    role: RoleRef
    share: float | None = Field(None, gt=0, le=1)
    count: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_of(self) -> RoleShare:
        if (self.share is None) == (self.count is None):
            raise ValueError("give exactly one of share or count")
        return self


class PopulationConfig(_Frozen):
    size: int | None = Field(None, ge=1, description="How many users; null means all.")
    sampling: Literal["random", "first"] = "random"
    role: RoleRef | None = Field(
        None,
        description="A role file (relative to the scenario file) or an inline role; "
        "default: the shipped utility_user role.",
    )
    roles: list[RoleShare] | None = Field(
        None, min_length=1,
        description="A mixed population (instead of role): every entry has a share (shares "
        "sum to 1) or a count (counts sum to the population size, which they set when size "
        "is left out).")

    @model_validator(mode="after")
    def _shares(self) -> PopulationConfig:
        if not self.roles:
            return self
        if self.role is not None:
            raise ValueError("give role (one role) or roles (a mix), not both")
        shares = [r.share for r in self.roles if r.share is not None]
        counts = [r.count for r in self.roles if r.count is not None]
        if shares and counts:
            raise ValueError("roles: use shares for every role or counts for every role")
        if shares and abs(sum(shares) - 1.0) > 1e-6:
            raise ValueError(f"roles: shares sum to {sum(shares):g}, not 1")
        if counts and self.size is not None and sum(counts) != self.size:
            raise ValueError(f"roles: counts sum to {sum(counts)}, not size {self.size}")
        return self


class _Params(_Frozen):
    # Strict: YAML's "100" or true is not a number, and 2.5 is not a count.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class NoParams(_Params):
    """random and pop take no parameters."""


class ItemKNNParams(_Params):
    k_neighbors: int = Field(100, ge=1, description="Neighbours kept per item.")
    shrink: float = Field(10.0, ge=0, description="Added to the cosine denominator.")


class EASEParams(_Params):
    l2: float = Field(500.0, gt=0, description="L2 regularisation of the item-item weights.")


class ALSParams(_Params):
    factors: int = Field(64, ge=1, description="Latent factors.")
    regularization: float = Field(5.0, ge=0)
    alpha: float = Field(5.0, ge=0, description="Confidence of observed interactions.")
    iterations: int = Field(15, ge=1)


class BPRParams(_Params):
    factors: int = Field(64, ge=1, description="Latent factors (plus an item bias).")
    learning_rate: float = Field(0.01, ge=0)
    regularization: float = Field(0.01, ge=0)
    iterations: int = Field(100, ge=1)


# The parameters each model takes (tools/recommenders checks the same rules again when a
# model is built; tests keep the two in agreement).
MODEL_PARAMS: dict[str, type[_Params]] = {
    "random": NoParams, "pop": NoParams, "itemknn": ItemKNNParams, "ease": EASEParams,
    "als": ALSParams, "bpr": BPRParams,
}


def _params_doc() -> str:
    parts = []
    for model, cls in MODEL_PARAMS.items():
        fields = [f"{n} ({getattr(f.annotation, '__name__', f.annotation)}, default {f.default})"
                  for n, f in cls.model_fields.items()]
        parts.append(f"{model}: {', '.join(fields) or 'none'}")
    return "Model parameters, checked at load. " + "; ".join(parts) + "."


def _check_params(model: str | None, params: dict[str, Any]) -> dict[str, Any]:
    if model not in MODEL_PARAMS:
        return params  # the model field has already failed
    cls = MODEL_PARAMS[model]
    takes = (f"it takes: {', '.join(cls.model_fields)}" if cls.model_fields
             else "it takes none")
    unknown = [k for k in params if k not in cls.model_fields]
    if unknown:
        # Located at the unknown name itself, and saying what the model does take.
        raise ValidationError.from_exception_data("params", [{
            "type": PydanticCustomError("unknown_parameter",
                                        "unknown parameter of {model}; {takes}",
                                        {"model": model, "takes": takes}),
            "loc": (str(k),), "input": params[k]} for k in unknown])
    # Only what was given, typed: the trace shows what the file says.
    return cls.model_validate(params).model_dump(exclude_unset=True)


def _params_json_schema(schema: dict[str, Any]) -> None:
    # Editors get the same per-model check as the loader: if model is X, params is X's.
    schema["allOf"] = [
        {"if": {"properties": {"model": {"const": m}}, "required": ["model"]},
         "then": {"properties": {"params": cls.model_json_schema()}}}
        for m, cls in MODEL_PARAMS.items()
    ]


class ColdStartConfig(_Frozen):
    """How an arm shows items released by ``add_items`` events, which no model can rank
    yet (see tools/recommenders/cold_start.py)."""

    policy: Literal["none", "content", "random"] = Field(
        "content",
        description="content: reserved slots go to the new items most similar in genres "
        "and title/description words to what the user interacted with; random: to new "
        "items in seeded random order (exploration); none: no reserved slots.",
    )
    share: float = Field(
        0.25, ge=0, le=1,
        description="Share of every page's slots reserved for released items, rounded up "
        "(at least one slot when > 0); new items the model picks itself count.",
    )

    @model_validator(mode="after")
    def _share_with_policy(self) -> ColdStartConfig:
        if self.policy != "none" and self.share == 0:
            raise ValueError(f"share 0 reserves nothing for policy {self.policy!r}; "
                             "use policy: none or a share > 0")
        return self


class CandidateConfig(_Frozen):
    """model: agent: the classic model whose top ``n`` unseen items the agent ranks."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_params_json_schema)

    model: ModelName = "ease"
    n: int = Field(20, ge=1, le=1000, description="Candidates per request.")
    params: dict[str, Any] = Field({}, description=_params_doc())

    @field_validator("params")
    @classmethod
    def _model_params(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return _check_params(info.data.get("model"), v)


class RecommenderConfig(_Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_params_json_schema)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    model: ArmModel = Field(
        description="A classic model; your own, as an import path (mypkg.module:Class) or "
        "an installed entry point of group recarena.recommenders (docs/recommenders.md); or "
        "agent: an LLM recommender role or team (agent: or team:) ranking the candidates of "
        "a classic model (candidates:).")
    agent: str | None = Field(
        None, description="model: agent: a team file (kind: team) or a recommender role "
        "file (kind: recommender), relative to the scenario file.")
    team: dict[str, Any] | None = Field(
        None, description="model: agent: an inline team, as a team file's fields (manager, "
        "members, max_turns, memory; role files relative to the scenario file).")
    candidates: CandidateConfig = Field(
        CandidateConfig(), description="model: agent: the candidate generator.")
    params: dict[str, Any] = Field({}, description=_params_doc())
    retrain: bool = Field(
        False, description="Refit between rounds on history plus simulated watches."
    )
    cold_start: ColdStartConfig = Field(
        ColdStartConfig(),
        description="Reserved slots for items released by add_items events (a switched-to "
        "model keeps the arm's policy).",
    )

    @field_validator("params")
    @classmethod
    def _model_params(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return _check_params(info.data.get("model"), v)

    @model_validator(mode="after")
    def _agent_fields(self) -> RecommenderConfig:
        if self.model == "agent":
            if (self.agent is None) == (self.team is None):
                raise ValueError("model: agent needs exactly one of agent: (a team or "
                                 "recommender role file) or team: (an inline team)")
            if self.params:
                raise ValueError("model: agent takes no params; give the candidate "
                                 "model's under candidates.params")
        elif self.agent is not None or self.team is not None:
            raise ValueError(f"agent: and team: are for model: agent, not {self.model}")
        return self


class ConversationConfig(_Frozen):
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


class EnvironmentConfig(PluggableEnvironment, _Frozen):  # kind, settings: plug-ins too
    items_per_page: int = Field(4, ge=1, le=100)
    max_pages: int = Field(5, ge=1, le=100)
    rounds: int = Field(1, ge=1, le=1000)
    conversation: ConversationConfig = ConversationConfig()


class AddItemsEvent(_Frozen):
    """Withhold the ``count`` newest items (by release year, then first rating) from the
    start and release them at ``at_round``; later events get newer items."""

    action: Literal["add_items"]
    at_round: int = Field(ge=2)
    count: int = Field(ge=1)


class SwitchRecommenderEvent(_Frozen):
    """From ``at_round`` on, the arm ``recommender`` uses another model."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_params_json_schema)

    action: Literal["switch_recommender"]
    at_round: int = Field(ge=2)
    recommender: str
    model: ModelName
    params: dict[str, Any] = Field({}, description="As a recommender's params, for the new model.")

    @field_validator("params")
    @classmethod
    def _model_params(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return _check_params(info.data.get("model"), v)


Event = Annotated[AddItemsEvent | SwitchRecommenderEvent, Field(discriminator="action")]


class ExecutorConfig(_Frozen):
    """How agents are scheduled (simulations.executors); it never changes a run's results."""

    kind: Literal["default", "ray"] = Field(
        "default", description="default: in this process; ray: users sharded over Ray "
        "workers (needs the 'ray' extra; see docs/scaling.md).")
    workers: int = Field(2, ge=1, le=4096, description="Ray workers (shards of the users).")
    address: str | None = Field(
        None, min_length=1, description="Ray cluster to join (ray.init address, e.g. "
        "'auto' or 'HOST:6379'); none: start a local Ray instance on 127.0.0.1.")


def sharding_problem(roles: Sequence[RoleConfig], llm: LLMConfig | None) -> str | None:
    """Why these roles cannot be sharded over Ray workers (None: they can).

    A worker holds its shard's agents and its own LLM clients only, so state that spans
    users of different shards (a shared store, a run-wide budget) cannot be kept exact.
    """
    for r in roles:
        if r.memory.shared:
            return (f"role {r.name!r} writes the shared store {r.memory.shared!r} "
                    "(memory.shared), which spans users of different Ray workers; use "
                    "executor kind default or drop memory.shared")
        cfg = (r.llm or llm) if r.brain.kind == "llm" else None
        if cfg is not None and (cfg.budget.max_tokens or cfg.budget.max_cost_usd):
            return (f"role {r.name!r} has an LLM budget (llm.budget), which is run-wide and "
                    "cannot be enforced exactly across Ray workers; use executor kind "
                    "default or drop the budget's max_tokens/max_cost_usd")
    return None


class OutputConfig(_Frozen):
    dir: str = Field("runs", description="Parent folder of run folders (relative to cwd).")
    keep_prompts: bool = Field(
        True, description="Keep every LLM call's rendered prompt and raw answer in the trace "
        "(for `recarena trace step`); false keeps private text out of shared traces "
        "(tokens, cost and cache keys stay).")


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
    metrics: list[MetricName] | None = Field(
        None, description="Metrics to report; default: all the environment computes.")
    executor: ExecutorConfig = ExecutorConfig()

    def metric_names(self) -> list[str]:
        """The metrics to report (the environment's defaults when none are listed)."""
        return list(self.metrics) if self.metrics is not None else list(
            ENVIRONMENT_METRICS.get(self.environment.kind, ()))
    output: OutputConfig = OutputConfig()


def scenario_problems(scn: Scenario) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-field problems as (location, message); the loader maps locations to lines."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    names = [r.name for r in scn.recommenders]
    for i, r in enumerate(scn.recommenders):
        if names.index(r.name) != i:
            problems.append((("recommenders", i, "name"), f"duplicate recommender name {r.name!r}"))
    if scn.environment.kind == "conversation":
        for i, r in enumerate(scn.recommenders):
            if r.retrain:
                problems.append((("recommenders", i, "retrain"), "the conversation "
                                 "environment has no watches to retrain on; drop retrain"))
    known = ENVIRONMENT_METRICS.get(scn.environment.kind, ())
    for i, m in enumerate(scn.metrics or ()):
        if m not in known:
            problems.append((("metrics", i), f"the {scn.environment.kind} environment does "
                             f"not compute {m!r}; it computes: {', '.join(known)}"))
    if scn.executor.kind == "default" and scn.executor.address is not None:
        problems.append((("executor", "address"), "only the ray executor joins a cluster; "
                         "set kind: ray or drop address"))
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
