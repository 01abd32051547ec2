"""Load scenario and role YAML into frozen models; errors name file, line and field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from scenarios.plugins import model_problems, plugin_problems
from scenarios.recsys import TeamConfig
from scenarios.recsys_loader import (
    LoadedTeam,
    load_agent,
    load_recommender_role,
    load_team,
    resolve_team,
)
from scenarios.schema import RoleConfig, Scenario, scenario_problems, sharding_problem
from scenarios.yaml_io import (
    Loc,
    ScenarioError,
    duplicate_keys,
    field_name,
    line_of,
    node_line,
    parse_yaml,
    read_yaml,
    schema_errors,
    validate_model,
)

__all__ = [
    "LoadedRole",
    "LoadedScenario",
    "ScenarioError",
    "duplicate_keys",
    "json_schemas",
    "line_of",
    "load_role",
    "load_scenario",
    "set_dotted",
    "shipped_role",
    "validate_file",
]

M = TypeVar("M", bound=BaseModel)
SHIPPED_ROLES = Path(__file__).resolve().parent / "roles"


@dataclass(frozen=True)
class LoadedRole:
    """One role of the population: its config, its file, and its share or count."""

    config: RoleConfig
    path: Path | None
    share: float | None = None
    count: int | None = None


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario, its resolved roles, and where they came from.

    ``role`` and ``role_path`` are the first (for a single-role population, the only) role.
    """

    scenario: Scenario
    role: RoleConfig
    path: Path
    role_path: Path | None
    roles: tuple[LoadedRole, ...] = ()
    # model: agent arms: the loaded team or recommender role, by arm name
    # (scenarios.recsys_loader.LoadedTeam / LoadedRecRole).
    agents: dict[str, Any] = field(default_factory=dict)
    # item_agents: the loaded item role (scenarios.item_role.ItemRole), or None
    items: Any = None

    def __post_init__(self) -> None:
        # ``dataclasses.replace(loaded, role=...)`` swaps the role of a single-role
        # population: keep ``roles`` in step with it.
        if not self.roles or (len(self.roles) == 1 and self.roles[0].config != self.role):
            object.__setattr__(self, "roles", (LoadedRole(self.role, self.role_path, 1.0),))
        elif self.roles[0].config != self.role:
            raise ValueError("role must be the first of roles; replace roles instead")

    def resolved_config(self) -> dict[str, Any]:
        """The full config with defaults filled in and the roles inlined (for traces)."""
        cfg = self.scenario.model_dump(mode="json")
        # A mix lists its roles below; one role is also the population's role.
        cfg["population"]["role"] = (self.role.model_dump(mode="json")
                                     if len(self.roles) == 1 else None)
        cfg["population"]["roles"] = [
            {"role": r.config.model_dump(mode="json"), "share": r.share, "count": r.count}
            for r in self.roles]
        return cfg



def _raw_plugin_errors(data: Any, path: Path, node: yaml.Node | None) -> list[ScenarioError]:
    """Plug-in model problems of a scenario's raw mapping (used when the schema already
    failed, so that every error of the file is reported together)."""
    if not isinstance(data, dict):
        return []
    found: list[tuple[Loc, Any, Any]] = []
    for key in ("recommenders", "events"):
        entries = data.get(key)
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict):
                continue
            if entry.get("model") == "agent" and isinstance(entry.get("candidates"), dict):
                cand = entry["candidates"]
                found.append(((key, i, "candidates"), cand.get("model"), cand.get("params")))
            else:
                found.append(((key, i), entry.get("model"), entry.get("params")))
    out = []
    for loc, model, params in found:
        if not isinstance(model, str):
            continue
        for sub, msg in model_problems(model, params if isinstance(params, dict) else {}):
            full = loc + sub
            out.append(ScenarioError(path, node_line(node, full), field_name(full), msg))
    return out


def load_role(path: str | Path) -> RoleConfig:
    """Load and validate a role file (its ``extends:`` chain merged in first)."""
    from scenarios.role_extends import resolve_extends

    p = Path(path)
    data, node = read_yaml(p, RoleConfig)
    data = resolve_extends(data, p, node, shipped=SHIPPED_ROLES, read=read_yaml,
                           line_of=node_line, fail=ScenarioError)
    return validate_model(RoleConfig, data, p, node)


def shipped_role(name: str) -> Path:
    """The role file ``scenarios/roles/NAME.yaml`` that ships inside the package."""
    return SHIPPED_ROLES / f"{name}.yaml"


