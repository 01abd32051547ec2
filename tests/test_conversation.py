"""The conversation environment end to end: utility users, scripted LLM users, the real
local model for one user; the re-ranker reads what users say; metrics from the trace."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.llm import FakeChatModel
from scenarios.loader import LoadedScenario, load_scenario
from simulations.analysis.metrics import compute_metrics
from simulations.record.trace import read_trace
from simulations.run.runner import prepare, run
from tests.shipped import shipped
from tools.dataset import Catalog
from tools.recommenders import make_recommender
from tools.recommenders.conversational import ConversationalRanker

REPO = Path(__file__).resolve().parents[1]
Transcript = list[tuple[str, str]]


def _loaded(**env: Any) -> LoadedScenario:
    loaded = load_scenario(shipped("conversation.yaml"))
    scn = loaded.scenario
    conv = scn.environment.conversation.model_copy(update=env)
    new = scn.model_copy(update={"environment": scn.environment.model_copy(
        update={"conversation": conv})})
    return dataclasses.replace(loaded, scenario=new)


def _llm(loaded: LoadedScenario, backend: str = "fake") -> LoadedScenario:
    role = loaded.role.model_copy(update={
        "name": "talker", "brain": loaded.role.brain.model_copy(update={
            "kind": "llm", "decision_mode": "auto"})})
    llm = {"backend": backend, "model": "fake" if backend == "fake" else "gemma-3-270m",
           "concurrency": 1}
    from scenarios.schema import LLMConfig

    scn = loaded.scenario.model_copy(update={"llm": LLMConfig.model_validate(llm)})
    roles = (dataclasses.replace(loaded.roles[0], config=role),)
    return dataclasses.replace(loaded, scenario=scn, role=role, roles=roles)


def test_utility_users_converse_and_metrics_follow_the_trace(tmp_path: Path) -> None:
    res = run(prepare(_loaded(), users=40), tmp_path / "run")
    events = list(read_trace(tmp_path / "run"))
    cat_titles = {}
    prep = prepare(_loaded(), users=40)
    for i, iid in enumerate(prep.dataset.catalog.item_ids):
        cat_titles[iid] = prep.dataset.catalog.titles[i]
    ends = [e for e in events if e["type"] == "conversation_end"]
    starts = {(e["arm"], e["user"]): e["target"] for e in events
              if e["type"] == "conversation_start"}
    assert ends and len(ends) == len(starts)
    recs: dict[tuple[str, str], list[str]] = {}
    for e in events:
        if e["type"] == "recommendation":
            assert len(e["items"]) == 5
            recs.setdefault((e["arm"], e["user"]), []).extend(e["items"])
        if e["type"] == "utterance":
            # Users describe the target; they never name it.
            target = starts[(e["arm"], e["user"])]
            assert cat_titles[target].lower() not in e["text"].lower()
    for items in recs.values():
        assert len(items) == len(set(items))  # never the same item twice in a conversation
    for e in ends:
        key = (e["arm"], e["user"])
        assert e["target_seen"] == (starts[key] in recs.get(key, []))
        if e["success"]:
            verdict = [v for v in events if v["type"] == "verdict"
                       and (v["arm"], v["user"]) == key][-1]
            assert verdict["accept"] == starts[key] and verdict["turn"] == e["turns"]
        else:
            assert e["reason"] in ("gave_up", "max_turns")
    m = res.metrics["arms"]["ease"]["overall"]
    wins = [e for e in ends if e["arm"] == "ease" and e["success"]]
    n = sum(1 for e in ends if e["arm"] == "ease")
    assert m["success_rate"] == round(len(wins) / n, 6)
    assert m["turns_to_success"] == round(float(np.mean([e["turns"] for e in wins])), 6)
    curve = [m["success_at_turn"][k] for k in sorted(m["success_at_turn"], key=int)]
    assert curve == sorted(curve) and curve[-1] == m["success_rate"]
    assert compute_metrics(events)["arms"] == res.metrics["arms"]
    # What the user says steers the recommender: turn 2 reads turn 1's feedback.
    understood = [e["understood"] for e in events if e["type"] == "recommendation"]
    assert any(u["genres"] for u in understood) and any(u["like"] for u in understood)


def test_impatient_users_give_up_sooner(tmp_path: Path) -> None:
    turns = {}
    for patience in (1, 4):
        res = run(prepare(_loaded(patience=patience, max_turns=8), users=40),
                  tmp_path / f"p{patience}")
        ends = [e for e in read_trace(tmp_path / f"p{patience}")
                if e["type"] == "conversation_end"]
        turns[patience] = float(np.mean([e["turns"] for e in ends]))
        assert res.status == "completed"
    assert turns[1] < turns[4]


def test_ranker_understands_genres_decades_and_titles() -> None:
    cat = Catalog(("a", "b", "c", "d"), ("Heat", "Toy Story", "Casino", "Jumanji"),
                  (("Action",), ("Animation", "Comedy"), ("Crime",), ("Adventure",)),
                  ("1995", "1995", "1975", "1995"))
    emb = np.eye(4, dtype=np.float32)
    emb[2] = emb[0]  # Casino is like Heat
    base = make_recommender("pop", seed=0)
    from scipy import sparse as sp

    base.fit(sp.csr_matrix(np.ones((3, 4), np.float32)))
    r = ConversationalRanker(base, cat, emb)
    u = r.understand(["I'd like a comedy from the 90s, something like Heat"])
    assert u.genres == {"Comedy"} and u.decades == {90} and u.like == [0]
    top, _ = r.rank(0, ["something like Heat"], 1, exclude=[])
    assert top == [2]  # the named movie is excluded, its neighbour comes first
    top, _ = r.rank(0, ["an animation comedy please"], 1, exclude=[])
    assert top == [1]
    top, _ = r.rank(0, ["an animation comedy please"], 2, exclude=[1])
    assert 1 not in top


def _chat_user(transcript: Transcript) -> str:
    prompt = transcript[-1][1]
    if "Tell a movie recommender" in prompt:
        genres = re.search(r"\| ([^|]+) \| mean rating", prompt)
        return f"I want a {genres.group(1) if genres else 'good'} movie."
    target = re.search(r"never name it\):\n(\S+) \|", prompt)
    shown = re.findall(r"^(\S+) \|", prompt.split("The recommender suggests:")[1], re.M)
    if target and target.group(1) in shown:
        return json.dumps({"accept": target.group(1), "give_up": False, "feedback": ""})
    return json.dumps({"accept": None, "give_up": False, "feedback": "Something older."})


def test_llm_users_converse_with_a_scripted_model(tmp_path: Path) -> None:
    fake = FakeChatModel(responses=_chat_user)
    res = run(prepare(_llm(_loaded(max_turns=3)), users=5), tmp_path / "run", chat_model=fake)
    events = list(read_trace(tmp_path / "run"))
    assert res.status == "completed"
    says = [e for e in events if e["type"] == "utterance" and e["turn"] == 0]
    assert says and all(e["text"].startswith("I want a") for e in says)
    for e in (e for e in events if e["type"] == "conversation_end"):
        # The scripted user accepts exactly when the target is shown.
        assert e["success"] == e["target_seen"]
    assert any(e["type"] == "llm_call" and e["purpose"] == "judge" for e in events)


def test_local_model_converses_for_one_user(tmp_path: Path) -> None:
    loaded = _llm(_loaded(max_turns=2, items_per_turn=3), backend="local")
    res = run(prepare(loaded, users=1), tmp_path / "run")
    events = list(read_trace(tmp_path / "run"))
    assert res.status == "completed"
    verdicts = [e for e in events if e["type"] == "verdict"]
    assert verdicts and all(len(v["inputs"]["margins"]) == 3 for v in verdicts)
    assert [e for e in events if e["type"] == "conversation_end"]


def test_conversation_switches_recommender_and_rejects_retrain(tmp_path: Path) -> None:
    from scenarios.loader import ScenarioError
    from scenarios.schema import SwitchRecommenderEvent

    loaded = _loaded()
    scn = loaded.scenario.model_copy(update={
        "environment": loaded.scenario.environment.model_copy(update={"rounds": 2}),
        "events": [SwitchRecommenderEvent(action="switch_recommender", at_round=2,
                                          recommender="pop", model="ease")]})
    run(prepare(dataclasses.replace(loaded, scenario=scn), users=10), tmp_path / "run")
    events = list(read_trace(tmp_path / "run"))
    starts = {(e["arm"], e["round"]): e["recommender"] for e in events
              if e["type"] == "round_start"}
    assert starts[("pop", 1)] == "conversational(pop)"
    assert starts[("pop", 2)] == "conversational(ease)"
    assert any(e["type"] == "event" and e["action"] == "switch_recommender" for e in events)
    bad = tmp_path / "bad.yaml"
    bad.write_text(shipped("conversation.yaml").read_text().replace(
        "{name: ease, model: ease, params: {l2: 100.0}}",
        "{name: ease, model: ease, params: {l2: 100.0}, retrain: true}"))
    with pytest.raises(ScenarioError, match="no watches to retrain on"):
        load_scenario(bad)
