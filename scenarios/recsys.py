"""Pydantic models of recommender role files and team files (issue 8).

A recommender role (``kind: recommender``) is one LLM agent on the recommending side: its
instructions, prompt templates, the tools it may call, its planner, memory, brain and
model, and its ``output``, one of the types the framework knows:

- ``ranking``: orders a candidate list (LLMRank-style zero-shot ranker);
- ``rating``: predicts a user's 1-5 rating of an item (and ranks by predicted rating);
- ``explanation``: explains why an item suits a user;
- ``chat_reply``: answers in words: a conversational recommender's reply (with a ranking
  of the candidates), or a team member's report to its manager;
- ``delegation``: a team's manager: asks members, then answers the team's task.

A team file (``kind: team``) names a manager and members (role files, relative to the
team file). A member runs ``when``: ``consult`` (the manager may delegate to it),
``before`` (turns the conversation into a task first: an Interpreter) or ``after``
(judges the finished attempt and writes a lesson to the team's shared memory: a
Reflector). Adding a role or a member is a YAML change only.
"""

from __future__ import annotations

import string
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scenarios.schema import LLMConfig, ToolName, template_names

__all__ = [
    "BLOCK_TEMPLATES",
    "OUTPUTS",
    "RECSYS_TEMPLATE_VARIABLES",
    "RECSYS_VARIABLES",
    "TEMPLATE_USES",
    "ReasoningConfig",
    "RecBrainConfig",
    "RecMemoryConfig",
    "RecPlannerConfig",
    "RecPrompts",
    "RecommenderRole",
    "RetrievalConfig",
    "RuleRankerConfig",
    "TeamConfig",
    "TeamMember",
    "template_problems",
]

Output = Literal["ranking", "rating", "explanation", "chat_reply", "delegation"]
OUTPUTS: tuple[str, ...] = ("ranking", "rating", "explanation", "chat_reply", "delegation")

RECSYS_VARIABLES: dict[str, str] = {
    "role": "the role's name",
    "instructions": "the role's instructions",
    "task": "what is asked, in words (rank N candidates / rate an item / explain an item, or "
            "the manager's message to a member)",
    "user": "the user's profile up to now: attributes, number and mean of ratings, genres "
            "rated high and low",
    "history": "the user's last ratings before now, one per line, oldest first",
    "notes": "what this agent found out: tool results and team members' reports",
    "lessons": "lessons in the team's shared memory relevant to the task, one per line",
    "context": "the conversation so far (conversation environment), else empty",
    "candidates": "the candidates, one per line: id: title (year), genres",
    "candidate_ids": "the candidate ids, comma-separated",
    "k": "how many items to return",
    "item": "one item, as a line of `candidates`",
    "members": "the team's members the manager may ask, one per line: name: description",
    "answer": "the team's finished answer (for a reflector), in words",
    "rationale": "ranking: the rationale chosen for this user and clock (reasoning: block), "
                 "else empty; judge: the rationale to judge",
    "draft": "rationale/queries: which draft this is (1..best_of), so drafts differ",
    "n": "queries: how many search queries to write",
}

_BASE = ("role", "instructions", "task", "user", "history", "notes", "lessons")
_LIST = ("context", "candidates", "candidate_ids", "k")

# Per output, the templates a role of that output uses and exactly the variables each is
# rendered with (the loader rejects any other name; agents.recsys.prompts renders with
# exactly these). ``scored*`` templates serve base models: the answer is read from the
# next-token log-probabilities of fixed options, so it is valid by construction.
RECSYS_TEMPLATE_VARIABLES: dict[str, dict[str, tuple[str, ...]]] = {
    "ranking": {"system": _BASE, "prompt": (*_BASE, *_LIST, "rationale"),
                "scored": (*_BASE, "context", "item", "rationale"),
                # reasoning: block (OneRec-Think style) and retrieval: block (GPT4Rec style)
                "rationale": (*_BASE, "draft"), "judge": (*_BASE, "rationale"),
                "queries": (*_BASE, "draft", "n")},
    "rating": {"system": _BASE, "prompt": (*_BASE, "item"), "scored": (*_BASE, "item")},
    "explanation": {"system": _BASE, "prompt": (*_BASE, "item")},
    "chat_reply": {"system": _BASE, "prompt": _BASE + _LIST + ("item", "answer"),
                   "scored": (*_BASE, "context", "item")},
    "delegation": {"system": _BASE, "prompt": _BASE + _LIST + ("item", "members"),
                   "scored": _BASE + _LIST + ("item", "members"),
                   "scored_item": (*_BASE, "context", "item")},
}

