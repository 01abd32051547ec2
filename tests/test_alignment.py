"""Taste alignment and rating fidelity: user split, negative samplers, baselines, leakage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.brains.base import ItemDecision, PageDecision, PageObservation
from agents.brains.utility import UtilityBrain
from agents.profile import UserProfile
from scenarios.loader import load_role
from simulations.alignment import (
    AlignmentSetup,
    evaluate_ratings,
    evaluate_taste,
    make_tasks,
    prepare_alignment,
)
from simulations.baselines import fit_bias_model, fit_threshold, taste_scorers, user_means
from simulations.cli import main
from simulations.sampling import (
    TUNING_SHARE,
    disjoint_samples,
    is_tuning_user,
    sample_negatives,
    split_users,
)
from simulations.stats import auc, interval
from tools.dataset import Catalog, Dataset, Interactions, load_dataset

REPO = Path(__file__).resolve().parents[1]


class AlwaysYes:
    """Watches everything and rates everything 3: the protocol's arithmetic is known."""

    name = "always-yes"

    def decide_page(self, obs: PageObservation, rng: np.random.Generator) -> PageDecision:
        return PageDecision(tuple(ItemDecision(i, True, 3, "") for i in obs.items), False, "")

    def rate_items(self, profile: UserProfile, items: tuple[int, ...],
                   rng: np.random.Generator) -> list[int]:
        return [3] * len(items)


@pytest.fixture(scope="module")
def dataset(ml100k: Path) -> Dataset:
    return load_dataset(ml100k)


@pytest.fixture(scope="module")
def setup(dataset: Dataset) -> AlignmentSetup:
    return prepare_alignment(dataset, seed=5)


# ----------------------------------------------------------------------------- split


def test_split_is_disjoint_seeded_and_by_user_id(dataset: Dataset) -> None:
    ids = dataset.user_ids
    tuning, test = split_users(ids)
    assert set(tuning).isdisjoint(test)
    assert sorted(tuning + test) == list(range(len(ids)))
    assert abs(len(tuning) / len(ids) - TUNING_SHARE) < 0.05
    # By id: the same ids in another order, or among other users, keep their side.
    shuffled = list(reversed(ids))
    t2, _ = split_users(shuffled)
    assert {shuffled[k] for k in t2} == {ids[k] for k in tuning}
    assert all(is_tuning_user(ids[k]) for k in tuning)
    assert not any(is_tuning_user(ids[k]) for k in test)
    # Another split seed is another split.
    t3, _ = split_users(ids, seed=1)
    assert set(t3) != set(tuning)


def test_evaluation_uses_test_users_only_in_disjoint_samples(setup: AlignmentSetup) -> None:
    assert set(setup.tuning).isdisjoint(setup.test)
    ids = setup.dataset.user_ids
    assert not any(is_tuning_user(ids[u]) for u in setup.test)
    samples = disjoint_samples(setup.test, 5, 40, seed=3)
    flat = [u for s in samples for u in s]
    assert len(flat) == len(set(flat)) == 200
    assert set(flat) <= set(setup.test)
    assert samples == disjoint_samples(setup.test, 5, 40, seed=3)
    assert samples != disjoint_samples(setup.test, 5, 40, seed=4)
    with pytest.raises(ValueError):
        disjoint_samples([1, 2], 3, 1, seed=0)


# ----------------------------------------------------------------------------- samplers


