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
from simulations.analysis.stats import auc, interval
from simulations.cli.main import main
from simulations.eval.alignment import (
    AlignmentSetup,
    make_tasks,
    prepare_alignment,
    prepare_origins,
    run_alignment,
)
from simulations.eval.alignment_ratings import rating_one_seed, summarise_ratings
from simulations.eval.alignment_taste import pooled_auc, summarise_taste, taste_one_seed
from simulations.eval.baselines import fit_bias_model, fit_threshold, taste_scorers, user_means
from simulations.run.sampling import (
    TUNING_SHARE,
    disjoint_samples,
    is_tuning_user,
    popularity_deciles,
    sample_negatives,
    split_users,
    user_split,
)
from tests.shipped import shipped
from tools.dataset import Catalog, Dataset, Interactions, global_split, load_dataset

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


@pytest.fixture(scope="module")
def origins(dataset: Dataset) -> list[AlignmentSetup]:
    return prepare_origins(dataset, 4, seed=5)


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
    assert set(setup.development).isdisjoint(setup.test + setup.tuning)
    ids = setup.dataset.user_ids
    assert all(user_split(ids[u]) == "test" for u in setup.test)
    assert all(user_split(ids[u]) == "development" for u in setup.development)
    samples = disjoint_samples(setup.test, 4, 10, seed=3)
    flat = [u for s in samples for u in s]
    assert len(flat) == len(set(flat)) == 40
    assert set(flat) <= set(setup.test)
    assert samples == disjoint_samples(setup.test, 4, 10, seed=3)
    assert samples != disjoint_samples(setup.test, 4, 10, seed=4)
    with pytest.raises(ValueError):
        disjoint_samples([1, 2], 3, 1, seed=0)


# ----------------------------------------------------------------------------- leak-free


def test_every_origin_is_leak_free(dataset: Dataset, origins: list[AlignmentSetup]) -> None:
    """No history rating is dated at or after the cutoff, so none after any future rating
    used for evaluation; popularity and item means come from history only; every
    evaluable user is in exactly one origin."""
    assert len(origins) == 4
    seen: list[int] = []
    for o in origins:
        assert o.history.ts.max() < o.cutoff <= o.future.ts.min()
        assert len(o.history) + len(o.future) == len(dataset.interactions)
        np.testing.assert_array_equal(
            o.world.popularity, np.bincount(o.history.item, minlength=dataset.n_items))
        np.testing.assert_allclose(
            o.world.item_mean, dataset.with_interactions(o.history).item_mean_rating)
        for u in o.tuning + o.development + o.test:
            assert (o.history.user == u).sum() >= 5
            seen.append(u)
    assert len(seen) == len(set(seen)) > 130
    cutoffs = [o.cutoff for o in origins]
    assert cutoffs == sorted(cutoffs)
    # One cutoff (the 0.8 quantile) leaves far fewer evaluable users.
    single = prepare_alignment(dataset, seed=5)
    n1 = len(single.tuning + single.development + single.test)
    assert n1 < 0.6 * len(seen)


def test_negatives_and_positives_only_among_items_available_before_the_cutoff(
        origins: list[AlignmentSetup]) -> None:
    for k, o in enumerate(origins[:4]):
        tasks = make_tasks(o, o.test + o.tuning, "uniform", positives=4, seed=3, origin=k)
        for t in tasks:
            assert (o.world.popularity[t.negatives.ravel()] > 0).all()
            assert (o.world.popularity[t.positives] > 0).all()


# ----------------------------------------------------------------------------- samplers


def test_popularity_matched_negatives_are_stratified_by_decile(
        origins: list[AlignmentSetup]) -> None:
    res = {}
    for sampler in ("uniform", "popularity-matched"):
        same, total, aucs = 0, 0, []
        for k, o in enumerate(origins):
            pop = o.world.popularity
            dec = popularity_deciles(pop)
            tasks = make_tasks(o, o.test, sampler, positives=4, seed=11,  # type: ignore[arg-type]
                               origin=k)
            for t in tasks:
                same += int((dec[t.negatives] == dec[t.positives][:, None]).sum())
                total += t.negatives.size
                a = auc(pop[t.positives], pop[t.negatives[:, 0]])
                if a is not None:
                    aucs.append(a)
                u = t.user
                rated = set(o.history.item[o.history.user == u].tolist()) | set(
                    o.future.item[o.future.user == u].tolist())
                assert not rated.intersection(t.negatives.ravel().tolist())
                assert len(set(t.negatives.ravel().tolist())) == t.negatives.size
                liked = o.future.item[(o.future.user == u) & (o.future.rating >= 4)]
                assert set(t.positives.tolist()) <= set(liked.tolist())
        res[sampler] = (same / total, float(np.mean(aucs)))
    share, pop_auc = res["popularity-matched"]
    assert share > 0.97  # negatives come from the positive's own decile
    assert abs(pop_auc - 0.5) < 0.1  # popularity alone is near chance
    share_u, pop_auc_u = res["uniform"]
    assert share_u < 0.5 and pop_auc_u > 0.75  # uniform negatives are far less popular


