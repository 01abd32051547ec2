"""``extends:`` in user role files: a role is another role plus overrides.

``extends: utility_user`` (a shipped role's name) or ``extends: ../roles/base.yaml`` (a
file, relative to the extending file). Mappings merge key by key, deeply; any other value
(a list, a number, a string) replaces the parent's. The merged role is validated as a
whole afterwards. A missing parent or a cycle is an error at the ``extends:`` line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["deep_merge", "resolve_extends"]

Reader = Callable[[Path], tuple[Any, "yaml.Node | None"]]
LineOf = Callable[["yaml.Node | None", tuple[str | int, ...]], int]
Fail = Callable[[Path, int, str, str], Exception]


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: nested mappings merge, anything else replaces."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _parent_path(ref: str, child: Path, shipped: Path) -> Path:
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        return (child.parent / ref).resolve()
    return shipped / f"{ref}.yaml"


def resolve_extends(data: Any, path: Path, node: yaml.Node | None, *, shipped: Path,
                    read: Reader, line_of: LineOf, fail: Fail,
                    chain: tuple[Path, ...] = ()) -> Any:
    """``data`` (a role file's mapping) with its ``extends:`` chain merged in, without
    the ``extends`` key. ``read``, ``line_of`` and ``fail`` are the loader's (so errors
    read as every other load error)."""
    if not isinstance(data, dict) or "extends" not in data:
        return data
    ref = data["extends"]
    line = line_of(node, ("extends",))
    if not isinstance(ref, str) or not ref.strip():
        raise fail(path, line, "extends", "expected a role file or a shipped role's name")
    here = path.resolve()
    parent = _parent_path(ref.strip(), path, shipped)
    if parent.resolve() in (*chain, here):
        cycle = " -> ".join(str(p) for p in (*chain, here, parent.resolve()))
        raise fail(path, line, "extends", f"cycle: {cycle}")
    if not parent.is_file():
        raise fail(path, line, "extends",
                   f"role not found: {parent} (give a role file relative to this one, or "
                   f"a shipped role: {', '.join(sorted(p.stem for p in shipped.glob('*.yaml')))})")
    pdata, pnode = read(parent)
    if not isinstance(pdata, dict):
        raise fail(parent, 1, "", "expected a mapping at the top level")
    if pdata.get("kind", "role") not in ("role", "user"):
        raise fail(path, line, "extends", f"{parent} is a {pdata.get('kind')} file, not a "
                   "user role")
    base = resolve_extends(pdata, parent, pnode, shipped=shipped, read=read, line_of=line_of,
                           fail=fail, chain=(*chain, here))
    own = {k: v for k, v in data.items() if k != "extends"}
    return deep_merge(base, own)
