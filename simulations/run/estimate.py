"""How many LLM calls a run makes at most, and about how long they take, before it starts.

An LLM run on a small machine can take hours; a user should know before waiting. The
estimate is an upper bound on calls, read from the scenario alone: users x rounds x pages
(or turns) x the calls each step makes, for every arm, as if every user saw every page and
every agent used every member; then a per-call time for the backend. A run prints it when
it is more than ``PRINT_AFTER_S`` (``recarena run``).

Calls come in two kinds, because they cost very different times on a local base model:

- ``scored``: next-token log-probabilities over fixed answers (yes/no, stars, a member's
  name): one forward pass over the part of the prompt the KV cache does not hold;
- ``text``: generated words (a recommender's reply, a member's report, a user's
  description of what it looks for) or, on chat models, a JSON answer.

The per-call times (``SECONDS_PER_CALL``) are configured per backend from measurements on
a 2-core machine (docs/benchmarks.md, "Shipped scenarios on the local model"); a remote
endpoint's time is divided by ``llm.concurrency``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scenarios.recsys import RecommenderRole
    from scenarios.schema import LLMConfig, RoleConfig, Scenario
    from simulations.run.runner import Prepared

__all__ = ["PRINT_AFTER_S", "SECONDS_PER_CALL", "Estimate", "estimate_prepared", "estimate_run"]

# (seconds per scored call, seconds per text call), per backend. local: Gemma 3 270M on 2
# cores, with the shipped prompts and free-text caps (measured; docs/benchmarks.md).
# openai: one request in flight to a hosted chat model. fake: no model.
SECONDS_PER_CALL: dict[str, tuple[float, float]] = {
    "local": (0.5, 10.0),
    "openai": (1.0, 2.0),
    "fake": (0.0, 0.0),
}
PRINT_AFTER_S = 180.0  # "more than a few minutes"


@dataclass(frozen=True)
class Estimate:
    """At most ``scored`` + ``text`` LLM calls, about ``seconds`` long in all."""

    scored: int
    text: int
    seconds: float
    backend: str

    @property
    def calls(self) -> int:
        return self.scored + self.text

    def line(self) -> str:
        """One line for the terminal."""
        per = SECONDS_PER_CALL.get(self.backend, SECONDS_PER_CALL["openai"])
        return (f"estimate: at most {self.calls:,} LLM calls ({self.scored:,} scored at "
                f"~{per[0]:g} s, {self.text:,} free-text at ~{per[1]:g} s on the "
                f"{self.backend} backend), about {_duration(self.seconds)} if every user "
                "sees every page; --users N runs fewer users")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    if seconds < 5400:
        return f"{math.ceil(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _scored_mode(decision_mode: str, backend: str) -> bool:
    return decision_mode == "scored" or (decision_mode == "auto" and backend == "local")


def _user_calls(role: RoleConfig, scn: Scenario, backend: str) -> tuple[int, int, int]:
    """(scored, text) calls of one user of ``role`` in one session, and scored calls once
    per user for the whole run (calibration, answered from the cache afterwards)."""
    if role.brain.kind != "llm":
        return 0, 0, 0
    env = scn.environment
    scored = _scored_mode(role.brain.decision_mode, backend)
    if env.kind == "conversation":
        turns, k = env.conversation.max_turns, env.conversation.items_per_turn
        # The user opens with a description (text), then judges each turn's items.
        return (turns * k, 1, 0) if scored else (0, 1 + turns, 0)
    pages, k = env.max_pages, env.items_per_page
    if scored:
        # Per page: watch per item, stars per watched item (at most all), feeling, leave;
        # then the interview.
        return pages * (2 * k + 2) + 1, 0, role.brain.calibration_items
    reflect = role.memory.long_term.reflect_every if role.memory.long_term.enabled else 0
    reflections = (pages * k) // reflect if reflect else 0
    return 0, pages + 1 + reflections, 0


def _role_calls(role: RecommenderRole, backend: str, n: int,
                consult: bool = False) -> tuple[int, int]:
    """(scored, text) calls of one recommender role answering one request over ``n``
    candidates (``consult``: asked by a manager)."""
    scored = _scored_mode(role.brain.decision_mode, backend)
    out = role.output
    if not scored:
        return (0, n) if out == "rating" and not consult else (0, 1)
    words = 1 if role.brain.reply_tokens > 0 else 0  # 0: a base model writes nothing
    if consult and out in ("chat_reply", "explanation"):
        return 0, words
    if out == "rating":
        return n, 0
    if out == "chat_reply":
        return n, words
    return n, 0


def _agent_calls(agent: Any, backend: str, n: int, conversation: bool) -> tuple[int, int]:
    """(scored, text) calls of a recommender agent (role or team) for one request."""
    from scenarios.recsys_loader import LoadedTeam

    if not isinstance(agent, LoadedTeam):
        return _role_calls(agent.config, backend, n)
    mgr = agent.manager.config
    consult = [m.config for m, when in agent.members if when == "consult"]
    before = [m.config for m, when in agent.members if when == "before"]
    after = [m.config for m, when in agent.members if when == "after"]
    scored, text = 0, 0
    if _scored_mode(mgr.brain.decision_mode, backend):
        # Each member once (the manager scores who is next, or finish), then every
        # candidate is scored.
        asked = consult
        scored += len(consult) + 1 + n
    else:
        turns = agent.config.max_turns
        asked = [consult[i % len(consult)] for i in range(turns)] if consult else []
        text += turns + 1
    for m in asked:
        s, t = _role_calls(m, backend, n, consult=True)
        scored, text = scored + s, text + t
    for m in ([*before] if conversation else []) + after:
        text += _role_calls(m, backend, n, consult=True)[1]
    return scored, text


def estimate_run(scn: Scenario, roles: list[tuple[RoleConfig, int]],
                 agents: dict[str, Any], llm: LLMConfig | None) -> Estimate | None:
    """The most LLM calls a run can make, and about how long they take.

    Args:
        scn: The scenario (with ``--users`` applied).
        roles: Each role of the population and how many users play it.
        agents: ``model: agent`` arms' loaded roles or teams, by arm name.
        llm: The scenario's ``llm:`` block with ``--llm`` applied (a role's own block
            wins for its users).

    Returns:
        None when nothing in the run calls a model.
    """
    env = scn.environment
    steps = env.conversation.max_turns if env.kind == "conversation" else env.max_pages
    users = sum(n for _, n in roles)
    arms = len(scn.recommenders)
    scored = text = 0
    seconds = 0.0
    backends: list[str] = []

    def add(s: int, t: int, cfg: LLMConfig | None) -> None:
        nonlocal scored, text, seconds
        backend = cfg.backend if cfg is not None else "openai"
        per_s, per_t = SECONDS_PER_CALL.get(backend, SECONDS_PER_CALL["openai"])
        spread = 1 if backend != "openai" or cfg is None else cfg.concurrency
        scored, text = scored + s, text + t
        seconds += (s * per_s + t * per_t) / spread
        if s or t:
            backends.append(backend)

    for role, n_users in roles:
        cfg = role.llm or llm
        backend = cfg.backend if cfg is not None else "openai"
        s, t, once = _user_calls(role, scn, backend)
        add(n_users * (arms * env.rounds * s + once), n_users * arms * env.rounds * t, cfg)
    for arm in scn.recommenders:
        agent = agents.get(arm.name)
        if agent is None:
            continue
        cfg = getattr(agent, "manager", agent).config.llm or llm
        backend = cfg.backend if cfg is not None else "openai"
        s, t = _agent_calls(agent, backend, arm.candidates.n, env.kind == "conversation")
        requests = users * env.rounds * steps
        add(requests * s, requests * t, cfg)
    if not backends:
        return None
    most = Counter(backends).most_common(1)[0][0]
    return Estimate(scored=scored, text=text, seconds=seconds, backend=most)


def estimate_prepared(prep: Prepared) -> Estimate | None:
    """``estimate_run`` for a prepared run (its population, roles, agents and model)."""
    from agents.population import assign_roles

    role_of = assign_roles(prep.population, prep.loaded.roles, prep.scenario.seed)
    counts = Counter(role_of.values())
    roles = [(r.config, counts.get(r.config.name, 0)) for r in prep.loaded.roles]
    return estimate_run(prep.scenario, roles, prep.loaded.agents, prep.llm)
