"""YAML files into frozen models: parsing, line numbers of fields, and one-line errors
(``FILE:LINE: field: message``) shared by the scenario, role, recommender-role and team
loaders (``scenarios.loader``, ``scenarios.recsys_loader``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = [
    "Loc",
    "ScenarioError",
    "duplicate_keys",
    "error_message",
    "field_name",
    "line_of",
    "locate",
    "node_line",
    "parse_yaml",
    "read_yaml",
    "relevant_errors",
    "schema_errors",
    "validate_model",
]

M = TypeVar("M", bound=BaseModel)
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




def parse_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
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
                    out.append(ScenarioError(path, line, field_name((*loc, key)),
                                             f"duplicate key (first at line {first[key]}); "
                                             "keep one"))
                else:
                    first[key] = line
                todo.append((v, (*loc, key)))
        elif isinstance(cur, yaml.SequenceNode):
            todo += [(v, (*loc, i)) for i, v in enumerate(cur.value)]
    return sorted(out, key=lambda e: e.line)


def read_yaml(path: Path, model: type[BaseModel] | None = None,
              more: Callable[[Any, Path, yaml.Node | None], list[ScenarioError]] | None = None,
              ) -> tuple[Any, yaml.Node | None]:
    """``parse_yaml``, with repeated keys an error: all of them in one ScenarioError, with
    what ``model`` (the file's schema, when known) and ``more`` (further checks of the raw
    data) say of the rest of the file."""
    data, node = parse_yaml(path)
    dups = duplicate_keys(path, node)
    if dups:
        if model is not None and isinstance(data, dict):
            try:
                model.model_validate(data)
            except ValidationError as e:
                dups += schema_errors(e.errors(include_url=False), path, node)
            if more is not None:
                dups += more(data, path, node)
        raise ScenarioError.of(sorted(dups, key=lambda e: e.line))
    return data, node


def locate(node: yaml.Node | None, loc: Loc) -> tuple[int, Loc]:
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


def node_line(node: yaml.Node | None, loc: Loc) -> int:
    return locate(node, loc)[0]


def line_of(path: str | Path, loc: Loc) -> int:
    """1-based line of the field at ``loc`` in a YAML file (1 if unreadable), for errors
    found after load, e.g. against the data."""
    try:
        _, node = parse_yaml(Path(path))
    except ScenarioError:
        return 1
    return node_line(node, loc)


def field_name(loc: Loc) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def relevant_errors(errs: list[Any]) -> list[Any]:
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


def schema_errors(errs: list[Any], path: Path, node: yaml.Node | None,
                   prefix: Loc = ()) -> list[ScenarioError]:
    """Each relevant pydantic error as a ScenarioError at its line."""
    out = []
    for err in relevant_errors(errs):
        # Discriminated unions and Literal tags add the tag name to the location; drop
        # trailing parts that are not in the YAML so the line points at the right node.
        line, loc = locate(node, prefix + tuple(err["loc"]))
        out.append(ScenarioError(path, line, field_name(loc), error_message(err)))
    return out  # pydantic's order: the fields as the model declares them


def error_message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required field is missing"
    if err["type"] == "value_error":  # our own validators: drop "Value error, "
        return str(err.get("ctx", {}).get("error", err["msg"]))
    return str(err["msg"])


def validate_model(model: type[M], data: Any, path: Path, node: yaml.Node | None) -> M:
    if not isinstance(data, dict):
        kind = "empty file" if data is None else f"got {type(data).__name__}"
        raise ScenarioError(path, 1, "", f"expected a mapping at the top level ({kind})")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ScenarioError.of(schema_errors(e.errors(include_url=False), path,
                                              node)) from None

