"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from simulations.analysis.metrics import compute_metrics, genre_entropy, gini


def test_gini_hand_values() -> None:
    assert gini([1, 1, 1, 1]) == pytest.approx(0.0)
    # One of four items gets everything: (2*4*1)/(4*1) - 5/4 = 0.75
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)
    # [1, 3]: (2*(1*1 + 2*3))/(2*4) - 3/2 = 14/8 - 1.5 = 0.25
    assert gini([3, 1]) == pytest.approx(0.25)
    assert gini([]) == 0.0


def test_genre_entropy_hand_values() -> None:
    assert genre_entropy([["Drama"], ["Drama"]]) == pytest.approx(0.0)
    assert genre_entropy([["Drama"], ["Comedy"]]) == pytest.approx(1.0)
    # Drama 1 + 0.5, Comedy 0.5 -> p = 0.75, 0.25
    expected = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert genre_entropy([["Drama"], ["Comedy", "Drama"]]) == pytest.approx(expected)


def _events() -> list[dict[str, object]]:
    ev: list[dict[str, object]] = [{"type": "run_start", "n_items": 10}]
    # arm a: user 1 sees items 1,2 (watches 1 rated 4), then 3,4 (watches 3 rated 2), leaves p2
    ev += [
        {"type": "page", "arm": "a", "round": 1, "user": "1", "page": 1, "items": ["1", "2"]},
        {"type": "decision", "arm": "a", "round": 1, "user": "1", "action": "watch",
         "rating": 4, "genres": ["Drama"]},
        {"type": "decision", "arm": "a", "round": 1, "user": "1", "action": "skip",
         "rating": None, "genres": ["Comedy"]},
        {"type": "decision", "arm": "a", "round": 1, "user": "1", "action": "next_page"},
        {"type": "page", "arm": "a", "round": 1, "user": "1", "page": 2, "items": ["3", "1"]},
        {"type": "decision", "arm": "a", "round": 1, "user": "1", "action": "watch",
         "rating": 2, "genres": ["Comedy"]},
        {"type": "decision", "arm": "a", "round": 1, "user": "1", "action": "skip",
         "rating": None, "genres": ["Drama"]},
        {"type": "decision", "arm": "a", "round": 1, "user": "1", "action": "leave"},
        {"type": "interview", "arm": "a", "round": 1, "user": "1", "satisfaction": 6},
        {"type": "session_end", "arm": "a", "round": 1, "user": "1", "pages": 2},
        # user 2: one page, no watch
        {"type": "page", "arm": "a", "round": 1, "user": "2", "page": 1, "items": ["1", "5"]},
        {"type": "decision", "arm": "a", "round": 1, "user": "2", "action": "skip",
         "rating": None, "genres": ["Drama"]},
        {"type": "decision", "arm": "a", "round": 1, "user": "2", "action": "skip",
         "rating": None, "genres": ["War"]},
        {"type": "interview", "arm": "a", "round": 1, "user": "2", "satisfaction": 2},
        {"type": "session_end", "arm": "a", "round": 1, "user": "2", "pages": 1},
        {"type": "metric", "arm": "a", "round": None, "name": "watch_rate", "value": 0.9},
    ]
    return ev


def test_compute_metrics_hand_computed() -> None:
    m = compute_metrics(_events())["arms"]["a"]["overall"]
    assert m["watch_rate"] == pytest.approx(2 / 6)
    assert m["mean_rating"] == pytest.approx(3.0)
    assert m["exit_page"] == pytest.approx(1.5)
    assert m["satisfaction"] == pytest.approx(4.0)
    # Exposed: 1 (x3), 2, 3, 5 -> 4 of 10 items
    assert m["coverage"] == pytest.approx(0.4)
    assert m["gini"] == pytest.approx(gini([3, 1, 1, 1, 0, 0, 0, 0, 0, 0]), abs=1e-6)
    # Only user 1 watched: Drama + Comedy -> 1 bit
    assert m["genre_entropy"] == pytest.approx(1.0)


def test_metric_events_do_not_feed_back() -> None:
    res = compute_metrics(_events())
    assert list(res["arms"]["a"]["rounds"]) == ["1"]
