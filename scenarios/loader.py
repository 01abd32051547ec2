"""Load scenario and role YAML into frozen models; errors name file, line and field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from scenarios.schema import RoleConfig, Scenario, scenario_problems, sharding_problem

__all__ = [
    "LoadedRole",
    "LoadedScenario",
    "ScenarioError",
    "duplicate_keys",
    "json_schemas",
    "line_of",
    "load_role",
    "load_scenario",
    "shipped_role",
    "validate_file",
]

M = TypeVar("M", bound=BaseModel)
SHIPPED_ROLES = Path(__file__).resolve().parent / "roles"
Loc = tuple[str | int, ...]


class ScenarioError(ValueError):
    """An invalid scenario or role file. ``str()`` is one line: ``FILE:LINE: field: message``.

    ``errors`` is every error found in the file, this one first, each one line (what
    ``recarena validate`` prints); ``str()`` names the first and counts the others.
    """

    def __init__(self, path: Path | str, line: int, field: str, message: str,
                 more: Sequence[ScenarioError] = ()) -> None:
        self.path, self.line, self.field, self.message = str(path), line, field, message
        where = f"{field}: " if field else ""
        self.line_text = f"{self.path}:{line}: {where}{message}"
        self.errors: list[ScenarioError] = [self, *(e for m in more for e in m.errors)]
        n = len(self.errors) - 1
        super().__init__(self.line_text + (f" (+{n} more)" if n else ""))

    @classmethod
    def of(cls, errors: Sequence[ScenarioError]) -> ScenarioError:
        """One error standing for ``errors`` (at least one), the first named."""
        first = errors[0]
        return cls(first.path, first.line, first.field, first.message,
                   more=[*first.errors[1:], *errors[1:]])

    @property
    def lines(self) -> list[str]:
        """Every error of the file, one line each."""
        return [e.line_text for e in self.errors]


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


def _parse_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """The file's data and its YAML node tree; duplicate keys are not checked (the last
    one wins, as in PyYAML)."""
    if not path.exists():
        raise ScenarioError(path, 1, "", "no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(path, 1, "", f"cannot read: {e}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ScenarioError(path, line, "", f"YAML syntax: {problem}") from None
    return data, node


def duplicate_keys(path: Path, node: yaml.Node | None) -> list[ScenarioError]:
    """An error at every key that repeats an earlier key of the same mapping.

    PyYAML keeps the last value silently, so ``seed: 1`` ... ``seed: 2`` would run with
    seed 2 while the reader of the file sees 1: a repeated key is always an error.
    """
    out: list[ScenarioError] = []
    todo: list[tuple[yaml.Node, Loc]] = [(node, ())] if node is not None else []
    while todo:
        cur, loc = todo.pop()
        if isinstance(cur, yaml.MappingNode):
            first: dict[str, int] = {}
            for k, v in cur.value:
                key = str(getattr(k, "value", ""))
                line = k.start_mark.line + 1
                if key in first:
                    out.append(ScenarioError(path, line, _field((*loc, key)),
                                             f"duplicate key (first at line {first[key]}); "
                                             "keep one"))
                else:
                    first[key] = line
                todo.append((v, (*loc, key)))
        elif isinstance(cur, yaml.SequenceNode):
            todo += [(v, (*loc, i)) for i, v in enumerate(cur.value)]
    return sorted(out, key=lambda e: e.line)


def _read_yaml(path: Path, model: type[BaseModel] | None = None
               ) -> tuple[Any, yaml.Node | None]:
    """``_parse_yaml``, with repeated keys an error: all of them in one ScenarioError, with
    what ``model`` (the file's schema, when known) says of the rest of the file."""
    data, node = _parse_yaml(path)
    dups = duplicate_keys(path, node)
    if dups:
        if model is not None and isinstance(data, dict):
            try:
                model.model_validate(data)
            except ValidationError as e:
                dups += _schema_errors(e.errors(include_url=False), path, node)
            if model is Scenario:
                dups += _raw_plugin_errors(data, path, node)
        raise ScenarioError.of(sorted(dups, key=lambda e: e.line))
    return data, node


def _locate(node: yaml.Node | None, loc: Loc) -> tuple[int, Loc]:
    """1-based line of the deepest YAML node along ``loc`` and ``loc`` as the file spells it.

    Pydantic puts union tags (``add_items``, ``inline``) into locations; they are not keys
    in the file, so parts that name no key are dropped (except a last, missing field).
    """
    if node is None:
        return 1, loc
    line = node.start_mark.line + 1
    cur: yaml.Node | None = node
    kept: list[str | int] = []
    for n, part in enumerate(loc):
        last = n == len(loc) - 1
        if isinstance(cur, yaml.MappingNode) and isinstance(part, str):
            hit = next((kv for kv in cur.value if getattr(kv[0], "value", None) == part), None)
            if hit is None:
                if last:
                    kept.append(part)
                continue
            line, cur = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(cur, yaml.SequenceNode) and isinstance(part, int) \
                and 0 <= part < len(cur.value):
            cur = cur.value[part]
            line = cur.start_mark.line + 1
        elif isinstance(part, str) and not last and cur is not None \
                and not isinstance(cur, yaml.MappingNode):
            continue  # a tag on a scalar, e.g. the 'file' branch of a role reference
        else:
            cur = None
        kept.append(part)
    return line, tuple(kept)


def _line_of(node: yaml.Node | None, loc: Loc) -> int:
    return _locate(node, loc)[0]


def line_of(path: str | Path, loc: Loc) -> int:
    """1-based line of the field at ``loc`` in a YAML file (1 if unreadable), for errors
    found after load, e.g. against the data."""
    try:
        _, node = _parse_yaml(Path(path))
    except ScenarioError:
        return 1
    return _line_of(node, loc)


def _field(loc: Loc) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _relevant_errors(errs: list[Any]) -> list[Any]:
    """Pydantic's errors without the noise of union branches.

    For a ``str | Model`` field given a mapping, pydantic reports the ``str`` branch's type
    mismatch beside the Model branch's errors; the Model branch says what is wrong, so the
    type mismatch is dropped when a deeper error of the same field follows."""
    out = []
    for n, err in enumerate(errs):
        loc = tuple(err["loc"])
        if str(err["type"]).endswith("_type") and len(loc) >= 2 and any(
                len(e["loc"]) > len(loc) and tuple(e["loc"][:len(loc) - 1]) == loc[:-1]
                for e in errs[n + 1:]):
            continue
        out.append(err)
    return out or errs[:1]


def _schema_errors(errs: list[Any], path: Path, node: yaml.Node | None,
                   prefix: Loc = ()) -> list[ScenarioError]:
    """Each relevant pydantic error as a ScenarioError at its line."""
    out = []
    for err in _relevant_errors(errs):
        # Discriminated unions and Literal tags add the tag name to the location; drop
        # trailing parts that are not in the YAML so the line points at the right node.
        line, loc = _locate(node, prefix + tuple(err["loc"]))
        out.append(ScenarioError(path, line, _field(loc), _message(err)))
    return out  # pydantic's order: the fields as the model declares them


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required field is missing"
    if err["type"] == "value_error":  # our own validators: drop "Value error, "
        return str(err.get("ctx", {}).get("error", err["msg"]))
    return str(err["msg"])


def _validate(model: type[M], data: Any, path: Path, node: yaml.Node | None) -> M:
    if not isinstance(data, dict):
        kind = "empty file" if data is None else f"got {type(data).__name__}"
        raise ScenarioError(path, 1, "", f"expected a mapping at the top level ({kind})")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ScenarioError.of(_schema_errors(e.errors(include_url=False), path,
                                              node)) from None


def _raw_plugin_errors(data: Any, path: Path, node: yaml.Node | None) -> list[ScenarioError]:
    """Plug-in model problems of a scenario's raw mapping (used when the schema already
    failed, so that every error of the file is reported together)."""
    from scenarios.plugins import model_problems

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
            out.append(ScenarioError(path, _line_of(node, full), _field(full), msg))
    return out


def load_role(path: str | Path) -> RoleConfig:
    """Load and validate a role file (its ``extends:`` chain merged in first)."""
    from scenarios.role_extends import resolve_extends

    p = Path(path)
    data, node = _read_yaml(p, RoleConfig)
    data = resolve_extends(data, p, node, shipped=SHIPPED_ROLES, read=_read_yaml,
                           line_of=_line_of, fail=ScenarioError)
    return _validate(RoleConfig, data, p, node)


def shipped_role(name: str) -> Path:
    """The role file ``scenarios/roles/NAME.yaml`` that ships inside the package."""
    return SHIPPED_ROLES / f"{name}.yaml"


def load_scenario(path: str | Path, *, llm_flag: bool = False) -> LoadedScenario:
    """Load and validate a scenario file and the role it names.

    Args:
        path: The scenario file.
        llm_flag: The command line names an LLM (``--llm``), so an LLM role may come
            without an ``llm:`` block.
    """
    p = Path(path)
    data, node = _read_yaml(p, Scenario)
    try:
        scn = _validate(Scenario, data, p, node)
    except ScenarioError as e:
        # Unknown or broken plug-in models are found after the schema; list them with its
        # errors so that `validate` shows every error of the file at once.
        extra = _raw_plugin_errors(data, p, node)
        if not extra:
            raise
        every = [ScenarioError(x.path, x.line, x.field, x.message) for x in e.errors]
        raise ScenarioError.of(sorted([*every, *extra], key=lambda x: x.line)) from None
    from scenarios.plugins import plugin_problems

    problems = scenario_problems(scn) or plugin_problems(scn)
    if problems:
        raise ScenarioError.of([ScenarioError(p, _line_of(node, loc), _field(loc), msg)
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
            raise ScenarioError(p, _line_of(node, locs[i]), _field(locs[i]),
                                f"two roles are named {n!r}; role names must differ")
    for r, loc in zip(roles, locs, strict=True):
        if (r.config.brain.kind == "llm" and r.config.llm is None and scn.llm is None
                and not llm_flag):
            raise ScenarioError(
                p, _line_of(node, loc), "llm",
                f"role {r.config.name!r} has brain: llm but neither it nor the scenario has "
                "an llm: block; add one (see scenarios/llm_feed.yaml) or run with "
                "--llm local|openai[:MODEL]",
            )
    problem = (sharding_problem([r.config for r in roles], scn.llm)
               if scn.executor.kind == "ray" else None)
    if problem:
        raise ScenarioError(p, _line_of(node, ("executor", "kind")), "executor.kind", problem)
    agents = _agents(scn, p, node, llm_flag)
    return LoadedScenario(scn, roles[0].config, p, roles[0].path, roles, agents)


def _agents(scn: Scenario, p: Path, node: yaml.Node | None, llm_flag: bool) -> dict[str, Any]:
    """The teams and recommender roles of ``model: agent`` arms, validated at load."""
    from scenarios.recsys import TeamConfig
    from scenarios.recsys_loader import LoadedTeam, load_agent, resolve_team

    out: dict[str, Any] = {}
    for i, r in enumerate(scn.recommenders):
        if r.model != "agent":
            continue
        if r.agent is not None:
            loc: Loc = ("recommenders", i, "agent")
            ref = (p.parent / r.agent).resolve()
            if not ref.is_file():
                raise ScenarioError(p, _line_of(node, loc), _field(loc),
                                    f"agent file not found: {ref}")
            got = load_agent(ref, (p, node, loc))
        else:
            loc = ("recommenders", i, "team")
            cfg = _validate_at(TeamConfig, r.team, p, node, loc)
            got = resolve_team(cfg, p.parent, p, node, loc)
        roles = ([got.manager, *(m for m, _ in got.members)] if isinstance(got, LoadedTeam)
                 else [got])
        for role in roles:
            if role.config.llm is None and scn.llm is None and not llm_flag:
                raise ScenarioError(
                    p, _line_of(node, loc), _field(loc),
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
        raise ScenarioError.of(_schema_errors(e.errors(include_url=False), path, node,
                                              prefix)) from None


def _resolve_role(ref: str | RoleConfig | None, p: Path, node: yaml.Node | None,
                  loc: Loc) -> tuple[RoleConfig, Path | None]:
    if isinstance(ref, RoleConfig):
        return ref, None
    role_path = shipped_role("utility_user") if ref is None else (p.parent / ref).resolve()
    if not role_path.exists():
        raise ScenarioError(p, _line_of(node, loc), _field(loc),
                            f"role file not found: {role_path}")
    return load_role(role_path), role_path


def validate_file(path: str | Path, *, llm_flag: bool = False) -> str:
    """Validate a scenario, role (user or recommender) or team file (by its ``kind``);
    return the kind. The ScenarioError lists every error found in the file (``errors``).
    ``llm_flag``: as for ``load_scenario`` (the command line names the model)."""
    p = Path(path)
    data, _ = _parse_yaml(p)  # its kind; the loaders below report repeated keys
    kind = data.get("kind", "scenario") if isinstance(data, dict) else "scenario"
    if kind in ("role", "user"):
        load_role(p)
    elif kind in ("recommender", "team"):
        from scenarios.recsys_loader import load_recommender_role, load_team

        if kind == "team":
            load_team(p)
        else:
            load_recommender_role(p)
    else:
        load_scenario(p, llm_flag=llm_flag)
    return str(kind)


def json_schemas() -> dict[str, Any]:
    """JSON Schemas of scenario, role, recommender role and team files, for editors and CI."""
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
    }
