"""The Ray executor: the population sharded over Ray workers (actors).

The driver (the ``recarena run`` process) keeps the environment, the recommender, the run
graph and the trace; each worker holds a ``Shard`` (``simulations.executors.shard``): the
agents of its users, their memories and stores, and LLM clients with their own cache
shard. A step sends each worker its users' observations and writes the events the workers
return in the canonical order (``simulations.executors.base``), so the trace is the one
the default executor writes.

LLM cache: the driver's cache is the run's (``RUN_DIR/llm_cache.sqlite``); each worker
starts from a copy of it (shipped through Ray's object store, so no shared filesystem is
needed), records new calls into its own shard and the driver merges the shards into the
run's cache at close (a call recorded by two workers keeps the lower worker's answer). A
resume merges the shards a killed run left in ``RUN_DIR/workers`` first. See
docs/scaling.md.
"""

from __future__ import annotations

import ipaddress
import os
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.observations import Action, Observation
from agents.population import assign_roles
from agents.setup import make_cache
from scenarios.schema import ExecutorConfig
from simulations.executors.base import (
    NO_RAY,
    ClientView,
    Event,
    ExecutorError,
    write_grouped,
)
from simulations.executors.shard import Shard
from simulations.executors.spec import PopulationSpec

if TYPE_CHECKING:
    from agents.llm import CallCache, CallRecord

__all__ = ["LOCAL_ONLY_ENV", "WORKERS_DIR", "RayExecutor", "merge_cache_shards"]

WORKERS_DIR = "workers"  # RUN_DIR/workers/wK: one folder per worker (cache shard, memory)


# Ray binds a local instance to the machine's own network address (it turns 127.0.0.1
# given as ``_node_ip_address`` into that address); with this variable off, as Ray does on
# a laptop, a local instance uses loopback only. Ray reads it when first imported.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _import_ray(local: bool) -> Any:
    # Ray phones home with usage statistics unless told not to; RecArena never reaches
    # the network.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if local:
        os.environ.setdefault(LOCAL_ONLY_ENV, "0")
    try:
        import ray
    except ImportError:
        raise ExecutorError(NO_RAY) from None
    return ray


def merge_cache_shards(cache_path: Path, shards: Sequence[Path]) -> int:
    """Copy the calls of each shard (in order) into the cache at ``cache_path``; a key the
    cache holds already keeps its answer (first recorded wins). Returns calls added."""
    added = 0
    con = sqlite3.connect(str(cache_path), timeout=30.0)
    try:
        for k, shard in enumerate(shards):
            con.execute(f"ATTACH DATABASE ? AS shard{k}", (f"file:{shard}?mode=ro",))
            before = con.total_changes
            con.execute(f"INSERT OR IGNORE INTO main.calls SELECT * FROM shard{k}.calls")
            con.commit()
            added += con.total_changes - before
            con.execute(f"DETACH DATABASE shard{k}")
    finally:
        con.close()
    return added


