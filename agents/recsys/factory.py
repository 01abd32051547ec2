"""Build a recommender agent (one role or a team) from YAML: ``make_recommender_agent``.

The agent implements ``agents.recsys.protocol.RecommenderAgent``: ``rank``, ``rate`` and
``explain`` batched, answered in request order (one request at a time: LLM calls and tool
calls land in the trace under the request that made them), with every answer's
``failure`` set when the agent fell back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.library import Library
from agents.recsys.protocol import (
    ExplainRequest,
    Explanation,
    Ranking,
    RankRequest,
    RateRequest,
    Rating,
)
from agents.recsys.role import RoleAgent, RoleAnswer, Task
from agents.recsys.runtime import RECOMMENDERS, Emit, RecRuntime, no_emit
from agents.recsys.team import TeamAgent
from scenarios.recsys_loader import LoadedAgent, LoadedTeam, load_agent
from scenarios.schema import LLMConfig

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agents.llm import CallCache, CallRecord
    from agents.llm.service import LLMService

__all__ = ["AgentEnv", "LLMAgent", "agent_from", "make_recommender_agent"]


@dataclass
class AgentEnv:
    """What a recommender agent needs from the run or task that hosts it."""

    library: Library  # catalogue, clock-bounded histories, KG, search, candidate models
    seed: int
    run_dir: Path  # LLM cache / memory stores live here
    llm: LLMConfig | None = None  # default model when a role has no llm: block (--llm)
    replay: str | None = None  # answer every LLM call from this run folder / cache
    chat_model: BaseChatModel | None = None  # tests: agents.llm.FakeChatModel
    emit: Emit = field(default=no_emit)  # the trace writer's emit(type, id, **fields)
    cache: CallCache | None = None  # share the host's LLM cache (else one in run_dir)
    service: LLMService | None = None  # the run's LLM service, shared with user agents
    keep_prompts: bool = True  # prompts and raw answers in llm_call events
    on_llm_call: Callable[[CallRecord], None] | None = None  # progress: every finished call


class LLMAgent:
    """A role or a team behind the recommender-agent protocol."""

    def __init__(self, loaded: LoadedAgent, env: AgentEnv) -> None:
        self.loaded = loaded
        self.rt = RecRuntime(library=env.library, seed=env.seed, run_dir=env.run_dir,
                             llm=env.llm, replay=env.replay, chat_model=env.chat_model,
                             emit=env.emit, cache=env.cache, service=env.service,
                             # Each agent files its calls under its own steps: its own
                             # clients (sharing the model's limits and budget).
                             caller=f"{RECOMMENDERS}:{loaded.config.name}",
                             keep_prompts=env.keep_prompts,
                             on_llm_call=env.on_llm_call)
        self.inner: RoleAgent | TeamAgent
        if isinstance(loaded, LoadedTeam):
            self.inner = TeamAgent(loaded, self.rt)
            self.name = loaded.config.name
        else:
            self.inner = RoleAgent(loaded.config, self.rt, loaded.config.name)
            self.name = loaded.config.name
        self.kind = "team" if isinstance(loaded, LoadedTeam) else "role"
        self._n = 0

    # ------------------------------------------------------------------ protocol

    def llm_usage(self) -> tuple[int, int, float]:
        return self.rt.usage()

    def close(self) -> None:
        self.rt.close()

    def _base(self, where: dict[str, Any], kind: str) -> str:
        self._n += 1
        return str(where.get("base") or f"agent/{self.name}/{kind}{self._n}")

    def _run(self, task: Task) -> RoleAnswer:
        cat = self.rt.library.world.catalog
        self.rt.note("agent_task", f"{task.base}/{self.name}/task", task.where,
                     agent=self.name, kind=self.kind, task=task.kind,
                     user=self.rt.library.user_ids[task.user],
                     candidates=[cat.item_ids[i] for i in task.candidates],
                     item=cat.item_ids[task.item] if task.item is not None else None,
                     context=task.context[:1000] or None, now=task.now)
        ans = self.inner.run(task)
        self.rt.note("agent_answer", f"{task.base}/{self.name}/answer", task.where,
                     agent=self.name, task=task.kind,
                     items=[cat.item_ids[i] for i in ans.ranking[:task.k]],
                     rating=ans.rating, text=ans.text[:1000] or None, failure=ans.failure)
        return ans

    def stats(self) -> dict[str, Any]:
        """Rationales and queries prepared and reused, their cost (reasoning roles), else
        nothing."""
        inner = self.inner.reasoned if isinstance(self.inner, RoleAgent) else None
        return inner.stats() if inner is not None else {}

    def rank(self, requests: Sequence[RankRequest]) -> list[Ranking]:
        out = []
        tasks = []
        for r in requests:
            where = {k: v for k, v in r.where.items() if k != "base"}
            tasks.append(Task(kind="rank", user=r.user, base=self._base(r.where, "rank"),
                              where=where, now=r.now, candidates=list(r.candidates),
                              k=r.k, context=r.context))
        reasoned = self.inner.reasoned if isinstance(self.inner, RoleAgent) else None
        if reasoned is not None:  # rationales and queries of the batch, ahead of ranking
            for task in tasks:
                reasoned.prepare(task)
        for r, task in zip(requests, tasks, strict=True):
            ans = self._run(task)
            items = [i for i in dict.fromkeys(ans.ranking) if i in set(r.candidates)]
            if len(items) < min(r.k, len(r.candidates)):  # a ranking never drops candidates
                items += [i for i in r.candidates if i not in items]
            expl = {items[0]: ans.reason} if ans.reason and items else {}
            out.append(Ranking(items=items[:r.k], explanations=expl, reply=ans.text,
                               failure=ans.failure))
        return out

    def rate(self, requests: Sequence[RateRequest]) -> list[Rating]:
        out = []
        for r in requests:
            where = {k: v for k, v in r.where.items() if k != "base"}
            ans = self._run(Task(kind="rate", user=r.user, base=self._base(r.where, "rate"),
                                 where=where, now=r.now, item=r.item, candidates=[r.item],
                                 k=1))
            value = ans.rating if ans.rating is not None else float(
                self.rt.library.world.item_mean[r.item])
            out.append(Rating(value=min(5.0, max(1.0, value)), explanation=ans.text,
                              failure=ans.failure))
        return out

    def explain(self, requests: Sequence[ExplainRequest]) -> list[Explanation]:
        out = []
        for r in requests:
            where = {k: v for k, v in r.where.items() if k != "base"}
            ans = self._run(Task(kind="explain", user=r.user,
                                 base=self._base(r.where, "explain"), where=where, now=r.now,
                                 item=r.item, candidates=[r.item], k=1))
            out.append(Explanation(text=ans.text, failure=ans.failure))
        return out


def agent_from(loaded: LoadedAgent, env: AgentEnv) -> LLMAgent:
    """An agent from an already loaded role or team (scenarios load them at load time)."""
    return LLMAgent(loaded, env)


def make_recommender_agent(path: Path, env: AgentEnv) -> LLMAgent:
    """The agent a team file or a single recommender role file describes.

    Raises:
        ScenarioError: The file, or a role it names, is invalid (``FILE:LINE: field: msg``).
        ValueError: A role has no model (no llm: block and ``env.llm`` is None).
    """
    return LLMAgent(load_agent(path), env)
