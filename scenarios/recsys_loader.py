"""Load recommender role files and team files; errors name file, line and field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from scenarios.recsys import RecommenderRole, TeamConfig, template_problems
from scenarios.yaml_io import Loc, ScenarioError, field_name, node_line, read_yaml, validate_model

__all__ = [
    "LoadedAgent",
    "LoadedRecRole",
    "LoadedTeam",
    "load_agent",
    "load_recommender_role",
    "load_team",
    "resolve_team",
]


@dataclass(frozen=True)
class LoadedRecRole:
    config: RecommenderRole
    path: Path | None


@dataclass(frozen=True)
class LoadedTeam:
    """A team: its file's settings, its manager and its members with when they act."""

    config: TeamConfig
    path: Path | None
    manager: LoadedRecRole
    members: tuple[tuple[LoadedRecRole, str], ...]


LoadedAgent = LoadedRecRole | LoadedTeam


def _role(data: object, p: Path, node: yaml.Node | None) -> RecommenderRole:
    role = validate_model(RecommenderRole, data, p, node)
    problems = template_problems(role.output, role.prompts.given())
    if problems:
        name, msg = problems[0]
        loc = ("prompts", name)
        raise ScenarioError(p, node_line(node, loc), field_name(loc), msg)
    return role


def load_recommender_role(path: str | Path) -> RecommenderRole:
    """Load and validate a recommender role file (``kind: recommender``)."""
    p = Path(path)
    data, node = read_yaml(p, RecommenderRole)
    return _role(data, p, node)


def _member(ref: str, base: Path, at: Path, node: yaml.Node | None,
            loc: tuple[str | int, ...]) -> LoadedRecRole:
    p = (base / ref).resolve()
    if not p.is_file():
        raise ScenarioError(at, node_line(node, loc), field_name(loc), f"role file not found: {p}")
    data, rnode = read_yaml(p, RecommenderRole)
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind != "recommender":  # the reference is wrong, not the file: point at the team's line
        raise ScenarioError(at, node_line(node, loc), field_name(loc),
                            f"a team member must be a recommender role (kind: recommender); "
                            f"{p} has kind: {kind}")
    return LoadedRecRole(_role(data, p, rnode), p)


def resolve_team(cfg: TeamConfig, base: Path, at: Path, node: yaml.Node | None,
                 prefix: tuple[str | int, ...] = ()) -> LoadedTeam:
    """The team's roles, loaded relative to ``base``; errors point into ``at`` (the team
    file, or the scenario holding an inline team) at ``prefix`` + the field."""
    manager = _member(cfg.manager, base, at, node, (*prefix, "manager"))
    if manager.config.output != "delegation":
        loc = (*prefix, "manager")
        raise ScenarioError(at, node_line(node, loc), field_name(loc),
                            f"the manager's output must be delegation; {manager.config.name!r} "
                            f"has output {manager.config.output}")
    members: list[tuple[LoadedRecRole, str]] = []
    names = {manager.config.name}
    for i, m in enumerate(cfg.entries()):
        loc = (*prefix, "members", i)
        r = _member(m.role, base, at, node, loc)
        problem = None
        if r.config.output == "delegation":
            problem = "a member cannot delegate (output: delegation); only the manager does"
        elif m.when != "consult" and r.config.output != "chat_reply":
            problem = (f"a member that acts {m.when} the manager answers in words: its output "
                       f"must be chat_reply, not {r.config.output}")
        elif r.config.name in names:
            problem = f"two team roles are named {r.config.name!r}; names must differ"
        if problem:
            raise ScenarioError(at, node_line(node, loc), field_name(loc), problem)
        names.add(r.config.name)
        members.append((r, m.when))
    if not any(w == "consult" for _, w in members):
        loc = (*prefix, "members")
        raise ScenarioError(at, node_line(node, loc), field_name(loc),
                            "a team needs at least one member the manager consults")
    return LoadedTeam(cfg, at if not prefix else None, manager, tuple(members))


def load_team(path: str | Path) -> LoadedTeam:
    """Load and validate a team file (``kind: team``) and every role it names."""
    p = Path(path)
    data, node = read_yaml(p, TeamConfig)
    cfg = validate_model(TeamConfig, data, p, node)
    return resolve_team(cfg, p.parent, p, node)


def load_agent(path: str | Path, ref: tuple[Path, yaml.Node | None, Loc] | None = None
               ) -> LoadedAgent:
    """A team file or a single recommender role file, by its ``kind``.

    Args:
        ref: Where the file is named (file, its YAML node, field): a file of another kind
            is an error there, since the reference is what to fix.
    """
    p = Path(path)
    data, node = read_yaml(p)
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "team":
        return load_team(p)
    if kind == "recommender":
        role = _role(data, p, node)
        if role.output == "delegation":
            raise ScenarioError(p, node_line(node, ("output",)), "output",
                                "a delegation role manages a team; run it through a team "
                                "file (kind: team) that names it as manager")
        return LoadedRecRole(role, p)
    if ref is not None:
        raise ScenarioError(ref[0], node_line(ref[1], ref[2]), field_name(ref[2]),
                            f"expected a team (kind: team) or a recommender role (kind: "
                            f"recommender); {p} has kind: {kind}")
    raise ScenarioError(p, node_line(node, ("kind",)), "kind",
                        f"expected a team (kind: team) or a recommender role (kind: "
                        f"recommender), got kind: {kind}")
