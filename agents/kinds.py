"""Interaction kinds: how an agent handles one kind of observation.

The agent graph (agents.graph) knows no environment. For every observation it asks the
registry for the observation's kind (a dict look-up on ``obs.kind``), and the kind says:

- ``query``: what the agent looks up in its long-term and shared memory (None: nothing);
- ``plan_request``: the planning problem of the step (None: no plan);
- ``needs``: the brain capabilities it calls (agents.brains.capabilities), checked for
  every role at load (``capability_problem``);
- ``decide``: how it calls them, with which view, and the typed action it returns;
- ``remember``: what the step writes to memory (``MemoryWrite``: a short-term entry, a
  long-term record's text, a note for the shared store).

An environment declares its observation and action types and their kinds next to it
(``simulations/environments/feed_kind.py``) and registers them with ``register_kind``
(``simulations.environments.register(..., kinds=...)`` does it for its kinds).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from agents.brains.capabilities import capability_methods
from agents.brains.prompts import item_line
from agents.group import AgentGroup
from agents.observations import Action, Observation

# Re-exported: a kind's planning problem and the plan it gets back (environments use the
# kinds' API, not the planners' modules).
from planners import PlanRequest, PlanResult

__all__ = [
    "InteractionKind",
    "MemoryWrite",
    "PlanRequest",
    "PlanResult",
    "Recalled",
    "capability_problem",
    "kind_for",
    "kind_of",
    "make_plan_request",
    "register_kind",
    "registered_kinds",
]

ObsT = TypeVar("ObsT", bound=Observation)


@dataclass(frozen=True)
class Recalled:
    """What the agent brings to a decision: its memories and its plan for this step."""

    short: list[dict[str, Any]]  # the short-term window, oldest first
    long: list[str]  # lessons, long-term hits, shared notes
    plan: PlanResult | None = None

    @property
    def guidance(self) -> str:
        return self.plan.guidance if self.plan is not None else ""


@dataclass(frozen=True)
class MemoryWrite:
    """One memory a step leaves: a short-term entry and, when the role has a long-term
    store, a factual record (id ``ARM/USER/rROUND/STEP/KEY``); ``shared``: a note for the
    role's shared store, if it has one."""

    short: dict[str, Any]
    key: str
    text: str
    rating: int | None = None
    watched: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    shared: str | None = None


class InteractionKind(ABC, Generic[ObsT]):
    """How an agent handles observations of type ``observation`` (one ``kind`` literal).

    Subclasses set ``observation`` and ``needs`` and implement ``decide``; the other hooks
    default to "nothing". Hooks run once per observation: keep them cheap.
    """

    observation: ClassVar[type[Observation]]
    needs: ClassVar[tuple[type, ...]] = ()  # brain capability protocols

    @property
    def kind(self) -> str:
        return kind_of(self.observation)

    def query(self, g: AgentGroup, obs: ObsT) -> str | None:
        """The agent's memory query at this step (None: no long-term or shared read)."""
        return None

    def plan_request(self, g: AgentGroup, obs: ObsT, recalled: Recalled) -> PlanRequest | None:
        """The planning problem of this step (None: the step needs no plan)."""
        return None

    @abstractmethod
    async def decide(self, g: AgentGroup, obs: ObsT, recalled: Recalled) -> Action:
        """The agent's action: the brain's capability called with this kind's view.

        A ``DecisionFailure`` raised here becomes a ``Failure`` action (agents.graph)."""

    def remember(self, g: AgentGroup, obs: ObsT, action: Action) -> Sequence[MemoryWrite]:
        """What the step writes to memory (in order); not called for a ``Failure``."""
        return ()


_KINDS: dict[str, InteractionKind[Any]] = {}


def kind_of(observation: type[Observation]) -> str:
    """The ``kind`` literal of an observation class (its field's default)."""
    default = observation.model_fields["kind"].default
    if not isinstance(default, str):
        raise TypeError(f"{observation.__name__}.kind needs a literal default "
                        "(kind: Literal['NAME'] = 'NAME')")
    return default


def register_kind(handler: InteractionKind[Any]) -> InteractionKind[Any]:
    """Make ``handler`` answer observations of its kind; returns it.

    Registering another handler of the same class again is a no-op (modules may be
    imported twice); a different class for a kind already taken is an error."""
    key = handler.kind
    old = _KINDS.get(key)
    if old is not None and type(old) is not type(handler):
        raise ValueError(f"interaction kind {key!r} is already handled by "
                         f"{type(old).__qualname__}")
    if old is None:
        _KINDS[key] = handler
    return _KINDS[key]


def registered_kinds() -> dict[str, InteractionKind[Any]]:
    """Every registered kind by its observation's ``kind`` (a copy)."""
    return dict(_KINDS)


def kind_for(obs: Observation) -> InteractionKind[Any]:
    """The handler of ``obs`` (one dict look-up)."""
    try:
        return _KINDS[obs.kind]
    except KeyError:
        raise LookupError(f"no interaction kind registered for observations of kind "
                          f"{obs.kind!r} ({type(obs).__name__}); register one with "
                          "agents.kinds.register_kind") from None


def capability_problem(role: str, brain: str, brain_cls: type, environment: str,
                       kinds: Sequence[InteractionKind[Any]]) -> str | None:
    """One line when ``brain_cls`` lacks a capability that one of ``kinds`` needs."""
    for k in kinds:
        for cap in k.needs:
            if not issubclass(brain_cls, cap):
                return (f"role {role!r} cannot act in the {environment!r} environment: its "
                        f"{k.kind!r} observations need a brain that is a {cap.__name__} "
                        f"({', '.join(capability_methods(cap))}), and the {brain!r} brain "
                        "is not")
    return None


def make_plan_request(g: AgentGroup, obs: Observation, recalled: Recalled, goal: str,
                      items: Sequence[int]) -> PlanRequest:
    """The usual planning problem over catalogue ``items``: the profile, the items,
    memories, lessons and (for brains that think) the user's recent history."""
    cat, prof = g.world.catalog, g.profiles[obs.agent]
    memories = [f"{m['action']} {m.get('title', m['item'])}" for m in recalled.short]
    return PlanRequest(
        agent=prof.user_id, base=obs.base, goal=goal,
        profile=(f"likes {', '.join(prof.liked_genres) or 'many genres'}; dislikes "
                 f"{', '.join(prof.disliked_genres) or 'nothing in particular'}"),
        items=[(cat.item_ids[i], item_line(cat, i, float(g.world.item_mean[i]))) for i in items],
        memories=memories + recalled.long, lessons=list(g.memory.lessons(obs.agent)),
        history=g.history_lines(obs.agent, 10) if g.thinks else [],
    )
