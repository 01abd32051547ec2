"""The run folder and the files a run writes beside its trace: the folder itself (new, or
refused when not empty), JSON files written whole (``manifest.json``, ``summary.json``),
and ``reference.json``, what reports need from the data the run does not show."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.schema import Scenario
from simulations.record.redact import Redactor
from simulations.run.prepare import Prepared, RunError

__all__ = ["make_run_dir", "write_json", "write_reference"]


def write_json(path: Path, obj: Any, redactor: Redactor | None = None) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(redactor.text(text) if redactor else text, encoding="utf-8")
    tmp.replace(path)


def make_run_dir(out: Path | None, scn: Scenario) -> Path:
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path(scn.output.dir) / f"{scn.name}-{stamp}"
        n = 1
        while out.exists():
            n += 1
            out = Path(scn.output.dir) / f"{scn.name}-{stamp}-{n}"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunError(f"{out}: run folder exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_reference(run_dir: Path, prep: Prepared) -> None:
    """What reports need beside the trace: each item's popularity in the training history
    and the held-out (future) ratings of the population, the real answers a run hides."""
    ds = prep.dataset
    popularity = np.bincount(prep.history.item, minlength=ds.n_items)
    future = prep.future.select(np.isin(prep.future.user, np.asarray(prep.population)))
    values, counts = np.unique(future.rating if ds.has_ratings else [], return_counts=True)
    write_json(run_dir / "reference.json", {
        "dataset": ds.name,
        "real_ratings": prep.scenario.dataset.source != "synthetic" and ds.has_ratings,
        "has_ratings": ds.has_ratings,
        "item_popularity": {ds.catalog.item_ids[i]: int(c) for i, c in enumerate(popularity)},
        "heldout_ratings": {f"{v:g}": int(c) for v, c in zip(values, counts, strict=True)},
    })