# Templates used only with a block of the role (reasoning:, retrieval:).
BLOCK_TEMPLATES: dict[str, str] = {"rationale": "reasoning", "judge": "reasoning",
                                   "queries": "retrieval"}

# What each template is for (JSON-schema descriptions; `recarena roles new` comments).
TEMPLATE_USES: dict[str, str] = {
    "system": "System message of every call.",
    "prompt": "Chat models: the task; the answer is JSON of the output type (asked natively "
              "or as text, validated, repaired).",
    "scored": "Base models: ranking/chat_reply: is one candidate a good recommendation (read "
              "as ' yes' / ' no'); rating: the stars (' 1'..' 5'); delegation: the next "
              "member to ask or ' finish'.",
    "scored_item": "Base models, delegation: the manager's final answer, one candidate at a "
                   "time (' yes' / ' no'; ratings read as ' 1'..' 5').",
    "rationale": "reasoning: block: a rationale grounded in the user's history before now "
                 "(chat models: JSON with the cited history ids; base models: free text).",
    "judge": "reasoning: block with judge: llm: how good one rationale is (chat models: "
             "JSON score 1-10; base models: ' yes' / ' no').",
    "queries": "retrieval: block: search queries from the user's history (chat models: "
               "JSON list; base models: free text, one query per line).",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def template_problems(output: str, prompts: dict[str, str]) -> list[tuple[str, str]]:
    """(template name, message) for every template the output type does not have or that
    uses a variable it is not rendered with; the loader maps names to lines."""
    allowed = RECSYS_TEMPLATE_VARIABLES[output]
    out: list[tuple[str, str]] = []
    for name, text in prompts.items():
        if name not in allowed:
            out.append((name, f"output {output!r} has no template {name!r}; it has: "
                              f"{', '.join(allowed)}"))
            continue
        try:
            names = template_names(text)
        except ValueError as e:
            out.append((name, f"bad template: {e}"))
            continue
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f]
        bad = sorted(n for n in names if n not in allowed[name])
        if any("." in f or "[" in f for f in fields):
            out.append((name, "attribute and index access are not allowed in templates; "
                              "use the variable itself"))
        elif bad:
            out.append((name, f"variable(s) {', '.join(bad)} not available in this "
                              f"template; it gets: {', '.join(allowed[name])}"))
    return out


class RecPrompts(_Frozen):
    """Templates (Python ``str.format``); any left out take the output type's default.
    Each may use only its own variables (``RECSYS_TEMPLATE_VARIABLES[output][name]``)."""

    system: str | None = Field(None, description=TEMPLATE_USES["system"])
    prompt: str | None = Field(None, description=TEMPLATE_USES["prompt"])
    scored: str | None = Field(None, description=TEMPLATE_USES["scored"])
    scored_item: str | None = Field(None, description=TEMPLATE_USES["scored_item"])
    rationale: str | None = Field(None, description=TEMPLATE_USES["rationale"])
    judge: str | None = Field(None, description=TEMPLATE_USES["judge"])
    queries: str | None = Field(None, description=TEMPLATE_USES["queries"])

    def given(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


_PROMPTS_DOC = "Templates per output type and the variables each gets: " + "; ".join(
    f"{out}: " + ", ".join(f"{t} ({' '.join(v)})" for t, v in temps.items())
    for out, temps in RECSYS_TEMPLATE_VARIABLES.items()) + ". Meanings: " + "; ".join(
    f"{k}: {v}" for k, v in RECSYS_VARIABLES.items()) + "."


class RecPlannerConfig(_Frozen):
    """``static``: call each of the role's tools once with its defaults before answering
    (a fixed path); ``reactive``: ReAct over the tools (planners/reactive.py)."""

    kind: Literal["static", "reactive"] = "static"
    max_steps: int = Field(3, ge=1, le=20, description="reactive: tool steps.")


class RecMemoryConfig(_Frozen):
    shared: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]+$",
        description="A shared (collaborative) store: lessons in it are read into "
        "{lessons}; an `after` member of a team writes its lesson there.")
    top_k: int = Field(3, ge=0, le=50, description="Lessons recalled per task.")
    embedder: Literal["minilm", "hash"] = Field(
        "hash", description="Embeds lessons for recall: hash (fast, for tests) or minilm.")


