"""Environments: a protocol and a registry keyed by ``environment.kind``.

An environment owns turn-taking, its own state and its metrics' raw events. Each step it
hands the run loop a list of typed observations (agents.observations) and receives one
typed action per observation; it never reads or writes an agent's memory and never plans
for it. The loop (simulations/runner.py) is the same for every environment::

    env.begin_round(r)
    while observations := env.observe():
        env.step(observations, population.act(observations))
    env.end_round(r)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from agents.brains.utility import World
from agents.observations import Action, Observation
from scenarios.schema import RecommenderConfig, Scenario, SwitchRecommenderEvent
from simulations.trace import TraceWriter
from tools.dataset import Dataset, Interactions
from tools.recommenders import ColdStartRecommender

__all__ = [
    "ENVIRONMENTS",
    "ArmEnvironment",
    "EnvSetup",
    "Environment",
    "make_environment",
    "register",
]

# fit(model config, training interactions, items released so far) -> a fitted recommender
# (wrapped with the arm's cold-start policy for the released items).
Fit = Callable[[RecommenderConfig | SwitchRecommenderEvent, Interactions, frozenset[int]],
               ColdStartRecommender]


@dataclass
class EnvSetup:
    """What an environment gets for one arm of a run."""

    arm: RecommenderConfig
    scenario: Scenario
    dataset: Dataset
    history: Interactions  # before the simulation (profiles, training)
    future: Interactions  # held out: targets of conversations, fidelity checks
    world: World
    users: list[int]
    withheld: dict[int, frozenset[int]]  # release round -> items
    trace: TraceWriter
    fit: Fit  # fits a recommender config on interactions
    role_of: dict[int, str] = field(default_factory=dict)
    on_session_end: Callable[[int], None] = lambda n: None

    def user_id(self, u: int) -> str:
        return self.dataset.user_ids[u]


class Environment(Protocol):
    """A world agents act in, one arm at a time."""

    kind: ClassVar[str]

    def begin_round(self, round_: int) -> None: ...

    def observe(self) -> list[Observation]:
        """The observations of everyone who acts now; empty when the round is over."""
        ...

    def step(self, observations: Sequence[Observation], actions: Sequence[Action]) -> None:
        """Apply one action per observation (same order)."""
        ...

    def end_round(self, round_: int) -> None: ...


class ArmEnvironment:
    """What the shipped environments share: trace ids and fields of an arm's steps, and
    the scripted events every environment honours (new releases, switched models)."""

    def __init__(self, setup: EnvSetup) -> None:
        self.s = setup
        self.arm = setup.arm.name
        self.cat = setup.dataset.catalog
        self.withheld: set[int] = set().union(*setup.withheld.values()) if setup.withheld \
            else set()
        self.released: frozenset[int] = frozenset()  # new items that have arrived
        self.round = 0

    def _where(self, u: int, **more: Any) -> dict[str, Any]:
        return {"arm": self.arm, "round": self.round, "user": self.s.user_id(u),
                "role": self.s.role_of.get(u), **more}

    def _base(self, u: int, step: str) -> str:
        return f"{self.arm}/r{self.round}/u{self.s.user_id(u)}/{step}"

    def _release(self, round_: int) -> frozenset[int]:
        """Items scripted to arrive this round: no longer withheld; traced; returned."""
        arriving = self.s.withheld.get(round_, frozenset())
        if arriving:
            self.withheld -= arriving
            self.released |= arriving
            self.s.trace.emit("event", f"{self.arm}/r{round_}/add_items", arm=self.arm,
                              round=round_, action="add_items",
                              items=sorted(self.cat.item_ids[i] for i in arriving))
        return arriving

    def _switch(self, round_: int, refit: Callable[[SwitchRecommenderEvent], None]) -> None:
        """Apply this arm's ``switch_recommender`` events due this round."""
        for ev in self.s.scenario.events:
            if (isinstance(ev, SwitchRecommenderEvent) and ev.at_round == round_
                    and ev.recommender == self.arm):
                refit(ev)
                self.s.trace.emit("event", f"{self.arm}/r{round_}/switch_recommender",
                                  arm=self.arm, round=round_, action="switch_recommender",
                                  model=ev.model, params=ev.params)


ENVIRONMENTS: dict[str, Callable[[EnvSetup], Environment]] = {}


def register(kind: str) -> Callable[[Any], Any]:
    """Class decorator: make an environment available as ``environment.kind: KIND``."""
    def deco(cls: Any) -> Any:
        cls.kind = kind
        ENVIRONMENTS[kind] = cls
        return cls
    return deco


def make_environment(kind: str, setup: EnvSetup) -> Environment:
    # The shipped environments are registered: importing this module imported its package
    # (simulations.environments), which imports them.
    try:
        factory = ENVIRONMENTS[kind]
    except KeyError:
        raise ValueError(f"unknown environment kind {kind!r}; known: "
                         f"{', '.join(sorted(ENVIRONMENTS))}") from None
    return factory(setup)
