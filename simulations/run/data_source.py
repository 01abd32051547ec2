"""Where a scenario's data comes from: a synthetic world, a data folder (RecBole atomic
files or GroupLens ml-100k) or one CSV file (tools/csv_data.py)."""

from __future__ import annotations

import os
from pathlib import Path

from scenarios.loader import LoadedScenario, ScenarioError, line_of
from scenarios.schema import Scenario
from tools.csv_data import load_csv
from tools.dataset import Dataset, load_dataset
from tools.synthetic import make_world

__all__ = ["DATA_ENV", "load_data", "resolve_data_path"]

DATA_ENV = "RECARENA_DATA"


def resolve_data_path(loaded: LoadedScenario, data: str | None) -> Path | None:
    """--data beats RECARENA_DATA beats the scenario's dataset.path (relative to its file);
    a CSV scenario's own file is not replaced by RECARENA_DATA (a MovieLens folder)."""
    if data:
        return Path(data)
    if os.environ.get(DATA_ENV) and loaded.scenario.dataset.source != "csv":
        return Path(os.environ[DATA_ENV])
    p = loaded.scenario.dataset.path
    if p is None:
        return None
    return (loaded.path.parent / p) if not Path(p).is_absolute() else Path(p)


def load_data(scn: Scenario, loaded: LoadedScenario, data: str | None) -> Dataset:
    """The scenario's dataset (``scn`` is the scenario with command-line overrides)."""
    if scn.dataset.source == "synthetic" and data is None:
        s = scn.dataset.synthetic
        return make_world(s.n_users, s.n_items, s.n_genres, s.dim, s.history_mean, seed=scn.seed)
    path = resolve_data_path(loaded, data)
    if path is None:
        raise ScenarioError(
            loaded.path, line_of(loaded.path, ("dataset", "path")), "dataset.path",
            f"no data folder given; pass --data DIR or set {DATA_ENV} (get MovieLens with: "
            "recarena data download ml-100k --to DIR)")
    cfg = scn.dataset
    if cfg.source == "csv" and path.is_file():  # the file's own column mapping
        return load_csv(path, cfg.columns.model_dump(), delimiter=cfg.delimiter,
                        explicit=frozenset(loaded.scenario.dataset.columns.model_fields_set))
    return load_dataset(path)
