"""The scripting entry point (simulations.api): load a shipped scenario, override fields,
run it end to end, read the summary as a DataFrame, register a recommender class."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scenarios.loader import ScenarioError
from simulations import api
from tools.recommenders.plugin import PluginError


def _trace_metrics(run_dir: Path) -> dict[tuple[str, Any, str], Any]:
    """The run's ``metric`` trace events: (arm, round or None, name) -> value."""
    out = {}
    for line in (run_dir / "trace.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev["type"] == "metric":
            out[(ev["arm"], ev["round"], ev["name"])] = ev["value"]
    return out


def _same(a: Any, b: Any) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return bool(b is not None and math.isclose(float(a), float(b), rel_tol=1e-9))


def test_a_shipped_scenario_runs_and_its_summary_matches_the_run(tmp_path: Path) -> None:
    scn = api.load("csv_example", {"population.size": 12}, seed=4,
                   environment__rounds=2)
    assert (scn.scenario.seed, scn.scenario.population.size) == (4, 12)
    assert scn.scenario.environment.rounds == 2
    result = api.run(scn, out=tmp_path / "run")
    assert result.status == "completed" and result.run_dir == tmp_path / "run"
    df = result.summary()
    assert list(df.columns) == ["arm", "round", "metric", "value"]
    assert set(df["arm"]) == {"random", "pop", "ease"}
    assert set(df["round"].dropna()) == {1, 2}
    # Every row is what summary.json says, and what the trace's metric events say.
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]["arms"]
    traced = _trace_metrics(tmp_path / "run")
    for row in df.itertuples():
        rnd = None if row.round is pd.NA else int(row.round)
        want = (saved[row.arm]["overall"] if rnd is None
                else saved[row.arm]["rounds"][str(rnd)])[row.metric]
        assert _same(row.value, want), row
        assert _same(row.value, traced[(row.arm, rnd, row.metric)]), row
    # Nothing the trace reports is missing from the frame.
    keys = {(r.arm, None if r.round is pd.NA else int(r.round), r.metric)
            for r in df.itertuples()}
    assert set(traced) <= keys
    # Arms differ: popularity watches more than random on this shop (a real run).
    overall = df[df["round"].isna()].pivot(index="arm", columns="metric", values="value")
    assert overall.loc["pop", "watch_rate"] > overall.loc["random", "watch_rate"]
    assert api.summary(tmp_path / "run").equals(df)


class _MostPopular:
    fits = 0

    def __init__(self, seed: int = 0, damping: float = 0.0) -> None:
        self.damping = damping

    def fit(self, matrix: sp.csr_matrix) -> None:
        type(self).fits += 1
        self.counts = np.asarray((matrix != 0).sum(axis=0)).ravel() + self.damping

    def recommend(self, users: np.ndarray, k: int,
                  exclude: sp.csr_matrix | None = None) -> np.ndarray:
        out = -np.ones((len(users), k), dtype=np.int64)
        for row in range(len(users)):
            s = self.counts.astype(float)
            if exclude is not None:
                s[exclude[row].indices] = -np.inf
            order = np.argsort(-s, kind="stable")
            order = order[np.isfinite(s[order])][:k]
            out[row, :len(order)] = order
        return out


def test_a_registered_class_is_an_arm_without_packaging(tmp_path: Path) -> None:
    api.register_recommender("api-test-mostpop", _MostPopular)
    api.register_recommender("api-test-mostpop", _MostPopular)  # the same class again: fine
    assert api.registered_recommenders()["api-test-mostpop"] is _MostPopular
    scn = api.load("csv_example", {"population.size": 12,
                                   "recommenders.0.model": "api-test-mostpop",
                                   "recommenders.0.name": "mine",
                                   "recommenders.0.params": {"damping": 1.0}})
    before = _MostPopular.fits
    df = api.run(scn, out=tmp_path / "run").summary()
    assert _MostPopular.fits > before
    overall = df[df["round"].isna()].pivot(index="arm", columns="metric", values="value")
    assert set(overall.index) == {"mine", "pop", "ease"}
    # Most-popular with a constant damping ranks exactly as the built-in pop: same users,
    # same seed, same pages, so the same watch rate.
    assert overall.loc["mine", "watch_rate"] == pytest.approx(overall.loc["pop", "watch_rate"])
    with pytest.raises(ScenarioError, match=r"override recommenders\.0\.params=.*nope"):
        api.load("csv_example", {"recommenders.0.model": "api-test-mostpop",
                                 "recommenders.0.params": {"nope": 1}})


def test_registration_errors_are_one_line() -> None:
    with pytest.raises(PluginError, match="'ease' is a built-in model"):
        api.register_recommender("ease", _MostPopular)
    with pytest.raises(PluginError, match="lacks fit, recommend"):
        api.register_recommender("api-test-nothing", object)
    api.register_recommender("api-test-taken", _MostPopular)
    with pytest.raises(PluginError, match="already registered to _MostPopular"):
        api.register_recommender("api-test-taken", type("Other", (_MostPopular,), {}))


def test_overrides_are_validated_like_the_file() -> None:
    with pytest.raises(ScenarioError) as e:
        api.load("csv_example", population__size=0)
    assert "population.size: override population.size=0: Input should be greater" in str(e.value)
    assert "\n" not in str(e.value)
    with pytest.raises(ScenarioError, match=r"population\.sizee: override .*unknown field"):
        api.load("csv_example", {"population.sizee": 3})
    with pytest.raises(ScenarioError, match=r"recommenders\.7 is not an index"):
        api.load("csv_example", {"recommenders.7.name": "x"})
    with pytest.raises(ScenarioError, match="unknown recommender 'nope'"):
        api.load("csv_example", {"environment.rounds": 2, "events": [
            {"action": "switch_recommender", "at_round": 2, "recommender": "nope",
             "model": "pop"}]})
    with pytest.raises(FileNotFoundError, match=r"shipped: .*quickstart"):
        api.load("no_such_scenario")
    # The file is untouched: loading it again gives its own values.
    assert api.load("csv_example").scenario.population.size == 40
