"""Scenario files: population, arms, environment, events, executor and output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from scenarios.dataset_schema import DatasetConfig
from scenarios.schema.attack import AttackConfig, attack_problems
from scenarios.schema.base import FrozenModel
from scenarios.schema.environment import ENVIRONMENT_METRICS, EnvironmentConfig, MetricName
from scenarios.schema.events import Event, SwitchRecommenderEvent
from scenarios.schema.llm import LLMConfig
from scenarios.schema.recommender import RecommenderConfig
from scenarios.schema.role import RoleConfig

__all__ = [
    "ExecutorConfig",
    "OutputConfig",
    "PopulationConfig",
    "RoleRef",
    "RoleShare",
    "Scenario",
    "scenario_problems",
    "sharding_problem",
]


RoleRef = Annotated[
    Annotated[str, Tag("file")] | Annotated[RoleConfig, Tag("inline")],
    Discriminator(lambda v: "file" if isinstance(v, str) else "inline"),
]


class RoleShare(FrozenModel):
    """One role of a mixed population: a share of the users or a fixed count."""

    role: RoleRef
    share: float | None = Field(None, gt=0, le=1)
    count: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_of(self) -> RoleShare:
        if (self.share is None) == (self.count is None):
            raise ValueError("give exactly one of share or count")
        return self


class PopulationConfig(FrozenModel):
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


class ExecutorConfig(FrozenModel):
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


class OutputConfig(FrozenModel):
    dir: str = Field("runs", description="Parent folder of run folders (relative to cwd).")
    keep_prompts: bool = Field(
        True, description="Keep every LLM call's rendered prompt and raw answer in the trace "
        "(for `recarena trace step`); false keeps private text out of shared traces "
        "(tokens, cost and cache keys stay).")
    withhold_attributes: bool = Field(
        False, description="Keep user attributes (age, gender, occupation, zip code: the "
        "dataset's user file) out of the trace, summary and manifest: profile events carry "
        "no attrs and the attribute phrase of agents' prompts and tool results is removed "
        "(docs/trust.md#privacy).")


class Scenario(FrozenModel):
    kind: Literal["scenario"] = "scenario"
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = Field(0, ge=0, description="Seed of every random choice in the run.")
    dataset: DatasetConfig = DatasetConfig()
    population: PopulationConfig = PopulationConfig()
    recommenders: list[RecommenderConfig] = Field(min_length=1)
    environment: EnvironmentConfig = EnvironmentConfig()
    events: list[Event] = Field([])
    llm: LLMConfig | None = None
    metrics: list[MetricName] | None = Field(
        None, description="Metrics to report; default: all the environment computes.")
    executor: ExecutorConfig = ExecutorConfig()
    output: OutputConfig = OutputConfig()
    attack: AttackConfig | None = Field(
        None, description="Attacks on the platform: fake users (fake_users), poisoned item "
        "text (item_text), poisoned memories (memory); docs/attacks.md.")
    item_agents: str | None = Field(
        None, description="An item role file (kind: item), relative to this file: item "
        "agents trained on the history (AgentCF's loop, the deterministic control) say who "
        "likes each item, and prompts of LLM users and recommenders show it.")

    def metric_names(self) -> list[str]:
        """The metrics to report (the environment's defaults when none are listed)."""
        return list(self.metrics) if self.metrics is not None else list(
            ENVIRONMENT_METRICS.get(self.environment.kind, ()))


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
    problems += attack_problems(scn.attack, names)
    known = ENVIRONMENT_METRICS.get(scn.environment.kind, ())
    for i, m in enumerate(scn.metrics or ()):
        if m not in known:
            problems.append((("metrics", i), f"the {scn.environment.kind} environment does "
                             f"not compute {m!r}; it computes: {', '.join(known)}"))
    text = scn.attack.item_text if scn.attack is not None else None
    if text is not None and scn.executor.kind == "ray" and (
            {"delimit", "hierarchy"} & set(text.defences)):
        problems.append((("attack", "item_text", "defences"), "the delimit and hierarchy "
                         "defences note every system prompt of this process's clients; the "
                         "ray executor's user agents live in workers: use executor default"))
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
