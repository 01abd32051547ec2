"""The stores a run writes into its folder, and their roll-back when the run resumes.

A resume rebuilds a run by re-executing it from its seed up to the last checkpoint
(docs/architecture.md, "The run loop"), so every store the run writes must start that
re-execution empty: a store that kept what was written after the checkpoint (a lesson a
team's reflector wrote, a memory an agent stored) changes the prompts of the re-executed
steps and the resume diverges from the trace.

One mechanism for all of them: a store that lives in a run folder gets its folder from
:func:`store_dir`, which records the folder's name in ``stores.json`` beside it before the
store exists; :func:`reset_stores` deletes every recorded folder under a run folder (Ray
workers' own folders included). A new kind of store registers by asking ``store_dir`` for
its folder; nothing else has to know about it. What a resume must keep (the LLM call
cache, the checkpoints, the trace) never goes through ``store_dir``.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

__all__ = ["LEGACY_STORE_DIRS", "STORES_FILE", "registered_stores", "reset_stores", "store_dir"]

STORES_FILE = "stores.json"

# Folders runs wrote before stores registered (agents' memories; teams' lessons): removed
# from run folders without a stores.json, so that those runs still resume.
LEGACY_STORE_DIRS = ("memory", "agent_memory")

_lock = threading.Lock()


def _read(registry: Path) -> list[str]:
    try:
        names = json.loads(registry.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _safe(name: str) -> str:
    # A store's folder is a direct child of the run folder: a name is never a path.
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ValueError(f"store folder name {name!r}: one plain folder name, not a path")
    return name


def store_dir(run_dir: Path, name: str) -> Path:
    """``run_dir / name``, recorded as a store to roll back on resume.

    Call it before the store writes anything (the record is on disk when it returns).
    Thread-safe; cheap when ``name`` is recorded already.
    """
    name = _safe(name)
    registry = run_dir / STORES_FILE
    with _lock:
        names = _read(registry)
        if name not in names:
            run_dir.mkdir(parents=True, exist_ok=True)
            tmp = registry.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(sorted([*names, name])), encoding="utf-8")
            os.replace(tmp, registry)  # atomic: a kill leaves the old list or the new one
    return run_dir / name


def registered_stores(run_dir: Path) -> list[Path]:
    """Every store folder recorded under ``run_dir`` (its own and its workers'), and the
    legacy folders of a run folder that has no record."""
    out: list[Path] = []
    registries = sorted(run_dir.rglob(STORES_FILE)) if run_dir.is_dir() else []
    for registry in registries:
        out += [registry.parent / _safe(n) for n in _read(registry)]
    if not (run_dir / STORES_FILE).is_file():
        out += [run_dir / n for n in LEGACY_STORE_DIRS]
    return out


def reset_stores(run_dir: Path) -> list[Path]:
    """Delete every store folder recorded under ``run_dir`` (see ``registered_stores``);
    returns the folders that existed. The records stay: the re-execution writes the same
    stores again."""
    gone = [p for p in registered_stores(run_dir) if p.exists()]
    for p in gone:
        shutil.rmtree(p)
    return gone
