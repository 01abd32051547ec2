"""The report's figures as specs: no empty panels, rate axes from 0 (to at most 1.1),
legends outside the plots (never over tick labels or axis titles), no cost chart when
every cost is 0. (tests/test_report.py renders the same report in headless Chromium.)"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from simulations.report.html import SECTIONS, build_report
from tests.test_report import runs  # noqa: F401  (the module's run fixture)

pytest.importorskip("plotly")

_RATE_WORDS = ("rate", "share", "success", "Gini")


def figures(text: str) -> list[dict[str, Any]]:
    """Every figure of a report: its section, traces and layout (parsed from the
    ``Plotly.newPlot("plot-N", data, layout, config)`` calls)."""
    out = []
    dec = json.JSONDecoder()
    for sec_id, body in re.findall(r'<section id="([^"]+)">(.*?)</section>', text, flags=re.S):
        for m in re.finditer(r'Plotly\.newPlot\(\s*"plot-\d+",\s*', body):
            data, end = dec.raw_decode(body, m.end())
            rest = body[end:].lstrip()[1:].lstrip()  # past the comma
            layout, _ = dec.raw_decode(rest)
            out.append({"section": sec_id, "data": data, "layout": layout})
    return out


def _axes(layout: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in layout.items() if re.fullmatch(kind + r"axis\d*", k)}


def _title(layout: dict[str, Any], axis: str) -> str:
    """The subplot title above ``axis`` (an annotation), else the axis title."""
    ax = layout[axis]
    t = (ax.get("title") or {}).get("text") or ""
    dom = ax.get("domain", [0, 1])
    xdom = layout.get("x" + axis[1:], {}).get("domain", [0, 1])
    for a in layout.get("annotations", []):
        if abs(a.get("y", -1) - dom[1]) < 1e-6 and xdom[0] - 1e-6 <= a.get("x", -1) <= \
                xdom[1] + 1e-6:
            return str(a.get("text", "")) + " " + t
    return t


@pytest.fixture(scope="module")
def report(runs: dict[str, Path]) -> str:  # noqa: F811
    return build_report([runs["feed"], runs["conv"], runs["llm"]], resamples=100)


def _assert_no_empty_panels(text: str) -> list[dict[str, Any]]:
    figs = figures(text)
    for f in figs:
        used = {(t.get("xaxis") or "x") for t in f["data"]}
        for ax in _axes(f["layout"], "x"):
            ref = "x" + ax[5:]
            assert ref in used, (f["section"], ax, "a panel without data")
    return figs


def test_no_empty_panels(report: str) -> None:
    figs = _assert_no_empty_panels(report)
    # The robustness section is a table, and only for `recarena compare --taste` runs;
    # the social world's sections need a social run (tests/test_social_report.py).
    assert {f["section"] for f in figs} == {sid for sid, _ in SECTIONS
                                             if sid not in ("overview", "robustness")
                                             and not sid.startswith("social-")}


def test_no_empty_panel_without_reference_or_conversations(
        runs: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    # A feed run without reference.json has no popularity deciles: Gini alone.
    bare = tmp_path / "bare"
    shutil.copytree(runs["feed"], bare)
    (bare / "reference.json").unlink()
    figs = _assert_no_empty_panels(build_report([bare], resamples=50))
    pop = next(f for f in figs if f["section"] == "popularity")
    assert [a["text"] for a in pop["layout"]["annotations"]] == ["Gini of exposure"]
    # Conversations alone: no feed sections, and their absence is said in the overview.
    text = build_report([runs["conv"]], resamples=50)
    figs = _assert_no_empty_panels(text)
    assert {f["section"] for f in figs} == {"groups", "conversation"}
    assert 'id="not-shown"' in text


def test_rate_axes_start_at_0_and_end_at_1_at_most(report: str) -> None:
    seen = 0
    for f in figures(report):
        for name, ax in _axes(f["layout"], "y").items():
            if f["section"] != "llm":  # token counts in box plots: autorange
                assert ax.get("rangemode") == "tozero" or ax.get("range", [None])[0] == 0, name
            title = _title(f["layout"], name)
            if any(w in title for w in _RATE_WORDS) and "entropy" not in title:
                seen += 1
                assert ax["range"][0] == 0 and 0 < ax["range"][1] <= 1.1, (f["section"], title)
            if "satisfaction" in title:
                assert ax["range"] == [0, 10], (f["section"], title)
    assert seen >= 6


def test_legends_sit_outside_the_plots(report: str) -> None:
    for f in figures(report):
        leg = f["layout"]["legend"]
        # Right of every plot area (x > 1, anchored on its left), top-aligned: clear of
        # the x-axis titles and tick labels below and of the subplot titles above.
        assert leg["x"] > 1 and leg["xanchor"] == "left" and leg["orientation"] == "v"
        for ax in _axes(f["layout"], "x").values():
            assert ax.get("domain", [0, 1])[1] <= 1.0


def test_no_cost_chart_when_every_cost_is_0(runs: dict[str, Path],  # noqa: F811
                                            tmp_path: Path) -> None:
    text = build_report([runs["llm"]], resamples=50)
    llm = [f for f in figures(text) if f["section"] == "llm"]
    titles = [a["text"] for f in llm for a in f["layout"].get("annotations", [])]
    assert llm and "cost per agent (USD)" not in titles and len(_axes(llm[0]["layout"], "x")) == 1
    assert "no cost chart" in text
    # The same run with a priced call has the cost chart.
    priced = tmp_path / "priced"
    shutil.copytree(runs["llm"], priced)
    trace = priced / "trace.jsonl"
    lines = trace.read_text().splitlines()
    for k, line in enumerate(lines):
        ev = json.loads(line)
        if ev.get("type") == "llm_call":
            ev["cost_usd"] = 0.002
            lines[k] = json.dumps(ev)
            break
    trace.write_text("\n".join(lines) + "\n")
    (priced / "trace.index.sqlite").unlink(missing_ok=True)
    text = build_report([priced], resamples=50)
    llm = [f for f in figures(text) if f["section"] == "llm"]
    assert "cost per agent (USD)" in [a["text"] for a in llm[0]["layout"]["annotations"]]
