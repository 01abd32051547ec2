"""Item agents that learn during a run (issue 20): each arm's own items, taught by that
arm's watches between rounds, shown in the next round's prompts, traced (``item_update``),
summarised, resumed to the same texts, and nothing changed for runs without them."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.items.live import ArmItems, trained_items
from scenarios.item_role import load_item_role
from simulations.record.trace import read_trace, strip_volatile
from tests.shipped import shipped
from tools.dataset import Interactions
from tools.world import World

REPO = Path(__file__).resolve().parents[1]

# A small synthetic feed (fast: no knowledge graph, 120 items): LLM users, a classic arm
# and an LLMRank arm, three rounds, so items learn twice.
SCENARIO = """\
kind: scenario
name: items_learn
seed: 3
dataset:
  source: synthetic
  synthetic: {{n_users: 60, n_items: 120, n_genres: 8, history_mean: 15}}
item_agents: {roles}/item_agent.yaml
population:
  size: 6
  role: {roles}/llm_user.yaml
recommenders:
  - {{name: ease, model: ease, params: {{l2: 100.0}}}}
  - name: llmrank
    model: agent
    agent: {roles}/llmrank.yaml
    candidates: {{model: ease, n: 12, params: {{l2: 100.0}}}}
environment: {{kind: feed, items_per_page: 6, max_pages: 1, rounds: 3}}
llm: {{backend: fake, model: fake}}
output: {{dir: runs, keep_prompts: true}}
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RECARENA_CRASH_AT"}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def _recarena(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulations.cli.main", *args],
                          env=_env(**env), capture_output=True, text=True, timeout=600,
                          check=False)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("scenario") / "items_learn.yaml"
    p.write_text(SCENARIO.format(roles=shipped("roles")))
    return p


