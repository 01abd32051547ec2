"""Recommender-ranking validity on a small sample of test users."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulations.cli.main import main
from simulations.eval.validity import heldout_accuracy, run_validity, validity_scenario
from simulations.run.sampling import user_split
from tests.shipped import shipped

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def result(ml100k: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("validity") / "run"
    return {"res": run_validity(ml100k, seed=3, users=40, out=out), "out": out}


def test_validity_runs_six_arms_on_test_users(result: dict) -> None:
    from simulations.record.trace import read_trace

    res = result["res"]
    assert res["users"] == 40 and res["models"] == ["random", "pop", "itemknn", "ease", "als",
                                                     "bpr"]
    events = read_trace(result["out"])
    users = {e["user"] for e in events if e["type"] == "session_end"}
    assert len(users) == 40 and all(user_split(u) == "test" for u in users)
    arms = {e["arm"] for e in events if e["type"] == "session_end"}
    assert arms == set(res["models"])
    for m, a in res["arms"].items():
        assert 0.0 <= a["watch_rate"]["mean"] <= 1.0, m
        assert 1.0 <= a["satisfaction"]["mean"] <= 10.0, m
        assert a["watch_rate"]["n"] == 40
    # A random feed is watched less, and predicts held-out items worse, than any other.
    others = [m for m in res["models"] if m != "random"]
    assert all(res["arms"]["random"]["watch_rate"]["mean"] < res["arms"][m]["watch_rate"]["mean"]
               for m in others)
    assert res["heldout_order"][-1] == "random"
    for s in ("watch_rate", "satisfaction", "exit_page"):
        for h in ("hr@10", "ndcg@10"):
            assert -1.0 <= res["spearman"][s][h] <= 1.0
    assert len(res["neighbours"]) == 5
    first = res["neighbours"][0]
    assert (first["better"], first["worse"]) == tuple(res["heldout_order"][:2])
    assert first["watch_rate"]["lo"] <= first["watch_rate"]["mean"] <= first["watch_rate"]["hi"]


def test_heldout_accuracy_by_hand(ml100k: Path) -> None:
    from scenarios.loader import load_role
    from simulations.run.runner import prepare
    from tools.recommenders import make_recommender

    role = load_role(shipped("roles", "utility_user.yaml"))
    prep = prepare(validity_scenario(ml100k, role, seed=1, models=["pop", "ease", "als"]),
                   data=str(ml100k))
    has_future = set(prep.future.user.tolist())
    users = [u for u in prep.population if u in has_future][:12]
    assert len(users) == 12
    acc = heldout_accuracy(prep, ["pop"], users)
    ds = prep.dataset
    rec = make_recommender("pop")
    hist = prep.history.matrix(ds.n_users, ds.n_items)
    rec.fit(hist)
    for k, u in enumerate(users):
        top = rec.recommend(np.array([u]), 10, hist[[u]])[0].tolist()
        fut = set(prep.future.item[prep.future.user == u].tolist())
        hits = [i in fut for i in top]
        assert acc["pop"]["hr@10"][k] == float(any(hits))
        dcg = sum(1 / np.log2(r + 2) for r, h in enumerate(hits) if h)
        idcg = sum(1 / np.log2(r + 2) for r in range(min(len(fut), 10)))
        assert acc["pop"]["ndcg@10"][k] == pytest.approx(dcg / idcg)


def test_cli_validity(ml100k: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "validity", "--data", str(ml100k), "--users", "15", "--seed", "2",
                 "--models", "random,pop,ease", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["users"] == 15 and set(out["arms"]) == {"random", "pop", "ease"}
    assert set(out["spearman"]) == {"watch_rate", "satisfaction", "exit_page"}
    assert main(["eval", "validity", "--data", str(ml100k), "--models", "pop,ease"]) == 2
    assert main(["eval", "validity", "--data", str(ml100k), "--models", "pop,ease,magic"]) == 2
    err = capsys.readouterr().err
    assert "unknown model" in err and "Traceback" not in err