def test_popularity_matched_negatives_match_popularity(setup: AlignmentSetup) -> None:
    users = disjoint_samples(setup.test, 1, 80, seed=11)[0]
    pop = setup.world.popularity
    logp = np.log1p(pop)
    res = {}
    for sampler in ("uniform", "popularity-matched"):
        tasks = make_tasks(setup, users, sampler, 3, 4, seed=11)
        pos = np.concatenate([t.positives for t in tasks])
        neg = np.concatenate([t.negatives[:, 0] for t in tasks])
        aucs = [auc(pop[t.positives], pop[t.negatives[:, 0]]) for t in tasks]
        res[sampler] = (float(np.median(logp[pos]) - np.median(logp[neg])),
                        float(np.mean([a for a in aucs if a is not None])))
        for t in tasks:
            u = t.user
            rated = set(setup.history.item[setup.history.user == u].tolist()) | set(
                setup.future.item[setup.future.user == u].tolist())
            assert not rated.intersection(t.negatives.ravel().tolist())
            assert len(set(t.negatives.ravel().tolist())) == t.negatives.size
            liked = setup.future.item[(setup.future.user == u) & (setup.future.rating >= 4)]
            assert set(t.positives.tolist()) <= set(liked.tolist())
    gap, pop_auc = res["popularity-matched"]
    assert abs(gap) < 0.15  # medians within ~15% in popularity
    assert abs(pop_auc - 0.5) < 0.08  # popularity alone is near chance
    gap_u, pop_auc_u = res["uniform"]
    assert gap_u > 1.0 and pop_auc_u > 0.75  # uniform negatives are far less popular


def test_samplers_are_nested_and_reject_bad_input() -> None:
    pop = np.arange(100, dtype=np.int64)
    pos = np.array([10, 90])
    cand = np.setdiff1d(np.arange(100), pos)
    a = sample_negatives("popularity-matched", np.random.default_rng(0), pos, cand, pop, 3)
    assert a.shape == (2, 3)
    # Matched within the 20 nearest by popularity (here: by index).
    assert np.abs(a[0] - 10).max() <= 11 and np.abs(a[1] - 90).max() <= 11
    u = sample_negatives("uniform", np.random.default_rng(0), pos, cand, pop, 3)
    assert u.shape == (2, 3) and not set(u.ravel()) & set(pos.tolist())
    with pytest.raises(ValueError, match="cannot give"):
        sample_negatives("uniform", np.random.default_rng(0), pos, cand[:3], pop, 2)
    with pytest.raises(ValueError, match="unknown negative sampler"):
        sample_negatives("nearest", np.random.default_rng(0), pos, cand, pop,  # type: ignore[arg-type]
                         1)


# ----------------------------------------------------------------------------- baselines


def _tiny() -> Dataset:
    cat = Catalog(("a", "b", "c", "d"), ("A", "B", "C", "D"),
                  (("Drama",), ("Comedy",), ("Drama",), ("War",)))
    rows = [(0, 0, 5), (0, 1, 3), (1, 0, 4), (1, 2, 2), (2, 0, 3), (2, 1, 1), (2, 3, 5)]
    inter = Interactions.from_lists([r[0] for r in rows], [r[1] for r in rows],
                                    [r[2] for r in rows], list(range(len(rows))))
    return Dataset("tiny", cat, ("u0", "u1", "u2"), inter)


def test_rating_baselines_against_hand_computed_values() -> None:
    ds = _tiny()
    inter = ds.interactions
    mu = 23 / 7
    assert user_means(inter, 4).tolist() == pytest.approx([4.0, 3.0, 3.0, mu])
    m = fit_bias_model(inter, 3, 4, reg_user=1.0, reg_item=2.0)
    assert m.mu == pytest.approx(mu)
    # b_i = sum(r - mu) / (2 + n_i)
    b_a = (12 - 3 * mu) / 5
    b_b = (4 - 2 * mu) / 4
    b_c = (2 - mu) / 3
    b_d = (5 - mu) / 3
    assert m.item.tolist() == pytest.approx([b_a, b_b, b_c, b_d])
    # b_u = sum(r - mu - b_i) / (1 + n_u)
    b_u0 = ((5 - mu - b_a) + (3 - mu - b_b)) / 3
    assert m.user[0] == pytest.approx(b_u0)
    assert m.predict(np.array([0]), np.array([2]))[0] == pytest.approx(mu + b_u0 + b_c)


