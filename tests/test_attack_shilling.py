"""Fake users (shilling): the attack: block's validation, injection into the named arms'
fits only, every strategy doing something, LLM-written profiles, detectors, the defence
and ``recarena eval attack`` (a small synthetic world, a few seconds each)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from agents.llm import FakeChatModel
from agents.llm.fake import Transcript
from scenarios.loader import ScenarioError, load_scenario
from simulations.analysis.stats import auc
from simulations.cli.attack import attack_tables
from simulations.cli.main import main
from simulations.eval.attack_fake_users import exposure
from simulations.record.trace import read_trace
from simulations.run.runner import prepare, run
from tests.shipped import shipped
from tools.shilling import ShillingPlan, make_profiles
from tools.shilling_detect import pca_scores, profile_features, train_logistic

ROLE = shipped("roles", "synthetic_viewer.yaml")


def _yaml(attack: str | None, *, llm: bool = False) -> str:
    text = f"""kind: scenario
name: t_attack
seed: 3
dataset:
  source: synthetic
  history_fraction: 0.8
  synthetic: {{n_users: 120, n_items: 150, n_genres: 6, history_mean: 20}}
population:
  size: 30
  role: {ROLE}
recommenders:
  - name: pop
    model: pop
  - name: ease
    model: ease
    params: {{l2: 50.0}}
    retrain: true
  - name: control
    model: pop
environment:
  kind: feed
  items_per_page: 4
  max_pages: 3
  rounds: 2
