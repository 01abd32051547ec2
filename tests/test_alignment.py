"""Agent4Rec's taste-alignment protocol and rating fidelity on a small fixed sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.brains.base import ItemDecision, PageDecision, PageObservation
from agents.brains.utility import UtilityBrain
from agents.profile import UserProfile
from simulations.alignment import (
    AlignmentSetup,
    evaluate_alignment,
    prepare_alignment,
    rating_fidelity,
)
from simulations.cli import main
from tools.dataset import load_dataset


class AlwaysYes:
    """Watches everything and rates everything 3: the protocol's arithmetic is known."""

    name = "always-yes"

    def decide_page(self, obs: PageObservation, rng: np.random.Generator) -> PageDecision:
        return PageDecision(tuple(ItemDecision(i, True, 3, "") for i in obs.items), False, "")

    def rate_items(self, profile: UserProfile, items: tuple[int, ...],
                   rng: np.random.Generator) -> list[int]:
        return [3] * len(items)


@pytest.fixture(scope="module")
def setup(ml100k: Path) -> AlignmentSetup:
    return prepare_alignment(load_dataset(ml100k), 40, seed=5)


def test_protocol_arithmetic_with_a_trivial_simulator(setup: AlignmentSetup) -> None:
    res = evaluate_alignment(setup, AlwaysYes(), seed=5, ratios=(1, 3))
    for m in (1, 3):
        r = res["ratios"][f"1:{m}"]
        assert r["recall"] == 1.0 and r["fn"] == 0 and r["tn"] == 0
        assert r["fp"] == m * r["tp"]  # exactly m negatives per positive
        assert r["precision"] == pytest.approx(1 / (1 + m), abs=1e-4)


def test_profiles_use_only_earlier_history(setup: AlignmentSetup) -> None:
    for u in setup.users:
        h_ts = setup.history.ts[setup.history.user == u]
        f_ts = setup.future.ts[setup.future.user == u]
        assert h_ts.max() <= f_ts.min()
        assert setup.profiles[u].n_history == len(h_ts)


def test_utility_brain_beats_chance_and_is_deterministic(setup: AlignmentSetup) -> None:
    brain = UtilityBrain(setup.world)
    a = evaluate_alignment(setup, brain, seed=5, ratios=(1,))
    b = evaluate_alignment(setup, brain, seed=5, ratios=(1,))
    assert a == b
    assert a["ratios"]["1:1"]["accuracy"] > 0.65


def test_rating_fidelity_of_a_constant_rater(setup: AlignmentSetup) -> None:
    res = rating_fidelity(setup, AlwaysYes(), seed=5)
    real = np.array(res["real_hist"])
    # W1 between "always 3" and the real histogram is E|X - 3|.
    expected = float((real * np.abs(np.arange(1, 6) - 3)).sum())
    assert res["wasserstein"] == pytest.approx(expected, abs=2e-3)
    assert res["simulated_hist"] == [0.0, 0.0, 1.0, 0.0, 0.0]


def test_cli_alignment_json(ml100k: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code = main(["eval", "alignment", "--data", str(ml100k), "--users", "15", "--seed", "2",
                 "--ratios", "1,9", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["taste_alignment"]["ratios"]) == {"1:1", "1:9"}
    assert out["rating_fidelity"]["n"] > 0 and out["brain"] == "utility"