class RecBrainConfig(_Frozen):
    decision_mode: Literal["auto", "structured", "scored"] = Field(
        "auto", description="structured: JSON answers (chat models); scored: answers read "
        "from next-token log-probabilities (base models such as the local Gemma 270M); "
        "auto: scored with the local backend, else structured.")
    max_repairs: int = Field(1, ge=0, le=10, description="Re-asks after invalid JSON.")
    reply_tokens: int = Field(
        64, ge=0, le=4000, description="scored mode (base models): at most this many tokens "
        "of free text (reports, replies, explanations); a base model rambles until the cap. "
        "0: no free text: a member a manager consults reports what its tools found, a "
        "reply is empty (on a CPU, generating is most of a base model's run time).")


class ReasoningConfig(_Frozen):
    """Think, then rank (OneRec-Think style): a rationale grounded in the user's history
    before the request's clock, prepared once per user, clock and round and reused."""

    writer: Literal["llm", "rules"] = Field(
        "llm", description="llm: the role's model writes it (template `rationale`); rules: "
        "no model: the user's top liked genres and item-kNN neighbours of recent likes.")
    best_of: int = Field(1, ge=1, le=8, description="Drafts written; the judge keeps one.")
    judge: Literal["grounding", "llm"] = Field(
        "grounding", description="grounding: deterministic (history items cited and liked "
        "genres named, minus twice the ungrounded citations); llm: the role's model scores "
        "each draft (template `judge`).")
    reuse: bool = Field(True, description="Keep rationales per (user, clock, round, prompt "
                        "version) and reuse them across requests.")
    top_genres: int = Field(3, ge=1, le=10, description="rules: liked genres named.")
    recent_likes: int = Field(5, ge=1, le=50, description="rules: recent liked items cited.")
    neighbours: int = Field(5, ge=0, le=50, description="rules: item-kNN neighbours named.")
    history_items: int = Field(20, ge=1, le=200, description="llm: history lines shown.")


class RetrievalConfig(_Frozen):
    """Generate search queries from the history, retrieve, rank (GPT4Rec style)."""

    writer: Literal["llm", "rules"] = Field(
        "llm", description="llm: the role's model writes the queries (template `queries`); "
        "rules: no model: top liked genres and titles of recent likes.")
    queries: int = Field(3, ge=1, le=10, description="Queries per user.")
    search: Literal["bm25", "vector"] = Field(
        "bm25", description="bm25: search_catalog's index; vector: semantic_search's.")
    depth: int = Field(50, ge=1, le=5000, description="Items retrieved per query.")
    fusion: Literal["rrf", "score"] = Field(
        "rrf", description="rrf: sum of 1/(60 + rank) over queries; score: sum of scores "
        "divided by each query's best.")
    reuse: bool = Field(True, description="Keep queries per (user, clock, round).")


class RuleRankerConfig(_Frozen):
    """``ranker: rules``: prior + genre_weight * (share of the candidate's genres among the
    rationale's genres) + neighbour_weight * (largest item-kNN cosine to an item the
    rationale cites or names). Without a rationale: the prior alone."""

    prior: Literal["pop", "item_mean", "none"] = "pop"
    genre_weight: float = Field(1.0, ge=0.0, le=100.0)
    neighbour_weight: float = Field(1.0, ge=0.0, le=100.0)


