"""Preparing a run: a scenario with its command-line overrides, its data split, world,
profiles and population (``prepare``), checked before any work (the models' API keys, the
extras the roles need, the population size); and preparing a stopped run again for a
resume (``load_resumable``: its manifest, the same arguments, the same config hash).

``simulations.run.runner`` runs what this prepares; it re-exports these names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from agents.population import assign_roles
from agents.profile import UserProfile
from agents.setup import capability_problem, missing_api_key, missing_extra, parse_llm_flag
from scenarios.loader import LoadedScenario, ScenarioError, line_of
from scenarios.recsys_loader import LoadedTeam
from scenarios.schema import AddItemsEvent, LLMConfig, Scenario
from simulations.environments import PrepareInput, interaction_kinds, prepare_hook
from simulations.executors import ExecutorError, check_executor
from simulations.run.attack import ResolvedAttack, resolve_attack
from simulations.run.data_source import DATA_ENV, load_data, resolve_data_path
from simulations.run.item_attack import ItemTextAttackState, attacked_dataset
from simulations.run.worlds import taste_worlds
from tools.dataset import Dataset, Interactions, newest_items, split_interactions
from tools.world import World

if TYPE_CHECKING:
    from agents.items.live import ItemStart

__all__ = [
    "DATA_ENV",
    "InputError",
    "Prepared",
    "Resumable",
    "ResumeError",
    "RunError",
    "check_api_keys",
    "check_capabilities",
    "check_requirements",
    "config_hash",
    "config_of",
    "llm_configs",
    "load_manifest",
    "load_resumable",
    "prepare",
    "resolve_data_path",
]


class RunError(RuntimeError):
    """A run cannot start or continue; the message is one line for the user."""


class ResumeError(RunError):
    """``resume`` refuses a folder (not a run, completed, config changed): invalid input."""


class InputError(RunError):
    """A run cannot start with this input or environment (a missing API key); found
    before any work, and the CLI exits 2 as for an invalid scenario."""


@dataclass(frozen=True, eq=False)
class Prepared:
    """Data, world and agents ready for a run (shared by all arms)."""

    scenario: Scenario
    loaded: LoadedScenario
    dataset: Dataset
    history: Interactions
    future: Interactions
    world: World
    profiles: list[UserProfile]
    population: list[int]
    withheld: dict[int, frozenset[int]]  # release round -> items
    llm: LLMConfig | None = None  # the scenario's llm: block with --llm applied
    role_profiles: dict[str, list[UserProfile]] = field(default_factory=dict)  # per role
    # Roles whose taste family differs from the main role's have their own world.
    role_worlds: dict[str, World] = field(default_factory=dict)
    # The arguments of ``prepare`` (data resolved to an absolute folder), so that
    # ``resume`` prepares the same run again.
    args: dict[str, Any] = field(default_factory=dict)
    # The scenario's poisoned item text and defences (attack.item_text), if any.
    item_attack: ItemTextAttackState | None = None
    # The scenario's attack: block resolved against the data (simulations/run/attack.py).
    attack: ResolvedAttack | None = None
    # The item agents every arm starts from (scenario ``item_agents:``), or None.
    items: ItemStart | None = None


def _override(loaded: LoadedScenario, seed: int | None, users: int | None,
              executor: dict[str, Any] | None = None) -> Scenario:
    """The scenario with command-line overrides, validated like the file itself."""
    data = loaded.scenario.model_dump()
    if seed is not None:
        data["seed"] = seed
    if users is not None:
        data["population"]["size"] = users
    if executor:
        data["executor"] = {**data["executor"], **executor}
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        flag = {"seed": "--seed", "population": "--users"}.get(str(err["loc"][0]), "")
        if err["loc"][0] == "executor":
            flag = {"kind": "--executor", "workers": "--workers", "address": "--ray-address"
                    }.get(str(err["loc"][-1]), "--executor")
        raise ValueError(f"{flag or loaded.path}: {err['msg']}") from None


def _too_many_users(loaded: LoadedScenario, size: int, have: int, *, from_flag: bool) -> None:
    # Simulating fewer users than asked for would change every figure silently.
    msg = (f"{size} users asked for, but the dataset has {have} users with history; ask for "
           f"at most {have}, or leave it out for all of them")
    if from_flag:
        raise ValueError(f"--users: {msg}")
    line = line_of(loaded.path, ("population", "size"))
    raise ScenarioError(loaded.path, line, "population.size", msg)


def prepare(
    loaded: LoadedScenario, *, seed: int | None = None, users: int | None = None,
    data: str | None = None, llm: str | None = None, executor: dict[str, Any] | None = None,
) -> Prepared:
    """Load data, split it, build the world, profiles and the sampled population.

    ``executor``: command-line overrides of the scenario's ``executor:`` block (kind,
    workers, address). API keys are not checked here (a caller may pass its own chat
    model to ``run``): ``check_api_keys`` does, and ``run`` before it writes anything.
    """
    scn = _override(loaded, seed, users, executor)
    llm_cfg = parse_llm_flag(llm, scn.llm) if llm else scn.llm
    check_requirements(loaded, scn, llm_cfg, executor_flags=bool(executor))
    ds = load_data(scn, loaded, data)
    withheld: dict[int, frozenset[int]] = {}
    adds = sorted((ev for ev in scn.events if isinstance(ev, AddItemsEvent)),
                  key=lambda ev: ev.at_round)
    total = sum(ev.count for ev in adds)
    if total >= ds.n_items:
        raise RunError(f"{loaded.path}: events: add_items withholds {total} "
                       f"of {ds.n_items} items; leave some to recommend")
    pool = newest_items(ds, total)  # oldest first: later events release newer items
    taken = 0
    for ev in adds:
        items = frozenset(int(i) for i in pool[taken:taken + ev.count])
        withheld[ev.at_round] = withheld.get(ev.at_round, frozenset()) | items
        taken += ev.count
    all_withheld = frozenset().union(*withheld.values()) if withheld else frozenset()
    inter = ds.interactions
    if all_withheld:
        # Withheld items are new releases: nobody has seen them before they arrive.
        inter = inter.select(~np.isin(inter.item, np.fromiter(all_withheld, np.int64)))
    # Leak-free by default: one global cutoff (tools.dataset.global_split).
    history, future = split_interactions(inter, scn.dataset.history_fraction,
                                         scn.dataset.split)
    if scn.attack is not None and scn.attack.memory is not None:
        loc = ("attack", "memory")
        raise ScenarioError(loaded.path, line_of(loaded.path, loc), "attack.memory",
                            "poisoned memories are measured by bench/attack_injection.py "
                            "(simulations.eval.attack_memory), not applied by a run; drop "
                            "attack.memory here")
    # Poison and defences change the catalogue every later step reads (one place).
    ds, item_attack = attacked_dataset(loaded, scn, ds, history)
    item_start = None
    if loaded.items is not None:
        # Item agents (AgentCF) say who likes each item, trained on the history only;
        # every world, library and prompt built below reads the catalogue with their
        # texts, which each arm replaces with its own as its items learn in the run.
        from agents.items.live import trained_items

        item_start = trained_items(ds, history, loaded.items, scn.seed)
        ds = dataclasses.replace(ds, catalog=dataclasses.replace(
            ds.catalog, agent_texts=item_start.shown))
    role_profiles, role_worlds = taste_worlds(ds, history, loaded, scn.seed)
    world = role_worlds.pop(loaded.role.name)
    role_worlds = {k: v for k, v in role_worlds.items() if v is not world}
    profiles = role_profiles[loaded.role.name]
    candidates = np.flatnonzero(np.bincount(history.user, minlength=ds.n_users) > 0)
    size = scn.population.size
    counts = [r.count for r in scn.population.roles or () if r.count is not None]
    if size is None and counts:
        size = sum(counts)  # a mix given by counts sets the population size
    if size is not None and size > len(candidates):
        _too_many_users(loaded, size, len(candidates), from_flag=users is not None)
    if size is None or size >= len(candidates):
        population = candidates.tolist()
    elif scn.population.sampling == "first":
        population = candidates[:size].tolist()
    else:
        prng = np.random.default_rng(np.random.SeedSequence([scn.seed, 13]))
        population = sorted(prng.choice(candidates, size=size, replace=False).tolist())
    try:  # a role left without users is a scenario error, found before any work
        assign_roles([int(u) for u in population], loaded.roles, scn.seed)
    except ValueError as e:
        loc = ("population", "roles")
        raise ScenarioError(loaded.path, line_of(loaded.path, loc), "population.roles",
                            str(e).removeprefix("population.roles: ")) from None
    scn = _prepared_environment(loaded, scn, ds, [int(u) for u in population])
    attack = resolve_attack(loaded, scn, ds, history)
    path = (resolve_data_path(loaded, data)
            if scn.dataset.source in ("files", "csv") or data else None)
    args = {"seed": seed, "users": users, "llm": llm, "executor": executor,
            "data": str(path.resolve()) if path is not None else None}
    return Prepared(scn, loaded, ds, history, future, world, profiles,
                    [int(u) for u in population], withheld, llm_cfg, role_profiles,
                    role_worlds=role_worlds, args=args, item_attack=item_attack,
                    attack=attack, items=item_start)


def _prepared_environment(loaded: LoadedScenario, scn: Scenario, ds: Dataset,
                          population: list[int]) -> Scenario:
    """The scenario with the environment's settings as its ``prepare`` hook returns them
    (checked against the data and the population; ``ScenarioError`` if they cannot be)."""
    hook = prepare_hook(scn.environment.kind)
    if hook is None:
        return scn
    path = Path(loaded.path) if loaded.path else None
    try:
        settings = hook(PrepareInput(dict(scn.environment.settings or {}),
                                     path.parent if path is not None else None, ds,
                                     population, scn.seed))
    except ValueError as e:
        loc = ("environment", "settings")
        raise ScenarioError(loaded.path, line_of(loaded.path, loc), "environment.settings",
                            str(e)) from None
    return scn.model_copy(update={"environment": scn.environment.model_copy(
        update={"settings": settings})})


def check_api_keys(loaded: LoadedScenario, llm: str | None) -> None:
    """Every model a run of ``loaded`` talks to (``llm``: the ``--llm`` spec) has its API
    key; checked before any work by the CLI, and by ``run`` and ``resume`` before they
    write anything unless the calls are answered otherwise (a replay, a given model).

    Raises:
        InputError: One line naming the variable, the endpoint and what to do instead.
    """
    scn_llm = loaded.scenario.llm
    llm_cfg = parse_llm_flag(llm, scn_llm) if llm else scn_llm
    for cfg in llm_configs(loaded, llm_cfg):
        problem = missing_api_key(cfg)
        if problem:
            where = f"--llm {llm}" if llm else f"{loaded.path}: llm"
            raise InputError(f"{where}: {problem}; or try --llm fake (no model) or "
                             "--replay RUN")


def check_requirements(loaded: LoadedScenario, scn: Scenario, llm_cfg: LLMConfig | None, *,
                       executor_flags: bool = False) -> None:
    """What a run of ``loaded`` needs besides API keys, checked before any work (by
    ``prepare``, and by ``recarena validate --llm``): the executor (item agents need the
    default one), a model for every LLM role, the extras the roles need.

    Args:
        scn: The scenario with the command line's overrides.
        llm_cfg: The scenario's llm: block with ``--llm`` applied.

    Raises:
        RunError: What a run would fail on.
    """
    if loaded.items is not None and scn.executor.kind == "ray":
        # Each arm's item texts change between rounds in the driver; Ray workers keep the
        # catalogue they were started with, so their prompts would show stale texts.
        msg = ("item agents need executor kind default: their texts change between "
               "rounds, and Ray workers keep the catalogue they started with")
        if loaded.scenario.executor.kind != "ray":  # the command line asked for Ray
            raise RunError(f"--executor ray: {msg}")
        raise ScenarioError(loaded.path, line_of(loaded.path, ("item_agents",)),
                            "item_agents", msg)
    try:
        check_executor(scn.executor, [r.config for r in loaded.roles], llm_cfg,
                       from_flags=executor_flags)
    except ExecutorError as e:
        raise RunError(str(e)) from None
    for r in loaded.roles:
        role_llm = r.config.llm or llm_cfg
        if r.config.brain.kind == "llm" and role_llm is None:
            raise RunError(
                f"{loaded.path}: llm: role {r.config.name!r} uses brain: llm but neither the "
                "role nor the scenario has an llm: block; add one or pass "
                "--llm local|openai[:MODEL]|fake")
        missing = missing_extra(r.config, role_llm)
        if missing:
            raise RunError(missing)
    check_capabilities(loaded, scn)


def check_capabilities(loaded: LoadedScenario, scn: Scenario | None = None) -> None:
    """Every role's brain has the capabilities the environment's interaction kinds need
    (agents.kinds); checked before any work by ``prepare`` and ``recarena validate``.

    Raises:
        ScenarioError: One line naming the role, the environment and the capability.
    """
    scn = scn or loaded.scenario
    kinds = interaction_kinds(scn.environment.kind)
    for i, r in enumerate(loaded.roles):  # a brain that lacks what the environment needs
        problem = capability_problem(r.config, scn.environment.kind, kinds)
        if problem:
            loc = ("population", "roles", i, "role") if scn.population.roles else (
                "population", "role")
            raise ScenarioError(loaded.path, line_of(loaded.path, loc), ".".join(
                str(x) for x in loc), problem)


def llm_configs(loaded: LoadedScenario, llm: LLMConfig | None) -> list[LLMConfig]:
    """Every model config a run of ``loaded`` would talk to (``llm``: the scenario's or
    --llm's): LLM users, long-term memories embedding with openai, recommender agents."""
    out: list[LLMConfig] = []
    for r in loaded.roles:
        cfg = r.config.llm or llm
        lt = r.config.memory.long_term
        if r.config.brain.kind == "llm" and cfg is not None:
            out.append(cfg)
        if lt.enabled and lt.embedder == "openai":
            out.append(cfg or LLMConfig())
    for agent in loaded.agents.values():
        roles = ([agent.manager, *(m for m, _ in agent.members)]
                 if isinstance(agent, LoadedTeam) else [agent])
        out += [cfg for role in roles if (cfg := role.config.llm or llm) is not None]
    return out


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def config_of(prep: Prepared) -> dict[str, Any]:
    """The resolved config of a run (its hash names the run's setup in the manifest)."""
    scn = prep.scenario
    config = prep.loaded.resolved_config()
    # How agents are scheduled never changes what a run computes: runs under either
    # executor have the same config (and hash, and run_start event).
    config.pop("executor", None)
    config["seed"], config["population"]["size"] = scn.seed, scn.population.size
    config["llm"] = prep.llm.model_dump(mode="json") if prep.llm else None
    return config


def load_manifest(run_dir: Path) -> dict[str, Any]:
    """A run folder's manifest; RunError if the folder is not a run."""
    path = run_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise ResumeError(f"{run_dir}: not a run folder (no readable manifest.json)") from None
    if not isinstance(manifest, dict) or not (run_dir / "trace.jsonl").is_file():
        raise ResumeError(f"{run_dir}: not a run folder (no trace.jsonl)")
    return manifest


@dataclass(frozen=True)
class Resumable:
    """A stopped run, prepared again and checked (``load_resumable``), ready to resume."""

    run_dir: Path
    prep: Prepared
    manifest: dict[str, Any]
    config: dict[str, Any]


def load_resumable(run_dir: Path, *, check_keys: bool = False) -> Resumable:
    """Check that ``run_dir`` is a run that can be resumed and prepare it again.

    The scenario is loaded again with the run's original arguments (manifest ``resume``).
    ``check_keys``: check the models' API keys first, before any work (the CLI; a caller
    that passes its own chat model to ``resume`` needs none).

    Raises:
        ResumeError: Not a run folder, a completed run, or the config changed.
        InputError: ``check_keys`` and a model's API key is missing.
    """
    from scenarios.loader import load_scenario

    manifest = load_manifest(run_dir)
    args = manifest.get("resume")
    if not isinstance(args, dict):
        raise ResumeError(f"{run_dir}: this run cannot be resumed (its manifest has no "
                          "resume block; it was started by an older recarena)")
    if manifest.get("status") == "completed":
        raise ResumeError(f"{run_dir}: the run completed already; nothing to resume")
    loaded = load_scenario(args["scenario_file"], llm_flag=args.get("llm") is not None)
    if check_keys and args.get("replay") is None:
        check_api_keys(loaded, args.get("llm"))
    try:
        prep = prepare(loaded, seed=args.get("seed"), users=args.get("users"),
                       data=args.get("data"), llm=args.get("llm"),
                       executor=args.get("executor"))
    except (ValueError, ScenarioError) as e:
        raise ResumeError(f"{run_dir}: cannot prepare the run again: {e}") from None
    config = config_of(prep)
    if config_hash(config) != manifest.get("config_hash"):
        raise ResumeError(f"{run_dir}: the scenario's config changed since the run started "
                          f"({args['scenario_file']} or its roles); start a new run instead")
    return Resumable(run_dir, prep, manifest, config)
