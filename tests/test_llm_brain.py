"""The LLM brain with the fake chat model: prompts, parsing, repair, failures, scoring;
and LLM runs end to end: failure events, budget stop, record/replay."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.brains.base import (
    ConversationView,
    DecisionFailure,
    PageObservation,
    SessionSummary,
)
from agents.brains.llm import LLMBrain
from agents.brains.prompts import render
from agents.brains.social import Heard, SocialView, SpeakView
from agents.llm import FakeChatModel, LLMClient
from agents.profile import UserProfile
from scenarios.loader import ScenarioError, load_role, load_scenario
from scenarios.schema import (
    PROMPT_VARIABLES,
    TEMPLATE_VARIABLES,
    BrainConfig,
    LLMConfig,
    PromptTemplates,
)
from simulations.record.trace import read_trace, strip_volatile
from simulations.run.runner import RunError, prepare, run
from tests.shipped import shipped
from tools.dataset import Catalog
from tools.world import World

REPO = Path(__file__).resolve().parents[1]
Transcript = list[tuple[str, str]]


def _world() -> World:
    n = 6
    emb = np.eye(n, dtype=np.float32)
    cat = Catalog(tuple(f"m{i}" for i in range(n)), tuple(f"Film {i}" for i in range(n)),
                  tuple(("Drama",) if i % 2 else ("Comedy",) for i in range(n)),
                  tuple("1990" for _ in range(n)))
    return World(cat, emb, np.full(n, 3.5, np.float32), np.ones(n, np.int64), 3.5)


def _profile() -> UserProfile:
    v = np.ones(6, np.float32) / np.sqrt(6)
    return UserProfile(0, "u1", 2, 2, 3, 10, 3.5, 1.0, ("Comedy",), ("Horror",), ("m0",), (),
                       v, v, {})


def _brain(responses: Any, mode: str = "structured", max_repairs: int = 2,
           scorer: Any = None, calibration_items: int = 10) -> tuple[LLMBrain, FakeChatModel]:
    fake = FakeChatModel(responses=responses, scorer=scorer)
    client = LLMClient(LLMConfig(backend="fake", model="fake"), chat_model=fake)
    cfg = BrainConfig(kind="llm", max_repairs=max_repairs, calibration_items=calibration_items)
    brain = LLMBrain(_world(), cfg, client,
                     role="viewer", instructions="Be honest.", max_pages=3,
                     mode=mode)  # type: ignore[arg-type]
    return brain, fake


def _obs(items: tuple[int, ...] = (0, 1)) -> PageObservation:
    mem = ({"action": "watch", "item": "m5", "title": "Film 5", "rating": 4, "page": 1},)
    return PageObservation(_profile(), 1, 2, items, mem, (), ("liked 'Film 4' a lot",))


def _page(items: list[dict[str, Any]], leave: bool = False) -> str:
    return json.dumps({"items": items, "feeling": "fine", "leave": leave})


RNG = np.random.default_rng(0)


def test_page_prompt_names_items_by_id_with_memories() -> None:
    brain, fake = _brain([_page([
        {"item_id": "m0", "watch": True, "rating": 4, "reason": "funny"},
        {"item_id": "m1", "watch": False, "rating": None, "reason": "meh"}])])
    d = brain.decide_page(_obs(), RNG)
    assert [(x.item, x.watch, x.rating) for x in d.items] == [(0, True, 4), (1, False, None)]
    assert not d.leave and d.feeling == "fine"
    system, user = fake.transcripts[0]
    assert "viewer" in system[1] and "Be honest." in system[1] and "Comedy" in system[1]
    assert "m0 | Film 0 (1990) | Comedy" in user[1]
    assert "Film 5" in user[1] and "liked 'Film 4' a lot" in user[1]
    assert "Page 2 of at most 3" in user[1]


def test_garbage_then_unknown_id_then_valid_is_repaired() -> None:
    good = _page([{"item_id": "m0", "watch": False, "reason": ""},
                  {"item_id": "m1", "watch": True, "rating": 5, "reason": ""}], leave=True)
    bad_id = _page([{"item_id": "Film 0", "watch": True, "rating": 3},
                    {"item_id": "m1", "watch": True, "rating": 5}])
    brain, fake = _brain(["not json at all {", bad_id, good])
    d = brain.decide_page(_obs(), RNG)
    assert d.leave and [x.watch for x in d.items] == [False, True]
    assert d.inputs["attempts"] == 3
    repair = fake.transcripts[2][-1][1]
    assert "unknown item ids Film 0" in repair and "missing item ids m0" in repair


def test_watched_without_rating_is_repaired() -> None:
    brain, fake = _brain([
        _page([{"item_id": "m0", "watch": True}, {"item_id": "m1", "watch": False}]),
        _page([{"item_id": "m0", "watch": True, "rating": 2},
               {"item_id": "m1", "watch": False}])])
    assert brain.decide_page(_obs(), RNG).items[0].rating == 2
    assert "need a rating" in fake.transcripts[1][-1][1]


def test_still_invalid_after_repairs_is_a_failure_with_raw_texts() -> None:
    brain, _ = _brain(["nope", "still nope", "{\"items\": 3}"], max_repairs=2)
    with pytest.raises(DecisionFailure) as e:
        brain.decide_page(_obs(), RNG)
    assert e.value.attempts == 3
    assert e.value.raw == ["nope", "still nope", "{\"items\": 3}"]


def test_interview_and_rate_items() -> None:
    brain, _ = _brain([
        json.dumps({"satisfaction": 8, "reason": "good picks"}),
        json.dumps({"ratings": [{"item_id": "m1", "rating": 2},
                                {"item_id": "m0", "rating": 5}]}),
    ])
    s = SessionSummary(_profile(), 1, 2, 8, (0,), (4,), True)
    ans = brain.interview(s, RNG)
    assert (ans.satisfaction, ans.reason) == (8, "good picks")
    assert brain.rate_items(_profile(), (0, 1), RNG) == [5, 2]


def test_scored_mode_reads_log_probabilities() -> None:
    def scorer(prompt: str, options: list[str]) -> list[float]:
        if options == [" yes", " no"]:
            if "stop browsing" in prompt:
                return [-0.1, -3.0]  # leaves
            return [-2.0, -0.2] if "m1 | Film 1" in prompt else [-0.2, -2.0]
        if len(options) == 5:
            return [-5.0, -4.0, -0.5, -3.0, -4.0]  # 3 stars
        return [-float(k) for k in range(len(options))]

    brain, _ = _brain([], mode="scored", scorer=scorer, calibration_items=0)
    d = brain.decide_page(_obs(), RNG)
    assert [(x.watch, x.rating) for x in d.items] == [(True, 3), (False, None)]
    assert d.leave
    s = SessionSummary(_profile(), 1, 1, 2, (0,), (3,), True)
    assert brain.interview(s, RNG).satisfaction == 1


def test_scored_decisions_are_calibrated_per_user() -> None:
    """A base model that says "yes" to everything still skips its least-liked items."""
    calls: list[str] = []

    def scorer(prompt: str, options: list[str]) -> list[float]:
        if options == [" yes", " no"] and "stop browsing" not in prompt:
            calls.append(prompt)
            k = int(prompt.split("| Film ")[1][0])
            return [-0.1, -0.5 - k]  # yes always wins; the margin 0.4 + k grows with k
        return [-1.0] * len(options)

    brain, _ = _brain([], mode="scored", scorer=scorer)
    items = tuple(range(6))
    prof = _profile()  # activity 2: watches half of the calibration items
    assert sorted(brain.calibration_items(prof)) == list(range(6))  # 6-item catalogue
    assert brain.watch_threshold(prof) == pytest.approx(np.quantile(0.4 + np.arange(6), 0.5))
    d = brain.decide_page(PageObservation(prof, 1, 1, items, ()), RNG)
    assert [x.watch for x in d.items] == [False, False, False, True, True, True]
    scores = [x.inputs["score"] for x in d.items]
    assert scores == sorted(scores) and scores[3] > 0 > scores[2]
    assert len(calls) == 12  # 6 calibration items, then the page's 6
    brain.decide_page(PageObservation(prof, 1, 2, items, ()), RNG)
    assert len(calls) == 18  # the threshold is not recomputed
    lazy = dataclasses.replace(prof, user=1, activity=1)
    d1 = brain.decide_page(PageObservation(lazy, 1, 1, items, ()), RNG)
    assert sum(x.watch for x in d1.items) < 3  # activity 1 watches a smaller share


def test_scored_page_feeling_is_the_models_answer() -> None:
    """Before, the scored feeling was computed from the watch share ("pleased" when half
    the page was watched), whatever the model thought."""
    prompts: list[str] = []

    def scorer(prompt: str, options: list[str]) -> list[float]:
        if options == [" pleased", " mixed", " bored"]:
            prompts.append(prompt)
            return [-3.0, -2.5, -0.4]
        if options == [" yes", " no"]:
            return [-2.0, -0.2] if "stop browsing" in prompt else [-0.2, -2.0]  # watch all
        return [-float(k) for k in range(len(options))]

    brain, _ = _brain([], mode="scored", scorer=scorer, calibration_items=0)
    d = brain.decide_page(_obs(), RNG)
    assert all(x.watch for x in d.items)
    assert d.feeling == "bored"
    assert d.inputs["feeling_source"] == "model"
    assert d.inputs["feeling_logprobs"] == {"pleased": -3.0, "mixed": -2.5, "bored": -0.4}
    (prompt,) = prompts
    assert "Film 0" in prompt and "Film 1" in prompt and "watched 2 of these 2" in prompt
    assert "{" not in prompt


def test_structured_page_feeling_is_marked_as_the_models() -> None:
    brain, _ = _brain([_page([{"item_id": "m0", "watch": False, "reason": "r"},
                              {"item_id": "m1", "watch": False, "reason": "r"}])])
    d = brain.decide_page(_obs(), RNG)
    assert d.inputs["feeling_source"] == "model"


def test_local_backend_is_labelled_with_its_model_file(tmp_path: Path) -> None:
    """Before, a scenario with ``llm: {backend: local}`` and no model was summarised as
    local:gpt-4o-mini (LLMConfig's default model name)."""
    loaded = _llm_scenario(tmp_path)
    for model_path, label in ((None, "gemma-3-270m-q4_k_m.gguf"),
                              ("/models/tiny-test.Q8_0.gguf", "tiny-test.Q8_0.gguf")):
        scn = loaded.scenario.model_copy(update={
            "llm": LLMConfig(backend="local", model_path=model_path),
            "environment": loaded.scenario.environment.model_copy(update={"max_pages": 1})})
        res = run(prepare(dataclasses.replace(loaded, scenario=scn), users=1),
                  tmp_path / label, chat_model=FakeChatModel(
                      scorer=lambda p, o: [-float(k) for k in range(len(o))]))
        assert res.llm is not None and res.llm["model"] == label
        summary = json.loads((tmp_path / label / "summary.json").read_text())
        assert summary["llm"]["model"] == label


def test_unknown_template_variable_is_a_schema_error(tmp_path: Path) -> None:
    p = tmp_path / "role.yaml"
    p.write_text("kind: role\nname: r\nbrain:\n  kind: llm\n  prompts:\n"
                 "    page: 'Hello {nickname}'\n")
    with pytest.raises(ScenarioError) as e:
        load_role(p)
    assert str(e.value).startswith(f"{p}:6: brain.prompts.page: ")
    assert "nickname" in str(e.value)
    assert PromptTemplates().page  # the defaults validate


WRONG_VARIABLES = [(name, var) for name, given in TEMPLATE_VARIABLES.items()
                   for var in PROMPT_VARIABLES if var not in given]


@pytest.mark.parametrize(("name", "var"), WRONG_VARIABLES,
                         ids=[f"{n}-{v}" for n, v in WRONG_VARIABLES])
def test_a_variable_the_template_does_not_get_is_a_load_error(
        tmp_path: Path, name: str, var: str) -> None:
    # e.g. {page} in scored_rating: it would have reached the model as the text "{page}".
    p = tmp_path / "role.yaml"
    p.write_text(f"kind: role\nname: r\nbrain:\n  kind: llm\n  prompts:\n"
                 f"    {name}: 'x {{{var}}} y'\n")
    with pytest.raises(ScenarioError) as e:
        load_role(p)
    assert str(e.value).startswith(f"{p}:6: brain.prompts.{name}: variable(s) {var} not "
                                   "available in this template; it gets: role, ")


def _every_variable_prompts() -> PromptTemplates:
    """Every template says which template it is and shows each of its variables."""
    return PromptTemplates(**{
        name: f"[{name}] " + " ".join(f"<{v}={{{v}}}>" for v in given)
        for name, given in TEMPLATE_VARIABLES.items()})


def test_every_template_is_filled_with_exactly_its_variables() -> None:
    prompts = _every_variable_prompts()
    seen: list[str] = []

    def chat(t: Transcript) -> str:
        seen.extend(text for _, text in t)
        last = t[-1][1]
        if last.startswith("[interview]"):
            return json.dumps({"satisfaction": 5, "reason": "ok"})
        if last.startswith("[reflection]"):
            return "noted"
        if last.startswith("[page]"):
            return _page([{"item_id": "m0", "watch": True, "rating": 4},
                          {"item_id": "m1", "watch": False}])
        if last.startswith("[conversation_open]"):
            return "Something funny, please."
        if last.startswith("[conversation_turn]"):
            return json.dumps({"accept": None, "give_up": False, "feedback": "older"})
        if last.startswith("[social_choice]"):
            return json.dumps({"activity": "browse", "reason": "see what's new"})
        if last.startswith("[social_speak]"):
            return json.dumps({"text": "I liked it.", "mentions": ["m0"]})
        if last.startswith("[scored_social_text]"):
            return 'Loved it." more'
        return json.dumps({"ratings": [{"item_id": "m0", "rating": 3}]})

    def scorer(prompt: str, options: list[str]) -> list[float]:
        seen.append(prompt)
        return [-float(k) for k in range(len(options))]  # yes, 1 star, one

    session = SessionSummary(_profile(), 1, 2, 8, (0,), (4,), True)
    for mode in ("structured", "scored"):
        fake = FakeChatModel(responses=chat, scorer=scorer)
        client = LLMClient(LLMConfig(backend="fake", model="fake"), chat_model=fake)
        # No calibration: the first scored_watch prompt is then the page's own.
        brain = LLMBrain(_world(), BrainConfig(kind="llm", prompts=prompts,
                                               calibration_items=0), client,
                         role="viewer", instructions="Be honest.", max_pages=3,
                         mode=mode)  # type: ignore[arg-type]
        brain.decide_page(_obs(), RNG)
        brain.interview(session, RNG)
        brain.rate_items(_profile(), (0,), RNG)
        brain.reflect(_profile(), ["watched Film 0"], RNG)
        view = ConversationView(_profile(), 1, 1, 2, ("a comedy",), (0, 1))
        brain.describe(view, RNG)
        brain.judge(view, RNG)
        social = SocialView(_profile(), 1, 2, allowed=("browse", "search", "chat", "idle"),
                            weights={"browse": 1.0}, neighbours=(3,), ties=(0.5,),
                            heard=(Heard(1, 3, 0.5, "chat", 1),), recent=((0, 5),))
        said = asyncio.run(brain.achoose(social, RNG))
        assert said.activity in social.allowed
        line = asyncio.run(brain.aspeak(SpeakView(_profile(), 1, 2, "chat", partner=3,
                                                  tie=0.5, recent=((0, 5),)), RNG))
        assert line.mentions == (0,) and line.text
    for name, given in TEMPLATE_VARIABLES.items():
        rendered = [text for text in seen if text.startswith(f"[{name}]")]
        assert rendered, f"template {name} was never used"
        for text in rendered:
            assert "{" not in text and "}" not in text, text  # nothing left unfilled
            assert [m.group(1) for m in re.finditer(r"<(\w+)=", text)] == list(given)
    scored_watch = next(t for t in seen if t.startswith("[scored_watch]"))
    assert "<page=2> <max_pages=3>" in scored_watch and "<item=m0 | Film 0" in scored_watch


def test_render_refuses_values_other_than_the_templates_variables() -> None:
    with pytest.raises(RuntimeError, match=r"prompt system: variables missing \[.*'role'"):
        render("{instructions}", "system", {"instructions": "x"})
    values = dict.fromkeys(TEMPLATE_VARIABLES["scored_rating"], "v")
    assert render("{item}", "scored_rating", values) == "v"
    with pytest.raises(RuntimeError, match=r"unexpected \['page'\]"):
        render("{item}", "scored_rating", {**values, "page": 1})


def test_scored_satisfaction_asks_on_the_scale_it_reads() -> None:
    asked: list[tuple[str, list[str]]] = []

    def scorer(prompt: str, options: list[str]) -> list[float]:
        asked.append((prompt, options))
        return [-abs(k - 6.0) for k in range(len(options))]  # " seven" is most likely

    brain, _ = _brain([], mode="scored", scorer=scorer)
    ans = brain.interview(SessionSummary(_profile(), 1, 1, 2, (0,), (3,), True), RNG)
    prompt, options = asked[-1]
    assert options == [" one", " two", " three", " four", " five", " six", " seven", " eight",
                       " nine", " ten"]
    assert prompt.endswith("On a scale of one to ten, viewer's satisfaction is:")
    assert ans.satisfaction == 7 and "satisfaction 7/10" in ans.reason


# ----------------------------------------------------------------------------- runs


def _llm_scenario(tmp_path: Path, **llm: Any) -> Any:
    loaded = load_scenario(shipped("llm_feed.yaml"))
    role = loaded.role.model_copy(update={"memory": loaded.role.memory.model_copy(
        update={"long_term": loaded.role.memory.long_term.model_copy(
            update={"embedder": "hash"})})})
    scn = loaded.scenario.model_copy(update={
        "environment": loaded.scenario.environment.model_copy(
            update={"rounds": 1, "max_pages": 2}),
        "llm": LLMConfig(backend="fake", model="fake", **llm),
        "recommenders": loaded.scenario.recommenders[:1],
    })
    return dataclasses.replace(loaded, scenario=scn, role=role)


def _answer_all(transcript: Transcript) -> str:
    """A fake user who watches the first item on each page and leaves on page 2."""
    last = transcript[-1][1]
    if "satisfied" in last:
        return json.dumps({"satisfaction": 6, "reason": "ok"})
    if "what have you learned" in last:
        return "I like comedies."
    ids = re.findall(r"Refer to items only by their id \(([^)]*)\)", last)[0].split(", ")
    return _page([{"item_id": i, "watch": k == 0, "rating": 4 if k == 0 else None,
                   "reason": "r"} for k, i in enumerate(ids)],
                 leave="Page 2" in last)


def test_llm_run_records_calls_and_replays_exactly(tmp_path: Path) -> None:
    loaded = _llm_scenario(tmp_path)
    fake = FakeChatModel(responses=_answer_all)
    res = run(prepare(loaded, users=3), tmp_path / "a", chat_model=fake)
    assert res.status == "completed" and res.llm is not None
    assert res.llm["calls"] > 0 and res.llm["input_tokens"] > 0
    events = read_trace(tmp_path / "a")
    calls = [e for e in events if e["type"] == "llm_call"]
    assert {c["purpose"] for c in calls} >= {"page", "interview"}
    assert {e["user"] for e in calls} == {e["user"] for e in events if e["type"] == "profile"}
    assert any(e["type"] == "memory" and e["op"] == "write" for e in events)
    usage = next(e for e in events if e["type"] == "llm_usage")
    assert usage["input_tokens"] == sum(c["input_tokens"] for c in calls)
    # Replay: no model at all, identical trace.
    res2 = run(prepare(loaded, users=3), tmp_path / "b", replay=str(tmp_path / "a"))
    assert res2.llm is not None and res2.llm["cached_calls"] == res2.llm["calls"]
    a = [strip_volatile(e) for e in events]
    b = [strip_volatile(e) for e in read_trace(tmp_path / "b")]
    assert a == b


def test_replay_miss_fails_loudly(tmp_path: Path) -> None:
    loaded = _llm_scenario(tmp_path)
    run(prepare(loaded, users=2), tmp_path / "a", chat_model=FakeChatModel(
        responses=_answer_all))
    with pytest.raises(RunError, match="replay"):
        run(prepare(loaded, users=3), tmp_path / "b", replay=str(tmp_path / "a"))
    assert read_trace(tmp_path / "b")[-1]["status"] == "failed"


def test_a_run_where_every_llm_decision_failed_fails(tmp_path: Path) -> None:
    loaded = _llm_scenario(tmp_path)
    with pytest.raises(RunError, match=r"^run failed: every LLM decision failed \(4 decision "):
        run(prepare(loaded, users=2), tmp_path / "a",
            chat_model=FakeChatModel(responses=lambda t: "I refuse to answer in JSON."))
    events = read_trace(tmp_path / "a")
    fails = [e for e in events if e["type"] == "decision_failure"]
    assert len(fails) == 4 and all(e["raw"] for e in fails)  # 2 users: page and interview
    ends = [e for e in events if e["type"] == "session_end"]
    assert {e["reason"] for e in ends} == {"llm_failure"}
    assert events[-1]["status"] == "failed"
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["status"] == "failed" and "every LLM decision failed" in summary["reason"]
    assert summary["metrics"]["arms"]["pop"]["decision_failures"] == 4


def test_some_failed_decisions_are_counted_and_the_run_completes(tmp_path: Path) -> None:
    calls = {"n": 0}

    def first_page_garbage(t: Transcript) -> str:
        calls["n"] += 1  # one call at a time: the first decision's 3 attempts fail
        return "not JSON" if calls["n"] <= 3 else _answer_all(t)

    loaded = _llm_scenario(tmp_path, concurrency=1)
    res = run(prepare(loaded, users=2), tmp_path / "a",
              chat_model=FakeChatModel(responses=first_page_garbage))
    fails = [e for e in read_trace(tmp_path / "a") if e["type"] == "decision_failure"]
    assert res.status == "completed" and len(fails) == 1
    assert res.metrics["arms"]["pop"]["decision_failures"] == 1


def test_budget_stops_the_run_cleanly(tmp_path: Path) -> None:
    # One call at a time: with several in flight, which call crosses the limit depends on
    # timing. Page 1 costs ~800 tokens for three users, so the stop comes on page 2.
    loaded = _llm_scenario(tmp_path, budget={"max_tokens": 1000}, concurrency=1)
    res = run(prepare(loaded, users=3), tmp_path / "a",
              chat_model=FakeChatModel(responses=_answer_all))
    assert res.status == "budget_exhausted"
    events = read_trace(tmp_path / "a")
    assert events[-1]["type"] == "run_end" and events[-1]["status"] == "budget_exhausted"
    assert "max_tokens" in events[-1]["reason"]
    assert {e["page"] for e in events if e["type"] == "decision"} == {1}
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["status"] == "budget_exhausted"


def test_llm_role_without_llm_block_is_a_clear_error(tmp_path: Path) -> None:
    loaded = _llm_scenario(tmp_path)
    loaded = dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(
        update={"llm": None}))
    with pytest.raises(RunError, match="--llm local"):
        prepare(loaded, users=2)


def test_a_run_whose_pages_all_failed_fails_even_if_interviews_answered(
        tmp_path: Path) -> None:
    loaded = _llm_scenario(tmp_path)

    def answer(t: Transcript) -> str:  # interviews fine, every page unreadable
        if "How satisfied" in t[-1][1]:
            return json.dumps({"satisfaction": 5, "reason": "ok"})
        return "no JSON here"

    with pytest.raises(RunError, match="every LLM decision failed"):
        run(prepare(loaded, users=2), tmp_path / "a", chat_model=FakeChatModel(responses=answer))
    events = read_trace(tmp_path / "a")
    assert any(e["type"] == "interview" for e in events)
    assert events[-1]["status"] == "failed"
