"""Item agent files (``kind: item``): AgentCF's items as agents (issue 20).

An item agent's memory is a short description of "who likes me and why", seeded from the
catalogue (genres, year) and the knowledge graph (directors, actors shared with other
movies), and rewritten as users choose it or pass it over. One file describes every item
of the catalogue (items are many, their role is one), like a user role describes every
user who plays it.

What the file sets:

- ``seed``: what the first description holds (genres, knowledge-graph relations);
- ``memory``: how long a description may grow (``keep``: tags of the deterministic control,
  ``words``: words of an LLM-written description) and the store it is held in;
- ``training``: AgentCF's loop (epochs, interactions per user, negatives, what a right
  choice does);
- ``control``: the deterministic update rules (no LLM);
- ``inference``: how the sr task ranks (``basic``, ``history``, ``retrieval``);
- ``llm`` and ``prompts``: the LLM loop's model and templates (validated at load: a
  template may use only the variables its step is rendered with).

Schema only: this module imports no engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from scenarios.schema import LLMConfig, template_names
from scenarios.schema.base import FrozenModel
from scenarios.yaml_io import ScenarioError, field_name, node_line, read_yaml, validate_model

__all__ = [
    "INFERENCE_MODES",
    "ITEM_TEMPLATE_VARIABLES",
    "ItemControl",
    "ItemMemory",
    "ItemPrompts",
    "ItemRole",
    "ItemSeed",
    "ItemTraining",
    "item_template_problems",
    "load_item_role",
]

Inference = Literal["basic", "history", "retrieval"]
INFERENCE_MODES: tuple[str, ...] = ("basic", "history", "retrieval")

# Per template, exactly the variables it is rendered with (agents/items/llm_loop.py).
ITEM_TEMPLATE_VARIABLES: dict[str, tuple[str, ...]] = {
    "system": ("instructions",),
    "choose": ("user", "first", "second"),
    "choose_scored": ("user", "first", "second"),
    "reflect_user": ("user", "chosen", "rejected", "positive", "negative", "explanation",
                     "outcome"),
    "reflect_item": ("user", "item", "outcome", "role"),
    "rank_scored": ("user", "history", "memories", "item"),
    "rank": ("user", "history", "memories", "candidates"),
}

DEFAULT_PROMPTS: dict[str, str] = {
    "system": "{instructions}",
    "choose": (
        "A user describes themselves: {user}\n"
        "Movie A: {first}\nMovie B: {second}\n"
        "Which movie does this user prefer? Answer with the letter on the first line, then "
        "one sentence why.\nAnswer:"),
    "choose_scored": (
        "User: {user}\nMovie A: {first}\nMovie B: {second}\n"
        "Question: Which movie does the user prefer, A or B?\nAnswer:"),
    "reflect_user": (
        "A user described themselves: {user}\n"
        "Offered {positive} and {negative}, they were predicted to choose {chosen} "
        "({explanation}). In fact they chose {positive}; the prediction was {outcome}.\n"
        "Rewrite the user's self-description in at most two sentences so that it explains "
        "the real choice. Answer with JSON only: "
        '{{"description": "the new self-description"}}\nAnswer:'),
    "reflect_item": (
        "A movie describes who likes it: {item}\n"
        "A user with this taste {role} it ({outcome}): {user}\n"
        "Rewrite the movie's description of who likes it and why, in at most two "
        "sentences. Answer with JSON only: "
        '{{"description": "the new description"}}\nAnswer:'),
    "rank_scored": (
        "User: {user}\nRecently watched:\n{history}\nRemembered:\n{memories}\n"
        "Movie: {item}\nQuestion: Will the user enjoy this movie? Answer yes or no.\n"
        "Answer:"),
    "rank": (
        "User: {user}\nRecently watched:\n{history}\nRemembered:\n{memories}\n"
        "Candidates (id: movie; who likes it):\n{candidates}\n"
        "Rank every candidate from the best recommendation for this user to the worst. "
        "Answer with the ids only, comma-separated."),
}


class ItemSeed(FrozenModel):
    """What an item's first description holds."""

    genres: bool = Field(True, description="The item's genres (and decade).")
    kg_relations: tuple[str, ...] = Field(
        ("film.film.directed_by", "film.film.actor"),
        description="Knowledge-graph relations whose entities seed the description "
        "(director, actors); the dataset's NAME.kg and NAME.link files. Empty: none.")
    kg_max: int = Field(3, ge=0, le=20, description="Entities per relation at most.")


class ItemMemory(FrozenModel):
    """How long descriptions may grow, and where they are held."""

    keep: int = Field(12, ge=1, le=200, description="Control: tags an item or user "
                      "description keeps (the heaviest).")
    words: int = Field(60, ge=5, le=400, description="LLM: words a written description "
                       "keeps (longer answers are cut).")
    store: Literal["long_term", "none"] = Field(
        "long_term", description="long_term: descriptions, and users' choices and "
        "explanations, are records of the same long-term store as users' memories "
        "(memory/long_term.py; retrieval mode reads it); none: in process only.")