"""
    if llm:
        text += "llm: {backend: fake, model: fake}\n"
    if attack is not None:
        text += "attack:\n  fake_users:\n" + "".join(
            f"    {line}\n" for line in attack.strip().splitlines())
    return text


BASE = """arms: [pop, ease]
count: 60
targets: {least_popular: 2, min_ratings: 1}
filler: 10"""


def _scenario(tmp_path: Path, attack: str | None, name: str = "s.yaml", **kw: Any) -> Path:
    p = tmp_path / name
    p.write_text(_yaml(attack, **kw), encoding="utf-8")
    return p


def _strip(events: list[dict[str, Any]], arm: str) -> list[dict[str, Any]]:
    drop = {"ts", "seq", "elapsed_s", "volatile"}
    return [{k: v for k, v in e.items() if k not in drop} for e in events
            if e.get("arm") == arm]


def _strategy(strategy: str) -> str:
    extra = {"bandwagon": "bandwagon: {popular: 5}",
             "segment": "segment: {genre: GENRE, k: 5}"}.get(strategy, "")
    return f"{BASE}\nstrategy: {strategy}\n{extra}"


def _genre(tmp_path: Path) -> str:
    prep = prepare(load_scenario(_scenario(tmp_path, None, "g.yaml")))
    return prep.dataset.catalog.genre_names[0]


# ---------------------------------------------------------------- schema


@pytest.mark.parametrize(("attack", "field", "words"), [
    (f"{BASE}\nstrategy: random\nshare: 0.1", "attack.fake_users", "exactly one of count"),
    ("arms: [pop, nope]\ncount: 5\nstrategy: random\ntargets: {least_popular: 1}",
     "attack.fake_users.arms.1", "unknown recommender 'nope'"),
    (f"{BASE}\nstrategy: bandwagon", "attack.fake_users", "needs a bandwagon"),
    (f"{BASE}\nstrategy: sideways", "attack.fake_users.strategy", "random"),
    ("count: 5\nstrategy: random\ntargets: {least_popular: 1}", "attack.fake_users.arms",
     "required"),
    (f"{BASE}\nstrategy: llm", "attack.fake_users.strategy", "no llm: block"),
])
def test_bad_attack_blocks_are_one_line_errors_with_line_and_field(
        tmp_path: Path, attack: str, field: str, words: str) -> None:
    p = _scenario(tmp_path, attack)
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    msg = str(e.value)
    assert re.search(rf"s\.yaml:(2[5-9]|3\d): {re.escape(field)}", msg), msg
    assert words in msg


def test_unknown_target_ids_fail_at_prepare_naming_the_line(tmp_path: Path,
                                                            capsys: Any) -> None:
    p = _scenario(tmp_path, "arms: all\ncount: 5\nstrategy: random\n"
                  "targets: {items: ['nope-1']}")
    with pytest.raises(ScenarioError, match=r"s\.yaml:\d+: attack\.fake_users\.targets\."
                       r"items: unknown item id\(s\) 'nope-1'"):
        prepare(load_scenario(p))
    assert main(["run", str(p), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "nope-1" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- injection


@pytest.mark.parametrize("strategy", ["random", "average", "bandwagon", "segment"])
def test_every_strategy_reaches_the_named_arms_and_pushes_its_targets(
        tmp_path: Path, strategy: str) -> None:
    attack = _strategy(strategy).replace("GENRE", _genre(tmp_path))
    clean = load_scenario(_scenario(tmp_path, None, "clean.yaml"))
    loaded = load_scenario(_scenario(tmp_path, attack))
    prep = prepare(loaded)
    fake = prep.attack.fake_users  # type: ignore[union-attr]
    assert fake is not None and fake.profiles is not None
    # The fake profiles are in what the attacked arms train on, not in the control's.
    train, rows = fake.training("pop", prep.history)
    assert rows == prep.dataset.n_users + 60
    assert np.isin(np.arange(prep.dataset.n_users, rows), train.user).all()
    assert fake.training("control", prep.history) == (prep.history, prep.dataset.n_users)
    a = run(prep, tmp_path / "attacked").run_dir
    c = run(prepare(clean), tmp_path / "clean").run_dir
    ids = {prep.dataset.catalog.item_ids[t] for t in fake.plan.targets}
    ex_a, ex_c = exposure(a, ids), exposure(c, ids)
    # 60 fake fans lift two items to the top of pop: on most first pages (0 when clean).
    assert ex_a["pop"] > ex_c["pop"] + 0.1
    assert ex_a["control"] == ex_c["control"]
    # Real users and the unattacked arm are untouched: the same events, event by event.
    assert _strip(read_trace(a), "control") == _strip(read_trace(c), "control")
    kinds = [e for e in read_trace(a) if e["type"] == "attack"]
    assert sorted(e["arm"] for e in kinds) == ["ease", "pop"]
    assert kinds[0]["strategy"] == strategy and kinds[0]["fake_users"] == 60


def test_fake_users_never_leak_into_a_later_run(tmp_path: Path) -> None:
    clean = load_scenario(_scenario(tmp_path, None, "clean.yaml"))
    attacked = load_scenario(_scenario(tmp_path, _strategy("average")))
    first = run(prepare(clean), tmp_path / "c1").run_dir
    run(prepare(attacked), tmp_path / "a")
    again = run(prepare(clean), tmp_path / "c2").run_dir
    for arm in ("pop", "ease", "control"):
        assert _strip(read_trace(first), arm) == _strip(read_trace(again), arm)


def test_the_defence_filters_flagged_profiles_before_every_fit(tmp_path: Path) -> None:
    # 31-item random profiles among real users of 16 ratings: a case the supervised
    # detector separates (see the detector test below).
    attack = (_strategy("random").replace("filler: 10", "filler: 30")
              + "\ndefence: {detector: logistic, flag_share: 0.3}")
    prep = prepare(load_scenario(_scenario(tmp_path, attack)))
    res = run(prep, tmp_path / "r")
    defs = [e for e in read_trace(res.run_dir) if e["type"] == "defence"]
    # pop and ease at the start, ease again when it retrains after round 1.
    assert [e["arm"] for e in defs] == ["pop", "ease", "ease"]
    assert all(e["fake_flagged"] > 30 for e in defs)  # most of the 60 are caught
    fake = prep.attack.fake_users  # type: ignore[union-attr]
    assert fake is not None
    train, _ = fake.training("pop", prep.history)
    kept = np.unique(train.user[train.user >= prep.dataset.n_users]).size
    assert kept == 60 - defs[0]["fake_flagged"]


# ---------------------------------------------------------------- LLM-written profiles


def _writer(transcript: Transcript) -> str:
    text = transcript[-1][1]
    targets = re.findall(r"^Targets: (.*)$", text, re.MULTILINE)[0]
    t_ids = [x.split(":")[0].strip() for x in targets.split(", ")]
    movies = re.findall(r"^([^:\s]+): ", text.split("Movies:")[1], re.MULTILINE)
    ratings = [{"item_id": i, "rating": 3} for i in movies[:8]]
    ratings += [{"item_id": t, "rating": 5} for t in t_ids]
    return json.dumps({"ratings": ratings})


def test_llm_written_profiles_are_validated_and_injected(tmp_path: Path) -> None:
    attack = f"{BASE}\nstrategy: llm"
    prep = prepare(load_scenario(_scenario(tmp_path, attack, llm=True)))
    model = FakeChatModel(responses=_writer)
    res = run(prep, tmp_path / "r", chat_model=model)
    ev = next(e for e in read_trace(res.run_dir) if e["type"] == "attack")
    assert ev["written"]["written"] == 60 and ev["written"]["failures"] == 0
    assert model.calls == 60
    clean = run(prepare(load_scenario(_scenario(tmp_path, None, "c.yaml"))),
                tmp_path / "c").run_dir
    ids = set(ev["targets"])
    assert exposure(res.run_dir, ids)["pop"] > exposure(clean, ids)["pop"] + 0.1


def test_llm_profiles_naming_unknown_items_are_failures_not_injections(
        tmp_path: Path) -> None:
    attack = "arms: [pop]\ncount: 3\nstrategy: llm\ntargets: {least_popular: 1}"
    prep = prepare(load_scenario(_scenario(tmp_path, attack, llm=True)))
    bad = json.dumps({"ratings": [{"item_id": "no-such-movie", "rating": 5}]})
    res = run(prep, tmp_path / "r", chat_model=FakeChatModel(responses=[bad], cycle=True))
    ev = next(e for e in read_trace(res.run_dir) if e["type"] == "attack")
    assert ev["written"] == {"asked": 3, "written": 0, "failures": 3,
                             "errors": ev["written"]["errors"]}
    assert "not in the list" in ev["written"]["errors"][0]
    assert ev["fake_users"] == 0


# ---------------------------------------------------------------- detectors


def test_detectors_separate_injected_profiles_on_a_synthetic_world(tmp_path: Path) -> None:
    prep = prepare(load_scenario(_scenario(tmp_path, None)))
    ds, hist = prep.dataset, prep.history
    pop = np.bincount(hist.item, minlength=ds.n_items)
    targets = (int(np.flatnonzero(pop > 0)[0]),)
    real = np.unique(hist.user)
    half_a, half_b = real[::2], real[1::2]
    det = train_logistic(hist, ds.n_users, ds.n_items, ds.catalog, half_a, avoid=targets,
                         count=10, seed=99)

    def scores(filler: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Random profiles: ratings around the global mean, no taste. The evaluated ones
        # have their own seed and target; the detector never saw them or half_b.
        fp = make_profiles(ShillingPlan("random", 10, targets, filler=filler), hist,
                           ds.n_users, ds.n_items, run_seed=1)
        m = hist.concat(fp.interactions).matrix(ds.n_users + 10, ds.n_items, binary=False)
        return fp.users, det.scores(profile_features(m)), pca_scores(m)

    # Real users here rate 16 items on average: 31-item fake profiles stand out to the
    # supervised detector; PCA variable selection needs short profiles in so small a world
    # (long ones load on the first components). Both must separate these cases.
    fakes, lr, _ = scores(30)
    assert auc(lr[fakes], lr[half_b]) >= 0.95
    fakes, _, pca = scores(10)
    assert auc(pca[fakes], pca[half_b]) >= 0.9
    # Scores that ignore the profiles cannot: the same score for everyone gives 0.5.
    assert auc(np.zeros(10), np.zeros(half_b.size)) == 0.5


# ---------------------------------------------------------------- recarena eval attack


def test_eval_attack_reports_targets_detectors_and_collateral(tmp_path: Path,
                                                              capsys: Any) -> None:
    p = _scenario(tmp_path, _strategy("average"))
    assert main(["eval", "attack", str(p), "--seeds", "2", "--out", str(tmp_path / "o"),
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    fu = res["attacks"]["fake_users"]
    assert res["seeds"] == [3, 4] and res["kinds"] == ["fake_users"]
    assert fu["arms"]["pop"]["attacked"] and not fu["arms"]["control"]["attacked"]
    assert fu["arms"]["pop"]["exposure"]["diff"]["lo"] > 0
    assert fu["arms"]["pop"]["hr10"]["diff"]["mean"] > 0.5
    assert fu["arms"]["control"]["exposure"]["diff"]["mean"] == 0
    assert fu["detectors"]["logistic"]["n"] == 2
    col = res["collateral"]["arms"]
    assert col["control"]["watch_rate"]["diff"]["mean"] == 0
    assert set(col) == {"pop", "ease", "control"}
    assert (tmp_path / "o" / "attack.json").exists()
    con = Console(record=True, width=200)
    for t in attack_tables(res):
        con.print(t)
    text = con.export_text()
    assert "fake users (average, promote, 60 profiles)" in text
    assert "PCA variable selection" in text and "collateral: attacked - clean" in text
    assert sorted(x.name for x in (tmp_path / "o").iterdir()) == [
        "attack-seed3", "attack-seed4", "attack.json", "clean-seed3", "clean-seed4"]


def test_eval_attack_without_an_attack_block_is_a_one_line_error(tmp_path: Path,
                                                                capsys: Any) -> None:
    p = _scenario(tmp_path, None)
    assert main(["eval", "attack", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no attack: block" in err and len(err.splitlines()) == 1


# ---------------------------------------------------------------- shipped scenario


def test_shipped_attack_scenario_validates_and_runs(tmp_path: Path, ml100k: Path) -> None:
    assert main(["validate", str(shipped("attack_shilling.yaml"))]) == 0
    loaded = load_scenario(shipped("attack_shilling.yaml"),
                           overrides={"environment.rounds": 1,
                                      "environment.max_pages": 2})
    prep = prepare(loaded, users=5, data=str(ml100k))
    res = run(prep, tmp_path / "r")
    assert res.status == "completed"
    evs = [e for e in read_trace(res.run_dir) if e["type"] == "attack"]
    assert sorted(e["arm"] for e in evs) == ["als", "ease", "itemknn", "pop"]
    assert evs[0]["fake_users"] == round(0.03 * len(np.unique(prep.history.user)))
