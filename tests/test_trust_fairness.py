"""Fairness: list similarities and SNSR/SNSV on hand-made lists, counterfactual probing of
an agent that reacts to a stated attribute, user-side gaps and provider-side figures on
hand-made traces, and ``recarena eval fairness`` on a small MovieLens run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.recsys.protocol import Ranking, RankRequest
from simulations.analysis.user_stats import arm_tables
from simulations.trust.fairness import FairnessOptions, long_tail, provider_side, user_side
from simulations.trust.probing import (
    ProbeInstance,
    jaccard,
    prag,
    probe,
    rbo,
    sensitivity,
    serp,
)
from tests.test_cli import assert_one_line, cli

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- similarities


def test_list_similarities_on_hand_made_lists() -> None:
    a = list(range(10))
    for fn in (jaccard, serp, prag, rbo):
        assert fn(a, a, 10) == pytest.approx(1.0)
        assert fn(a, list(range(10, 20)), 10) == pytest.approx(0.0)
    x, n = [1, 2, 3, 4], [1, 2, 5, 6]
    assert jaccard(x, n, 4) == pytest.approx(2 / 6)
    assert serp(x, n, 4) == pytest.approx((4 + 3) / 10)
    # pairs of x with the upper item in n and above the lower one there: 5 of 6
    assert prag(x, n, 4) == pytest.approx(5 / 6)
    # RBO by hand: overlaps 1, 2, 2, 2 at depths 1..4, p = 0.9
    terms = sum(o / d * 0.9 ** d for d, o in zip(range(1, 5), (1, 2, 2, 2), strict=True))
    assert rbo(x, n, 4) == pytest.approx(0.1 / 0.9 * terms + 2 / 4 * 0.9 ** 4)
    # Order matters for PRAG* and RBO, not for Jaccard and SERP* (all items present).
    r = a[::-1]
    assert jaccard(r, a, 10) == serp(r, a, 10) == 1.0
    assert prag(r, a, 10) == 0.0 and rbo(r, a, 10) < 0.6


def test_snsr_and_snsv_are_range_and_spread_of_the_value_means() -> None:
    s = sensitivity({"F": np.array([1.0, 1.0, 1.0]), "M": np.array([0.5, 0.5, 0.5]),
                     "X": np.array([0.75, 0.75, 0.75])}, resamples=50)
    assert s["snsr"] == pytest.approx(0.5)
    assert s["snsv"] == pytest.approx(np.std([1.0, 0.5, 0.75]))
    assert s["values"]["M"]["mean"] == pytest.approx(0.5)
    assert s["snsr_ci"] == [pytest.approx(0.5), pytest.approx(0.5)]  # no spread over users


class _Biased:
    """Ranks candidates in order, reversed when the user says she is a woman."""

    name = "biased"

    def __init__(self) -> None:
        self.contexts: list[str] = []

    def llm_usage(self) -> tuple[int, int, float]:
        return 0, 0, 0.0

    def close(self) -> None:
        pass

    def rank(self, requests: Sequence[RankRequest]) -> list[Ranking]:
        out = []
        for r in requests:
            self.contexts.append(r.context)
            items = list(r.candidates)
            if "a woman" in r.context:
                items.reverse()
            out.append(Ranking(items=items[:r.k]))
        return out

    def rate(self, requests: Sequence[Any]) -> list[Any]:
        raise TypeError

    def explain(self, requests: Sequence[Any]) -> list[Any]:
        raise TypeError


def test_probing_finds_an_agent_that_reacts_to_a_stated_gender() -> None:
    agent = _Biased()
    inst = [ProbeInstance(u, tuple(range(100 * u, 100 * u + 20))) for u in range(6)]
    res = probe(agent, inst, {"gender": ("F", "M"), "age": ("<18", "56+")}, k=10,
                resamples=100)
    assert "" in agent.contexts and "The user says: I am a woman." in agent.contexts
    g = res["attributes"]["gender"]
    assert g["jaccard"]["values"]["F"]["mean"] == 0.0  # reversed: the other ten items
    assert g["jaccard"]["values"]["M"]["mean"] == 1.0
    assert g["jaccard"]["snsr"] == 1.0 and g["rbo"]["snsr"] == pytest.approx(1.0)
    assert g["jaccard"]["snsv"] == pytest.approx(0.5)
    # Stating an age changes nothing: fair on age.
    assert all(res["attributes"]["age"][s]["snsr"] == 0.0 for s in ("jaccard", "serp",
                                                                    "prag", "rbo"))


# ----------------------------------------------------------------------------- traces


def _events(watch: dict[str, list[int]], items_of: dict[str, list[list[str]]],
            genders: list[str], occupations: list[str]) -> list[dict[str, Any]]:
    n = len(genders)
    # Ids hashed into the test split (simulations/run/sampling.py) are not needed: the
    # figures below are asked with test_only=False.
    ev: list[dict[str, Any]] = [{"type": "run_start", "n_items": 10, "environment": "feed"}]
    ev += [{"type": "profile", "user": f"u{k}", "role": "viewer", "traits": {},
            "attrs": {"gender": genders[k], "age": str(20 + 20 * (k % 2)),
                      "occupation": occupations[k]}} for k in range(n)]
    for arm, ws in watch.items():
        for k, w in enumerate(ws):
            where = {"arm": arm, "round": 1, "user": f"u{k}", "role": "viewer"}
            items = items_of[arm][k]
            ev.append({"type": "page", **where, "page": 1, "items": items})
            for j, item in enumerate(items):
                ev.append({"type": "decision", **where, "item": item,
                           "action": "watch" if j < w else "skip",
                           "rating": 4 if j < w else None, "genres": ["Drama"]})
            ev.append({"type": "interview", **where, "satisfaction": 5})
            ev.append({"type": "session_end", **where, "pages": 1})
    return ev


def test_user_side_gap_between_genders_is_the_hand_computed_one() -> None:
    n = 12
    genders = ["F" if k < 6 else "M" for k in range(n)]
    occ = ["writer" if k % 3 == 0 else "student" for k in range(n)]
    # Every user sees 4 items; women watch 3, men 1: watch rates 0.75 and 0.25.
    ev = _events({"a": [3 if g == "F" else 1 for g in genders]},
                 {"a": [["1", "2", "3", "4"]] * n}, genders, occ)
    rows = user_side(arm_tables(ev), FairnessOptions(min_users=2, resamples=200,
                                                     test_only=False))
    g = next(r for r in rows if r["metric"] == "watch_rate" and r["attribute"] == "gender")
    assert (g["highest"], g["lowest"]) == ("F", "M")
    assert g["range"] == pytest.approx(0.5)
    f = next(lv for lv in g["levels"] if lv["level"] == "F")
    assert f["value"] == pytest.approx(0.75) and f["gap_to_rest"] == pytest.approx(0.5)
    assert f["gap_ci_low"] <= 0.5 <= f["gap_ci_high"] and f["gap_ci_low"] > 0
    # Occupation is a dimension of its own (writers: 2 women, 2 men: rate 0.5).
    o = next(r for r in rows if r["metric"] == "watch_rate" and r["attribute"] == "occupation")
    w = next(lv for lv in o["levels"] if lv["level"] == "writer")
    assert w["value"] == pytest.approx(0.5) and w["users"] == 4
    # The same watches for everyone: no gap at all.
    flat = _events({"a": [2] * n}, {"a": [["1", "2", "3", "4"]] * n}, genders, occ)
    g0 = next(r for r in user_side(arm_tables(flat), FairnessOptions(
        min_users=2, resamples=100, test_only=False))
        if r["metric"] == "watch_rate" and r["attribute"] == "gender")
    assert g0["range"] == 0.0 and g0["ci_high"] == 0.0


def test_provider_side_on_head_and_tail_arms() -> None:
    pop = {str(i): float(100 - 10 * i) for i in range(10)}  # item 0 most popular
    tail = long_tail(np.array(list(pop.values())))
    assert tail.tolist() == [False, False] + [True] * 8  # head: top 20% = 2 items
    n = 4
    ev = _events({"head": [1] * n, "tail": [1] * n},
                 {"head": [["0", "1"]] * n, "tail": [["8", "9"]] * n},
                 ["F", "M"] * 2, ["x"] * n)
    t = arm_tables(ev)
    opt = FairnessOptions(resamples=100, test_only=False)
    head = provider_side(t.arms["head"], pop, 10, opt)
    tl = provider_side(t.arms["tail"], pop, 10, opt)
    assert head["arp"]["value"] == pytest.approx(95.0)
    assert head["long_tail_share"]["value"] == 0.0
    assert tl["arp"]["value"] == pytest.approx(15.0)
    assert tl["long_tail_share"]["value"] == 1.0
    # Two of ten items get all exposure, equally: Gini 0.8.
    assert head["gini"] == pytest.approx(0.8) and tl["gini"] == pytest.approx(0.8)


# ----------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_fairness_on_a_small_movielens_run(ml100k: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "eval", "fairness", REPO / "scenarios" / "movielens_feed.yaml",
                       "--data", ml100k, "--users", "24", "--out", tmp_path / "f",
                       "--min-users", "2", "--resamples", "100", "--all-users", "--json",
                       "--probe", "pop", "--probe-users", "4", "--probe-attributes", "gender")
    assert rc == 0, err
    res = json.loads(out)
    assert (tmp_path / "f" / "fairness.json").exists()
    arms = {p["arm"] for p in res["provider_side"]}
    assert arms == {"random", "pop", "itemknn", "ease", "als"}
    by = {p["arm"]: p for p in res["provider_side"]}
    # Popularity shows only head items; random mostly tail ones.
    assert by["pop"]["long_tail_share"]["value"] < by["random"]["long_tail_share"]["value"]
    assert by["pop"]["arp"]["value"] > by["random"]["arp"]["value"]
    assert {r["attribute"] for r in res["user_side"]} == {"gender", "age", "occupation"}
    # A classic model ignores what the user says: its lists do not move.
    assert res["probes"]["pop"]["attributes"]["gender"]["jaccard"]["snsr"] == 0.0
    # Bad input: one line, exit 2, before any work.
    rc, _, err = cli(capsys, "eval", "fairness", tmp_path / "nothing")
    assert rc == 2 and "no such run folder" in assert_one_line(err)
    rc, _, err = cli(capsys, "eval", "fairness", tmp_path / "f" / "run", "--probe",
                     "nosuchmodel", "--data", ml100k)
    assert rc == 2 and "--probe" in assert_one_line(err)