class RecommenderRole(_Frozen):
    kind: Literal["recommender"] = "recommender"
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    output: Output = Field(description="ranking, rating, explanation, chat_reply or "
                           "delegation (a team's manager).")
    instructions: str = ""
    prompts: RecPrompts = Field(RecPrompts(), description=_PROMPTS_DOC)
    tools: list[ToolName] = Field(
        default_factory=list,
        description="Tools it may call (user_profile, user_history and candidates are bound "
        "to the request's user and clock: they never show what happens after now).")
    planner: RecPlannerConfig = RecPlannerConfig()
    memory: RecMemoryConfig = RecMemoryConfig()
    brain: RecBrainConfig = RecBrainConfig()
    llm: LLMConfig | None = Field(None, description="This role's model; default: the "
                                  "scenario's llm: block or --llm.")
    reasoning: ReasoningConfig | None = Field(
        None, description="ranking: write a grounded rationale first, then rank with it.")
    retrieval: RetrievalConfig | None = Field(
        None, description="ranking: generate search queries from the history and retrieve.")
    ranker: Literal["llm", "rules", "retrieval"] = Field(
        "llm", description="ranking: llm (the role's model), rules (rules:, conditioned on "
        "the rationale if any; no model) or retrieval (fused retrieval scores; no model).")
    rules: RuleRankerConfig = RuleRankerConfig()

    @property
    def needs_llm(self) -> bool:
        """Whether any step of this role asks a model (rule-only controls do not)."""
        r, q = self.reasoning, self.retrieval
        return (self.ranker == "llm" or (r is not None and (
            r.writer == "llm" or (r.judge == "llm" and r.best_of > 1)))
            or (q is not None and q.writer == "llm"))

    @model_validator(mode="after")
    def _reasoning_blocks(self) -> RecommenderRole:
        if self.output != "ranking" and (self.reasoning or self.retrieval
                                         or self.ranker != "llm"):
            raise ValueError("reasoning:, retrieval: and ranker: other than llm apply to "
                             f"output: ranking only, not {self.output}")
        if self.ranker == "retrieval" and self.retrieval is None:
            raise ValueError("ranker: retrieval needs a retrieval: block")
        given = self.prompts.given()
        blocks = {"reasoning": self.reasoning, "retrieval": self.retrieval}
        for name, block in BLOCK_TEMPLATES.items():
            if name in given and blocks[block] is None:
                raise ValueError(f"prompts.{name}: used only with a {block}: block")
        return self

    @model_validator(mode="after")
    def _tools_for_planner(self) -> RecommenderRole:
        if self.tools and any(t in ("search_memory", "read_shared") for t in self.tools):
            raise ValueError("tools: search_memory and read_shared are user-agent tools; "
                             "a recommender reads lessons through memory.shared")
        return self


class TeamMember(_Frozen):
    role: str = Field(min_length=1, description="A recommender role file, relative to "
                      "this file.")
    when: Literal["consult", "before", "after"] = Field(
        "consult", description="consult: the manager may delegate to it; before: turns the "
        "conversation into a task first (interpreter); after: judges the finished attempt "
        "and writes a lesson to the team's shared memory (reflector).")


class TeamConfig(_Frozen):
    kind: Literal["team"] = "team"
    name: str = Field("team", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    manager: str = Field(min_length=1, description="The manager's role file (output: "
                         "delegation), relative to this file.")
    members: list[str | TeamMember] = Field(min_length=1)
    max_turns: int = Field(4, ge=1, le=20, description="Delegations per task at most.")
    memory: RecMemoryConfig = Field(
        RecMemoryConfig(shared="team_lessons"),
        description="The team's shared memory (lessons of `after` members).")

    def entries(self) -> list[TeamMember]:
        return [m if isinstance(m, TeamMember) else TeamMember(role=m) for m in self.members]