def load_scenario(path: str | Path, *, llm_flag: bool = False,
                  overrides: Mapping[str, Any] | None = None) -> LoadedScenario:
    """Load and validate a scenario file and the role it names.

    Args:
        path: The scenario file.
        llm_flag: The command line names an LLM (``--llm``), so an LLM role may come
            without an ``llm:`` block.
        overrides: Values replacing the file's, by dotted key (``population.size``,
            ``recommenders.0.params.l2``), applied to the file's mapping before it is
            validated, so they are checked exactly like the file (relative paths they name
            are relative to the file). Errors in them keep the file's line numbers.
    """
    p = Path(path)
    data, node = read_yaml(p, Scenario, _raw_plugin_errors)
    for key, value in (overrides or {}).items():
        data = set_dotted(data, key, value)
    try:
        scn = validate_model(Scenario, data, p, node)
    except ScenarioError as e:
        # Unknown or broken plug-in models are found after the schema; list them with its
        # errors so that `validate` shows every error of the file at once.
        extra = _raw_plugin_errors(data, p, node)
        if not extra:
            raise
        every = [ScenarioError(x.path, x.line, x.field, x.message) for x in e.errors]
        raise ScenarioError.of(sorted([*every, *extra], key=lambda x: x.line)) from None
    problems = scenario_problems(scn) or plugin_problems(scn)
    if problems:
        raise ScenarioError.of([ScenarioError(p, node_line(node, loc), field_name(loc), msg)
                                for loc, msg in problems])
    if scn.population.roles:
        roles = tuple(
            LoadedRole(*_resolve_role(entry.role, p, node, ("population", "roles", i, "role")),
                       entry.share, entry.count)
            for i, entry in enumerate(scn.population.roles))
        locs: list[Loc] = [("population", "roles", i, "role") for i in range(len(roles))]
    else:
        roles = (LoadedRole(*_resolve_role(scn.population.role, p, node,
                                           ("population", "role")), 1.0),)
        locs = [("population", "role")]
    names = [r.config.name for r in roles]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise ScenarioError(p, node_line(node, locs[i]), field_name(locs[i]),
                                f"two roles are named {n!r}; role names must differ")
    for r, loc in zip(roles, locs, strict=True):
        if (r.config.brain.kind == "llm" and r.config.llm is None and scn.llm is None
                and not llm_flag):
            raise ScenarioError(
                p, node_line(node, loc), "llm",
                f"role {r.config.name!r} has brain: llm but neither it nor the scenario has "
                "an llm: block; add one (see scenarios/llm_feed.yaml) or run with "
                "--llm local|openai[:MODEL]",
            )
    fake = scn.attack.fake_users if scn.attack is not None else None
    if fake is not None and fake.strategy == "llm" and scn.llm is None and not llm_flag:
        loc = ("attack", "fake_users", "strategy")
        raise ScenarioError(p, node_line(node, loc), field_name(loc),
                            "strategy llm writes profiles with a model, but the scenario has "
                            "no llm: block; add one or run with --llm local|openai|fake")
    problem = (sharding_problem([r.config for r in roles], scn.llm)
               if scn.executor.kind == "ray" else None)
    if problem:
        raise ScenarioError(p, node_line(node, ("executor", "kind")), "executor.kind", problem)
    agents = _agents(scn, p, node, llm_flag)
    return LoadedScenario(scn, roles[0].config, p, roles[0].path, roles, agents,
                          _item_agents(scn, p, node))


def _item_agents(scn: Scenario, p: Path, node: yaml.Node | None) -> Any:
    """The scenario's item role (``item_agents:``, relative to the scenario), or None."""
    if scn.item_agents is None:
        return None
    from scenarios.item_role import load_item_role

    loc = ("item_agents",)
    ref = (p.parent / scn.item_agents).resolve()
    if not ref.is_file():
        raise ScenarioError(p, node_line(node, loc), field_name(loc),
                            f"item role file not found: {ref}")
    data, _ = parse_yaml(ref)
    if not isinstance(data, dict) or data.get("kind") != "item":
        raise ScenarioError(p, node_line(node, loc), field_name(loc),
                            f"{ref} is not an item role file (kind: item)")
    return load_item_role(ref)