def test_taste_baselines_and_thresholds_on_a_tiny_dataset() -> None:
    from agents.brains.utility import World

    ds = _tiny()
    inter = ds.interactions
    d = ds.with_interactions(inter)
    world = World(ds.catalog, np.zeros((4, 2), np.float32), d.item_mean_rating,
                  d.item_popularity, float(inter.rating.mean()))
    s = taste_scorers(world, inter, 3, seed=0, ease_l2=1.0)
    items = np.array([0, 1, 2, 3])
    assert s["popularity"](0, items).tolist() == [3, 2, 1, 1]
    # Item means shrunk towards the global mean with 5 pseudo-ratings.
    mu = 23 / 7
    assert s["item_mean"](0, items).tolist() == pytest.approx(
        [(12 + 5 * mu) / 8, (4 + 5 * mu) / 7, (2 + 5 * mu) / 6, (5 + 5 * mu) / 6], abs=1e-5)
    # EASE percentile among the user's unseen items: user 1 (saw a, c) ranks b and d;
    # b co-occurs with a (users 0 and 2), d only with user 2's a and b.
    e = s["ease"](1, items)
    assert e[1] == 1.0 and e[3] == 0.5
    r1, r2 = s["random"](0, items), s["random"](0, items)
    assert r1.tolist() == r2.tolist() and ((r1 >= 0) & (r1 < 1)).all()
    # Maximum accuracy of "positive iff score > t", ties to the highest threshold.
    assert fit_threshold([0.1, 0.2, 0.35, 0.8], [False, False, True, True]) == 0.2
    # 0.1 and 0.4 both get 3 of 4 right; the higher one wins.
    assert fit_threshold([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.4
    assert fit_threshold([1, 2, 3], [False, False, False]) == 3.0
    assert fit_threshold([1, 2, 3], [True, True, True]) == 0.0


def test_auc_and_intervals_by_hand() -> None:
    assert auc([3, 1], [2, 0]) == 0.75
    assert auc([1], [1]) == 0.5
    assert auc([], [1]) is None
    iv = interval([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.3027; sd = 1; half-width = 4.3027 / sqrt(3)
    assert iv["mean"] == 2.0 and iv["hi"] == pytest.approx(2 + 4.3027 / 3**0.5, abs=1e-3)


# ----------------------------------------------------------------------------- leakage


def _scrambled_future(ds: Dataset, setup: AlignmentSetup) -> Dataset:
    """The same data with every held-out interaction's item and rating changed."""
    inter = ds.interactions
    from tools.dataset import temporal_split

    hist, _ = temporal_split(inter, 0.8)
    key = set(zip(hist.user.tolist(), hist.item.tolist(), hist.ts.tolist(), strict=True))
    is_fut = np.array([(u, i, t) not in key for u, i, t in zip(
        inter.user.tolist(), inter.item.tolist(), inter.ts.tolist(), strict=True)])
    rng = np.random.default_rng(0)
    item = inter.item.copy()
    rating = inter.rating.copy()
    item[is_fut] = rng.integers(0, ds.n_items, is_fut.sum())
    rating[is_fut] = 6 - rating[is_fut]
    return ds.with_interactions(Interactions(inter.user, item, rating, inter.ts))


def test_no_held_out_interaction_reaches_profiles_world_or_tools(
        dataset: Dataset, setup: AlignmentSetup) -> None:
    other = prepare_alignment(_scrambled_future(dataset, setup), seed=5)
    assert len(other.future) == len(setup.future)
    assert not np.array_equal(other.future.item, setup.future.item)
    np.testing.assert_array_equal(other.history.item, setup.history.item)
    a, b = setup.world, other.world
    np.testing.assert_array_equal(a.embeddings, b.embeddings)
    np.testing.assert_array_equal(a.item_mean, b.item_mean)
    np.testing.assert_array_equal(a.popularity, b.popularity)
    assert a.global_mean == b.global_mean
    for u in range(0, dataset.n_users, 37):
        p, q = setup.profiles[u], other.profiles[u]
        assert p.to_event() == q.to_event()
        np.testing.assert_array_equal(p.taste, q.taste)
        np.testing.assert_array_equal(p.liking, q.liking)
        assert p.rating_bias == q.rating_bias
    n_users = dataset.n_users
    sa = taste_scorers(a, setup.history, n_users, seed=5)
    sb = taste_scorers(b, other.history, n_users, seed=5)
    items = np.arange(dataset.n_items)
    for u in setup.test[:5]:
        for name in sa:
            np.testing.assert_array_equal(sa[name](u, items), sb[name](u, items))
    ma = fit_bias_model(setup.history, n_users, dataset.n_items)
    mb = fit_bias_model(other.history, n_users, dataset.n_items)
    np.testing.assert_array_equal(ma.item, mb.item)
    np.testing.assert_array_equal(ma.user, mb.user)


def test_runner_world_and_recommenders_ignore_held_out_data(
        dataset: Dataset, setup: AlignmentSetup, tmp_path: Path, ml100k: Path) -> None:
    """The feed's world, profiles and recommenders (eval validity) see history only."""
    import shutil

    from simulations.runner import prepare
    from simulations.validity import heldout_accuracy, validity_scenario
    from tools.recommenders import make_recommender

    scrambled = _scrambled_future(dataset, setup)
    folder = tmp_path / "ml"
    folder.mkdir()
    for f in ml100k.glob("ml-100k.*"):
        if f.suffix in (".item", ".user"):
            shutil.copy(f, folder / f.name)
    inter = scrambled.interactions
    with (folder / "ml-100k.inter").open("w", encoding="utf-8") as fh:
        fh.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        for u, i, r, t in zip(inter.user, inter.item, inter.rating, inter.ts, strict=True):
            fh.write(f"{dataset.user_ids[u]}\t{dataset.catalog.item_ids[i]}\t{r:g}\t{t:.0f}\n")
    role = load_role(REPO / "scenarios" / "roles" / "utility_user.yaml")
    preps = [prepare(validity_scenario(d, role, seed=3, users=20), data=str(d))
             for d in (ml100k, folder)]
    a, b = preps
    assert not np.array_equal(a.future.rating, b.future.rating)
    np.testing.assert_array_equal(a.world.embeddings, b.world.embeddings)
    np.testing.assert_array_equal(a.world.item_mean, b.world.item_mean)
    np.testing.assert_array_equal(a.world.popularity, b.world.popularity)
    assert all(p.to_event() == q.to_event() for p, q in zip(a.profiles, b.profiles,
                                                              strict=True))
    users = np.array(a.population[:10])
    for name in ("ease", "als"):
        recs = []
        for prep in preps:
            rec = make_recommender(name, seed=3)
            rec.fit(prep.history.matrix(prep.dataset.n_users, prep.dataset.n_items))
            recs.append(rec.score(users))
        np.testing.assert_array_equal(recs[0], recs[1])
    # Held-out accuracy is the one place the held-out data is read.
    ha = heldout_accuracy(a, ["pop"], a.population)
    hb = heldout_accuracy(b, ["pop"], b.population)
    assert not np.array_equal(ha["pop"]["hr@10"], hb["pop"]["hr@10"])


# ----------------------------------------------------------------------------- protocol


def test_protocol_arithmetic_with_a_trivial_simulator(setup: AlignmentSetup) -> None:
    users = disjoint_samples(setup.test, 2, 15, seed=5)
    tasks = [make_tasks(setup, g, "uniform", 3, 4, seed=5) for g in users]
    tune = make_tasks(setup, setup.tuning[:20], "uniform", 3, 4, seed=5)
    res = evaluate_taste(setup, AlwaysYes(), tasks, tune, seed=5, ratios=(1, 3))
    for m in (1, 3):
        r = res["ratios"][f"1:{m}"]["brain"]
        assert r["recall"]["mean"] == 1.0
        assert r["precision"]["mean"] == pytest.approx(1 / (1 + m), abs=1e-4)
        assert r["auc"]["mean"] == 0.5  # no scores: every pair ties
        assert set(res["ratios"][f"1:{m}"]) == {"brain", "random", "popularity",
                                                "item_mean", "ease"}


def test_utility_brain_tracks_ease_and_is_deterministic(setup: AlignmentSetup) -> None:
    role = load_role(REPO / "scenarios" / "roles" / "utility_user.yaml")
    brain = UtilityBrain(setup.world, role.brain.params)
    groups = disjoint_samples(setup.test, 2, 60, seed=5)
    tasks = [make_tasks(setup, g, "popularity-matched", 1, 4, seed=5) for g in groups]
    tune = make_tasks(setup, setup.tuning[:40], "popularity-matched", 1, 4, seed=5)
    a = evaluate_taste(setup, brain, tasks, tune, seed=5, ratios=(1,))
    b = evaluate_taste(setup, brain, tasks, tune, seed=5, ratios=(1,))
    assert a == b
    r = a["ratios"]["1:1"]
    assert r["brain"]["auc"]["mean"] > r["ease"]["auc"]["mean"] - 0.04
    assert r["brain"]["auc"]["mean"] > r["popularity"]["auc"]["mean"] + 0.1


def test_rating_fidelity_of_a_constant_rater(setup: AlignmentSetup) -> None:
    groups = disjoint_samples(setup.test, 2, 20, seed=5)
    res = evaluate_ratings(setup, AlwaysYes(), groups, seed=5)
    real = np.array(res["real_hist"])
    # W1 between "always 3" and the real histogram is E|X - 3|; MAE is the same number.
    expected = float((real * np.abs(np.arange(1, 6) - 3)).sum())
    brain = res["models"]["brain"]
    assert brain["w1"]["mean"] == pytest.approx(expected, abs=0.05)
    assert brain["mae"]["mean"] == pytest.approx(brain["w1"]["mean"], abs=1e-6)
    assert res["simulated_hist"] == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert set(res["models"]) == {"brain", "history_resample", "user_mean", "item_mean",
                                  "bias", "bias_stars"}
    assert res["models"]["bias"]["rmse"]["mean"] < res["models"]["user_mean"]["rmse"]["mean"]


def test_cli_alignment_json(ml100k: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "alignment", "--data", str(ml100k), "--users", "8", "--samples", "2",
                 "--seed", "2", "--ratios", "1,3", "--negatives", "uniform",
                 "--tuning-users", "20", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["taste_alignment"]["ratios"]) == {"1:1", "1:3"}
    assert out["negatives"] == "uniform" and out["samples"] == 2
    assert out["users_per_sample"] == 8 and out["brain"] == "utility"
    assert out["rating_fidelity"]["n"] > 0
    brain_auc = out["taste_alignment"]["ratios"]["1:1"]["brain"]["auc"]
    assert brain_auc["n"] == 2 and brain_auc["lo"] <= brain_auc["mean"] <= brain_auc["hi"]


def test_cli_alignment_table_and_bad_input(ml100k: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "alignment", "--data", str(ml100k), "--users", "5", "--samples", "2",
                 "--ratios", "1", "--brain", "none", "--tuning-users", "10"])
    assert code == 0
    out = capsys.readouterr().out
    assert "EASE (same history)" in out and "global + user + item bias" in out
    assert main(["eval", "alignment", "--data", str(ml100k), "--negatives", "nearest"]) == 2
    assert main(["eval", "alignment", "--data", str(ml100k), "--samples", "0"]) == 2
    err = capsys.readouterr().err
    assert "--samples" in err and "Traceback" not in err
