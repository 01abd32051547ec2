"""One shard of the population, as it lives inside a Ray worker (a Ray actor).

A shard builds a ``PopulationFactory`` over the whole population (so that roles are
assigned exactly as in the driver) and keeps only its own users. It owns a folder of its
own (``RUN_DIR/workers/wK`` on the node it runs on): its LLM cache shard and its
long-term memory stores (chromadb), so no two writers ever share a file.

This module does not import Ray: the driver (``simulations.executors.ray_shards``) turns
``Shard`` into an actor.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agents.observations import Action, Observation
from agents.population import Population
from simulations.executors.base import Event, EventBuffer, group_events, user_ids_of
from simulations.executors.spec import PopulationSpec

if TYPE_CHECKING:
    from agents.llm import CallRecord, Usage
    from scenarios.schema import LLMConfig

__all__ = ["SEED_FILENAME", "ClientSnapshot", "Shard", "UsageSnapshot", "split_limits"]

SEED_FILENAME = "seed_cache.sqlite"  # the run's cache as the shard started, for replay/warm


@dataclass(frozen=True)
class UsageSnapshot:
    total: Usage
    per_agent: dict[str, Usage]


@dataclass(frozen=True)
class ClientSnapshot:
    """An LLM client's state at the shard's close (what the run's usage lines read)."""

    cfg: LLMConfig
    replay: bool
    records: list[CallRecord]
    usage: UsageSnapshot


def split_limits(cfg: LLMConfig | None, workers: int) -> LLMConfig | None:
    """``cfg`` with its endpoint limits shared out among ``workers`` clients, so that all
    of them together stay within the scenario's concurrency, RPM and TPM."""
    if cfg is None or workers <= 1:
        return cfg
    tpm = cfg.tokens_per_minute
    return cfg.model_copy(update={
        "concurrency": max(1, math.ceil(cfg.concurrency / workers)),
        "requests_per_minute": (cfg.requests_per_minute / workers
                                if cfg.requests_per_minute else None),
        "tokens_per_minute": max(1, tpm // workers) if tpm else None,
    })


class Shard:
    """The agents of ``users`` (a Ray actor's state; see the module docstring).

    Args:
        spec: The population as every shard gets it (``PopulationSpec.for_worker``: no
            run folder, cache or progress callback; the library as its parts).
        users: This shard's users (indices into the dataset).
        folder: The shard's own folder; emptied first (a resume rebuilds it).
        seed_cache: The run's LLM cache (SQLite bytes) to start from, if it has calls.
        replay: Answer every call from ``seed_cache`` only (``--replay``).
        workers: How many shards share the endpoint limits.
    """

    def __init__(self, spec: PopulationSpec, users: Sequence[int], folder: str,
                 seed_cache: bytes | None, replay: bool, workers: int) -> None:
        self.folder = Path(folder)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        seed = None
        if seed_cache is not None:
            seed = self.folder / SEED_FILENAME
            seed.write_bytes(seed_cache)
        roles = tuple(dataclasses.replace(r, config=r.config.model_copy(
            update={"llm": split_limits(r.config.llm, workers)})) for r in spec.roles)
        self.buffer = EventBuffer()
        # Finished LLM calls since the last step, for the driver's progress bar (prompts
        # and answers stripped: the trace has them).
        self.calls: list[CallRecord] = []
        self.factory = dataclasses.replace(
            spec, roles=roles, llm=split_limits(spec.llm, workers), run_dir=self.folder,
            on_llm_call=lambda r: self.calls.append(
                dataclasses.replace(r, request=None, response=None)),
            replay=str(seed) if replay and seed else None,
            warm_cache=str(seed) if seed and not replay else None,
        ).factory(self.buffer.emit)
        mine = set(users)
        # Roles are drawn over the whole population (as in the driver); keep this shard's.
        self.factory.role_of = {u: r for u, r in self.factory.role_of.items() if u in mine}
        self.population: Population | None = None

    def open_arm(self, arm: str) -> None:
        self.population = self.factory.for_arm(arm)

    def act(self, observations: Sequence[Observation],
            roles: Sequence[str]
            ) -> tuple[list[Action], list[list[Event]], list[CallRecord]]:
        """This shard's actions, its events grouped by observation (plus a last group of
        events naming no observed user) and the LLM calls it finished.

        ``roles``: the roles that act at this step in the whole population. A role's
        long-term memory clock advances once per step in which any of its agents acts
        (``agents.graph.remember``), so a shard whose agents of that role sit this step out
        advances it too; memories keep the same step numbers as in one process.
        """
        assert self.population is not None
        actions = self.population.act(observations) if observations else []
        here = {self.factory.role_of[o.agent] for o in observations}
        for role in roles:
            group = self.population.groups.get(role)
            if role not in here and group is not None and group.long_term is not None:
                group.long_term.step += 1
        calls, self.calls = self.calls, []
        return actions, group_events(self.buffer.take(), user_ids_of(observations)), calls

    def set_replay(self, on: bool) -> None:
        self.factory.set_replay(on)

    def close(self) -> tuple[list[ClientSnapshot], str | None]:
        """Close stores and cache; the client snapshots and the cache shard's path (None
        when this shard made no LLM client)."""
        snaps = [ClientSnapshot(
            cfg=c.cfg, replay=c.replay,
            # Prompts and answers are in the trace already; the usage lines count records.
            records=[dataclasses.replace(r, request=None, response=None) for r in c.records],
            usage=UsageSnapshot(c.usage.total, c.usage.per_agent))
            for c in self.factory.clients.values()]
        self.factory.close()
        (self.folder / SEED_FILENAME).unlink(missing_ok=True)
        from agents.llm import CACHE_FILENAME

        cache = self.folder / CACHE_FILENAME
        return snaps, str(cache) if cache.is_file() else None

    @staticmethod
    def read(path: str) -> bytes:
        return Path(path).read_bytes()
