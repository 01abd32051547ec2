"""Validity statistics over learned arms, restricted to significant held-out pairs, and
the families x seeds x null-simulator grid through the real pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulations.eval.robust import ROBUST
from simulations.eval.validity_stats import (
    learned_arms,
    rank_stats,
    significant_pairs,
    summarise_seeds,
)


def _held(n: int = 600) -> dict[str, np.ndarray]:
    """a > b > c clearly apart (per-user hits), c and d the same in distribution."""
    rng = np.random.default_rng(0)
    return {"a": (rng.random(n) < 0.6).astype(float), "b": (rng.random(n) < 0.4).astype(float),
            "c": (rng.random(n) < 0.2).astype(float), "d": (rng.random(n) < 0.2).astype(float)}


def _sim(means: dict[str, float], n: int = 600) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {k: np.clip(m + 0.05 * rng.standard_normal(n), 0, 1) for k, m in means.items()}


def test_only_significant_pairs_count() -> None:
    held = _held()
    pairs = {(p["better"], p["worse"]) if p["better"] < p["worse"] else
             (p["worse"], p["better"]): p for p in significant_pairs(held, list(held))}
    assert all(pairs[k]["significant"] for k in [("a", "b"), ("a", "c"), ("b", "c"),
                                                  ("a", "d"), ("b", "d")])
    assert not pairs[("c", "d")]["significant"]
    arms = ["a", "b", "c", "d"]
    # The simulator orders every separated pair right and c, d whichever way: full agreement,
    # although Kendall over all four arms is below 1 when it puts d above c.
    top, low = ("c", "d") if held["c"].mean() > held["d"].mean() else ("d", "c")
    s = rank_stats(_sim({"a": 0.8, "b": 0.6, top: 0.3, low: 0.4}), held, arms, resamples=200)
    assert s["agreement"]["pairs"] == 5 and s["agreement"]["value"] == 1.0
    assert s["significant_ordered"]
    assert s["kendall"]["value"] is not None and s["kendall"]["value"] < 1.0
    assert s["kendall"]["lo"] <= s["kendall"]["value"] <= s["kendall"]["hi"]
    # Swapping a separated pair (a, b) costs agreement: 4 of 5.
    s2 = rank_stats(_sim({"a": 0.6, "b": 0.8, "c": 0.3, "d": 0.2}), held, arms, resamples=200)
    assert s2["agreement"]["value"] == pytest.approx(0.8)
    assert not s2["significant_ordered"]
    assert s2["sim_order"][0] == "b" and s2["heldout_order"][0] == "a"
    summ = summarise_seeds([s, s2])
    assert summ["agreement"]["values"] == [1.0, 0.8] and summ["significant_ordered_seeds"] == 1
    # A seed where held-out data separates no pair orders nothing: not counted as ordered.
    s3 = rank_stats(_sim({"a": 0.8, "b": 0.6, "c": 0.3, "d": 0.4}),
                    {k: np.full_like(v, 0.5) for k, v in held.items()}, arms, resamples=200)
    assert s3["agreement"]["pairs"] == 0
    summ = summarise_seeds([s, s2, s3])
    assert (summ["significant_ordered_seeds"], summ["significant_pair_seeds"]) == (1, 2)
    assert learned_arms(["random", "pop", "ease", "als"]) == ["ease", "als"]


def test_grid_runs_families_and_nulls_through_the_pipeline(ml100k: Path) -> None:
    from simulations.eval.validity_grid import run_grid

    models = ["random", "pop", "itemknn", "ease", "als"]
    # A fixed calibration, so the test does not follow the shipped file: low thresholds let
    # the null users watch something.
    table = {"none": {"watch_threshold": 0.0}, "random": {"watch_threshold": 0.0},
             "ease": {"watch_threshold": 0.8}, "puresvd": {"watch_threshold": 0.8}}
    res = run_grid(ml100k, seeds=[4], families=["ease", "puresvd"], users=25, models=models,
                   max_pages=2, resamples=100, calibration=table, cutoffs=3)
    seed = res["per_seed"][0]
    assert set(seed["families"]) == {"ease", "puresvd", "random", "none"}
    assert seed["users"] == 25 and res["users_of"] == "test"
    # Rolling origins pooled: three global cutoffs, every browsing user at exactly one.
    assert res["cutoffs"] == [0.3, 0.6, 0.9]
    assert len(seed["users_per_cutoff"]) == 3 and sum(seed["users_per_cutoff"]) == 25
    assert all(n > 0 for n in seed["users_per_cutoff"])
    for fam, r in seed["families"].items():
        assert set(r["watch_rate"]) == set(models), fam
        assert r["stats"]["arms"] == ["itemknn", "ease", "als"]
        assert r["users"] == 25
    # Popularity-only users watch popular feeds more than random ones.
    none = seed["families"]["none"]["watch_rate"]
    assert none["pop"] > none["random"] > 0.0
    assert seed["heldout_users"] >= seed["users"]
    rob = seed["robustness"]
    assert len(rob) == 3 and all(set(r["unseparated_by"] + r["flipped_by"]) <= {"ease", "puresvd"}
                                 for r in rob)
    for r in rob:
        if not r["heldout_significant"]:
            assert r["confident_when_unseparated"] == (r["verdict"] == ROBUST)
    summ = res["summary"]
    assert set(summ["families"]) == {"ease", "puresvd", "random", "none"}
    assert sum(summ["heldout_wins"].values()) == 1


def test_cli_taste_table_and_bad_family(ml100k: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    from simulations.cli.main import main

    assert main(["eval", "validity", "--data", str(ml100k), "--taste", "ease,sasrec"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown family sasrec" in err and "\n" not in err
    assert main(["eval", "validity", "--data", str(ml100k), "--taste", "ease,puresvd",
                 "--seeds", "0-1", "--users", "8", "--pages", "1", "--no-nulls",
                 "--cutoffs", "1",
                 "--models", "pop,itemknn,ease,als"]) == 0
    out = capsys.readouterr().out
    assert "validity per taste family over 2 seeds" in out and "cutoff at 0.6" in out
    # More users than the pooled split holds: one line, before any simulation.
    assert main(["eval", "validity", "--data", str(ml100k), "--taste", "ease,puresvd",
                 "--seeds", "0", "--users", "5000", "--cutoffs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--users 5000: only" in err and "\n" not in err
    assert "ease" in out and "puresvd" in out and "robustness of learned pairs" in out
