"""bench/social_bubble.py's figures on hand-made runs (no simulation)."""

from __future__ import annotations

import pytest

from bench.social_bubble import analyse, round_means, slope, verdicts
from bench.social_runs import RunData

NARROW = [("Drama",), ("Drama",), ("Drama",), ("Drama",)]
WIDE = [("Drama",), ("Comedy",), ("Action",), ("Horror",)]
MID = [("Drama",), ("Drama",), ("Comedy",), ("Action",)]


def _run(seed: int, condition: str, pages: dict[str, list[list[tuple[str, ...]]]]) -> RunData:
    """``pages[arm][r]``: every user's page in round r + 1."""
    rd = RunData(seed, condition, 0.0)
    rd.browse = {arm: {(u, r + 1): list(p) for r, p in enumerate(rounds) for u in ("1", "2")}
                 for arm, rounds in pages.items()}
    return rd


def test_slope_and_round_means() -> None:
    assert slope([2.0, 1.5, 1.0]) == pytest.approx(-0.5)
    assert slope([None, 1.0]) is None
    h = {("1", 1): 2.0, ("2", 1): 1.0, ("1", 2): 0.5}
    assert round_means(h, 3) == [1.5, 0.5, None]


def test_analyse_directions() -> None:
    runs = {}
    for s in (0, 1, 2):
        runs[(s, "base")] = _run(s, "base", {"ease": [WIDE, MID, NARROW],
                                             "random": [WIDE, WIDE, WIDE]})
        runs[(s, "random_k")] = _run(s, "random_k", {"ease": [WIDE, WIDE, MID]})
    res = analyse(runs, [0, 1, 2], 3)
    ease = res["conditions"]["ease"]
    assert ease["rounds"][0]["mean"] == pytest.approx(2.0)
    assert ease["rounds"][2]["mean"] == pytest.approx(0.0)
    assert ease["slope"]["mean"] == pytest.approx(-1.0)
    assert ease["last_minus_first"]["per_user"]["mean"] == pytest.approx(-2.0)
    assert res["conditions"]["random (null)"]["slope"]["mean"] == pytest.approx(0.0)
    d = res["paired"]["ease + 2 random - ease"]["mean_over_rounds"]["per_user"]
    assert d["mean"] > 0 and d["n"] == 6
    assert "ease, rewired 0.5" not in res["conditions"]  # not run: left out
    text = "\n".join(verdicts(res))
    assert "falls" in text and "**met**" in text and "as expected" in text
