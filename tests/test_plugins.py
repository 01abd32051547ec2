"""Your own recommender as a scenario arm: by import path (the classes below) or by an
installed entry point; its params checked at load; usable in the feed, conversations,
compare, eval offline and eval validity."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp
import yaml

from scenarios.loader import ScenarioError, load_scenario
from simulations.record.trace import read_trace
from simulations.run.runner import prepare, run
from tests.feed_world import ROLE
from tools.recommenders import RecommenderPlugin, make_recommender

HERE = "tests.test_plugins"


class MostPopular:
    """Popularity, written without any RecArena class: the plug-in protocol only."""

    uses_ratings = False

    def __init__(self, seed: int = 0, damping: float = 0.0) -> None:
        self.seed, self.damping = seed, damping
        self.counts = np.zeros(0)

    def fit(self, matrix: sp.csr_matrix) -> None:
        self.counts = np.asarray((matrix != 0).sum(axis=0), dtype=np.float64).ravel()

    def recommend(self, users: np.ndarray, k: int,
                  exclude: sp.csr_matrix | None = None) -> np.ndarray:
        out = -np.ones((len(users), k), dtype=np.int64)
        for row in range(len(users)):
            s = self.counts + self.damping
            if exclude is not None:
                s = s.copy()
                s[exclude[row].indices] = -np.inf
            # Stable sort: ties go to the lower index, as the built-in pop does.
            order = np.argsort(-s, kind="stable")
            order = order[np.isfinite(s[order])][:k]
            out[row, :len(order)] = order
        return out


class Learner(MostPopular):
    """MostPopular with an incremental update; counts its calls."""

    calls: ClassVar[list[tuple[str, int]]] = []

    def fit(self, matrix: sp.csr_matrix) -> None:
        Learner.calls.append(("fit", int(matrix.nnz)))
        super().fit(matrix)

    def update(self, matrix: sp.csr_matrix) -> None:
        Learner.calls.append(("update", int(matrix.nnz)))
        super().fit(matrix)


class Needs:
    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def fit(self, matrix: sp.csr_matrix) -> None: ...

    def recommend(self, users: np.ndarray, k: int,
                  exclude: sp.csr_matrix | None = None) -> np.ndarray:
        return -np.ones((len(users), k), dtype=np.int64)


def _scenario(tmp_path: Path, arms: list[dict[str, Any]], **over: Any) -> Path:
    (tmp_path / "role.yaml").write_text(yaml.safe_dump(ROLE))
    scn = {
        "kind": "scenario", "name": "plug", "seed": 3,
        "dataset": {"source": "synthetic", "synthetic": {"n_users": 60, "n_items": 120,
                                                         "n_genres": 6, "history_mean": 15}},
        "population": {"size": 20, "role": "role.yaml"},
        "recommenders": arms,
        "environment": {"kind": "feed", "items_per_page": 4, "max_pages": 3, "rounds": 1},
        **over,
    }
    p = tmp_path / "plug.yaml"
    p.write_text(yaml.safe_dump(scn, sort_keys=False))
    return p


def _pages(events: list[dict[str, Any]], arm: str) -> list[tuple[Any, ...]]:
    return [(e["user"], e["round"], e["page"], tuple(e["items"])) for e in events
            if e["type"] == "page" and e["arm"] == arm]


def test_the_classes_meet_the_protocol() -> None:
    assert isinstance(MostPopular(), RecommenderPlugin)
    assert not isinstance(object(), RecommenderPlugin)


def test_import_path_arm_shows_what_the_builtin_would(tmp_path: Path) -> None:
    p = _scenario(tmp_path, [{"name": "pop", "model": "pop"},
                             {"name": "mine", "model": f"{HERE}:MostPopular",
                              "params": {"damping": 1.0}}])
    res = run(prepare(load_scenario(p)), tmp_path / "run")
    assert res.status == "completed"
    events = list(read_trace(tmp_path / "run"))
    mine, pop = _pages(events, "mine"), _pages(events, "pop")
    assert mine and [x[3] for x in mine] == [x[3] for x in pop]
    assert res.metrics["arms"]["mine"]["overall"] == res.metrics["arms"]["pop"]["overall"]
    # The user's history is excluded: no page shows an item the user had seen.
    prep = prepare(load_scenario(p))
    seen = prep.history.matrix(prep.dataset.n_users, prep.dataset.n_items)
    ids = {u: i for i, u in enumerate(prep.dataset.user_ids)}
    index = prep.dataset.catalog.index
    for user, _, _, items in mine:
        assert not any(seen[ids[user], index[i]] for i in items)


def test_unknown_parameter_is_a_file_line_error(tmp_path: Path) -> None:
    p = _scenario(tmp_path, [{"name": "mine", "model": f"{HERE}:MostPopular",
                              "params": {"dampng": 1.0}}])
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    line = next(n for n, t in enumerate(p.read_text().splitlines(), 1) if "dampng" in t)
    assert str(e.value).startswith(f"{p}:{line}: recommenders.0.params.dampng: ")
    assert "unknown parameter" in str(e.value) and "damping" in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_required_parameter_and_import_failures(tmp_path: Path) -> None:
    p = _scenario(tmp_path, [{"name": "n", "model": f"{HERE}:Needs"}])
    with pytest.raises(ScenarioError, match=r"needs parameter\(s\) alpha"):
        load_scenario(p)
    for model, why in ((f"{HERE}:Nope", "AttributeError"),
                       ("no_such_pkg.mod:Rec", "ModuleNotFoundError"),
                       ("not_an_entry_point", "not an entry point")):
        p = _scenario(tmp_path, [{"name": "x", "model": model}])
        with pytest.raises(ScenarioError) as e:
            load_scenario(p)
        msg = str(e.value)
        assert msg.startswith(f"{p}:") and "recommenders.0.model" in msg
        assert model.split(":")[0] in msg and why in msg and "\n" not in msg


def test_cli_reports_a_bad_plugin_in_one_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from simulations.cli.main import main

    p = _scenario(tmp_path, [{"name": "x", "model": "no_such_pkg.mod:Rec"}])
    assert main(["run", str(p), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no_such_pkg.mod:Rec" in err
    assert not (tmp_path / "r").exists()


def test_incremental_update_on_retrain(tmp_path: Path) -> None:
    Learner.calls.clear()
    p = _scenario(tmp_path, [{"name": "l", "model": f"{HERE}:Learner", "retrain": True}],
                  environment={"kind": "feed", "items_per_page": 4, "max_pages": 3,
                               "rounds": 3})
    res = run(prepare(load_scenario(p)), tmp_path / "run")
    assert res.status == "completed"
    kinds = [k for k, _ in Learner.calls]
    assert kinds == ["fit", "update", "update"]
    sizes = [n for _, n in Learner.calls]
    assert sizes[0] < sizes[1] <= sizes[2]  # the watches of each round were added


def test_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "site" / "my_recs-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-recs\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[recarena.recommenders]\nmostpop = {HERE}:MostPopular\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    p = _scenario(tmp_path, [{"name": "pop", "model": "pop"},
                             {"name": "ep", "model": "mostpop"}])
    res = run(prepare(load_scenario(p)), tmp_path / "run")
    events = list(read_trace(tmp_path / "run"))
    assert _pages(events, "ep") and [x[3] for x in _pages(events, "ep")] == \
        [x[3] for x in _pages(events, "pop")]
    assert res.metrics["arms"]["ep"]["overall"]["watch_rate"] is not None


def test_conversation_with_a_plugin(tmp_path: Path) -> None:
    p = _scenario(tmp_path, [{"name": "mine", "model": f"{HERE}:MostPopular"}],
                  environment={"kind": "conversation", "rounds": 1})
    res = run(prepare(load_scenario(p)), tmp_path / "run")
    assert res.status == "completed"
    assert res.metrics["arms"]["mine"]["overall"]["conversations"] > 0


def test_plugin_score_is_its_ranking() -> None:
    rec = make_recommender(f"{HERE}:MostPopular", seed=0)
    rec.fit(sp.csr_matrix(np.array([[1, 0, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0]],
                                   dtype=np.float32)))
    s = rec.score(np.array([0]))
    assert np.argsort(-s[0], kind="stable").tolist() == [0, 1, 2, 3]
    assert rec.recommend(np.array([0]), 2, sp.csr_matrix(np.array([[1, 0, 0, 0]]))
                         ).tolist() == [[1, 2]]


def test_compare_offline_and_validity_accept_plugins(tmp_path: Path) -> None:
    from simulations.eval.compare import select_arms
    from simulations.eval.offline_eval import evaluate_offline
    from simulations.eval.validity import run_validity, validity_scenario
    from tools.synthetic import make_world

    p = _scenario(tmp_path, [{"name": "ease", "model": "ease"}])
    loaded = select_arms(load_scenario(p), ["pop", f"{HERE}:MostPopular"])
    assert [r.model for r in loaded.scenario.recommenders] == ["pop", f"{HERE}:MostPopular"]
    from simulations.eval.compare import CompareError
    with pytest.raises(CompareError, match="no_such"):
        select_arms(load_scenario(p), ["no_such.mod:X"])
    ds = make_world(60, 120, 6, 8, 15, seed=1)
    res = evaluate_offline(ds, ["pop", f"{HERE}:MostPopular"], k=5)
    a, b = res["models"]["pop"], res["models"][f"{HERE}:MostPopular"]
    assert a["hr@5"] == b["hr@5"] and a["ndcg@5"] == b["ndcg@5"]
    role = load_scenario(p).role
    v = validity_scenario(tmp_path, role, seed=0, models=["pop", f"{HERE}:MostPopular", "ease"])
    assert [r.name for r in v.scenario.recommenders] == ["pop", f"{HERE}.MostPopular", "ease"]
    with pytest.raises(ValueError, match="no_such"):
        run_validity(tmp_path, seed=0, models=["pop", "ease", "no_such.mod:X"])


def test_validity_runs_a_plugin_arm(ml100k: Path, tmp_path: Path) -> None:
    from simulations.eval.validity import run_validity

    res = run_validity(ml100k, seed=3, users=15,
                       models=["random", "pop", f"{HERE}:MostPopular"])
    arms = res["arms"]
    # The plug-in is popularity: the same simulated and held-out figures.
    assert arms[f"{HERE}:MostPopular"]["hr@10"] == arms["pop"]["hr@10"]
    assert arms[f"{HERE}:MostPopular"]["watch_rate"] == arms["pop"]["watch_rate"]


def test_dataclass_replace_keeps_plugins(tmp_path: Path) -> None:
    p = _scenario(tmp_path, [{"name": "mine", "model": f"{HERE}:MostPopular"}])
    loaded = load_scenario(p)
    again = dataclasses.replace(loaded)
    assert again.scenario.recommenders[0].model == f"{HERE}:MostPopular"


def test_the_builtin_list_in_messages_is_the_registry() -> None:
    from tools.recommenders import MODELS
    from tools.recommenders.plugin import BUILTIN

    assert ", ".join(MODELS) == BUILTIN
