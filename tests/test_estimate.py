"""The estimate a run prints before it starts (simulations/run/estimate.py): an upper bound on
the LLM calls it makes, checked against real runs of the shipped scenarios with the fake
chat model, and the per-call times of each backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.llm import FakeChatModel, plausible_reply
from scenarios.loader import SHIPPED_ROLES, load_scenario
from simulations.record.trace import read_trace
from simulations.run.estimate import SECONDS_PER_CALL, estimate_prepared
from simulations.run.runner import prepare, run

SCENARIOS = SHIPPED_ROLES.parent


def _calls(run_dir: Path) -> tuple[int, int]:
    """(scored, text) model calls of a run, cache hits left out."""
    calls = [e for e in read_trace(run_dir) if e["type"] == "llm_call"
             and not e["volatile"]["cached"]]
    scored = sum(1 for e in calls if e["kind"] == "score")
    return scored, len(calls) - scored


def test_counts_of_a_shipped_scenario_by_hand() -> None:
    # agent_conversation, 2 utility users (no user calls), 3 turns of 10 candidates, base
    # model: chatrec scores 10 and replies (1 text) per turn; the team's manager scores
    # 2 members + finish + 10 candidates; the interpreter and the reflector write (2 texts)
    # per turn, the analyst and the searcher do not (reply_tokens: 0).
    prep = prepare(load_scenario(SCENARIOS / "agent_conversation.yaml"), users=2)
    est = estimate_prepared(prep)
    assert est is not None and est.backend == "local"
    turns = 2 * 3
    assert (est.scored, est.text) == (turns * (10 + 13), turns * (1 + 2))
    per_score, per_text = SECONDS_PER_CALL["local"]
    assert est.seconds == pytest.approx(est.scored * per_score + est.text * per_text)
    line = est.line()
    assert f"at most {est.calls:,} LLM calls" in line and "\n" not in line


def test_no_model_no_estimate() -> None:
    prep = prepare(load_scenario(SCENARIOS / "quickstart.yaml"), users=5)
    assert estimate_prepared(prep) is None


def test_a_remote_model_spreads_calls_over_its_concurrency() -> None:
    loaded = load_scenario(SCENARIOS / "agent_feed.yaml")
    one = estimate_prepared(prepare(loaded, users=2, llm="openai:gpt-4o-mini"))
    assert one is not None and one.backend == "openai" and one.scored == 0  # JSON answers
    llm = loaded.scenario.llm
    assert llm is not None
    scn = loaded.scenario.model_copy(update={"llm": llm.model_copy(update={
        "concurrency": 4})})
    import dataclasses

    four = estimate_prepared(prepare(dataclasses.replace(loaded, scenario=scn), users=2,
                                     llm="openai:gpt-4o-mini"))
    assert four is not None and four.calls == one.calls
    assert four.seconds == pytest.approx(one.seconds / 4)


@pytest.mark.parametrize(("name", "llm"), [
    ("agent_feed.yaml", "local"),
    ("agent_conversation.yaml", "local"),
    ("agent_feed.yaml", "openai:fake"),
    ("agent_conversation.yaml", "openai:fake"),
])
def test_the_estimate_bounds_the_calls_a_run_makes(tmp_path: Path, name: str,
                                                   llm: str) -> None:
    """Base-model (scored) and chat-model (JSON) paths of the shipped agent scenarios:
    every call the run makes is counted, and the bound is not loose by more than 3x."""
    prep = prepare(load_scenario(SCENARIOS / name), users=2, llm=llm)
    est = estimate_prepared(prep)
    assert est is not None
    res = run(prep, tmp_path / "run", chat_model=FakeChatModel(responses=plausible_reply))
    assert res.status == "completed"
    scored, text = _calls(tmp_path / "run")
    assert scored <= est.scored and text <= est.text, (scored, text, est)
    assert scored + text > 0 and est.calls <= 3 * (scored + text), (scored, text, est)


def test_run_prints_the_estimate_only_before_a_long_run(
        capsys: pytest.CaptureFixture[str]) -> None:
    from simulations.cli.run import _print_estimate

    long = prepare(load_scenario(SCENARIOS / "agent_conversation.yaml"), users=2)
    _print_estimate(long, False)
    err = capsys.readouterr().err
    assert err.startswith("estimate: at most 156 LLM calls (138 scored") and err.count("\n") == 1
    _print_estimate(long, True)  # a replay makes no model calls
    _print_estimate(prepare(load_scenario(SCENARIOS / "llm_feed.yaml"), users=2), False)
    assert capsys.readouterr().err == ""  # about 2 minutes: said by the progress bar
