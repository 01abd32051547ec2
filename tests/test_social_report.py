"""Reading a social run: graph statistics in the summary, per-user sums behind `recarena
compare`, and the report's social sections (filter bubble, degree distribution, cascades)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scenarios.loader import ScenarioError, load_scenario
from simulations.analysis.cascades import CASCADES_ENV, cascades_from_events
from simulations.analysis.metrics import compute_metrics
from simulations.analysis.user_stats import arm_tables
from simulations.cli.main import main
from simulations.eval.compare import CompareOptions, compare_runs
from simulations.report.data import load_run, series_of
from simulations.report.figures import Figures
from simulations.report.html import build_report
from simulations.report.social import collect, degrees, mean_interval
from simulations.run.runner import prepare, run
from tests.shipped import shipped
from tests.test_social import _run, _scenario


@pytest.fixture(scope="module")
def social_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("social")
    out = folder / "run"
    return out, _run(_scenario(folder), out)


def test_graph_statistics_are_in_the_summary(
        social_run: tuple[Path, list[dict[str, Any]]],
        capsys: pytest.CaptureFixture[str]) -> None:
    out, events = social_run
    graph = {e["arm"]: e for e in events if e["type"] == "social_graph"}
    summary = json.loads((out / "summary.json").read_text())["metrics"]
    for arm, g in graph.items():
        m = summary["arms"][arm]
        o = m["overall"]
        assert o["graph_nodes"] == g["nodes"] == 40 and o["graph_edges"] == g["edges"]
        assert o["graph_mean_degree"] == pytest.approx(g["degree"]["mean"], abs=1e-6)
        assert o["graph_max_degree"] == g["degree"]["max"]
        assert o["graph_clustering"] == pytest.approx(g["clustering"], abs=1e-6)
        assert o["graph_largest_component_share"] == 1.0
        for a, v in g["assortativity"].items():
            assert o[f"graph_assortativity_{a}"] == pytest.approx(v, abs=1e-6)
        for a, v in g["same_share"].items():
            assert o[f"graph_same_{a}_share"] == pytest.approx(v, abs=1e-6)
        # Only scalars, and only overall: a graph has no rounds.
        assert all(not isinstance(v, dict | list) for k, v in o.items() if k.startswith("graph"))
        assert not any(k.startswith("graph_") for r in m["rounds"].values() for k in r)
    assert compute_metrics(events)["arms"]["pop"]["overall"]["graph_edges"] == \
        graph["pop"]["edges"]
    assert main(["trace", "summary", str(out), "--no-pager"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "graph (every arm): 40 users" in text and "clustering" in text
    assert "assortativity: degree" in text
    # The run's metric events let trace summary read summary.json (the social metrics are
    # in the scenario vocabulary, scenarios.schema.ENVIRONMENT_METRICS).
    assert any(e["type"] == "metric" and e["name"] == "friend_share" for e in events)
    assert "metrics: summary.json, checked against the trace's metric events" in text


def test_entropies_have_per_user_sums_and_compare(
        social_run: tuple[Path, list[dict[str, Any]]]) -> None:
    out, events = social_run
    metrics = compute_metrics(events)
    tables = arm_tables(events)
    for arm, t in tables.arms.items():
        overall = metrics["arms"][arm]["overall"]
        for m in ("shown_entropy", "watched_entropy", "watch_rate", "friend_share"):
            num, den = (t.sums[:, t.fields.index(f)].sum() for f in {
                "shown_entropy": ("shown_entropy_sum", "shown_entropy_sessions"),
                "watched_entropy": ("watched_entropy_sum", "watched_entropy_sessions"),
                "watch_rate": ("watches", "impressions"),
                "friend_share": ("friend_watches", "watches")}[m])
            assert num / den == pytest.approx(overall[m], abs=1e-6), (arm, m)
        stats = metrics["arms"][arm]["stats"]["shown_entropy"]
        assert stats["lo"] <= stats["value"] <= stats["hi"]
    res = compare_runs([out], options=CompareOptions(resamples=200, permutations=199,
                                                     groups=False))
    rows = {r["metric"]: r for r in res["per_seed"][0]["rows"] if r["group"] == "all"
            and r["arm"] == "friends"}
    assert {"watch_rate", "friend_share", "shown_entropy", "watched_entropy"} <= set(rows)
    for m in ("shown_entropy", "watched_entropy", "friend_share"):
        r = rows[m]
        assert r["ci_low"] is not None and r["ci_low"] <= r["diff"] <= r["ci_high"], m
        assert r["diff"] == pytest.approx(
            metrics["arms"]["friends"]["overall"][m] - metrics["arms"]["pop"]["overall"][m],
            abs=1e-5)


SOCIAL_SECTIONS = ("social-bubble", "social-graph", "social-cascades")
T15 = ("id,source,label,num_users,max_depth,mean_time,median_time,max_time,topic_category,"
       "start_time\n" + "".join(
           f"{k},twitter15,True,200,{d},1.0,0.9,2.0,Politics,2014-09-22 17:37:41+00:00\n"
           for k, d in enumerate((2, 3, 3, 4), start=1)))


def _sections(text: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', text, flags=re.S))


@pytest.fixture(scope="module")
def feed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("feed")
    return run(prepare(load_scenario(shipped("quickstart.yaml")), users=8, seed=5),
               root / "feed").run_dir


def test_report_has_the_social_sections_beside_a_feed_run(
        social_run: tuple[Path, list[dict[str, Any]]], feed_run: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    out, events = social_run
    (tmp_path / "t15").mkdir()
    (tmp_path / "t15" / "twitter15.csv").write_text(T15)
    monkeypatch.setenv(CASCADES_ENV, str(tmp_path / "t15"))
    secs = _sections(build_report([feed_run, out], resamples=100))
    for sid in SOCIAL_SECTIONS:  # each with its plot
        assert sid in secs and 'class="plotly-graph-div"' in secs[sid], sid
    assert "headline" in secs and "filter-bubble" in secs  # the feed's own still there
    # The filter bubble: shown and watched entropy per round, with intervals over users.
    assert "items shown" in secs["social-bubble"] and "items watched" in secs["social-bubble"]
    assert '"error_y"' in secs["social-bubble"]
    # The degree histogram of the graph (one series: both arms share it) and its figures.
    graph = next(e for e in events if e["type"] == "social_graph")
    assert "every arm" in secs["social-graph"] and "clustering" in secs["social-graph"]
    assert f"<td>{graph['edges']}</td>" in secs["social-graph"]
    assert "assortativity by degree" in secs["social-graph"]
    # The largest cascades by title, and the depths beside the reference.
    cascades = secs["social-cascades"]
    assert "<table" in cascades and "virality" in cascades
    titles = {json.loads(line)["id"]: json.loads(line)["title"]
              for line in (out / "items.jsonl").read_text().splitlines()}
    top = max(cascades_from_events(events), key=lambda c: (c.size, c.reach))
    assert html.escape(titles[top.item]) in cascades
    assert "Twitter15 (4 cascades)" in cascades and "Wasserstein" in cascades
    # Without the reference, the section says where it looked.
    monkeypatch.setenv(CASCADES_ENV, str(tmp_path / "nowhere"))
    cascades = _sections(build_report([out], resamples=50))["social-cascades"]
    assert "Twitter15 reference not found" in cascades and "Twitter15 (" not in cascades
    assert 'class="plotly-graph-div"' in cascades


def test_a_feed_report_has_no_social_section(feed_run: Path) -> None:
    secs = _sections(build_report([feed_run], resamples=50))
    assert not set(SOCIAL_SECTIONS) & set(secs) and "headline" in secs


def test_a_social_scenario_lists_social_metrics(tmp_path: Path) -> None:
    scn = load_scenario(_scenario(tmp_path, metrics=["friend_share", "virality"])).scenario
    assert scn.metric_names() == ["friend_share", "virality"]
    with pytest.raises(ScenarioError, match="does not compute 'exit_page'"):
        load_scenario(_scenario(tmp_path, metrics=["exit_page"]))


def test_report_entropies_per_round_are_the_metrics(
        social_run: tuple[Path, list[dict[str, Any]]]) -> None:
    """The filter-bubble points are the per-round metrics; the intervals hold them."""
    _, events = social_run
    data = collect(events)
    metrics = compute_metrics(events)
    for arm, m in metrics["arms"].items():
        for r, rm in m["rounds"].items():
            for name, per in (("shown_entropy", data.shown), ("watched_entropy", data.watched)):
                x = np.asarray(per[arm][int(r)])
                mean, lo, hi = mean_interval(x, 200, 0)
                assert mean == pytest.approx(rm[name], abs=1e-6), (arm, r, name)
                assert lo is not None and hi is not None and lo <= mean <= hi
    assert mean_interval(np.asarray([]), 100, 0) == (None, None, None)
    assert mean_interval(np.asarray([1.5]), 100, 0) == (1.5, None, None)
    assert {a: len(cs) for a, cs in data.cascades.items()} == {
        a: m["overall"]["cascades"] for a, m in metrics["arms"].items()}


def test_degree_section_splits_distinct_graphs_and_draws_directed_degrees(
        social_run: tuple[Path, list[dict[str, Any]]]) -> None:
    out, _ = social_run
    series = series_of([load_run(out)])
    data = series[0].run.data
    g = data.graphs["friends"]
    data.graphs["friends"] = {**g, "directed": True, "edges": g["edges"] * 2,
                              "in_degree": g["degree"], "out_degree": g["degree"]}
    body = degrees(Figures(), series)
    assert body.count('class="plotly-graph-div"') == 1 and "every arm" not in body
    assert "in-degree" in body and "out-degree" in body
    assert "<th>pop</th><th>friends</th>" in body and f"<td>{g['edges'] * 2}</td>" in body