@pytest.fixture(scope="module")
def reference(scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = _recarena("run", str(scenario), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


def _updates(run: Path) -> list[dict[str, Any]]:
    return [e for e in read_trace(run) if e["type"] == "item_update"]


# A user's page line ("ID | Title | ... | liked by TEXT") and a candidate line of a
# recommender role ("ID: Title, genres; liked by TEXT").
# The social world's lines may go on after the note (" | told by user ...").
_LINE = re.compile(r"^-?\s*([^\s|:]+)(?: \| .*? \| |: .*?; )liked by (.*?)(?: \| .*)?$",
                   re.MULTILINE)


def _shown(run: Path, arm: str, round_: int) -> dict[str, set[str]]:
    """Item id -> the texts the prompts of ``arm``'s round showed beside it."""
    out: dict[str, set[str]] = {}
    for e in read_trace(run):
        if e["type"] == "llm_call" and e.get("arm") == arm and e.get("round") == round_:
            for _role, content in e["request"]["messages"]:
                for iid, text in _LINE.findall(content):
                    out.setdefault(iid, set()).add(text)
    return out


def _prepared(scenario: Path) -> Any:
    from scenarios.loader import load_scenario
    from simulations.run.prepare import prepare

    return prepare(load_scenario(scenario, llm_flag=True))


def _choices(run: Path, arm: str, round_: int, liked: float) -> list[tuple[str, str]]:
    """(user id, item id) the arm's users chose in the round, in trace order: feed watches
    rated at least ``liked``, or accepted conversation suggestions (sorted by user, as
    conversations end)."""
    evs = [e for e in read_trace(run) if e.get("arm") == arm and e.get("round") == round_]
    watched = [(e["user"], e["item"]) for e in evs if e["type"] == "decision"
               and e["action"] == "watch" and (e["rating"] or 0) >= liked]
    accepted = sorted(((e["user"], e["accept"]) for e in evs
                       if e["type"] == "verdict" and e["accept"] is not None),
                      key=lambda x: int(x[0]))
    return watched + accepted


def _expected_texts(scenario: Path, run: Path, arm: str, rounds: int) -> list[str]:
    """The arm's item texts after ``rounds`` rounds, recomputed outside the run from its
    trace: each round's choices, in order, teach a fresh copy of the items trained on the
    history."""
    prep = _prepared(scenario)
    ds = prep.dataset
    users = {uid: k for k, uid in enumerate(ds.user_ids)}
    items = ArmItems(prep.items)
    for r in range(1, rounds + 1):
        items.update(r, [(users[u], ds.catalog.index[i])
                         for u, i in _choices(run, arm, r, items.liked)])
    return items.texts


# ----------------------------------------------------------------------------- unit


def _world(n_users: int = 6) -> tuple[Any, Interactions, Any]:
    from tools.synthetic import make_world

    ds = make_world(n_users=n_users, n_items=30, n_genres=4, history_mean=8, seed=1)
    return ds, ds.interactions, load_item_role(shipped("roles", "item_agent.yaml"))


def test_one_arms_watches_never_change_another_arms_items() -> None:
    ds, history, role = _world()
    start = trained_items(ds, history, role, seed=0)
    ds = dataclasses.replace(ds, catalog=dataclasses.replace(ds.catalog,
                                                             agent_texts=start.shown))
    a, b = ArmItems(start), ArmItems(start)
    before_agents = [dict(start.agents.item(i)) for i in range(ds.n_items)]
    a.show()
    # Every user of arm a chooses the same few items, twice: their tags must move.
    chosen = [(u, i) for u in range(ds.n_users) for i in (0, 1, 2)]
    up = a.update(1, chosen)
    up2 = a.update(2, chosen)
    assert up.steps == len(chosen) and (up.changed or up2.changed)
    changed = set(up.changed) | set(up2.changed)
    assert any(a.texts[i] != start.texts[i] for i in changed)
    # Arm b, the start state and the start texts are untouched.
    assert b.texts == list(start.texts)
    assert [dict(b.agents.item(i)) for i in range(ds.n_items)] == before_agents
    assert [dict(start.agents.item(i)) for i in range(ds.n_items)] == before_agents
    assert b.agents.users == start.agents.users != a.agents.users
    # What prompts read is the arm shown last, through every copy of the catalogue.
    from tools.data_model import item_note

    i = next(iter(changed))
    assert item_note(ds.catalog, i) == f"liked by {a.texts[i]}"
    b.show()
    assert item_note(ds.catalog, i) == f"liked by {start.texts[i]}"


def test_the_same_seed_teaches_the_same_texts_and_another_seed_other_negatives() -> None:
    ds, history, role = _world()
    start = trained_items(ds, history, role, seed=0)
    chosen = [(u, i) for u in range(ds.n_users) for i in (3, 4)]
    x, y = ArmItems(start), ArmItems(start)
    assert x.update(1, chosen) == y.update(1, chosen)
    assert x.texts == y.texts
    steps = [(s.negative, s.swap) for s in ArmItems(start)._steps(1, chosen)]
    other = trained_items(ds, history, role, seed=1)
    assert steps != [(s.negative, s.swap) for s in ArmItems(other)._steps(1, chosen)]
    # Negatives are never the chosen item nor one the user rated or chose before.
    for s in ArmItems(start)._steps(1, chosen):
        assert s.negative != s.positive and s.negative not in set(start.rated[s.user])


def test_prompts_show_the_arm_being_served() -> None:
    from agents.brains.prompts import item_line

    ds, history, role = _world()
    start = trained_items(ds, history, role, seed=0)
    cat = dataclasses.replace(ds.catalog, agent_texts=start.shown)
    n = ds.n_items
    world = World(catalog=dataclasses.replace(cat), embeddings=np.zeros((n, 2)),
                  item_mean=np.zeros(n), popularity=np.zeros(n), global_mean=3.0)
    a = ArmItems(start)
    a.texts[5] = "people who learned something"
    a.show()
    assert item_line(world.catalog, 5).endswith("| liked by people who learned something")


# ----------------------------------------------------------------------------- runs


def test_items_learn_from_their_arms_watches_and_prompts_show_it(
        scenario: Path, reference: Path) -> None:
    ups = _updates(reference)
    # One update per arm after every round but the last, in the order the run went.
    assert [(u["arm"], u["round"]) for u in ups] == [("ease", 1), ("ease", 2),
                                                     ("llmrank", 1), ("llmrank", 2)]
    assert all(u["steps"] > 0 for u in ups) and any(u["changed"] > 0 for u in ups)
    prep = _prepared(scenario)
    start = prep.items.texts
    idx = prep.dataset.catalog.index
    for u in ups:
        assert u["changed"] == len(u["items"])
        if u["example"]:
            assert u["example"]["item"] in u["items"]
            assert u["example"]["before"] != u["example"]["after"]
    # Each arm starts from the history's items, not from the arm that ran before it.
    for u in (x for x in ups if x["round"] == 1 and x["example"]):
        assert u["example"]["before"] == start[idx[u["example"]["item"]]]
    for arm in ("ease", "llmrank"):
        # Round 1's prompts show the history's texts; later rounds the arm's own.
        for rnd in (1, 2, 3):
            texts = _expected_texts(scenario, reference, arm, rnd - 1)
            shown = _shown(reference, arm, rnd)
            assert shown, (arm, rnd)
            for iid, seen in shown.items():
                assert seen == {texts[idx[iid]]}, (arm, rnd, iid)
        # Some prompt after the first round shows a text the items learned in the run.
        learned = [iid for rnd in (2, 3) for iid, seen in _shown(reference, arm, rnd).items()
                   if seen != {start[idx[iid]]}]
        assert learned, arm


def test_summary_and_trace_views_list_item_updates(reference: Path) -> None:
    summary = json.loads((reference / "summary.json").read_text())
    ups = _updates(reference)
    assert summary["item_updates"] == {
        arm: {str(u["round"]): u["changed"] for u in ups if u["arm"] == arm}
        for arm in ("ease", "llmrank")}
    from simulations.inspection.index import open_index
    from simulations.inspection.render import describe
    from simulations.inspection.summary import render_summary, summarise

    ix = open_index(reference)
    s = summarise(ix)
    assert s["item_updates"] == summary["item_updates"]
    from rich.console import Console

    out = Console(record=True, width=200)
    for part in render_summary(s, out):
        out.print(part)
    text = out.export_text()
    line = next(x for x in text.splitlines() if x.startswith("item agents"))
    assert all(f"{arm} r1 {summary['item_updates'][arm]['1']}" in line
               for arm in ("ease", "llmrank"))
    u = next(x for x in ups if x["example"])
    said = describe(u, lambda i: f"<{i}>", markup=False)
    assert f"{u['changed']} descriptions rewritten" in said and f"<{u['example']['item']}>" \
        in said


def test_a_killed_run_resumes_to_the_same_item_texts(scenario: Path, reference: Path,
                                                     tmp_path: Path) -> None:
    # Killed after llmrank's first item update is on disk (and its checkpoint is not).
    line = next(n for n, e in enumerate(read_trace(reference), 1)
                if e["type"] == "item_update" and e["arm"] == "llmrank")
    out = tmp_path / "run"
    proc = _recarena("run", str(scenario), "--out", str(out), "--quiet",
                     RECARENA_CRASH_AT=f"trace:{line + 3}")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert any(e["type"] == "item_update" and e["arm"] == "llmrank"
               for e in read_trace(out))
    proc = _recarena("resume", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert [strip_volatile(e) for e in _updates(out)] == \
        [strip_volatile(e) for e in _updates(reference)]
    assert [strip_volatile(e) for e in read_trace(out)] == \
        [strip_volatile(e) for e in read_trace(reference)]
    ref = json.loads((reference / "summary.json").read_text())
    got = json.loads((out / "summary.json").read_text())
    assert got["item_updates"] == ref["item_updates"] and got["metrics"] == ref["metrics"]


def test_runs_without_item_agents_have_no_item_state(tmp_path: Path) -> None:
    from tests.feed_world import write_feed_scenario

    path = write_feed_scenario(tmp_path, "plain", seed=2, users=8)
    prep = _prepared(path)
    assert prep.items is None and prep.dataset.catalog.agent_texts is None


def test_item_agents_with_the_ray_executor_are_one_line_errors(scenario: Path,
                                                               tmp_path: Path) -> None:
    from scenarios.loader import ScenarioError, load_scenario
    from simulations.run.prepare import RunError, prepare

    with pytest.raises(RunError, match=r"^--executor ray: item agents need executor kind "
                                       "default"):
        prepare(load_scenario(scenario, llm_flag=True), executor={"kind": "ray"})
    bad = tmp_path / "ray.yaml"
    bad.write_text(scenario.read_text() + "executor: {kind: ray}\n")
    line = next(n for n, t in enumerate(bad.read_text().splitlines(), 1)
                if t.startswith("item_agents:"))
    with pytest.raises(ScenarioError, match=rf"^{bad}:{line}: item_agents: item agents need "
                                            "executor kind default"):
        prepare(load_scenario(bad, llm_flag=True))


CONVERSATION = """\
kind: scenario
name: items_talk
seed: 4
dataset:
  source: synthetic
  synthetic: {{n_users: 60, n_items: 120, n_genres: 8, history_mean: 15}}
item_agents: {roles}/item_agent.yaml
population:
  size: 6
  role: {roles}/llm_user.yaml
recommenders:
  - {{name: ease, model: ease, params: {{l2: 100.0}}}}
  - name: chatrec
    model: agent
    agent: {roles}/chatrec.yaml
    candidates: {{model: ease, n: 10, params: {{l2: 100.0}}}}
environment:
  kind: conversation
  rounds: 2
  conversation: {{items_per_turn: 3, max_turns: 3, patience: 3}}
llm: {{backend: fake, model: fake}}
output: {{dir: runs, keep_prompts: true}}
"""


def test_accepted_suggestions_teach_the_items_of_conversations(tmp_path: Path) -> None:
    scn = tmp_path / "talk.yaml"
    scn.write_text(CONVERSATION.format(roles=shipped("roles")))
    out = tmp_path / "run"
    proc = _recarena("run", str(scn), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    prep = _prepared(scn)
    ups = {u["arm"]: u for u in _updates(out)}
    assert set(ups) == {"ease", "chatrec"} and all(u["round"] == 1 for u in ups.values())
    for arm, u in ups.items():
        assert u["steps"] == len(_choices(out, arm, 1, 4.0)) > 0
        texts = _expected_texts(scn, out, arm, 1)
        shown = _shown(out, arm, 2)
        assert shown
        idx = prep.dataset.catalog.index
        for iid, seen in shown.items():
            assert seen == {texts[idx[iid]]}, (arm, iid)
    # Some second-round prompt shows a text the first round taught.
    assert any(seen != {prep.items.texts[prep.dataset.catalog.index[iid]]}
               for arm in ups for iid, seen in _shown(out, arm, 2).items())


SOCIAL = """\
kind: scenario
name: items_social
seed: 11
dataset: {{source: files, path: null, history_fraction: 0.8, split: global}}
item_agents: {roles}/item_agent.yaml
population: {{size: 4, sampling: random, role: {roles}/llm_user.yaml}}
recommenders:
  - {{name: ease, model: ease, params: {{l2: 500.0}}}}
environment:
  kind: social
  items_per_page: 4
  rounds: 2
  settings:
    graph: {{kind: barabasi_albert, m: 1}}
    ticks: 2
    activity: 1.0
    chat_turns: 1
llm: {{backend: fake, model: fake}}
output: {{dir: runs, keep_prompts: true}}
"""


def test_watches_in_the_social_world_teach_its_items(
        ml100k: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECARENA_DATA", str(ml100k))
    scn = tmp_path / "social.yaml"
    scn.write_text(SOCIAL.format(roles=shipped("roles")))
    out = tmp_path / "run"
    proc = _recarena("run", str(scn), "--out", str(out), "--quiet",
                     RECARENA_DATA=str(ml100k))
    assert proc.returncode == 0, proc.stderr
    (u,) = _updates(out)
    assert (u["arm"], u["round"]) == ("ease", 1)
    assert u["steps"] == len(_choices(out, "ease", 1, 4.0)) > 0
    texts = _expected_texts(scn, out, "ease", 1)
    idx = _prepared(scn).dataset.catalog.index
    shown = _shown(out, "ease", 2)
    assert shown
    for iid, seen in shown.items():
        assert seen == {texts[idx[iid]]}, iid
