"""Taste families: validated at load, each a working brain in a small synthetic world, the
calibration laid over a role, and the runner giving a role its own taste space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from agents.brains.base import PageObservation
from agents.brains.utility import UtilityBrain, World
from agents.profile import build_profiles
from scenarios.loader import ScenarioError, load_role, load_scenario, validate_file
from scenarios.schema import RoleConfig
from scenarios.taste import LEARNED_FAMILIES, TASTE_FAMILIES, TasteConfig
from simulations.run.taste_roles import calibration, parse_families, role_for_family
from tests.feed_world import ROLE, write_feed_scenario
from tests.shipped import shipped
from tools.dataset import temporal_split
from tools.synthetic import make_world
from tools.taste import taste_space

REPO = Path(__file__).resolve().parents[1]


def _role_file(folder: Path, taste: str) -> Path:
    p = folder / "r.yaml"
    p.write_text("kind: role\n"          # 1
                 "name: r\n"             # 2
                 "brain:\n"              # 3
                 "  kind: utility\n"     # 4
                 "  taste:\n"            # 5
                 + taste, encoding="utf-8")
    return p


@pytest.mark.parametrize(("taste", "line", "field", "pattern"), [
    ("    family: sasrec\n", 6, "brain.taste.family", "ease"),
    ("    family: als\n    l2: 10\n", 7, "brain.taste.l2", "setting of the ease family"),
    ("    family: ease\n    members: [als, bpr]\n", 7, "brain.taste.members",
     "setting of the ensemble"),
    ("    family: ensemble\n    members: [als, als]\n", 7, "brain.taste.members", "twice"),
    ("    family: ensemble\n    members: [als, random]\n", 7, "brain.taste.members.1",
     "ease"),
    ("    family: ease\n    factors: 0\n", 7, "brain.taste.factors", "greater"),
])
def test_bad_taste_is_a_file_line_error(tmp_path: Path, taste: str, line: int, field: str,
                                        pattern: str) -> None:
    p = _role_file(tmp_path, taste)
    with pytest.raises(ScenarioError) as ei:
        validate_file(p)
    text = str(ei.value)
    assert "\n" not in text
    assert text.startswith(f"{p}:{line}: {field}: "), text
    assert pattern in text, text


def test_good_taste_loads(tmp_path: Path) -> None:
    role = load_role(_role_file(tmp_path, "    family: ensemble\n    members: [ease, als]\n"))
    assert role.brain.taste.member_families == ("ease", "als")
    assert RoleConfig.model_validate({"kind": "role", "name": "x"}).brain.taste.family == "ease"


@pytest.fixture(scope="module")
def world() -> tuple:
    ds = make_world(n_users=80, n_items=120, n_genres=6, history_mean=15, seed=3)
    history, future = temporal_split(ds.interactions, 0.8)
    return ds, history, future


@pytest.mark.parametrize("family", TASTE_FAMILIES)
def test_every_family_is_a_working_brain(world: tuple, family: str) -> None:
    ds, history, future = world
    # A small world: as many factors as it has latent dimensions.
    space = taste_space(ds, history, TasteConfig(family=family, factors=8),  # type: ignore[arg-type]
                        seed=0)
    assert space.items.shape[0] == ds.n_items and space.items.dtype == np.float32
    tastes = space.user_tastes(history, ds.n_users)
    assert tastes.shape == (ds.n_users, space.items.shape[1])
    active = np.bincount(history.user, minlength=ds.n_users) > 0
    norms = np.linalg.norm(tastes[active], axis=1)
    if family == "none":
        assert np.all(norms == 0)
    else:
        assert np.allclose(norms, 1.0, atol=1e-4)
    profiles = build_profiles(ds, history, space.items, tastes=space.users)
    w = World(ds.catalog, space.items, ds.with_interactions(history).item_mean_rating,
              ds.with_interactions(history).item_popularity, float(history.rating.mean()))
    brain = UtilityBrain(w)
    u = int(np.flatnonzero(active)[0])
    items = tuple(range(10))
    util, parts = brain.utilities(PageObservation(profiles[u], 0, 1, items, ()), np.zeros(10))
    assert util.shape == (10,) and np.all(np.isfinite(util))
    if family == "none":
        assert np.all(parts["taste"] == 0)
    else:
        assert np.ptp(parts["taste"]) > 0
    # The watch taste ranks held-out items above random unseen ones for a learned family.
    if family in LEARNED_FAMILIES:
        sims = space.items @ tastes.T
        fut = future.matrix(ds.n_users, ds.n_items, binary=True).toarray() > 0
        seen = history.matrix(ds.n_users, ds.n_items, binary=True).toarray() > 0
        aucs = []
        for v in np.flatnonzero(active & fut.any(axis=1)):
            pos, neg = sims[fut[v], v], sims[~fut[v] & ~seen[v], v]
            aucs.append((pos[:, None] > neg[None, :]).mean())
        assert np.mean(aucs) > 0.55, (family, np.mean(aucs))


def test_ensemble_blocks_are_standardised(world: tuple) -> None:
    ds, history, _ = world
    members = ("ease", "puresvd", "itemknn")
    ens = taste_space(ds, history, TasteConfig(family="ensemble", members=members), seed=0)
    parts = [taste_space(ds, history, TasteConfig(family=m), seed=0) for m in members]  # type: ignore[arg-type]
    assert ens.items.shape[1] == sum(p.items.shape[1] for p in parts)
    assert ens.users is not None
    active = np.bincount(history.user, minlength=ds.n_users) > 0
    # Each member's block contributes similarities of about the same spread.
    start, spreads = 0, []
    for p in parts:
        d = p.items.shape[1]
        sims = ens.users[active, start:start + d] @ ens.items[:, start:start + d].T
        spreads.append(float(np.mean(sims.std(axis=1))))
        start += d
    assert max(spreads) / min(spreads) < 1.05, spreads


def test_role_for_family_applies_the_calibration() -> None:
    role = load_role(shipped("roles", "utility_user.yaml"))
    table = {"als": {"watch_threshold": 0.25, "exit_base": -1.0}}
    r = role_for_family(role, "als", table)
    assert r.brain.taste.family == "als" and r.brain.params.watch_threshold == 0.25
    assert r.brain.params.rating_taste == role.brain.params.rating_taste
    assert role_for_family(role, "none", table).brain.params.taste_weight == 0.0
    assert calibration().keys() <= set(TASTE_FAMILIES)
    assert parse_families("all") == list(LEARNED_FAMILIES)
    with pytest.raises(ValueError, match="unknown family sasrec"):
        parse_families("ease,sasrec")
    with pytest.raises(ValueError, match="unknown family random"):
        parse_families("ease,random")
    assert parse_families("ease,random", allow_null=True) == ["ease", "random"]


def test_a_role_with_its_own_family_gets_its_own_world(tmp_path: Path) -> None:
    from simulations.run.runner import prepare

    p = write_feed_scenario(tmp_path, "w", seed=1, users=10)
    other = {**ROLE, "name": "other", "brain": {**ROLE["brain"], "taste": {"family": "puresvd"}}}
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    scn = yaml.safe_load(p.read_text())
    scn["population"] = {"size": 10, "roles": [{"role": "role.yaml", "share": 0.5},
                                               {"role": "other.yaml", "share": 0.5}]}
    p.write_text(yaml.safe_dump(scn))
    prep = prepare(load_scenario(p))
    assert set(prep.role_worlds) == {"other"}
    assert prep.role_worlds["other"].embeddings is not prep.world.embeddings
    a, b = prep.role_profiles["viewer"][0].taste, prep.role_profiles["other"][0].taste
    assert a.shape != b.shape or not np.allclose(a, b)
    assert prep.role_worlds["other"].embeddings.shape[1] == b.shape[0]
    assert prep.world.embeddings.shape[1] == a.shape[0]
