"""The run summary a statistician would accept: n per arm, intervals over users on every
rate (clipped to [0, 1]), new shown / new watched as rates, scales named; and a random
arm in the MovieLens scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from rich.console import Console

from simulations.analysis.metrics import compute_metrics
from simulations.cli.main import main, metrics_table
from tests.shipped import shipped

REPO = Path(__file__).resolve().parents[1]


def _events(watches: list[int], shown: int = 10, new: int = 0,
            new_watched: int = 0) -> list[dict[str, Any]]:
    """Arm a: user k is shown ``shown`` items (the first ``new`` of them new releases)
    and watches ``watches[k]`` (the first ``new_watched`` of the new ones first)."""
    ev: list[dict[str, Any]] = [{"type": "run_start", "n_items": 500, "environment": "feed"}]
    if new:
        ev.append({"type": "event", "arm": "a", "round": 1, "action": "add_items",
                   "items": [f"n{j}" for j in range(new)]})
    for k, w in enumerate(watches):
        where = {"arm": "a", "round": 1, "user": f"u{k}", "role": "viewer"}
        items = [f"n{j}" for j in range(new)] + [f"{k}-{j}" for j in range(shown - new)]
        ev.append({"type": "page", **where, "page": 1, "items": items})
        order = ([f"n{j}" for j in range(new_watched)] + items[new:]
                 + [f"n{j}" for j in range(new_watched, new)])
        watched = set(order[:w])
        for item in items:
            ev.append({"type": "decision", **where, "item": item,
                       "action": "watch" if item in watched else "skip",
                       "rating": 4 if item in watched else None, "genres": ["Drama"]})
        ev.append({"type": "interview", **where, "satisfaction": 7})
        ev.append({"type": "session_end", **where, "pages": 1})
    return ev


def test_n_per_arm_and_a_rate_interval_over_users() -> None:
    rng = np.random.default_rng(0)
    w = rng.integers(0, 11, size=80).tolist()
    st = compute_metrics(_events(w))["arms"]["a"]["stats"]
    assert st["n_users"] == 80 and st["n_sessions"] == 80 and st["impressions"] == 800
    v = st["watch_rate"]
    assert v["value"] == pytest.approx(sum(w) / 800, abs=1e-6)
    assert v["lo"] < v["value"] < v["hi"] and v["n"] == 80
    # The interval is over users: about the t-interval of the users' own rates (equal
    # impressions per user), not the far narrower binomial one over 800 impressions.
    per_user = np.array(w) / 10
    half = 1.96 * per_user.std(ddof=1) / np.sqrt(80)
    assert (v["hi"] - v["lo"]) / 2 == pytest.approx(half, rel=0.2)
    binomial = 1.96 * np.sqrt(v["value"] * (1 - v["value"]) / 800)
    assert (v["hi"] - v["lo"]) / 2 > 1.5 * binomial
    # Same trace, same interval (seeded).
    assert compute_metrics(_events(w))["arms"]["a"]["stats"]["watch_rate"] == v


def test_rate_intervals_stay_in_0_1() -> None:
    st = compute_metrics(_events([10] * 30 + [9]))["arms"]["a"]["stats"]
    v = st["watch_rate"]
    assert 0.0 <= v["lo"] <= v["value"] <= v["hi"] <= 1.0
    st = compute_metrics(_events([10] * 5))["arms"]["a"]["stats"]
    assert st["watch_rate"] == {"value": 1.0, "lo": 1.0, "hi": 1.0, "n": 5}


def test_new_shown_and_new_watched_are_rates() -> None:
    # 20 users, 10 shown each, 2 of them new; each watches 4, of which 1 new.
    m = compute_metrics(_events([4] * 20, new=2, new_watched=1))
    st = m["arms"]["a"]["stats"]
    assert st["new_shown_rate"]["value"] == pytest.approx(0.2)
    assert st["new_watched_rate"]["value"] == pytest.approx(0.5)
    assert m["arms"]["a"]["overall"]["new_item_impressions"] == 40  # counts stay in JSON
    no_release = compute_metrics(_events([4] * 20))["arms"]["a"]["stats"]
    assert no_release["new_shown_rate"] is None and no_release["new_watched_rate"] is None


def _render(metrics: dict[str, Any]) -> str:
    c = Console(width=250, record=True)
    c.print(metrics_table(metrics))
    return c.export_text()


def test_table_names_n_scales_and_intervals() -> None:
    m = compute_metrics(_events([3, 5, 6, 2, 8], new=2, new_watched=1))
    text = _render(m)
    for label in ("users", "satisfaction (1-10)", "rating (1-5)", "new shown (rate)",
                  "new watched (rate)", "percentile bootstrap over users"):
        assert label in text, label
    st = m["arms"]["a"]["stats"]["watch_rate"]
    assert f"{st['value']:.3f}" in text and f"[{st['lo']:.3f}, {st['hi']:.3f}]" in text


def test_run_and_trace_summary_print_the_table(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["run", str(shipped("quickstart.yaml")), "--users", "12",
                 "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "satisfaction (1-10)" in printed and "users" in printed and "[" in printed
    assert main(["run", str(shipped("quickstart.yaml")), "--users", "12",
                 "--json", "--out", str(tmp_path / "run2")]) == 0
    res = json.loads(capsys.readouterr().out)
    for arm in res["metrics"]["arms"].values():
        st = arm["stats"]
        assert st["n_users"] == 12 and st["scales"]["satisfaction"] == "1-10"
        assert 0 <= st["watch_rate"]["lo"] <= st["watch_rate"]["hi"] <= 1
    assert main(["trace", "summary", str(out)]) == 0
    assert "satisfaction (1-10)" in capsys.readouterr().out
    assert main(["trace", "summary", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert all("stats" in a for a in s["metrics"]["arms"].values())


def test_movielens_scenario_has_a_random_arm() -> None:
    scn = yaml.safe_load(shipped("movielens_feed.yaml").read_text())
    assert any(r["model"] == "random" for r in scn["recommenders"])