def _agents(scn: Scenario, p: Path, node: yaml.Node | None, llm_flag: bool) -> dict[str, Any]:
    """The teams and recommender roles of ``model: agent`` arms, validated at load."""
    out: dict[str, Any] = {}
    for i, r in enumerate(scn.recommenders):
        if r.model != "agent":
            continue
        if r.agent is not None:
            loc: Loc = ("recommenders", i, "agent")
            ref = (p.parent / r.agent).resolve()
            if not ref.is_file():
                raise ScenarioError(p, node_line(node, loc), field_name(loc),
                                    f"agent file not found: {ref}")
            got = load_agent(ref, (p, node, loc))
        else:
            loc = ("recommenders", i, "team")
            cfg = _validate_at(TeamConfig, r.team, p, node, loc)
            got = resolve_team(cfg, p.parent, p, node, loc)
        roles = ([got.manager, *(m for m, _ in got.members)] if isinstance(got, LoadedTeam)
                 else [got])
        for role in roles:
            if (role.config.needs_llm and role.config.llm is None and scn.llm is None
                    and not llm_flag):
                raise ScenarioError(
                    p, node_line(node, loc), field_name(loc),
                    f"recommender role {role.config.name!r} has no llm: block and neither "
                    "has the scenario; add one or run with --llm local|openai[:MODEL]")
        out[r.name] = got
    return out


def _validate_at(model: type[M], data: Any, path: Path, node: yaml.Node | None,
                 prefix: Loc) -> M:
    """Validate ``data`` found at ``prefix`` of the file (errors located there)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ScenarioError.of(schema_errors(e.errors(include_url=False), path, node,
                                              prefix)) from None


def _resolve_role(ref: str | RoleConfig | None, p: Path, node: yaml.Node | None,
                  loc: Loc) -> tuple[RoleConfig, Path | None]:
    if isinstance(ref, RoleConfig):
        return ref, None
    role_path = shipped_role("utility_user") if ref is None else (p.parent / ref).resolve()
    if not role_path.exists():
        raise ScenarioError(p, node_line(node, loc), field_name(loc),
                            f"role file not found: {role_path}")
    return load_role(role_path), role_path


def validate_file(path: str | Path, *, llm_flag: bool = False) -> str:
    """Validate a scenario, role (user, recommender or item) or team file (by its ``kind``);
    return the kind. The ScenarioError lists every error found in the file (``errors``).
    ``llm_flag``: as for ``load_scenario`` (the command line names the model)."""
    p = Path(path)
    data, _ = parse_yaml(p)  # its kind; the loaders below report repeated keys
    kind = data.get("kind", "scenario") if isinstance(data, dict) else "scenario"
    if kind in ("role", "user"):
        load_role(p)
    elif kind == "item":
        from scenarios.item_role import load_item_role

        load_item_role(p)
    elif kind in ("recommender", "team"):
        if kind == "team":
            load_team(p)
        else:
            load_recommender_role(p)
    else:
        load_scenario(p, llm_flag=llm_flag)
    return str(kind)


def json_schemas() -> dict[str, Any]:
    """JSON Schemas of scenario, role, recommender role and team files, for editors and CI."""
    from scenarios.item_role import ItemRole
    from scenarios.recsys import RecommenderRole, TeamConfig

    draft = "https://json-schema.org/draft/2020-12/schema"  # what pydantic emits
    role = RoleConfig.model_json_schema()
    # extends: is resolved before validation (scenarios/role_extends.py), so the model has
    # no such field; editors still need to accept it.
    role["properties"]["extends"] = {
        "type": "string", "description": "A role this one extends and overrides: a shipped "
        "role's name or a role file relative to this one (mappings merge deeply)."}
    return {
        "scenario": {"$schema": draft, **Scenario.model_json_schema()},
        "role": {"$schema": draft, **role},
        "recommender": {"$schema": draft, **RecommenderRole.model_json_schema()},
        "team": {"$schema": draft, **TeamConfig.model_json_schema()},
        "item": {"$schema": draft, **ItemRole.model_json_schema()},
    }


def set_dotted(data: Any, key: str, value: Any) -> dict[str, Any]:
    """``data`` (a scenario's mapping) with ``key`` (dotted; list indices as numbers) set to
    ``value``; missing mappings on the way are created.

    Raises:
        ValueError: ``key`` is empty or goes through something that is not a mapping or a
            list, or past a list's end.
    """
    parts = key.split(".")
    if not all(parts):
        raise ValueError(f"override {key!r}: not a dotted field name")
    root: dict[str, Any] = dict(data) if isinstance(data, dict) else {}
    node: Any = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[:i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ValueError(f"override {key!r}: {where} is not an index of the list "
                                 f"(it has {len(node)} entries)")
            slot: Any = int(part)
        elif isinstance(node, dict):
            slot = part
        else:
            raise ValueError(f"override {key!r}: {'.'.join(parts[:i])} is a value, not a "
                             "mapping")
        if last:
            node[slot] = value
            break
        child = node[slot] if (isinstance(node, list) or slot in node) else None
        if child is None:  # absent or null (``llm:`` left empty): a new mapping
            child = {}
        # Copies on the way down: the caller's mapping is never changed.
        child = dict(child) if isinstance(child, dict) else (
            list(child) if isinstance(child, list) else child)
        node[slot] = child
        node = child
    return root
