"""Environments: a protocol and a registry keyed by ``environment.kind``.

An environment owns turn-taking, its own state and its metrics' raw events. Each step it
hands the run loop a list of typed observations (agents.observations) and receives one
typed action per observation; it never reads or writes an agent's memory and never plans
for it. The loop (simulations/run/runner.py) is the same for every environment::

    env.begin_round(r)
    while observations := env.observe():
        env.step(observations, population.act(observations))
    env.end_round(r)

An environment whose agents are independent within a phase (the feed's pages) may also
offer ``lanes`` and ``join`` (``LaneEnvironment``): the loop then runs the phase lane by
lane, each lane moving on as soon as its own actions are applied, and writes the trace in
the canonical order above (simulations/environments/pipeline.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

from agents.kinds import InteractionKind, register_kind
from agents.observations import Action, Observation
from scenarios.environment_kinds import register_environment_kind
from scenarios.schema import RecommenderConfig, Scenario, SwitchRecommenderEvent
from tools.dataset import Dataset, Interactions
from tools.recommenders import ColdStartRecommender
from tools.world import World

if TYPE_CHECKING:
    from agents.items.live import ArmItems

__all__ = [
    "ENVIRONMENTS",
    "ArmEnvironment",
    "EnvSetup",
    "Environment",
    "Lane",
    "LaneEnvironment",
    "PrepareInput",
    "TraceBuffer",
    "TraceSink",
    "interaction_kinds",
    "make_environment",
    "prepare_hook",
    "register",
]

# fit(model config, training interactions, items released so far) -> a fitted recommender
# (wrapped with the arm's cold-start policy for the released items).
Fit = Callable[[RecommenderConfig | SwitchRecommenderEvent, Interactions, frozenset[int]],
               ColdStartRecommender]


class TraceSink(Protocol):
    """Where an environment writes its trace events (``TraceWriter``, or a lane's buffer)."""

    def emit(self, type_: str, id_: str, **fields: Any) -> None: ...

    def flush(self) -> None: ...


class TraceBuffer:
    """A lane's trace: events held until the loop writes them in the canonical order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def emit(self, type_: str, id_: str, **fields: Any) -> None:
        self.events.append((type_, id_, fields))

    def flush(self) -> None:
        return None

    def take(self) -> list[tuple[str, str, dict[str, Any]]]:
        out, self.events = self.events, []
        return out


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
    trace: TraceSink  # the run's TraceWriter (a lane's TraceBuffer: LaneEnvironment)
    fit: Fit  # fits a recommender config on interactions
    role_of: dict[int, str] = field(default_factory=dict)
    on_session_end: Callable[[int], None] = lambda n: None
    activity: dict[int, int] = field(default_factory=dict)  # user -> activity trait (1-3)
    items: ArmItems | None = None  # this arm's own item agents (scenario ``item_agents:``)

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


class Lane(Protocol):
    """Some of a phase's agents, moving through the phase on their own (``lanes``)."""

    trace: TraceBuffer  # the lane's own events (observe's, then step's), in order

    def observe(self) -> list[Observation]:
        """This lane's next observations; empty when its agents are done with the phase."""
        ...

    def step(self, observations: Sequence[Observation], actions: Sequence[Action]) -> None:
        ...


class LaneEnvironment(Environment, Protocol):
    """An environment whose agents can be independent within a phase.

    ``lanes(size)``: at the start of (or during) such a phase, the agents about to act, in
    the order ``observe`` would list them, cut into contiguous lanes of ``size``; None when
    the next step is not independent (a sync point, e.g. the feed's interviews, or a
    recommender agent that files its events in the run's trace). The contract: within the
    phase an agent's observations depend only on its own actions (and on the state at the
    phase's start), the events of a step are its observations' events then its actions'
    events, each part in the order of the agents, and an agent acting at the phase's k-th
    step acted at all its earlier steps. ``join(lanes)`` then brings the environment to
    the state the lock-step loop would have reached at the end of the phase.
    """

    def lanes(self, size: int) -> Sequence[Lane] | None: ...

    def join(self, lanes: Sequence[Lane]) -> None: ...


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
        if setup.items is not None:  # prompts show this arm's items from its first page
            setup.items.show()

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

    # The arm's training data and recommender (set by the environment).
    train: Interactions
    recommender: ColdStartRecommender

    def _fitted(self, rec: ColdStartRecommender) -> ColdStartRecommender:
        """A freshly fitted recommender, before use (an environment may hand it more)."""
        return rec

    def _retrain(self, round_: int, watches: Sequence[tuple[int, int, int, int]]) -> None:
        """Between rounds, if the arm retrains: this round's watches (user, item, rating,
        round) join the training data and the recommender is refitted (an incremental
        plug-in is updated instead); traced as ``retrain``."""
        s = self.s
        if not (s.arm.retrain and round_ < s.scenario.environment.rounds):
            return
        new = [w for w in watches if w[3] == round_]
        sim = Interactions.from_lists(
            [w[0] for w in new], [w[1] for w in new], [w[2] for w in new],
            [float(2_000_000_000 + round_) for _ in new])
        self.train = self.train.concat(sim)
        cfg = next((e for e in s.scenario.events if isinstance(e, SwitchRecommenderEvent)
                    and e.recommender == self.arm and e.at_round <= round_), s.arm)
        if self.recommender.incremental:  # a plug-in that learns without a refit
            self.recommender.update(self.train.matrix(
                s.dataset.n_users, s.dataset.n_items,
                binary=not self.recommender.uses_ratings))
        else:
            self.recommender = self._fitted(s.fit(cfg, self.train, self.released))
        s.trace.emit("retrain", f"{self.arm}/r{round_}/retrain", arm=self.arm,
                     round=round_, added=len(new), interactions=len(self.train),
                     recommender=self.recommender.name)

    def _liked(self, round_: int, watches: Sequence[tuple[int, int, int, int]]
               ) -> list[tuple[int, int]]:
        """This round's watches that teach item agents: (user, item) rated at least the
        item role's ``training.liked`` (none without item agents)."""
        items = self.s.items
        if items is None:
            return []
        return [(u, i) for u, i, r, rd in watches if rd == round_ and r >= items.liked]

    def _teach_items(self, round_: int, chosen: Sequence[tuple[int, int]]) -> None:
        """Between rounds, with item agents (whether or not the arm retrains): this arm's
        items learn from its users' choices of the round, (user, item) in the order they
        were made, and prompts show their new texts (agents/items/live.py); traced as
        ``item_update``."""
        items = self.s.items
        if items is None or round_ >= self.s.scenario.environment.rounds:
            return
        up = items.update(round_, chosen)
        ids = self.cat.item_ids
        example = ({"item": ids[up.changed[0]], "before": up.before[0],
                    "after": up.after[0]} if up.changed else None)
        self.s.trace.emit("item_update", f"{self.arm}/r{round_}/item_update", arm=self.arm,
                          round=round_, steps=up.steps, right=up.right,
                          changed=len(up.changed), items=[ids[i] for i in up.changed],
                          example=example)

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
_INTERACTIONS: dict[str, tuple[InteractionKind[Any], ...]] = {}


@dataclass(frozen=True)
class PrepareInput:
    """What an environment's ``prepare`` hook sees, once per run, before any work."""

    settings: dict[str, Any]  # environment.settings as the scenario gives them
    scenario_dir: Path | None  # the scenario file's folder (relative paths start there)
    dataset: Dataset
    users: list[int]  # the population
    seed: int


# environment.kind -> (PrepareInput -> settings to run with); raises ValueError when the
# data or the population cannot make the world the settings describe.
Prepare = Callable[[PrepareInput], dict[str, Any]]
_PREPARE: dict[str, Prepare] = {}


def register(kind: str, *, kinds: Sequence[InteractionKind[Any]] = (),
             settings: type[BaseModel] | None = None,
             prepare: Prepare | None = None) -> Callable[[Any], Any]:
    """Class decorator: make an environment available as ``environment.kind: KIND``.

    Args:
        kind: The name scenarios use.
        kinds: How agents handle the environment's observations (agents.kinds); they are
            registered too, and every role's brain is checked against their capabilities
            before a run starts.
        settings: A pydantic model of the environment's own settings, read from the
            scenario's ``environment.settings`` and validated at load (the environment
            gets them back as ``setup.scenario.environment.settings``, a dict).
        prepare: Checks the settings against the data and the population once, when the
            run is prepared (before any work), and returns the settings to run with (e.g.
            with a relative file path made absolute). A ``ValueError`` is a one-line
            scenario error at ``environment.settings``.
    """
    def deco(cls: Any) -> Any:
        cls.kind = kind
        ENVIRONMENTS[kind] = cls
        _INTERACTIONS[kind] = tuple(register_kind(k) for k in kinds)
        register_environment_kind(kind, settings)
        if prepare is not None:
            _PREPARE[kind] = prepare
        return cls
    return deco


def interaction_kinds(kind: str) -> tuple[InteractionKind[Any], ...]:
    """The interaction kinds the environment ``kind`` sends (empty if unknown; the shipped
    ones are registered: importing this module imported its package, which imports them)."""
    return _INTERACTIONS.get(kind, ())


def prepare_hook(kind: str) -> Prepare | None:
    """The environment ``kind``'s preparation hook (None: it needs none)."""
    return _PREPARE.get(kind)


def make_environment(kind: str, setup: EnvSetup) -> Environment:
    # The shipped environments are registered: importing this module imported its package
    # (simulations.environments), which imports them.
    try:
        factory = ENVIRONMENTS[kind]
    except KeyError:
        raise ValueError(f"unknown environment kind {kind!r}; known: "
                         f"{', '.join(sorted(ENVIRONMENTS))}") from None
    return factory(setup)
