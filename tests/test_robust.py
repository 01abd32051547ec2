"""Robust verdicts across taste families: the classification rule on constructed cases,
per-family pairwise rows from arm tables, and ``compare --taste`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from simulations.analysis.user_stats import arm_tables
from simulations.eval.robust import DEPENDS, NOT_SEPARATED, ROBUST, classify, pairwise, robustness
from tests.test_compare import _feed_events


def test_classify_constructed_cases() -> None:
    # Same sign, significant everywhere: robust, with that sign.
    c = classify({"ease": (0.1, True), "als": (0.05, True), "bpr": (0.2, True)})
    assert c == {"verdict": ROBUST, "sign": 1, "flipped_by": [], "unseparated_by": []}
    c = classify({"ease": (-0.1, True), "als": (-0.05, True)})
    assert (c["verdict"], c["sign"]) == (ROBUST, -1)
    # Significant nowhere (whatever the signs): not separated.
    c = classify({"ease": (0.1, False), "als": (-0.2, False), "bpr": (None, False)})
    assert (c["verdict"], c["sign"]) == (NOT_SEPARATED, 0)
    assert c["unseparated_by"] == ["als", "bpr", "ease"]
    # One family reverses a significant majority: depends, naming it.
    c = classify({"ease": (0.1, True), "als": (-0.1, True), "bpr": (0.3, True)})
    assert c == {"verdict": DEPENDS, "sign": 1, "flipped_by": ["als"], "unseparated_by": []}
    # Separated by some families only: depends, naming those that do not separate it.
    c = classify({"ease": (0.1, True), "als": (0.02, False), "bpr": (0.3, True)})
    assert c == {"verdict": DEPENDS, "sign": 1, "flipped_by": [], "unseparated_by": ["als"]}
    # Majority negative: the positive family flips it.
    c = classify({"a": (-0.1, True), "b": (-0.2, True), "c": (0.3, True), "d": (0.0, False)})
    assert c == {"verdict": DEPENDS, "sign": -1, "flipped_by": ["c"], "unseparated_by": ["d"]}
    with pytest.raises(ValueError):
        classify({})


def _tables(watches: dict[str, list[int]]) -> dict:
    return arm_tables(_feed_events(watches)).arms


def test_pairwise_and_robustness_from_arm_tables() -> None:
    n = 24
    # Under family "x", arm b beats a for every user; under "y" a beats b for every user;
    # under "z" they are identical. c is far above both everywhere.
    x = _tables({"a": [2] * n, "b": [6] * n, "c": [9] * n})
    y = _tables({"a": [6] * n, "b": [2] * n, "c": [9] * n})
    z = _tables({"a": [4] * n, "b": [4] * n, "c": [9] * n})
    rows = {f: pairwise(t, ["watch_rate"], resamples=300, permutations=999)
            for f, t in (("x", x), ("y", y), ("z", z))}
    ab = next(r for r in rows["x"] if (r["a"], r["b"]) == ("a", "b"))
    assert ab["diff"] == pytest.approx(0.4) and ab["significant"]
    assert ab["ci_low"] > 0
    verdicts = {(r["a"], r["b"]): r for r in robustness(rows)}
    assert verdicts[("a", "b")]["verdict"] == DEPENDS
    assert verdicts[("a", "b")]["unseparated_by"] == ["z"]
    assert verdicts[("a", "b")]["flipped_by"] in (["x"], ["y"])
    assert verdicts[("a", "c")]["verdict"] == ROBUST and verdicts[("a", "c")]["sign"] == 1
    assert verdicts[("b", "c")]["verdict"] == ROBUST
    only_z = robustness({"z": rows["z"], "z2": rows["z"]})
    assert {(r["a"], r["b"]): r["verdict"] for r in only_z}[("a", "b")] == NOT_SEPARATED


def test_compare_taste_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulations.run.taste_roles as taste_roles
    from simulations.cli.main import main
    from tests.feed_world import write_feed_scenario

    # The shipped calibration is fitted on MovieLens; this synthetic world keeps its role's
    # own parameters under every family.
    monkeypatch.setattr(taste_roles, "CALIBRATION", tmp_path / "none.yaml")

    p = write_feed_scenario(tmp_path, "ab", seed=2, users=30)
    out = tmp_path / "cmp"
    code = main(["compare", str(p), "--taste", "ease,puresvd", "--recommenders",
                 "pop,ease,random", "--out", str(out), "--resamples", "200",
                 "--permutations", "499", "--json"])
    assert code == 0
    res = json.loads((out / "robustness.json").read_text())
    assert res["families"] == ["ease", "puresvd"]
    pairs = {(r["a"], r["b"], r["metric"]) for r in res["robustness"]}
    assert ("pop", "ease", "watch_rate") in pairs and ("ease", "random", "watch_rate") in pairs
    for r in res["robustness"]:
        assert set(r["families"]) == {"ease", "puresvd"}
        assert r["verdict"] in (ROBUST, DEPENDS, NOT_SEPARATED)
    # A random feed loses to popularity under both user models.
    pr = next(r for r in res["robustness"] if (r["a"], r["b"], r["metric"])
              == ("pop", "random", "watch_rate"))
    assert pr["verdict"] == ROBUST and pr["sign"] == -1
    # Each family's run folder carries the verdicts for the report.
    runs = sorted(out.glob("*/ab-seed*/robustness.json"))
    assert len(runs) == 2
    from simulations.report.html import build_report

    pytest.importorskip("plotly")
    html = build_report([runs[0].parent])
    assert "depends on the user model" in html or "robust" in html
    assert "Robustness across user models" in html
    np.testing.assert_equal(len(res["robustness"]), 3 * len(res["metrics"]))


def test_compare_taste_bad_family_is_one_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from simulations.cli.main import main
    from tests.feed_world import write_feed_scenario

    p = write_feed_scenario(tmp_path, "ab", seed=2, users=5)
    assert main(["compare", str(p), "--taste", "ease,sasrec"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown family sasrec" in err and "\n" not in err


def test_run_robustness_flag_writes_verdicts_beside_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import simulations.run.taste_roles as taste_roles
    from simulations.cli.main import main
    from tests.feed_world import feed_scenario, write_feed_scenario

    monkeypatch.setattr(taste_roles, "CALIBRATION", tmp_path / "none.yaml")
    p = write_feed_scenario(tmp_path, "ab", seed=2, users=30)
    doc = feed_scenario("ab", seed=2, users=30)
    doc["recommenders"].append({"name": "random", "model": "random"})
    p.write_text(yaml.safe_dump(doc))
    out = tmp_path / "run"
    assert main(["run", str(p), "--out", str(out), "--robustness", "ease,puresvd",
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "does the difference hold across user models?" in printed
    res = json.loads((out / "robustness.json").read_text())
    assert res["families"] == ["ease", "puresvd"]
    arms = json.loads((out / "summary.json").read_text())
    assert len(res["robustness"]) == len(res["metrics"]) * len(res["arms"]) * (
        len(res["arms"]) - 1) // 2
    pr = next(r for r in res["robustness"] if {r["a"], r["b"]} == {"pop", "random"}
              and r["metric"] == "watch_rate")
    assert pr["verdict"] == ROBUST
    # The family runs live inside the run folder; the run itself is untouched by them.
    assert sorted(x.name for x in (out / "robustness").iterdir() if x.is_dir()) == [
        "ease", "puresvd"]
    assert arms == json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("flag, message", [
    ("ease", "at least two families"),
    ("ease,sasrec", "unknown family sasrec"),
])
def test_run_robustness_bad_flag_fails_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, message: str) -> None:
    from simulations.cli.main import main
    from tests.feed_world import write_feed_scenario

    p = write_feed_scenario(tmp_path, "ab", seed=2, users=5)
    out = tmp_path / "run"
    assert main(["run", str(p), "--out", str(out), "--robustness", flag]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "--robustness" in err
    assert not out.exists()