def test_deciles_and_stratified_sampler_by_hand() -> None:
    pop = np.array([0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50, 60, 70, 80, 90, 100, 200, 300,
                    400])
    dec = popularity_deciles(pop)
    assert dec[0] == -1  # never rated: no decile
    assert dec[1] == dec[2] == 0  # ties share a decile
    assert dec[-1] == 9 and (np.diff(dec[1:]) >= 0).all()
    pos = np.array([3, 18])
    cand = np.setdiff1d(np.arange(1, 21), pos)
    a = sample_negatives("popularity-matched", np.random.default_rng(0), pos, cand, pop, 1)
    assert dec[a[0, 0]] == dec[3] and dec[a[1, 0]] == dec[18]
    # A decile that runs out borrows from the nearest ones, never twice the same item.
    b = sample_negatives("popularity-matched", np.random.default_rng(0), pos, cand, pop, 6)
    assert len(set(b.ravel().tolist())) == 12
    assert np.abs(dec[b[0]] - dec[3]).max() <= 3


def test_samplers_are_nested_and_reject_bad_input() -> None:
    pop = np.arange(1, 101, dtype=np.int64)
    pos = np.array([10, 90])
    cand = np.setdiff1d(np.arange(100), pos)
    a = sample_negatives("popularity-matched", np.random.default_rng(0), pos, cand, pop, 3)
    assert a.shape == (2, 3)
    # Within the positive's decile (here: by index, 10 items a decile).
    assert (a[0] // 10 == 1).all() and (a[1] // 10 == 9).all()
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
    from tools.world import World

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
    assert pooled_auc(np.array([3.0, 1.0]), np.array([2.0, 0.0])) == 0.75
    assert pooled_auc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5
    assert pooled_auc(np.array([]), np.array([1.0])) is None
    iv = interval([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.3027; sd = 1; half-width = 4.3027 / sqrt(3)
    assert iv["mean"] == 2.0 and iv["hi"] == pytest.approx(2 + 4.3027 / 3**0.5, abs=1e-3)


# ----------------------------------------------------------------------------- leakage


def _scrambled_future(ds: Dataset, setup: AlignmentSetup) -> Dataset:
    """The same data with every held-out interaction's item and rating changed."""
    inter = ds.interactions
    hist, _ = global_split(inter, 0.8)
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

    from simulations.eval.validity import heldout_accuracy, validity_scenario
    from simulations.run.runner import prepare
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
    role = load_role(shipped("roles", "utility_user.yaml"))
    preps = [prepare(validity_scenario(d, role, seed=3, users=20), data=str(d))
             for d in (ml100k, folder)]
    a, b = preps
    assert a.history.ts.max() < a.future.ts.min()  # the default split is leak-free
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
    with_future = sorted(set(a.future.user.tolist()) & set(a.population))
    ha = heldout_accuracy(a, ["pop"], with_future)
    hb = heldout_accuracy(b, ["pop"], with_future)
    assert not np.array_equal(ha["pop"]["hr@10"], hb["pop"]["hr@10"])


# ----------------------------------------------------------------------------- protocol


def _seed_run(origins: list[AlignmentSetup], brain: object, users: str, seed: int,
              ratios: tuple[int, ...], sampler: str = "popularity-matched",
              n_tune: int = 40) -> dict:
    brains = [brain for _ in origins] if brain is not None else None
    if brain is not None and isinstance(brain, UtilityBrain):
        brains = [UtilityBrain(o.world, brain.p) for o in origins]
    scorers = [taste_scorers(o.world, o.history, o.dataset.n_users, seed) for o in origins]
    tasks = [t for k, o in enumerate(origins)
             for t in make_tasks(o, o.users(users), sampler,  # type: ignore[arg-type]
                                 positives=4, seed=seed, origin=k)]
    tune = [t for k, o in enumerate(origins)
            for t in make_tasks(o, o.tuning[:n_tune // len(origins) + 1],
                                sampler, positives=4, seed=seed, origin=k)]  # type: ignore[arg-type]
    return taste_one_seed(origins, brains, scorers, tasks, tune,  # type: ignore[arg-type]
                          seed=seed, ratios=ratios)


def test_protocol_arithmetic_with_a_trivial_simulator(origins: list[AlignmentSetup]) -> None:
    runs = [_seed_run(origins, AlwaysYes(), "test", s, (1, 3), "uniform") for s in (5, 6)]
    res = summarise_taste(runs, (1, 3), with_brain=True)
    for m in (1, 3):
        r = res["ratios"][f"1:{m}"]["brain"]
        assert r["recall"]["mean"] == 1.0
        assert r["precision"]["mean"] == pytest.approx(1 / (1 + m), abs=1e-4)
        assert r["auc"]["mean"] == 0.5  # no scores: every pair ties
        assert r["auc_pooled"]["mean"] == 0.5
        assert r["auc"]["n"] == 2  # one value per seed
        assert set(res["ratios"][f"1:{m}"]) == {
            "brain", "brain_noisy", "brain_decisions", "random", "popularity", "item_mean",
            "ease"}
    assert set(res["popularity_auc_by_decile_1to1"]) == {str(d) for d in range(1, 11)}


def test_utility_brain_tracks_ease_and_is_deterministic(origins: list[AlignmentSetup]) -> None:
    role = load_role(shipped("roles", "utility_user.yaml"))
    brain = UtilityBrain(origins[0].world, role.brain.params)
    a = _seed_run(origins, brain, "development", 5, (1,))
    b = _seed_run(origins, brain, "development", 5, (1,))
    assert a["per"] == b["per"]
    r = a["per"][1]
    assert r["brain"]["auc"] > r["ease"]["auc"] - 0.05
    assert r["brain"]["auc"] > r["popularity"]["auc"] + 0.1
    # Noise the user experiences and the bare decisions tell positives apart less well.
    assert r["brain_noisy"]["auc"] <= r["brain"]["auc"] + 0.02
    assert r["brain_decisions"]["auc"] < r["brain"]["auc"]


def test_rating_fidelity_of_a_constant_rater(origins: list[AlignmentSetup]) -> None:
    from simulations.eval.baselines import fit_bias_model as fit

    users = [o.test for o in origins]
    biases = [fit(o.history, o.dataset.n_users, o.dataset.n_items) for o in origins]
    runs = [rating_one_seed(origins, [AlwaysYes() for _ in origins], users, biases,  # type: ignore[misc]
                            seed=s, per_user=10) for s in (5, 6)]
    res = summarise_ratings(runs, (10.0, 25.0))
    real = np.array(res["real_hist"])
    # W1 between "always 3" and the real histogram is E|X - 3|; MAE is the same number.
    expected = float((real * np.abs(np.arange(1, 6) - 3)).sum())
    brain = res["models"]["brain"]
    assert brain["w1"]["n"] == 2
    assert brain["mae"]["mean"] == pytest.approx(brain["w1"]["mean"], abs=1e-6)
    assert abs(brain["mae"]["mean"] - expected) < 0.1
    assert res["simulated_hist"] == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert {"brain", "history_resample", "user_mean", "item_mean", "bias",
            "bias_stars"} <= set(res["models"])
    assert res["models"]["bias"]["rmse"]["mean"] < res["models"]["user_mean"]["rmse"]["mean"]


def test_cli_alignment_json(ml100k: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "alignment", "--data", str(ml100k), "--users", "12", "--seeds", "2",
                 "--seed", "2", "--ratios", "1,3", "--negatives", "uniform", "--cutoffs", "3",
                 "--tuning-users", "20", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["taste_alignment"]["ratios"]) == {"1:1", "1:3"}
    assert out["negatives"] == "uniform" and out["seeds"] == [2, 3]
    assert out["users"] == 12 and out["brain"] == "utility"
    cfg = out["configuration"]
    assert cfg["user_split"] == "test" and cfg["time_split"] == "global"
    assert len(cfg["cutoffs"]) == 3 and cfg["brain_params"]["taste_weight"] == 1.0
    assert out["rating_fidelity"]["n_per_seed"] > 0
    brain_auc = out["taste_alignment"]["ratios"]["1:1"]["brain"]["auc"]
    assert brain_auc["n"] == 2 and brain_auc["lo"] <= brain_auc["mean"] <= brain_auc["hi"]


def test_draws_do_not_depend_on_the_ratios(ml100k: Path) -> None:
    kw = {"users": 10, "seeds": 2, "brain": "none", "cutoffs": 2, "tuning_users": 20,
          "rating_items": 2}
    one = run_alignment(ml100k, ratios=(1,), **kw)  # type: ignore[arg-type]
    three = run_alignment(ml100k, ratios=(1, 3, 9), **kw)  # type: ignore[arg-type]
    a = one["taste_alignment"]["ratios"]["1:1"]
    b = three["taste_alignment"]["ratios"]["1:1"]
    assert a == b
    assert one["popularity"] == three["popularity"]


def test_users_that_cannot_be_met_fail_loudly(ml100k: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "alignment", "--data", str(ml100k), "--users", "5000",
                 "--brain", "none", "--cutoffs", "2"])
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.strip().startswith("recarena: eval alignment: --users 5000: only ")


def test_cli_alignment_table_and_bad_input(ml100k: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "alignment", "--data", str(ml100k), "--users", "6", "--seeds", "2",
                 "--ratios", "1", "--tuning-users", "10", "--cutoffs", "2",
                 "--split", "development"])
    assert code == 0
    out = capsys.readouterr().out
    assert "frozen configuration evaluated" in out and "watch_threshold=" in out
    assert "EASE (same history)" in out and "global + user + item bias" in out
    assert "development users" in out and "popularity decile" in out
    assert main(["eval", "alignment", "--data", str(ml100k), "--negatives", "nearest"]) == 2
    assert main(["eval", "alignment", "--data", str(ml100k), "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert "--seeds" in err and "Traceback" not in err
    assert main(["eval", "alignment", "--data", str(ml100k), "--ratios", "1,19"]) == 2
    assert main(["eval", "alignment", "--data", str(ml100k), "--time-split", "per_user",
                 "--cutoffs", "3"]) == 2
    err = capsys.readouterr().err
    assert "--ratios" in err and "--cutoffs 1" in err
