"""The HTML report: every section, numbers from the trace, offline, and rendered in a real
headless Chromium (Debian's ``chromium`` package, driven through Playwright)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from agents.llm import FakeChatModel
from scenarios.loader import load_scenario
from simulations.cli.main import main
from simulations.report.html import SECTIONS, _deciles, build_report
from simulations.run.runner import prepare, run
from tests.shipped import shipped
from tests.test_llm_brain import _answer_all, _llm_scenario
from tests.test_social import _scenario as _social_scenario

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags that work in a container without a GPU, sandbox or network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A feed run with new items, a conversation run, an LLM run (fake model) and a social
    run (its own sections: tests/test_social_report.py)."""
    root = tmp_path_factory.mktemp("report_runs")
    feed = run(prepare(load_scenario(shipped("quickstart.yaml")), users=12,
                       seed=5), root / "feed").run_dir
    conv = run(prepare(load_scenario(shipped("conversation.yaml")), users=10),
               root / "conv").run_dir
    base = _llm_scenario(root)
    llm = dataclasses.replace(base, scenario=base.scenario.model_copy(update={
        "recommenders": load_scenario(shipped("llm_feed.yaml")
                                      ).scenario.recommenders}))
    llm_dir = run(prepare(llm, users=3), root / "llm",
                  chat_model=FakeChatModel(responses=_answer_all)).run_dir
    social = run(prepare(load_scenario(_social_scenario(root, rounds=2))),
                 root / "social").run_dir
    return {"feed": feed, "conv": conv, "llm": llm_dir, "social": social}


@pytest.fixture(scope="module")
def report_html(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(runs["feed"]), str(runs["conv"]), str(runs["llm"]),
                 str(runs["social"]),
                 "-o", str(out)]) == 0
    return out


def _sections(text: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', text, flags=re.S))


def test_every_section_is_present_with_a_plot(report_html: Path) -> None:
    text = report_html.read_text(encoding="utf-8")
    sections = _sections(text)
    # Robustness verdicts come from `recarena compare --taste` only; these runs have none,
    # so that section is left out (no empty panels) and the overview says why.
    assert list(sections) == [sid for sid, _ in SECTIONS if sid != "robustness"]
    assert "Robustness across user models" in sections["overview"]
    for sid, body in sections.items():
        plots = body.count('class="plotly-graph-div"')
        assert plots == (0 if sid == "overview" else 1), sid  # the overview is tables
    # One newPlot per plot div, and the data it plots is inlined beside it.
    assert text.count("Plotly.newPlot(") == len(SECTIONS) - 2


def test_report_is_self_contained_and_offline(report_html: Path) -> None:
    text = report_html.read_text(encoding="utf-8")
    assert "plotly.js v" in text  # the library itself, inlined
    assert not re.search(r"<script[^>]*\bsrc=", text, flags=re.I)
    # Markup outside the inlined scripts loads nothing from a network. (plotly.js holds
    # URLs as strings, e.g. its logo link and map attributions; the browser test checks
    # that opening the report requests nothing but the file.)
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", text, flags=re.S | re.I)
    assert len(markup) < len(text) // 10
    assert re.findall(r'(?:src|href)\s*=\s*["\']?\s*(?:https?:)?//', markup, flags=re.I) == []
    assert not re.search(r"<link\b|<iframe\b|<img\b|@import|url\(", markup, flags=re.I)


def test_report_numbers_come_from_the_trace(runs: dict[str, Path], report_html: Path) -> None:
    text = report_html.read_text(encoding="utf-8")
    overview = _sections(text)["overview"]
    for name in ("feed", "llm"):
        summary = json.loads((runs[name] / "summary.json").read_text())
        for m in summary["metrics"]["arms"].values():
            assert f"{m['overall']['watch_rate']:.3f}" in overview
            assert f"{m['overall']['satisfaction']:.3f}" in overview
    conv = json.loads((runs["conv"] / "summary.json").read_text())
    for m in conv["metrics"]["arms"].values():
        assert f"{m['overall']['success_rate']:.3f}" in overview


def test_sections_without_data_are_left_out_and_say_why(runs: dict[str, Path]) -> None:
    sections = _sections(build_report([runs["conv"]], resamples=100))
    for sid in ("headline", "llm", "new-items"):
        assert sid not in sections  # no empty panels
    why = re.search(r'<p class="note" id="not-shown">(.*?)</p>', sections["overview"]).group(1)
    assert "No feed runs" in why and "No LLM calls" in why and "No add_items events" in why
    assert 'class="plotly-graph-div"' in sections["conversation"]


def test_popularity_deciles() -> None:
    pop = {str(i): i for i in range(20)}  # item i was seen i times
    d = _deciles(pop)
    assert [d[str(i)] for i in range(20)] == [k // 2 + 1 for k in range(20)]


def test_report_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    rc = main(["report", str(tmp_path / "nope"), "-o", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a run folder" in err and len(err.splitlines()) == 1
    monkeypatch.setitem(sys.modules, "plotly.offline", None)  # as if plotly were missing
    rc = main(["report", str(runs["feed"]), "-o", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert rc == 2 and "pip install 'recarena[report]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_movielens_report_has_real_ratings_and_demographic_groups(
        ml100k: Path, tmp_path: Path) -> None:
    loaded = load_scenario(shipped("movielens_feed.yaml"))
    d = run(prepare(loaded, users=40, data=str(ml100k)), tmp_path / "ml").run_dir
    ref = json.loads((d / "reference.json").read_text())
    assert ref["real_ratings"] and set(ref["heldout_ratings"]) == {"1", "2", "3", "4", "5"}
    assert len(ref["item_popularity"]) == 1682
    sections = _sections(build_report([d], resamples=100))
    assert "held-out real ratings, ml-100k" in sections["ratings"]
    for title in ("watch rate by gender", "watch rate by age",
                  "satisfaction (1-10) by activity"):
        assert title in sections["groups"]


# ----------------------------------------------------------------------------- browser


@pytest.mark.skipif(not Path(CHROMIUM).exists(),
                    reason=f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)")
def test_report_renders_in_headless_chromium(report_html: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    remote: list[str] = []
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        try:
            page = ctx.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: None if r.url.startswith(("file:", "data:", "about:"))
                    else remote.append(r.url))
            page.goto(report_html.as_uri(), wait_until="load")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.plotly-graph-div')]"
                ".every(d => d.querySelector('svg.main-svg') && d._fullLayout)",
                timeout=120_000)
            plots: list[dict[str, Any]] = page.evaluate("""() =>
                [...document.querySelectorAll('.plotly-graph-div')].map(d => ({
                    section: d.closest('section').id,
                    traces: d.data.length,
                    drawn: d.querySelectorAll('.main-svg g.trace').length,
                    shapes: [...d.querySelectorAll('.main-svg g.trace path')]
                        .filter(p => (p.getAttribute('d') || '').length > 2).length,
                }))""")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            ctx.close()
    assert problems == [] and remote == []
    tables = ("overview", "robustness")  # sections without a plot
    assert [x["section"] for x in plots] == [sid for sid, _ in SECTIONS if sid not in tables]
    for x in plots:
        assert x["traces"] > 0 and x["drawn"] == x["traces"] and x["shapes"] > 0, x
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("RECARENA_ARTIFACTS")
    if keep:  # for a person to look at
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
        shutil.copy(report_html, Path(keep) / "report.html")