class ItemTraining(FrozenModel):
    """AgentCF's training loop over history interactions, oldest first."""

    epochs: int = Field(1, ge=1, le=20, description="Passes over the interactions.")
    per_user: int = Field(10, ge=1, le=1000, description="Each training user's last N "
                          "liked history interactions (before the cutoff).")
    liked: float = Field(4.0, ge=1, le=5, description="A positive is rated at least this.")
    sampler: Literal["popularity", "uniform"] = Field(
        "popularity", description="How the negative of each interaction is drawn among "
        "items the user never rated (history popularity: AgentCF's).")
    on_right: Literal["reinforce", "none"] = Field(
        "reinforce", description="What a right choice does: a reinforcing update, or none.")
    item_updates: bool = Field(True, description="Items rewrite their descriptions (off: "
                               "the ablation; users still learn).")


class ItemControl(FrozenModel):
    """The deterministic control's update rules (tags: genres, decade, KG entities)."""

    user_rate: float = Field(1.0, ge=0, description="Weight of a chosen item's tags added "
                             "to the user.")
    item_rate: float = Field(0.5, ge=0, description="Weight of the user's tags added to "
                             "an item that user chose.")
    negative_rate: float = Field(0.5, ge=0, description="On a wrong choice: weight of the "
                                 "user's tags removed from the wrongly preferred item.")
    reinforce: float = Field(0.5, ge=0, description="On a right choice: the updates "
                             "above scaled by this (on_right: reinforce).")
    seed_weight: float = Field(1.0, ge=0, description="Weight of an item's seeded tags.")
    history: int = Field(20, ge=1, description="history/retrieval inference: the user's "
                         "last N history items read.")


class ItemPrompts(FrozenModel):
    """Templates of the LLM loop; each is checked at load for its variables."""

    system: str = DEFAULT_PROMPTS["system"]
    choose: str = DEFAULT_PROMPTS["choose"]
    choose_scored: str = DEFAULT_PROMPTS["choose_scored"]
    reflect_user: str = DEFAULT_PROMPTS["reflect_user"]
    reflect_item: str = DEFAULT_PROMPTS["reflect_item"]
    rank_scored: str = DEFAULT_PROMPTS["rank_scored"]
    rank: str = DEFAULT_PROMPTS["rank"]


class ItemRole(FrozenModel):
    """An item agent file: every catalogue item plays it."""

    kind: Literal["item"] = "item"
    name: str = Field("items", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    instructions: str = Field(
        "You simulate a movie recommendation community: users who describe their own "
        "tastes, and movies that describe who likes them and why.",
        description="The system message's {instructions}.")
    seed: ItemSeed = ItemSeed()
    memory: ItemMemory = ItemMemory()
    training: ItemTraining = ItemTraining()
    control: ItemControl = ItemControl()
    inference: Inference = Field("basic", description="sr ranking: basic (user and item "
                                 "descriptions), history (+ the user's history), "
                                 "retrieval (+ the user's past memories from the store).")
    decision_mode: Literal["auto", "chat", "scored"] = Field(
        "auto", description="LLM choices: chat (the letter in a free answer), scored "
        "(next-token log-probabilities of ' A' / ' B', for base models); auto: scored for "
        "the local backend.")
    max_repairs: int = Field(1, ge=0, le=10, description="Reflections: re-asks after an "
                             "answer that is not a valid JSON description; a reflection "
                             "still invalid after them is a counted parse failure.")
    llm: LLMConfig | None = None
    prompts: ItemPrompts = ItemPrompts()

    @model_validator(mode="after")
    def _templates(self) -> ItemRole:
        problems = item_template_problems(self.prompts)
        if problems:
            raise ValueError(f"prompts.{problems[0][0]}: {problems[0][1]}")
        return self


def item_template_problems(prompts: ItemPrompts) -> list[tuple[str, str]]:
    """(template, message) for each template that uses a variable it is not given."""
    out = []
    for name, allowed in ITEM_TEMPLATE_VARIABLES.items():
        text = getattr(prompts, name)
        try:
            names = template_names(text)
        except ValueError as e:
            out.append((name, f"bad template: {e}"))
            continue
        bad = sorted(n for n in names if n not in allowed)
        if bad:
            out.append((name, f"unknown variable {{{bad[0]}}}; this template has: "
                              f"{', '.join(allowed)}"))
    return out


def load_item_role(path: str | Path) -> ItemRole:
    """Load and validate an item agent file; a bad template is ``FILE:LINE: prompts.X``."""
    p = Path(path)
    data, node = read_yaml(p, ItemRole)
    if isinstance(data, dict) and isinstance(data.get("prompts"), dict):
        # Templates first, so the error points at the template's own line.
        try:
            problems = item_template_problems(ItemPrompts.model_validate(data["prompts"]))
        except ValueError:
            problems = []  # validate_model reports the field error with its line
        if problems:
            loc = ("prompts", problems[0][0])
            raise ScenarioError(p, node_line(node, loc), field_name(loc), problems[0][1])
    return validate_model(ItemRole, data, p, node)
