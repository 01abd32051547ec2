"""Paired A/B: per-user statistics, the paired bootstrap and permutation test against hand
computations and scipy, significance, seeds, the CLI, and LLM cache sharing between arms."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from agents.llm import FakeChatModel
from scenarios.loader import load_scenario
from scenarios.schema import RecommenderConfig
from simulations.analysis.metrics import compute_metrics
from simulations.analysis.paired import holm, paired_difference, sign_flip_pvalue, spread
from simulations.analysis.user_stats import (
    ArmTable,
    age_band,
    arm_tables,
    metric_names,
    metric_values,
    user_groups,
    user_metrics,
)
from simulations.cli.main import main
from simulations.eval.compare import compare_runs, compare_sources, load_source, run_comparison
from simulations.record.trace import read_trace
from simulations.run.runner import prepare, run
from tests.shipped import shipped
from tests.test_llm_brain import _answer_all, _llm_scenario

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = shipped("quickstart.yaml")


def _feed_events(watches: dict[str, list[int]], shown: int = 10,
                 ratings: dict[str, list[int]] | None = None) -> list[dict[str, Any]]:
    """A trace where, per arm, user k is shown ``shown`` items and watches
    ``watches[arm][k]`` of them (rated ``ratings[arm][k]``), then leaves after one page."""
    n = len(next(iter(watches.values())))
    ev: list[dict[str, Any]] = [{"type": "run_start", "n_items": 50, "environment": "feed"}]
    ev += [{"type": "profile", "user": f"u{k}", "role": "viewer",
            "traits": {"activity": 1 + k % 3, "conformity": 2, "diversity": 2},
            "attrs": {"gender": "F" if k % 2 else "M", "age": str(20 + 7 * k)}}
           for k in range(n)]
    for arm, ws in watches.items():
        for k, w in enumerate(ws):
            where = {"arm": arm, "round": 1, "user": f"u{k}", "role": "viewer"}
            items = [str((k + j) % 50) for j in range(shown)]
            ev.append({"type": "page", **where, "page": 1, "items": items})
            for j, item in enumerate(items):
                watch = j < w
                rating = (ratings or {}).get(arm, [4] * n)[k] if watch else None
                ev.append({"type": "decision", **where, "item": item,
                           "action": "watch" if watch else "skip", "rating": rating,
                           "genres": ["Drama" if j % 2 else "Comedy"]})
            ev.append({"type": "interview", **where, "satisfaction": 5 + w % 5})
            ev.append({"type": "session_end", **where, "pages": 1})
    return ev


def _pair(events: list[dict[str, Any]], a: str = "a", b: str = "b"
          ) -> tuple[ArmTable, ArmTable]:
    t = arm_tables(events)
    return t.arms[a], t.arms[b]


# ----------------------------------------------------------------------------- per user


def test_full_sample_statistics_equal_compute_metrics(tmp_path: Path) -> None:
    res = run(prepare(load_scenario(QUICKSTART), users=12, seed=5), tmp_path / "r")
    events = read_trace(res.run_dir)
    tables = arm_tables(events)
    expected = compute_metrics(events)["arms"]
    assert set(tables.arms) == set(expected)
    for arm, table in tables.arms.items():
        ones = np.ones((1, len(table.users)))
        for m in metric_names("feed"):
            got = float(metric_values(m, ones, table)[0])
            assert round(got, 6) == pytest.approx(expected[arm]["overall"][m], abs=1e-6), m


def test_user_metrics_are_each_users_own_ratio() -> None:
    a, _ = _pair(_feed_events({"a": [2, 5, 0], "b": [3, 3, 3]}))
    per = user_metrics(a)
    assert per["u0"]["watch_rate"] == pytest.approx(0.2)
    assert per["u1"]["watch_rate"] == pytest.approx(0.5)
    assert per["u2"]["mean_rating"] is None  # watched nothing, so rated nothing
    assert "gini" not in per["u0"]  # a population metric, not a user's


def test_groups_from_profiles() -> None:
    t = arm_tables(_feed_events({"a": [1] * 6, "b": [1] * 6}))
    g = user_groups(t.users, t.info)
    assert set(g) == {"gender", "age", "activity"}  # role, conformity, diversity: one level
    assert g["gender"]["F"].tolist() == [False, True] * 3
    assert list(g["age"]) == ["18-24", "25-34", "35-44", "45-49", "50-55"]
    assert [age_band(x) for x in ("17", "56", "x", None)] == ["<18", "56+", None, None]


# ----------------------------------------------------------------------------- statistics


def test_paired_bootstrap_and_test_against_a_hand_computed_case() -> None:
    # Three users, ten impressions each: per-user differences of watch rate 0.1, 0.4, 0.2.
    # Equal denominators make the statistic the mean of the three, so every resample lies
    # in [0.1, 0.4] and only "the same user three times" reaches an end (1/27 > 2.5%
    # each): the 95% percentile interval is exactly [0.1, 0.4].
    a, b = _pair(_feed_events({"a": [2, 5, 4], "b": [3, 9, 6]}))
    r = paired_difference(a, b, "watch_rate", resamples=20000, seed=1)
    assert r.baseline_value == pytest.approx(11 / 30, abs=1e-6)
    assert r.arm_value == pytest.approx(18 / 30, abs=1e-6)
    assert r.diff == pytest.approx(7 / 30, abs=1e-6)
    assert (r.ci_low, r.ci_high) == (pytest.approx(0.1), pytest.approx(0.4))
    # Exact test over the 8 swaps: the null values are (±0.1 ± 0.4 ± 0.2) / 3; only the
    # observed one is >= 7/30, so p = 2 * 1/8.
    assert r.p == pytest.approx(0.25)


def test_sign_flip_test_equals_scipy_permutation_test() -> None:
    rng = np.random.default_rng(3)
    for n, exact in ((8, True), (30, False)):
        wa = rng.integers(0, 8, n).tolist()
        wb = np.clip(np.asarray(wa) + rng.integers(-2, 4, n), 0, 10).tolist()
        a, b = _pair(_feed_events({"a": wa, "b": wb}))
        both = ArmTable("ab", "feed", a.users + b.users, a.fields,
                        np.vstack([a.sums, b.sums]), sp.vstack([a.exposure, b.exposure]).tocsr(),
                        a.items, a.n_items)
        for m in ("watch_rate", "satisfaction", "gini"):
            def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1, m: str = m,
                          n: int = n, both: ArmTable = both) -> np.ndarray:
                def w(rows: np.ndarray) -> np.ndarray:
                    r = np.reshape(rows, (-1, n)).astype(int)
                    out = np.zeros((r.shape[0], 2 * n))
                    out[np.arange(r.shape[0])[:, None], r] = 1.0
                    return out
                return (metric_values(m, w(y), both) - metric_values(m, w(x), both)
                        ).reshape(np.shape(x)[:-1])
            ref = stats.permutation_test((np.arange(n), np.arange(n, 2 * n)), statistic,
                                         permutation_type="samples", vectorized=True,
                                         n_resamples=9999, rng=0)
            ours = sign_flip_pvalue(a, b, m, float(ref.statistic), permutations=9999)
            if exact:
                assert ours == pytest.approx(ref.pvalue), m
            else:  # both Monte Carlo with 9999 draws: sd of a p near 0.05 is about 0.002
                assert ours == pytest.approx(ref.pvalue, abs=0.02), m


def test_consistent_gain_is_significant_and_identical_arms_are_not() -> None:
    base = [1, 2, 3, 4, 2, 3, 1, 0, 5, 2, 3, 4]
    better = [w + 1 + k % 3 for k, w in enumerate(base)]
    events = _feed_events({"a": base, "b": better, "c": base})
    result = compare_sources([_source(events)], None)
    rows = {(r["arm"], r["metric"]): r for r in result["rows"] if r["group"] == "all"}
    gain = rows[("b", "watch_rate")]
    assert gain["diff"] > 0 and gain["ci_low"] > 0
    assert gain["p"] == pytest.approx(2 / 2 ** 12)  # exact: every user gained
    assert gain["significant"] and gain["p_holm"] < 0.05
    same = rows[("c", "watch_rate")]
    assert same["diff"] == 0 and same["ci_low"] == same["ci_high"] == 0
    assert same["p"] == 1.0 and not same["significant"]
    assert not any(r["significant"] for r in result["rows"] if r["arm"] == "c")
    # Groups: every dimension with two or more levels, and the users add up per dimension.
    groups = {r["group"]: r["users"] for r in result["rows"]
              if r["arm"] == "b" and r["metric"] == "watch_rate"}
    assert groups["all"] == 12
    assert groups["gender=F"] + groups["gender=M"] == 12
    assert sum(v for g, v in groups.items() if g.startswith("activity=")) == 12


def test_holm() -> None:
    assert holm([0.01, 0.04, None, 0.03]) == [pytest.approx(0.03), pytest.approx(0.06), None,
                                             pytest.approx(0.06)]


def test_spread_across_seeds() -> None:
    def row(d: float, sig: bool) -> dict[str, Any]:
        return {"baseline": "a", "arm": "b", "group": "all", "metric": "watch_rate",
                "diff": d, "significant": sig}
    (s,) = spread([[row(0.1, True)], [row(0.3, False)], [row(0.2, True)]])
    assert s["mean_diff"] == pytest.approx(0.2) and s["sd"] == pytest.approx(0.1)
    assert (s["min"], s["max"], s["seeds"], s["significant_seeds"]) == (0.1, 0.3, 3, 2)


def _source(events: list[dict[str, Any]]) -> Any:
    from simulations.eval.compare import Source

    return Source(Path("mem"), "mem", 0, arm_tables(events), "completed")


# ----------------------------------------------------------------------------- runs


def test_seeds_repeat_the_comparison_and_report_the_spread(tmp_path: Path) -> None:
    res = run_comparison([load_scenario(QUICKSTART)], recommenders=["pop", "ease"], seeds=2,
                         users=10, out=tmp_path / "cmp")
    assert res["seeds"] == [42, 43] and res["baseline"] == "pop" and res["arms"] == [
        "pop", "ease"]
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir()) == [
        "quickstart-seed42", "quickstart-seed43"]
    for p in res["per_seed"]:
        start = read_trace(p["runs"][0])[0]
        assert start["seed"] == p["seed"]
        assert [r["name"] for r in start["config"]["recommenders"]] == ["pop", "ease"]
    diffs = {s["seed"]: {(r["group"], r["metric"]): r["diff"] for r in s["rows"]}
             for s in res["per_seed"]}
    assert diffs[42] != diffs[43]  # another seed, other users and draws
    spread_rows = {(r["group"], r["metric"]): r for r in res["spread"]}
    for key, r in spread_rows.items():
        ds = [diffs[s][key] for s in (42, 43) if diffs[s][key] is not None]
        if len(ds) == 2:
            assert r["mean_diff"] == pytest.approx(np.mean(ds), abs=1e-6)
            assert r["sd"] == pytest.approx(np.std(ds, ddof=1), abs=1e-6)
            assert (r["min"], r["max"]) == (pytest.approx(min(ds)), pytest.approx(max(ds)))


def test_compare_runs_reads_existing_folders_and_pairs_users(tmp_path: Path) -> None:
    loaded = load_scenario(QUICKSTART)
    one = dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(
        update={"recommenders": loaded.scenario.recommenders[:1]}))
    two = dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(
        update={"recommenders": loaded.scenario.recommenders[1:2]}))
    run(prepare(one, users=8), tmp_path / "a")
    run(prepare(two, users=8), tmp_path / "b")
    res = compare_runs([tmp_path / "a", tmp_path / "b"], options=None)
    (s,) = res["per_seed"]
    assert s["arms"] == ["random", "pop"] and s["users"] == 8
    # The same as both arms in one run: same users, same seeded draws.
    run(prepare(loaded, users=8), tmp_path / "ab")
    both = compare_runs([tmp_path / "ab"], ["random", "pop"])["per_seed"][0]
    pick = [(r["group"], r["metric"], r["diff"], r["p"]) for r in s["rows"]]
    assert pick == [(r["group"], r["metric"], r["diff"], r["p"]) for r in both["rows"]]


def test_arms_share_llm_cache_entries_where_prompts_coincide(tmp_path: Path) -> None:
    base = _llm_scenario(tmp_path)

    def with_arms(*arms: tuple[str, str]) -> Any:
        recs = [RecommenderConfig(name=n, model=m) for n, m in arms]  # type: ignore[arg-type]
        return dataclasses.replace(base, scenario=base.scenario.model_copy(
            update={"recommenders": recs}))

    solo_model = FakeChatModel(responses=_answer_all)
    solo = run(prepare(with_arms(("pop", "pop")), users=3), tmp_path / "solo",
               chat_model=solo_model)
    assert solo.llm is not None and solo_model.calls == solo.llm["calls"] > 0
    # A second arm with the same model meets the same users and sees the same prompts: every
    # one of its calls comes from the run's cache, and the model is asked nothing more.
    twin_model = FakeChatModel(responses=_answer_all)
    twin = run(prepare(with_arms(("pop", "pop"), ("pop2", "pop")), users=3),
               tmp_path / "twin", chat_model=twin_model)
    assert twin.llm is not None
    assert twin_model.calls == solo_model.calls
    assert twin.llm["calls"] == 2 * solo.llm["calls"]
    assert twin.llm["cached_calls"] == solo.llm["calls"]
    # Different recommenders: prompts differ, yet no prompt is ever sent twice in a run.
    mixed_model = FakeChatModel(responses=_answer_all)
    run(prepare(with_arms(("pop", "pop"), ("ease", "ease")), users=3), tmp_path / "mixed",
        chat_model=mixed_model)
    seen = [json.dumps(t) for t in mixed_model.transcripts]
    assert len(seen) == len(set(seen)) == mixed_model.calls


def test_compare_of_two_scenarios_warms_the_second_runs_cache(tmp_path: Path) -> None:
    base = _llm_scenario(tmp_path)
    a = dataclasses.replace(base, scenario=base.scenario.model_copy(update={"name": "a"}))
    b = dataclasses.replace(base, scenario=base.scenario.model_copy(update={"name": "b"}))
    model = FakeChatModel(responses=_answer_all)
    res = run_comparison([a, b], users=3, out=tmp_path / "cmp", chat_model=model)
    (s,) = res["per_seed"]
    assert s["arms"] == ["a-seed3:pop", "b-seed3:pop"]
    def calls(name: str) -> list[dict[str, Any]]:
        return [e for e in read_trace(tmp_path / "cmp" / name) if e["type"] == "llm_call"]
    # Run a asked every prompt once; run b asked the same prompts and the model nothing.
    assert calls("a-seed3") and model.calls == len(calls("a-seed3")) == len(calls("b-seed3"))
    assert all(r["diff"] in (0, None) for r in s["rows"])


# ----------------------------------------------------------------------------- CLI


def test_cli_compare_json_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    rc = main(["compare", str(QUICKSTART), "--recommenders", "pop,random", "--users", "8",
               "--out", str(tmp_path / "c"), "--json", "--permutations", "999"])
    out = capsys.readouterr().out
    assert rc == 0
    res = json.loads(out)
    assert res["arms"] == ["pop", "random"] and res["permutations"] == 999
    assert json.loads((tmp_path / "c" / "compare.json").read_text()) == res
    rows = [r for r in res["per_seed"][0]["rows"] if r["group"] == "all"]
    assert {r["metric"] for r in rows} == set(metric_names("feed"))
    run_dir = res["per_seed"][0]["runs"][0]
    rc = main(["compare", run_dir, "--no-groups"])
    out = capsys.readouterr().out
    assert rc == 0 and "paired differences vs pop (8 users)" in out
    assert "watch rate" in out and "by user group" not in out


@pytest.mark.parametrize("argv, message", [
    (["compare", "runs_that_do_not_exist.yaml"], "no such file"),
    (["compare", str(QUICKSTART), "--recommenders", "pop,nosuch"], "'nosuch' is neither"),
    (["compare", str(QUICKSTART), "--recommenders", "pop"], "name at least two"),
    (["compare", str(QUICKSTART), "--seeds", "0"], "--seeds"),
    (["compare", str(QUICKSTART), "--confidence", "95"], "between 0 and 1"),
    (["compare", str(QUICKSTART), str(QUICKSTART), "--recommenders", "pop,x"], "no arm 'x'"),
    (["compare", str(shipped("llm_feed.yaml")), "--recommenders", "pop,pop"],
     "named twice"),
])
def test_cli_compare_bad_input(argv: list[str], message: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.splitlines()) == 1, err


def test_cli_compare_run_folders_reject_run_options(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(prepare(load_scenario(QUICKSTART), users=4), tmp_path / "r")
    rc = main(["compare", str(tmp_path / "r"), "--seeds", "3"])
    err = capsys.readouterr().err
    assert rc == 2 and "--seeds only applies to scenario files" in err
    rc = main(["compare", str(tmp_path / "r"), str(QUICKSTART)])
    assert rc == 2 and "not both" in capsys.readouterr().err
    rc = main(["compare", str(tmp_path / "r"), "--recommenders", "ease,nope"])
    assert rc == 2 and "no arm 'nope'" in capsys.readouterr().err


def test_load_source_of_a_truncated_trace(tmp_path: Path) -> None:
    run(prepare(load_scenario(QUICKSTART), users=4), tmp_path / "r")
    trace = tmp_path / "r" / "trace.jsonl"
    text = trace.read_text()
    trace.write_text(text[: len(text) // 2].rsplit("\n", 1)[0] + "\n{\"type\": \"pa")
    s = load_source(tmp_path / "r")
    assert s.status == "truncated" and s.tables.arms


@pytest.mark.parametrize("argv", [["compare"], ["report"], ["compare", "x.yaml", "--seeds", "a"]])
def test_cli_missing_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and err.startswith("recarena") and len(err.splitlines()) == 1


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ("compare", "report"):
        assert main([cmd, "--help"]) == 0
        assert capsys.readouterr().out.startswith(f"usage: recarena {cmd}")
