"""Item agents (AgentCF, issue 20): the item role file, seeded tags, the deterministic
control's update rules, the training loop's trace and counts, the LLM loop with the fake
model (parse failures counted), and the sr rows on the same instances as the baselines."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from agents.items.control import TagAgents
from agents.items.llm_agents import LLMItemAgents, parse_reflection
from agents.items.loop import TrainStep
from agents.items.store import Descriptions
from agents.llm import FakeChatModel, LLMClient
from memory.embedders import HashEmbedder
from memory.long_term import LongTermStore
from scenarios.item_role import ItemRole, load_item_role
from scenarios.loader import ScenarioError, validate_file
from scenarios.schema import LLMConfig
from simulations.tasks.agentcf import (
    control_rankers,
    item_seeds,
    train_control,
    train_llm,
    training_steps,
)
from simulations.tasks.data import TaskSetup, prepare_tasks
from simulations.tasks.suite import TaskOptions, evaluate_task
from tests.shipped import shipped
from tools.dataset import load_dataset
from tools.item_tags import cosine

FAKE = LLMConfig(backend="openai", model="fake")


@pytest.fixture(scope="module")
def setup(ml100k: Path) -> TaskSetup:
    return prepare_tasks(load_dataset(ml100k))


# ----------------------------------------------------------------------------- role file


def test_shipped_item_role_validates_and_bad_files_name_line_and_field(tmp_path: Path
                                                                       ) -> None:
    path = shipped("roles", "item_agent.yaml")
    assert validate_file(path) == "item"
    role = load_item_role(path)
    assert role.training.sampler == "popularity" and role.training.item_updates
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: item\nname: x\nprompts:\n  reflect_item: 'who likes {item} and "
                   "{target}'\n")
    with pytest.raises(ScenarioError) as e:
        load_item_role(bad)
    assert str(e.value).startswith(f"{bad}:4: prompts.reflect_item: unknown variable "
                                   "{target}")
    bad.write_text("kind: item\ncontrol:\n  item_rate: -1\n")
    with pytest.raises(ScenarioError, match=r":3: control.item_rate: "):
        validate_file(bad)


# ----------------------------------------------------------------------------- seeds


def test_items_are_seeded_from_the_catalogue_and_the_knowledge_graph(setup: TaskSetup
                                                                     ) -> None:
    cat = setup.dataset.catalog
    seeds = item_seeds(setup, ItemRole())
    star_wars = cat.index["50"]
    s = seeds[star_wars]
    assert {f"genre:{g}" for g in cat.genres[star_wars]} <= set(s)
    assert s["decade:1970s"] == 0.5
    kg_tags = [t for t in s if t.startswith(("director:", "actor:"))]
    assert kg_tags and sum(t.startswith("actor:") for t in kg_tags) <= 3
    # Only entities shared with another movie say who else might like it.
    from tools.kg import kg_files, load_kg

    ds = setup.dataset
    files = kg_files(ds.source, ds.name)  # type: ignore[arg-type]
    assert files is not None
    kg = load_kg(*files)
    assert all(kg.n_items_linked(t.split(":", 1)[1]) >= 2 for t in kg_tags)
    no_kg = item_seeds(setup, ItemRole.model_validate({"seed": {"kg_relations": []}}))
    assert not [t for t in no_kg[star_wars] if ":" in t and t.split(":")[0]
                not in ("genre", "decade")]


# ----------------------------------------------------------------------------- control


def _control(item_updates: bool = True, on_right: str = "reinforce") -> TagAgents:
    role = ItemRole.model_validate({
        "training": {"item_updates": item_updates, "on_right": on_right},
        "control": {"user_rate": 1.0, "item_rate": 0.5, "negative_rate": 0.5,
                    "reinforce": 0.5}, "memory": {"keep": 4}})
    seeds = [{"genre:Sci-Fi": 1.0}, {"genre:Drama": 1.0}, {"genre:Sci-Fi": 1.0,
                                                           "genre:Drama": 1.0}]
    return TagAgents(role, seeds, n_users=2, history=lambda u, before: [])


def test_control_wrong_choice_updates_user_then_items() -> None:
    ag = _control()
    # Empty user: both items tie at 0 and the first shown (the negative, swapped) wins.
    step = TrainStep(user=0, positive=0, negative=1, ts=1.0, swap=True)
    c = ag.forward(step)
    assert c.chose == 1
    ag.backward(step, c, right=False)
    # User: + positive's tags, - 0.5 x negative's (dropped at 0).
    assert ag.users[0] == {"genre:Sci-Fi": 1.0}
    # Items, given the updated user: positive gains 0.5 x user, negative loses (stays 0).
    assert ag.learned[0] == {"genre:Sci-Fi": 0.5}
    assert ag.learned[1] == {}
    assert ag.chosen[0] == [0]
    # Now the user prefers the positive: a right choice, reinforced by 0.5.
    c2 = ag.forward(step)
    assert c2.chose == 0
    ag.backward(step, c2, right=True)
    assert ag.users[0]["genre:Sci-Fi"] == pytest.approx(1.5)
    assert ag.learned[0]["genre:Sci-Fi"] == pytest.approx(0.75)


def test_control_ablation_keeps_item_descriptions_and_none_skips_right_updates() -> None:
    off = _control(item_updates=False)
    step = TrainStep(0, 0, 1, 1.0, swap=True)
    off.backward(step, off.forward(step), right=False)
    assert off.users[0] == {"genre:Sci-Fi": 1.0} and off.learned == [{}, {}, {}]
    none = _control(on_right="none")
    none.backward(step, none.forward(step), right=True)
    assert none.users[0] == {} and none.learned[0] == {}


def test_collaborative_signal_reaches_the_next_user() -> None:
    """What user 0 taught item 2 changes how user 1 sees it: only with item updates."""
    scores = {}
    for on in (True, False):
        ag = _control(item_updates=on)
        ag.users[0] = {"genre:Drama": 1.0, "actor:x": 1.0}
        ag.backward(TrainStep(0, 2, 0, 1.0, False), dataclasses.replace(
            ag.forward(TrainStep(0, 2, 0, 1.0, False))), right=True)
        ag.users[1] = {"actor:x": 1.0}
        scores[on] = ag.scores(1, [2], None, "basic")[0]
    assert scores[False] == 0.0 < scores[True]


def test_training_steps_are_time_ordered_history_with_unrated_negatives(setup: TaskSetup
                                                                        ) -> None:
    role = ItemRole.model_validate({"training": {"per_user": 5}})
    users = setup.tuning[:20]
    steps = training_steps(setup, users, role, seed=0)
    h = setup.history
    cutoff = float(setup.future.ts.min())
    assert steps and [s.ts for s in steps] == sorted(s.ts for s in steps)
    assert all(s.ts < cutoff for s in steps)
    for s in steps:
        rated = set(h.item[h.user == s.user].tolist())
        assert s.positive in rated and s.negative not in rated
    per = {u: sum(s.user == u for s in steps) for u in users}
    assert max(per.values()) <= 5
    assert 0.2 < sum(s.swap for s in steps) / len(steps) < 0.8
    assert training_steps(setup, users, role, seed=0) == steps  # seeded


def test_control_trains_with_a_trace_event_per_step(setup: TaskSetup) -> None:
    events: list[tuple[str, str, dict[str, Any]]] = []
    role = ItemRole.model_validate({"training": {"per_user": 3, "epochs": 2}})
    users = setup.tuning[:10]
    ag, stats = train_control(setup, role, users, 0,
                              emit=lambda t, i, **f: events.append((t, i, f)))
    n = len(training_steps(setup, users, role, 0))
    assert [s.steps for s in stats] == [n, n]
    kinds = [t for t, _, _ in events]
    assert kinds.count("agentcf_forward") == kinds.count("agentcf_backward") == 2 * n
    assert kinds.count("agentcf_epoch") == 2
    fw = [f for t, _, f in events if t == "agentcf_forward"]
    assert sum(f["right"] for f in fw[:n]) == stats[0].right
    assert all(f["positive"] in f["shown"] for f in fw)
    # A user whose choice was scored learned tags from its positive.
    assert any(ag.users[u] for u in users)


def test_control_rows_meet_the_baselines_on_the_same_instances(setup: TaskSetup,
                                                               tmp_path: Path) -> None:
    role = ItemRole.model_validate({"training": {"per_user": 5}})
    users = setup.tuning + setup.test
    seeds = item_seeds(setup, role)
    on, _ = train_control(setup, role, users, 0, seeds=seeds)
    off_role = role.model_copy(update={"training": role.training.model_copy(
        update={"item_updates": False})})
    off, _ = train_control(setup, off_role, users, 0, seeds=seeds)
    rows = control_rankers(on, "ctl", ("basic", "history")) + control_rankers(off, "off")
    res = evaluate_task(setup, TaskOptions(task="sr", users=5, samples=2, negatives=9,
                                           sampler="popularity"), more=rows,
                        out=tmp_path / "o")
    assert list(res["models"])[:3] == ["ctl", "ctl+history", "off"]
    assert {"itemknn", "bpr", "ease", "pop"} <= set(res["models"])
    assert all(res["models"][n]["kind"] == "agent" for n in ("ctl", "off"))
    lines = [json.loads(x) for x in (tmp_path / "o" / "answers.jsonl").read_text()
             .splitlines()]
    by = {}
    for x in lines:
        by.setdefault(x["model"], []).append(x["candidates"])
    assert by["ctl"] == by["off"] == by["bpr"]


# ----------------------------------------------------------------------------- LLM loop


def test_parse_reflection_reads_json_only() -> None:
    ok = '{"description": "Fans of   space operas."}'
    assert parse_reflection(ok, 60) == "Fans of space operas."
    assert parse_reflection(f"Sure!\n```json\n{ok}\n```", 60) == "Fans of space operas."
    assert parse_reflection('{"description": "a b c d e f"}', 3) == "a b c"
    # Free text, too short a description, or another shape: not a reflection.
    assert parse_reflection("Fans of space operas and dark comedies.", 60) is None
    assert parse_reflection('{"description": "ok"}', 60) is None
    assert parse_reflection('{"text": "Fans of space operas."}', 60) is None


def _llm(setup: TaskSetup, replies: Any, store: LongTermStore | None = None,
         role: ItemRole | None = None, users: int = 4) -> tuple[Any, Any, list[Any]]:
    events: list[Any] = []
    client = LLMClient(FAKE, chat_model=FakeChatModel(responses=replies))
    role = role or ItemRole.model_validate({"training": {"per_user": 2}})
    ag, stats = train_llm(setup, role, setup.tuning[:users], 0, client, store=store,
                          emit=lambda t, i, **f: events.append((t, i, f)))
    return ag, stats, events


def test_llm_loop_reflects_on_wrong_choices_and_counts_parse_failures(setup: TaskSetup
                                                                      ) -> None:
    def reply(t: list[tuple[str, str]]) -> str:
        prompt = next(c for r, c in t if r == "user")  # a repair turn: the same answer
        if "Which movie" in prompt:
            return "A because it looks fun"
        if "user's self-description" in prompt:
            return '{"description": "I like clever science fiction and dark comedies."}'
        # Item reflections: the passed-over item answers free text (no JSON), even when
        # re-asked: a parse failure.
        if "passed over" in prompt:
            return "Viewers who like clever sci-fi."
        return '{"description": "Viewers who like clever sci-fi."}'

    with LongTermStore(None, HashEmbedder(64)) as store:
        ag, stats, events = _llm(setup, reply, store)
        st = stats[0]
        fw = [f for t, _, f in events if t == "agentcf_forward"]
        bw = [f for t, _, f in events if t == "agentcf_backward"]
        assert len(fw) == len(bw) == st.steps > 0
        wrong = sum(not f["right"] for f in fw)
        right = st.steps - wrong
        assert 0 < wrong < st.steps  # "A" is sometimes the negative, sometimes not
        # Wrong: user + positive + negative (unreadable); right: user + positive.
        assert st.reflections == 3 * wrong + 2 * right
        assert st.parse_failures == wrong
        assert all(f["failures"] == ([] if f["right"] else [f["failures"][0]]) for f in bw)
        # Each failure is its own trace event: which agent, why, the raw answer, and that
        # the update was not applied (the passed-over item keeps its description).
        pf = [f for t, _, f in events if t == "agentcf_parse_failure"]
        assert len(pf) == wrong
        assert all(f["agent"].startswith("item ") and f["applied"] is False
                   and f["raw"] == "Viewers who like clever sci-fi." and f["attempts"] == 2
                   and "JSON" in f["error"] for f in pf)
        neg = setup.dataset.catalog.index[pf[0]["agent"].removeprefix("item ")]
        assert ag.store.item(neg).startswith("people who like")
        epoch = next(f for t, _, f in events if t == "agentcf_epoch")
        assert epoch["parse_failure_rate"] == pytest.approx(round(wrong / st.reflections, 4))
        u = fw[0]["user"]
        dense = setup.dataset.user_ids.index(u)
        assert ag.store.user(dense) == "I like clever science fiction and dark comedies."
        pos = setup.dataset.catalog.index[fw[0]["positive"]]
        assert ag.store.item(pos) == "Viewers who like clever sci-fi."
        # The descriptions are records of the long-term store (the item's replaced by id).
        got = store.recent(f"item:{pos}", 5)
        assert [r.text for r in got] == ["Viewers who like clever sci-fi."]
        assert store.count(f"user:{dense}") >= 2  # description + remembered choices


def test_llm_choice_failures_are_counted_and_ranking_speaks_the_protocol(setup: TaskSetup
                                                                         ) -> None:
    ag, stats, events = _llm(setup, lambda t: "Not sure.", users=2)
    assert stats[0].choice_failures == stats[0].steps
    assert stats[0].parse_failures == stats[0].reflections > 0  # no JSON: unreadable
    # Nothing unreadable was written: every description is still its seed.
    assert all(ag.store.user(u) == "I have not described my tastes yet."
               for u in setup.tuning[:2])
    assert all(f["failure"] == "no A or B in the answer"
               for t, _, f in events if t == "agentcf_forward")
    # The bench's training table and the CLI's summary report the same counts.
    from bench.agentcf import failed_note, training_table
    from simulations.cli.agentcf import _training_lines

    epochs = [s.as_dict() for s in stats]
    row = training_table(epochs)[2].split("|")
    assert [c.strip() for c in row[4:6]] == [str(stats[0].reflections),
                                            str(stats[0].parse_failures)]
    (line,) = _training_lines({"llm": epochs})
    assert f"parse failures (not applied) {stats[0].parse_failures}," in line
    assert sum(t == "agentcf_parse_failure" for t, _, _ in events) == stats[0].parse_failures
    assert f"All {stats[0].reflections} reflections failed" in failed_note(epochs)
    assert failed_note([{**epochs[0], "parse_failures": 1}]) == ""
    from agents.recsys.protocol import RankRequest

    cat = setup.dataset.catalog
    cands = [cat.index[i] for i in ("50", "1", "181", "100")]
    (r,) = ag.rank([RankRequest(user=setup.test[0], candidates=cands, k=4)])
    assert r.failure == "no candidate id in the answer" and r.items == cands


def test_llm_chat_ranking_reads_ids_and_keeps_the_rest_in_order(setup: TaskSetup) -> None:
    from agents.recsys.protocol import RankRequest

    seen: list[str] = []

    def reply(t: list[tuple[str, str]]) -> str:
        seen.append(t[-1][1])
        return "181, 50, 999"  # 999 is no candidate

    ag, _, _ = _llm(setup, reply, users=1)
    cat = setup.dataset.catalog
    cands = [cat.index[i] for i in ("50", "1", "181", "100")]
    for mode in ("basic", "history", "retrieval"):
        (r,) = ag.with_mode(mode).rank([RankRequest(user=setup.test[0], candidates=cands,
                                                    k=3)])
        assert r.failure is None
        assert r.items == [cat.index["181"], cat.index["50"], cat.index["1"]]
    assert "Recently watched:\n- none" not in seen[-2]  # history mode shows the history


def test_llm_rows_in_the_sr_task_with_scored_choices(setup: TaskSetup) -> None:
    # Base-model path: choices and rankings from log-probabilities; the fake scorer prefers
    # " A" and " yes" when the prompt mentions a Sci-Fi movie last.
    def scorer(prompt: str, options: Any) -> list[float]:
        last = prompt.rsplit("Movie", 1)[-1]
        good = "Sci-Fi" in last
        return [-0.1, -2.0] if good else [-2.0, -0.1]

    role = ItemRole.model_validate({"training": {"per_user": 2}, "decision_mode": "scored",
                                    "memory": {"store": "none"}})
    client = LLMClient(FAKE, chat_model=FakeChatModel(
        responses=lambda t: "Fans of science fiction adventures.", scorer=scorer))
    ag, stats = train_llm(setup, role, setup.tuning[:3], 0, client)
    assert isinstance(ag, LLMItemAgents) and ag.scored
    assert stats[0].choice_failures == 0
    rows = [ag, ag.with_mode("history"), ag.with_mode("retrieval")]
    res = evaluate_task(setup, TaskOptions(task="sr", users=2, samples=1, negatives=9),
                        more=rows)
    for name in ("agentcf", "agentcf+history", "agentcf+retrieval"):
        m = res["models"][name]
        assert m["kind"] == "agent" and m["failures"] == 0
        assert m["tokens_per_instance"]["input"] > 0
    cat = setup.dataset.catalog
    # The fake prefers Sci-Fi: the agent's first item is a Sci-Fi candidate when any is.
    from agents.recsys.protocol import RankRequest
    x = setup.test[0]
    cands = [cat.index[i] for i in ("50", "1", "181", "100")]
    (r,) = ag.rank([RankRequest(user=x, candidates=cands, k=4)])
    assert "Sci-Fi" in cat.genres[r.items[0]]


def test_cosine_is_symmetric_and_bounded() -> None:
    a, b = {"x": 1.0, "y": 2.0}, {"y": 1.0}
    assert cosine(a, b) == pytest.approx(cosine(b, a))
    assert 0 < cosine(a, b) <= 1 and cosine(a, {}) == 0.0


def test_descriptions_without_store() -> None:
    d = Descriptions(["a b c"], 1, user_default="none yet")
    d.set_item(0, "fans of x")
    assert d.item(0) == "fans of x" and d.user(0) == "none yet" and d.recall(0, "q", 2) == []


# ----------------------------------------------------------------------------- feed


def test_agentcf_scenario_runs_on_the_fake_model_with_item_agent_texts_in_prompts(
        ml100k: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from simulations.cli.main import main
    from simulations.record.trace import read_trace

    monkeypatch.setenv("RECARENA_DATA", str(ml100k))
    path = shipped("agentcf.yaml")
    assert validate_file(path) == "scenario"
    out = tmp_path / "run"
    rc = main(["run", str(path), "--llm", "fake", "--users", "2", "--out", str(out),
               "--json", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    res = json.loads(capsys.readouterr().out)
    assert res["status"] == "completed"
    calls = [e for e in read_trace(out) if e["type"] == "llm_call"]
    users = [e for e in calls if e["purpose"] == "page"]
    recs = [e for e in calls if e["purpose"] == "rank"]
    assert users and recs
    # Every prompt that shows items (users' pages, the recommender's candidates) says
    # what the item agents say; the exit interview shows none.
    assert all("liked by " in json.dumps(e["request"]) for e in users + recs)
    # Between the rounds each arm's items learned from its own watches.
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["item_updates"]) == {"ease", "llmrank"}
    # Runs from the same seed see the same texts (trained on history, deterministic).
    from scenarios.loader import load_scenario
    from simulations.run.prepare import prepare

    a = prepare(load_scenario(path, llm_flag=True), users=2, llm="fake")
    b = prepare(load_scenario(path, llm_flag=True), users=2, llm="fake")
    ta, tb = a.dataset.catalog.agent_texts, b.dataset.catalog.agent_texts
    assert ta is not None and tb is not None and ta.texts == tb.texts
    assert len(set(ta.texts)) > 100  # items differ from one another
    assert a.world.catalog.agent_texts is ta  # one object: an arm's texts reach every copy


def test_item_agents_reference_errors_name_the_line(tmp_path: Path) -> None:
    from scenarios.loader import load_scenario

    roles = shipped("roles")
    src = (shipped("agentcf.yaml").read_text()
           .replace("role: roles/llm_user.yaml", f"role: {roles / 'llm_user.yaml'}")
           .replace("agent: roles/llmrank.yaml", f"agent: {roles / 'llmrank.yaml'}"))
    bad = tmp_path / "s.yaml"
    bad.write_text(src.replace("item_agents: roles/item_agent.yaml",
                               "item_agents: roles/nope.yaml"))
    line = next(n for n, t in enumerate(bad.read_text().splitlines(), 1)
                if t.startswith("item_agents:"))
    with pytest.raises(ScenarioError, match=rf"^{bad}:{line}: item_agents: item role file "
                                            "not found"):
        load_scenario(bad, llm_flag=True)
    (tmp_path / "roles").mkdir()
    (tmp_path / "roles" / "u.yaml").write_text("kind: role\nname: u\n")
    bad.write_text(src.replace("item_agents: roles/item_agent.yaml",
                               "item_agents: roles/u.yaml"))
    with pytest.raises(ScenarioError, match=r"is not an item role file"):
        load_scenario(bad, llm_flag=True)


# ----------------------------------------------------------------------------- CLI


def test_eval_agentcf_cli_with_the_fake_model(ml100k: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_cli import cli

    rc, out, err = cli(capsys, "eval", "agentcf", "--data", ml100k, "--users", "3",
                       "--samples", "2", "--train-users", "60", "--llm", "fake",
                       "--llm-train-users", "1", "--out", tmp_path / "o", "--json")
    assert rc == 0, err
    res = json.loads(out)
    names = list(res["models"])
    assert names[:6] == ["agentcf", "agentcf+history", "agentcf+retrieval", "ctl",
                         "ctl+history", "ctl+retrieval"]
    assert {"ctl-fixed", "pop", "itemknn", "ease", "bpr"} <= set(names)
    tr = res["training"]
    assert tr["train_users"] == 60 and tr["llm_train_users"] == 2
    assert tr["llm"][0]["steps"] > 0 and "parse_failure_rate" in tr["llm"][0]
    assert res["candidates"]["sampler"].startswith("popularity")
    events = [json.loads(x) for x in (tmp_path / "o" / "trace.jsonl").read_text()
              .splitlines()]
    assert {"agentcf_forward", "agentcf_backward", "agentcf_epoch"} <= {e["type"]
                                                                        for e in events}
    # One store holds the LLM agents' descriptions and both control arms' (prefixed).
    from agents.items.store import open_store

    with open_store(tmp_path / "o") as st:
        assert st.count() == tr["store"]["records"]
        assert st.count("item:0") == st.count("ctl/item:0") == st.count(
            "ctl-fixed/item:0") == 1
    rc, out, err = cli(capsys, "eval", "agentcf", "--data", ml100k, "--out", tmp_path / "o")
    from tests.test_cli import assert_one_line

    assert rc == 2 and "--out" in assert_one_line(err)
    rc, out, err = cli(capsys, "eval", "agentcf", "--data", ml100k, "--role",
                       tmp_path / "none.yaml")
    assert rc == 2 and "--role" in assert_one_line(err)
