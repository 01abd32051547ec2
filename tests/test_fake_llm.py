"""`--llm fake`: every shipped scenario whose agents use a language model runs end to end on
the project's scripted chat model (no model, no network) for a few users, with every LLM
decision answered (no decision failures), reproducibly; the shipped team offers its
knowledge-graph tools only in worlds that have a graph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.library import Library
from agents.toolbox import KG_TOOLS, offered
from scenarios.loader import load_scenario
from simulations.record.trace import read_trace, strip_volatile
from tests.shipped import shipped
from tests.test_cli import assert_one_line, cli

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(shipped().glob("*.yaml"))


def _uses_llm(path: Path) -> bool:
    loaded = load_scenario(path, llm_flag=True)
    return any(r.config.brain.kind == "llm" for r in loaded.roles) or bool(loaded.agents)


LLM_SCENARIOS = [p for p in SHIPPED if _uses_llm(p)]


def test_the_shipped_llm_scenarios_are_the_ones_expected() -> None:
    assert {p.stem for p in LLM_SCENARIOS} == {"agent_conversation", "agent_feed", "agentcf",
                                                "llm_feed", "social_llm", "attack_injection"}


def _run(capsys: pytest.CaptureFixture[str], path: Path, out: Path,
         *extra: str) -> dict[str, Any]:
    rc, stdout, err = cli(capsys, "run", path, "--llm", "fake", "--users", "2", "--out", out,
                          "--json", "--quiet", *extra)
    assert rc == 0, err
    result: dict[str, Any] = json.loads(stdout)
    return result


@pytest.mark.parametrize("path", LLM_SCENARIOS, ids=lambda p: p.stem)
def test_a_shipped_llm_scenario_runs_on_the_fake_model(
        path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    res = _run(capsys, path, tmp_path / "run")
    assert res["status"] == "completed"
    assert res["llm"]["backend"] == "fake" and res["llm"]["calls"] > 0
    arms = res["metrics"]["arms"]
    assert set(arms) == {r.name for r in load_scenario(path, llm_flag=True)
                         .scenario.recommenders}
    # Every LLM decision parsed: the fake model answers each prompt in its shape.
    assert all(m.get("decision_failures", 0) == 0 for m in arms.values()), arms
    events = read_trace(tmp_path / "run")
    assert not [e for e in events if e["type"] == "decision_failure"]
    agents = load_scenario(path, llm_flag=True).agents
    for name in agents:  # agent arms answered through their model, not a fallback
        calls = [e for e in events if e["type"] == "llm_call" and e.get("arm") == name]
        assert calls, name
        assert not [e for e in events if e.get("arm") == name and e["type"] == "agent_failure"]


def test_a_fake_run_is_reproducible_and_resumable_with_the_same_model(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = shipped("agent_feed.yaml")
    a = _run(capsys, path, tmp_path / "a")
    b = _run(capsys, path, tmp_path / "b")
    assert a["metrics"] == b["metrics"]
    assert [strip_volatile(e) for e in read_trace(tmp_path / "a")] == \
        [strip_volatile(e) for e in read_trace(tmp_path / "b")]
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["resume"]["llm"] == "fake"  # a resume talks to the same fake model


@pytest.mark.parametrize("path", [p for p in SHIPPED if p not in LLM_SCENARIOS],
                         ids=lambda p: p.stem)
def test_fake_on_a_scenario_without_a_model_is_refused(
        path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = cli(capsys, "run", path, "--llm", "fake", "--users", "2", "--out",
                     tmp_path / "run", "--quiet")
    assert rc == 2 and "uses no LLM" in assert_one_line(err)
    assert not (tmp_path / "run").exists()


def test_validate_llm_fake_accepts_every_shipped_llm_scenario(
        capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "validate", "--llm", "fake", *LLM_SCENARIOS)
    assert rc == 0, err
    assert len(out.splitlines()) == len(LLM_SCENARIOS)


def test_an_unknown_llm_spec_is_one_line(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    rc, _, err = cli(capsys, "run", LLM_SCENARIOS[0], "--llm", "fake:gpt", "--out",
                     tmp_path / "r", "--quiet")
    assert rc == 2 and "--llm: expected" in assert_one_line(err) and "fake" in err


# ----------------------------------------------------------------------------- KG tools


def test_kg_tools_are_offered_only_with_a_graph(tmp_path: Path) -> None:
    from tools.synthetic import make_world

    ds = make_world(20, 30, 4, 8, 5, seed=0)
    lib = Library.for_dataset(ds, ds.interactions, None, seed=0)
    names = ["item_info", *KG_TOOLS, "search_catalog"]
    assert lib.kg_paths is None
    assert offered(lib, names) == ["item_info", "search_catalog"]
    (tmp_path / "x.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\n")
    (tmp_path / "x.link").write_text("item_id:token\tentity_id:token\n")
    with_graph = Library(lib.world, lib.history, lib.user_ids, name="x",
                         kg_paths=(tmp_path / "x.kg", tmp_path / "x.link"))
    assert offered(with_graph, names) == names


def test_the_shipped_team_calls_no_kg_tool_in_a_world_without_a_graph(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = shipped("agent_conversation.yaml")
    _run(capsys, path, tmp_path / "run")
    calls = [e for e in read_trace(tmp_path / "run") if e["type"] == "tool_call"]
    used = {e["tool"] for e in calls}
    assert calls and "similar_items" in used  # the searcher still looks things up
    assert not used & set(KG_TOOLS), used
    assert not [e for e in calls if "no knowledge graph" in e["result"]]


def test_the_shipped_team_uses_the_graph_where_there_is_one(
        ml100k: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # The conversation scenario moved onto MovieLens 100K, whose ml-100k.kg and .link sit
    # beside the ratings: the searcher's kg_neighbours is offered and answers.
    if not (ml100k / "ml-100k.kg").is_file():
        pytest.skip("no ml-100k.kg beside the data")
    scn = yaml.safe_load(shipped("agent_conversation.yaml").read_text())
    # The per-user split: under the global one a single sampled user may have no held-out
    # target to look for, and this test is about the tools, not the split.
    scn["dataset"] = {"source": "files", "split": "per_user"}
    scn["population"]["role"] = str(shipped("roles", "utility_user.yaml"))
    scn["recommenders"] = [
        {**r, "agent": str(shipped() / r["agent"])}
        for r in scn["recommenders"] if r["name"] == "team"]
    path = tmp_path / "kg.yaml"
    path.write_text(yaml.safe_dump(scn))
    rc, _, err = cli(capsys, "run", path, "--llm", "fake", "--users", "1", "--data", ml100k,
                     "--out", tmp_path / "run", "--quiet", "--json")
    assert rc == 0, err
    kg = [e for e in read_trace(tmp_path / "run")
          if e["type"] == "tool_call" and e["tool"] in KG_TOOLS]
    assert kg and all(e["ok"] and "no knowledge graph" not in e["result"] for e in kg)


def test_eval_task_runs_the_shipped_team_on_the_fake_model(
        ml100k: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "eval", "task", "--task", "sr", "--team",
                       shipped("teams", "macrec.yaml"), "--llm", "fake",
                       "--users", "1", "--samples", "1", "--negatives", "4", "--data", ml100k,
                       "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["llm"] == "fake:fake"
    team = res["models"]["macrec"]
    assert team["kind"] == "agent" and team["instances"] == 1 and team["failures"] == 0
    assert team["tokens_per_instance"]["input"] > 0  # answered by the model, not a fallback
