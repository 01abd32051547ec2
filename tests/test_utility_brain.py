"""The utility brain: taste drives watching, fatigue drives leaving, seeds reproduce."""

from __future__ import annotations

import numpy as np

from agents.brains.base import PageObservation, SessionSummary
from agents.brains.utility import UtilityBrain, World
from agents.profile import UserProfile
from scenarios.schema import UtilityParams
from tools.dataset import Catalog


def _world() -> World:
    n = 40
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n, 6)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cat = Catalog(tuple(str(i) for i in range(n)), tuple(f"T{i}" for i in range(n)),
                  tuple(("Drama",) if i % 2 else ("Comedy",) for i in range(n)))
    return World(cat, emb, np.full(n, 3.5, np.float32), np.ones(n, np.int64), 3.5)


def _profile(world: World, activity: int = 2) -> UserProfile:
    taste = world.embeddings[0].astype(np.float32)  # loves item 0
    return UserProfile(0, "u", activity, 2, 2, 10, 3.5, 1.0, ("Comedy",), (), ("0",), (), taste,
                       taste, {})


def _obs(world: World, items: tuple[int, ...], page: int = 1,
         activity: int = 2) -> PageObservation:
    return PageObservation(_profile(world, activity), 1, page, items, ())


def _rng(k: int = 0) -> np.random.Generator:
    return np.random.default_rng(k)


def test_prefers_items_close_to_taste() -> None:
    w = _world()
    brain = UtilityBrain(w, UtilityParams(noise=0.0))
    sims = w.embeddings @ w.embeddings[0]
    best, worst = int(np.argsort(-sims)[1]), int(np.argmin(sims))
    d = brain.decide_page(_obs(w, (best, worst)), _rng())
    assert d.items[0].watch and not d.items[1].watch
    assert d.items[0].inputs["taste"] > d.items[1].inputs["taste"]
    assert 1 <= (d.items[0].rating or 0) <= 5
    assert d.items[1].rating is None


def test_same_rng_same_decision_and_noise_matters() -> None:
    w = _world()
    brain = UtilityBrain(w)
    obs = _obs(w, (1, 2, 3, 4))
    assert brain.decide_page(obs, _rng(5)) == brain.decide_page(obs, _rng(5))
    outcomes = {tuple(i.watch for i in brain.decide_page(obs, _rng(k)).items)
                for k in range(30)}
    assert len(outcomes) > 1


def test_fatigue_raises_leaving_probability() -> None:
    w = _world()
    brain = UtilityBrain(w)
    p1 = brain.decide_page(_obs(w, (1, 2), page=1), _rng()).inputs["p_leave"]
    p5 = brain.decide_page(_obs(w, (1, 2), page=5), _rng()).inputs["p_leave"]
    assert p5 > p1


def test_active_users_watch_more() -> None:
    w = _world()
    brain = UtilityBrain(w)
    items = tuple(range(40))

    def rate(activity: int) -> float:
        return float(np.mean([
            sum(i.watch for i in brain.decide_page(_obs(w, items, activity=activity),
                                                   _rng(k)).items) for k in range(20)]))

    assert rate(3) > rate(1)


def test_interview_tracks_session_quality() -> None:
    w = _world()
    brain = UtilityBrain(w, UtilityParams())
    prof = _profile(w)
    good = SessionSummary(prof, 1, 3, 12, (0, 1, 2, 3, 4, 5, 6, 7), (5, 5, 4, 5, 5, 4, 5, 5),
                          False)
    bad = SessionSummary(prof, 1, 1, 4, (), (), True)
    g = np.mean([brain.interview(good, _rng(k)).satisfaction for k in range(20)])
    b = np.mean([brain.interview(bad, _rng(k)).satisfaction for k in range(20)])
    assert g > b + 3
    ans = brain.interview(bad, _rng())
    assert 1 <= ans.satisfaction <= 10
    assert "left after page 1" in ans.reason
