"""An environment's outcomes are a plug-in: a made-up environment ("tasting": users taste
dishes and like them or not) declares its metrics, per-user sums, run table, report section
and trace words here, in this module only, and the metrics, ``recarena trace summary``,
``recarena trace agent`` and the HTML report read its trace through them. A trace of an
environment nobody registered is still summarised, told and reported, with a note."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulations.analysis.arm_stats import UserSums, arm_stats
from simulations.analysis.metrics import compute_metrics
from simulations.analysis.outcomes import (
    Marks,
    Outcomes,
    ReportSection,
    Scoped,
    UserAcc,
    outcomes_for,
    temporarily_registered,
)
from simulations.analysis.user_stats import arm_tables, metric_names, user_metrics
from simulations.cli.main import main
from simulations.record.trace import TraceWriter, read_trace

# ----------------------------------------------------------------------------- the plug-in

_FIELDS = ("tastings", "likes")
_FIGURES = {"like_rate": ("likes", "tastings")}


class _Tally:
    def __init__(self) -> None:
        self.n = 0
        self.likes = 0

    def result(self) -> dict[str, Any]:
        return {"like_rate": self.likes / self.n if self.n else None, "tastings": self.n}


class _TastingMetrics:
    def __init__(self) -> None:
        self.scopes: Scoped[_Tally] = Scoped(_Tally)
        self.users: dict[str, UserSums] = {}

    def add(self, ev: dict[str, Any]) -> None:
        if ev.get("type") != "tasting":
            return
        for t in self.scopes.targets(ev):
            t.n += 1
            t.likes += bool(ev["liked"])
        us = self.users.setdefault(ev["arm"], UserSums(_FIELDS))
        us.add(ev["user"], "tastings")
        us.add(ev["user"], "likes", float(bool(ev["liked"])))

    def arms(self, n_items: int, ratings: bool) -> dict[str, dict[str, Any]]:
        return {arm: {**self.scopes.result(arm, _Tally.result),
                      "stats": arm_stats(self.users[arm], names=("like_rate",),
                                         sessions="tastings", figures=_FIGURES)}
                for arm in self.scopes.overall}


def _user_event(a: UserAcc, ev: dict[str, Any]) -> bool:
    if ev.get("type") != "tasting":
        return False
    a.f["tastings"] += 1
    a.f["likes"] += bool(ev["liked"])
    a.exposure[str(ev["item"])] += 1
    return True


def _describe(ev: dict[str, Any], title: Callable[[Any], str], m: Marks) -> str:
    verdict = m.b("likes it") if ev["liked"] else "does not like it"
    return f"tastes {m.e(title(ev['item']))}: {verdict}"


def _section(f: Any, series: list[Any], resamples: int, seed: int) -> str:
    from simulations.analysis.paired import value_ci

    rows = [(s.label, value_ci(s.table, "like_rate", resamples=resamples, seed=seed))
            for s in series if s.run.environment == "tasting"]
    if not rows:
        return '<p class="note">No tasting runs.</p>'
    return "<table><tr><th>series</th><th>like rate</th></tr>" + "".join(
        f"<tr><td>{label}</td><td>tasted-like {v[0]:.3f}</td></tr>" for label, v in rows
    ) + "</table>"


TASTING = Outcomes(
    environment="tasting",
    labels={"like_rate": "like rate", "tastings": "tastings"},
    defaults=("like_rate",),
    metrics=_TastingMetrics,
    event_types=("tasting",),
    user_fields=_FIELDS,
    user_event=_user_event,
    ratios=_FIGURES,
    compared=("like_rate", "coverage"),
    summary_columns=lambda metrics: (["like_rate"], ["tastings"]),
    summary_note=lambda metrics, ci: "like rate: share of tasted dishes the user liked.",
    report_sections=(ReportSection("tasting", "Tasting: like rate", _section),),
    describe={"tasting": _describe},
    result_types=("tasting",),
    step_title=lambda name: f"dish {name[1:]}" if name[:1] == "d" else None,
    setting=lambda env: {"dishes": env.get("dishes"), "rounds": env.get("rounds")},
)

# ----------------------------------------------------------------------------- a trace

# (arm, user, dish number, item, liked)
_TASTINGS = [("chef", "1", 1, "7", True), ("chef", "1", 2, "8", False),
             ("chef", "2", 1, "7", True), ("chef", "2", 2, "9", True),
             ("chef", "3", 1, "8", False),
             ("robot", "1", 1, "9", False), ("robot", "2", 1, "9", False),
             ("robot", "2", 2, "7", True), ("robot", "3", 1, "8", False)]


def _write_run(run_dir: Path, environment: str) -> Path:
    run_dir.mkdir()
    with TraceWriter(run_dir / "trace.jsonl") as w:
        w.emit("run_start", "run", scenario="tasting-test", seed=3, environment=environment,
               dataset="dishes", n_items=12, n_users=3, population=3, history_interactions=0,
               config={"environment": {"kind": environment, "dishes": 2, "rounds": 1},
                       "recommenders": [{"name": "chef", "model": "pop"},
                                        {"name": "robot", "model": "random"}]})
        w.emit("population", "run/population", roles={"taster": 3})
        for u, gender in (("1", "F"), ("2", "M"), ("3", "F")):
            w.emit("profile", f"profile/u{u}", user=u, role="taster",
                   traits={"activity": 2}, attrs={"gender": gender})
        for arm in ("chef", "robot"):
            w.emit("round_start", f"{arm}/r1", arm=arm, recommender=arm, round=1, users=3,
                   environment=environment)
            for a, u, k, item, liked in _TASTINGS:
                if a == arm:
                    w.emit("tasting", f"{arm}/r1/u{u}/d{k}", arm=arm, round=1, user=u,
                           role="taster", item=item, liked=liked)
        w.emit("run_end", "run/end", status="completed", reason="", elapsed_s=0.1)
    return run_dir


@pytest.fixture
def tasting() -> Iterator[Outcomes]:
    with temporarily_registered(TASTING) as o:
        yield o
    assert outcomes_for("tasting") is None


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# ----------------------------------------------------------------------------- registered


def test_metrics_and_user_sums_come_from_the_plugin(tmp_path: Path, tasting: Outcomes) -> None:
    run = _write_run(tmp_path / "run", "tasting")
    m = compute_metrics(read_trace(run))
    assert m["environment"] == "tasting" and "note" not in m
    assert list(m["arms"]) == ["chef", "robot"]
    chef, robot = m["arms"]["chef"], m["arms"]["robot"]
    assert chef["overall"] == {"like_rate": 0.6, "tastings": 5}
    assert robot["overall"] == {"like_rate": 0.25, "tastings": 4}
    assert chef["rounds"] == {"1": chef["overall"]} and chef["roles"] == {"taster": chef["overall"]}
    assert chef["decision_failures"] == 0
    stats = chef["stats"]
    assert stats["n_users"] == 3 and stats["n_sessions"] == 5 and stats["impressions"] == 0
    assert stats["like_rate"]["value"] == 0.6 and stats["like_rate"]["n"] == 3
    assert 0.0 <= stats["like_rate"]["lo"] <= 0.6 <= stats["like_rate"]["hi"] <= 1.0
    # Per-user sums: the same figure as a ratio of sums, and each user's own.
    tables = arm_tables(read_trace(run))
    assert tables.arms["chef"].fields == _FIELDS
    assert metric_names("tasting") == ("like_rate", "coverage")
    per_user = user_metrics(tables.arms["chef"])
    assert per_user == {"1": {"like_rate": 0.5}, "2": {"like_rate": 1.0},
                        "3": {"like_rate": 0.0}}
    # Scenario validation knows the metrics of a registered environment, and forgets them.
    from scenarios.schema import ENVIRONMENT_METRICS

    assert ENVIRONMENT_METRICS["tasting"] == ("like_rate",)


def test_trace_summary_shows_its_table(tmp_path: Path, tasting: Outcomes,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    run = _write_run(tmp_path / "run", "tasting")
    code, out, err = _cli(capsys, "trace", "summary", str(run), "--no-pager")
    assert code == 0, err
    assert "tasting: dishes 2, rounds 1" in out
    assert "like rate" in out and "0.600" in out and "0.250" in out
    assert "like rate: share of tasted dishes the user liked." in out
    assert "metrics per round" in out and "no outcome plug-in" not in out
    code, out, err = _cli(capsys, "trace", "summary", str(run), "--json")
    s = json.loads(out)
    assert s["metrics"]["arms"]["robot"]["overall"]["like_rate"] == 0.25
    assert s["metrics"]["source"] == "computed from the trace"  # no summary.json here
    assert s["event_counts"]["tasting"] == len(_TASTINGS)


def test_trace_agent_tells_its_events(tmp_path: Path, tasting: Outcomes,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    run = _write_run(tmp_path / "run", "tasting")
    code, out, err = _cli(capsys, "trace", "agent", str(run), "u2", "--no-pager")
    assert code == 0, err
    lines = [x.strip() for x in out.splitlines()]
    assert "dish 1 chef/r1/u2/d1" in lines and "dish 2 chef/r1/u2/d2" in lines
    assert "tastes item 7: likes it" in lines and "tastes item 9: likes it" in lines
    assert "tastes item 9: does not like it" in lines  # robot's first dish
    assert out.index("chef · round 1") < out.index("robot · round 1")
    assert "no outcome plug-in" not in out
    # trace step: the tasting is what the agent did at that step.
    code, out, err = _cli(capsys, "trace", "step", str(run), "chef/r1/u2/d2", "--no-pager")
    assert code == 0, err
    after = out[out.index("parsed result"):]
    assert "tastes item 9: likes it" in after and "no model call at this step" in out


def test_report_has_its_section(tmp_path: Path, tasting: Outcomes,
                                capsys: pytest.CaptureFixture[str]) -> None:
    run = _write_run(tmp_path / "run", "tasting")
    out = tmp_path / "report.html"
    code, _, err = _cli(capsys, "report", str(run), "-o", str(out), "--resamples", "50")
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    sections = dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', text, flags=re.S))
    assert "tasting" in sections
    assert "<td>chef</td><td>tasted-like 0.600</td>" in sections["tasting"]
    assert "<td>robot</td><td>tasted-like 0.250</td>" in sections["tasting"]
    # The overview's metrics table has the plug-in's columns, with bootstrap intervals.
    overview = sections["overview"]
    assert "tasting metrics" in overview and "<th>like rate</th>" in overview
    assert re.search(r"<td>chef</td><td>0\.600 <small>\[", overview)
    # The groups section uses only metrics some series has (none declared here): absent,
    # and the feed's sections say there is no feed run.
    assert "headline" not in sections and "No feed runs" in overview


# ----------------------------------------------------------------------------- unregistered


def test_an_unknown_environment_is_listed_with_a_note(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert outcomes_for("tasting") is None
    run = _write_run(tmp_path / "run", "tasting")
    m = compute_metrics(read_trace(run))
    assert m["arms"] == {} and "no outcome plug-in" in m["note"]
    code, out, err = _cli(capsys, "trace", "summary", str(run), "--no-pager")
    assert code == 0, err
    assert "environment 'tasting' has no outcome plug-in" in out
    assert "no metrics: no sessions in the trace" in out
    assert f"tasting {len(_TASTINGS)}" in out  # the events are still counted
    code, out, err = _cli(capsys, "trace", "agent", str(run), "1", "--no-pager")
    assert code == 0, err
    assert "environment 'tasting' has no outcome plug-in" in out
    # Events are listed as recorded (their fields), under the step's own name.
    assert "d1 chef/r1/u1/d1" in out and "item=7, liked=true" in out
    report = tmp_path / "report.html"
    code, _, err = _cli(capsys, "report", str(run), "-o", str(report), "--resamples", "20")
    assert code == 0, err
    text = report.read_text(encoding="utf-8")
    assert "environment &#x27;tasting&#x27; has no outcome plug-in" in text


def test_builtin_plugins_match_the_scenario_vocabulary() -> None:
    # Scenario files name metrics from scenarios.schema (engine-free); the built-in plug-ins
    # declare the same defaults, so `metrics:` validation and the run agree.
    from scenarios.schema import ENVIRONMENT_METRICS

    for env in ("feed", "conversation", "social"):
        o = outcomes_for(env)
        assert o is not None and o.defaults == ENVIRONMENT_METRICS[env]
        assert set(o.defaults) <= set(o.labels)
    with pytest.raises(ValueError, match="already has an outcome plug-in"):
        from simulations.analysis.outcomes import register_outcomes

        register_outcomes(Outcomes(environment="feed", labels={}, defaults=(),
                                   metrics=_TastingMetrics, event_types=()))