def _snapshot_bytes(cache_path: Path) -> bytes:
    """A consistent copy of the cache (its WAL included) as bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "copy.sqlite"
        with sqlite3.connect(f"file:{cache_path}?mode=ro", uri=True) as src, \
                sqlite3.connect(str(dest)) as out:
            src.backup(out)
        return dest.read_bytes()


def _has_calls(cache_path: Path) -> bool:
    with sqlite3.connect(f"file:{cache_path}?mode=ro", uri=True) as con:
        return con.execute("SELECT 1 FROM calls LIMIT 1").fetchone() is not None


def _unwrap(ray: Any, refs: list[Any]) -> list[Any]:
    """``ray.get``, re-raising a worker's own exception (a replay miss, a failed call) so
    that the run reports it as it would in one process."""
    try:
        return list(ray.get(refs))
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, Exception):
            raise e.cause from None
        raise


class RayPopulation:
    """One arm's agents over the workers (the loop's ``Actor``)."""

    def __init__(self, ex: RayExecutor) -> None:
        self.ex = ex

    def act(self, observations: Sequence[Observation]) -> list[Action]:
        ex = self.ex
        parts: list[list[int]] = [[] for _ in ex.actors]
        for k, o in enumerate(observations):
            parts[ex.worker_of[o.agent]].append(k)
        roles = sorted({ex.role_of[o.agent] for o in observations})
        refs = [a.act.remote([observations[k] for k in part], roles)
                for a, part in zip(ex.actors, parts, strict=True)]
        answers: list[tuple[list[Action], list[list[Event]], list[CallRecord]]] = _unwrap(
            ex.ray, refs)
        actions: list[Action | None] = [None] * len(observations)
        groups: list[list[Event]] = [[] for _ in observations]
        rest: list[list[Event]] = []
        for part, (acts, evs, calls) in zip(parts, answers, strict=True):
            for j, k in enumerate(part):
                actions[k], groups[k] = acts[j], evs[j]
            rest.append(evs[-1])
            if ex.on_llm_call is not None:
                for rec in calls:
                    ex.on_llm_call(rec)
        write_grouped(ex.emit, [*groups, *rest])
        return [a for a in actions if a is not None]


class RayExecutor:
    """Shards the population over ``cfg.workers`` Ray actors (see the module docstring).

    Starts a local Ray instance on 127.0.0.1 when ``cfg.address`` is None (and stops it at
    close), else joins the cluster at ``cfg.address``.
    """

    def __init__(self, cfg: ExecutorConfig, spec: PopulationSpec,
                 emit: Callable[..., None], run_dir: Path) -> None:
        # Like Ray's own tools: an address in RAY_ADDRESS means that cluster.
        self.address = cfg.address or os.environ.get("RAY_ADDRESS") or None
        self.ray = ray = _import_ray(local=self.address is None)
        self.emit = emit
        self.run_dir = run_dir
        # Progress: workers report their finished calls with each step's answer.
        self.on_llm_call: Callable[[CallRecord], None] | None = spec.on_llm_call
        users = list(spec.users)
        self.role_of = assign_roles(users, spec.roles, spec.seed)
        n = max(1, min(cfg.workers, len(users)))
        shards = [users[k * len(users) // n:(k + 1) * len(users) // n] for k in range(n)]
        self.worker_of = {u: k for k, part in enumerate(shards) for u in part}
        self._snaps: list[ClientView] = []
        self._closed = False
        self._own_ray = False
        replay = self._replay = spec.replay
        self._warm = spec.warm_cache
        # The run's cache, in the driver: recommender agents use it, workers start from it.
        self.cache: CallCache | None = None
        seed: bytes | None = None
        if spec.uses_llm:
            self.cache = make_cache(run_dir, replay, self._warm)
            left = sorted((run_dir / WORKERS_DIR).glob("w*/llm_cache.sqlite"))
            if left:  # a killed run's shards (resume): what they paid for is kept
                merge_cache_shards(self.cache.path, left)
            if replay is not None or _has_calls(self.cache.path):
                seed = _snapshot_bytes(self.cache.path)
        self._start(cfg, n)
        common = spec.for_worker()
        try:
            common_ref = ray.put(common)
        except TypeError as e:  # e.g. a chat model object holding a lock (tests' fakes)
            self.close()
            raise ExecutorError(
                "executor: the run's agents cannot be sent to Ray workers (an object "
                f"passed in does not pickle: {str(e).splitlines()[0][:120]}); use executor "
                "kind default") from None
        seed_ref = ray.put(seed)
        actor = ray.remote(num_cpus=1)(Shard)
        self.actors = [actor.remote(common_ref, part,
                                    str(run_dir.resolve() / WORKERS_DIR / f"w{k}"),
                                    seed_ref, replay is not None, n)
                       for k, part in enumerate(shards)]

    def _start(self, cfg: ExecutorConfig, n: int) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        address = self.address
        try:
            if address is None:
                # A private instance (no dashboard, no log streaming into the CLI's output).
                ray.init(num_cpus=n, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = address or "a local instance"
            raise ExecutorError(f"executor: cannot start Ray ({where}): "
                                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
                                ) from None
        self._own_ray = True
        ip = ray.util.get_node_ip_address()
        if address is None and not ipaddress.ip_address(ip).is_loopback:
            # Ray was imported before this executor could ask for loopback only.
            self.close()
            raise ExecutorError(f"executor: the local Ray instance listens on {ip}, not on "
                                f"loopback; set {LOCAL_ONLY_ENV}=0 before Ray is imported")

    def for_arm(self, arm: str) -> RayPopulation:
        _unwrap(self.ray, [a.open_arm.remote(arm) for a in self.actors])
        return RayPopulation(self)

    def shared_cache(self) -> CallCache:
        if self.cache is None:
            self.cache = make_cache(self.run_dir, self._replay, self._warm)
        return self.cache

    def llm_service(self) -> None:
        return None  # the user agents' clients live in the workers

    def set_replay(self, on: bool) -> None:
        _unwrap(self.ray, [a.set_replay.remote(on) for a in self.actors])

    def clients(self) -> list[ClientView]:
        return list(self._snaps)

    def close(self) -> None:
        """Close the workers, merge their cache shards into the run's cache, stop Ray if
        this executor started it."""
        if self._closed:
            return
        self._closed = True
        ray = self.ray
        self.actors = getattr(self, "actors", [])
        try:
            closed = _unwrap(ray, [a.close.remote() for a in self.actors])
            shards: list[Path] = []
            for k, (snaps, path) in enumerate(closed):
                self._snaps.extend(snaps)
                if path is None:
                    continue
                local = self.run_dir / WORKERS_DIR / f"w{k}" / Path(path).name
                if not local.is_file():  # the worker ran on another node: fetch its shard
                    local.parent.mkdir(parents=True, exist_ok=True)
                    local.write_bytes(ray.get(self.actors[k].read.remote(path)))
                shards.append(local)
            if shards and self.cache is not None:
                merge_cache_shards(self.cache.path, shards)
                for s in shards:  # merged: a resume must not merge them again
                    for f in (s, s.with_name(s.name + "-wal"), s.with_name(s.name + "-shm")):
                        f.unlink(missing_ok=True)
        finally:
            for a in self.actors:
                ray.kill(a)
            if self.cache is not None:
                self.cache.close()
            if self._own_ray:
                ray.shutdown()
