"""What a first-time user meets before any work: a missing API key (exit 2, one line, no run
folder), duplicate keys and every error of a file from `validate`, `validate --llm`, and
`--no-pager` on every trace command."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

import pytest
import yaml

from simulations.cli.main import build_parser, main
from simulations.run.stop_signals import Terminated
from tests.shipped import shipped
from tests.test_cli import QUICKSTART, assert_one_line, cli

LLM_FEED = shipped("llm_feed.yaml")
AGENT_CONVERSATION = shipped("agent_conversation.yaml")
TEAM = shipped("teams", "macrec.yaml")


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("RECARENA_DEBUG", raising=False)


def _no_work(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record any data loading (the first piece of work a run does)."""
    calls: list[str] = []

    def load(*args: object, **kwargs: object) -> None:
        calls.append("data")
        raise AssertionError("data loaded before the API key was checked")

    monkeypatch.setattr("simulations.run.prepare.load_data", load)
    return calls


# ----------------------------------------------------------------------------- API key


@pytest.mark.parametrize("args", [
    (str(LLM_FEED), "--llm", "openai:gpt-4o-mini"),
    (str(AGENT_CONVERSATION), "--llm", "openai"),
])
def test_a_missing_api_key_is_found_before_any_work(
        no_key: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path, args: tuple[str, ...]) -> None:
    calls = _no_work(monkeypatch)
    out = tmp_path / "run"
    rc, _, err = cli(capsys, "run", *args, "--out", out, "--users", "2", "--quiet")
    assert rc == 2
    line = assert_one_line(err)
    assert "OPENAI_API_KEY is not set" in line and line.startswith("--llm openai")
    assert not out.exists() and calls == []


def test_a_scenario_with_an_openai_block_names_its_file(
        no_key: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    scn = yaml.safe_load(LLM_FEED.read_text())
    scn["population"]["role"] = str(shipped("roles", "llm_user.yaml"))
    scn["llm"] = {"backend": "openai", "model": "gpt-4o-mini"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scn))
    calls = _no_work(monkeypatch)
    rc, _, err = cli(capsys, "run", path, "--out", tmp_path / "run", "--quiet")
    assert rc == 2 and calls == [] and not (tmp_path / "run").exists()
    assert assert_one_line(err).startswith(f"{path}: llm: environment variable "
                                           "OPENAI_API_KEY is not set")


def test_a_key_is_not_needed_on_loopback_or_for_a_replay(
        no_key: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.setup import missing_api_key, parse_llm_flag

    cfg = parse_llm_flag("openai", None)
    assert missing_api_key(cfg) is not None
    assert missing_api_key(cfg.model_copy(update={"base_url": "http://127.0.0.1:8080/v1"})) \
        is None
    assert missing_api_key(parse_llm_flag("fake", None)) is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert missing_api_key(cfg) is None


def test_eval_task_checks_the_key_before_any_work(
        no_key: None, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = cli(capsys, "eval", "task", "--task", "sr", "--team", TEAM, "--llm", "openai",
                     "--data", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert rc == 2 and "OPENAI_API_KEY is not set" in assert_one_line(err)
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- validate


def test_a_duplicate_key_is_an_error_at_its_line(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    text = QUICKSTART.read_text()
    assert "\nseed: " in text
    bad = tmp_path / "dup.yaml"
    # A second seed after the first, and a repeated key inside a nested mapping.
    lines = text.splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("seed: "))
    lines.insert(at + 1, "seed: 2")
    bad.write_text("\n".join(lines) + "\n")
    rc, _, err = cli(capsys, "validate", bad)
    assert rc == 2
    line = assert_one_line(err)
    assert line == (f"{bad}:{at + 2}: seed: duplicate key (first at line {at + 1}); keep one")
    rc, _, err = cli(capsys, "run", bad, "--out", tmp_path / "run", "--quiet")
    assert rc == 2 and assert_one_line(err).startswith(f"{bad}:{at + 2}: seed: duplicate key")
    assert not (tmp_path / "run").exists()


def test_duplicate_keys_in_nested_mappings_and_role_files(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    role = tmp_path / "role.yaml"
    role.write_text("kind: role\nname: r\nbrain:\n  kind: utility\n  kind: llm\n")
    rc, _, err = cli(capsys, "validate", role)
    assert rc == 2
    assert assert_one_line(err) == (f"{role}:5: brain.kind: duplicate key (first at line 4); "
                                    "keep one")


def test_validate_shows_every_error_of_a_file(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: scenario\n"           # 1
        "name: t\n"                  # 2
        "seed: -1\n"                 # 3  seed must be >= 0
        "recommenders:\n"            # 4
        "  - {name: a, model: nope}\n"   # 5  unknown model
        "  - {name: b, model: pop, colour: red}\n"  # 6  unknown field
        "environment:\n"             # 7
        "  kind: feed\n"             # 8
        "  rounds: 0\n"              # 9  rounds >= 1
        "name: u\n")                 # 10 duplicate key
    rc, out, err = cli(capsys, "validate", bad)
    assert rc == 2 and out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert [x.split(": ")[0] for x in lines] == [f"{bad}:{n}" for n in (3, 5, 6, 9, 10)], err
    assert "name: duplicate key (first at line 2)" in lines[-1]
    assert "recommenders.1.colour: unknown field" in lines[2]
    # `run` stops at the same errors and says how many more there are, on one line.
    rc, _, err = cli(capsys, "run", bad, "--quiet", "--out", tmp_path / "r")
    assert rc == 2 and assert_one_line(err).endswith("(+4 more)")


def test_validate_shows_every_schema_error_without_duplicates(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: scenario\nname: t\nrecommenders:\n  - {name: a, model: nope}\n"
                   "  - {name: b, model: ease, params: {l2: 0}}\nmetrics: [ndcg]\n")
    rc, _, err = cli(capsys, "validate", bad)
    lines = err.splitlines()
    assert rc == 2 and len(lines) == 3, err
    assert lines[0].startswith(f"{bad}:4: recommenders.0.model: ")
    assert lines[1].startswith(f"{bad}:5: recommenders.1.params.l2: ")
    assert lines[2].startswith(f"{bad}:6: metrics.0: ")


def test_cross_field_problems_are_all_shown(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: scenario\nname: t\nrecommenders:\n  - {name: a, model: pop}\n"
                   "  - {name: a, model: ease}\nenvironment:\n  rounds: 3\nevents:\n"
                   "  - action: switch_recommender\n    at_round: 2\n    model: als\n"
                   "    recommender: zz\n")
    rc, _, err = cli(capsys, "validate", bad)
    lines = err.splitlines()
    assert rc == 2 and len(lines) == 2, err
    assert lines[0] == f"{bad}:5: recommenders.1.name: duplicate recommender name 'a'"
    assert lines[1].startswith(f"{bad}:12: events.0.recommender: unknown recommender 'zz'")


# ----------------------------------------------------------------------------- validate --llm


def test_validate_with_llm_checks_what_run_would(
        no_key: None, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # An LLM role without an llm: block is an error for validate alone, and fine with --llm.
    scn = yaml.safe_load(LLM_FEED.read_text())
    scn["population"]["role"] = str(shipped("roles", "llm_user.yaml"))
    del scn["llm"]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scn))
    rc, _, err = cli(capsys, "validate", path)
    assert rc == 2 and "neither it nor the scenario has an llm: block" in err
    rc, out, err = cli(capsys, "validate", "--llm", "fake", path, AGENT_CONVERSATION, TEAM)
    assert rc == 0, err
    assert out.splitlines() == [f"{path}: ok (scenario, runs with --llm fake)",
                                f"{AGENT_CONVERSATION}: ok (scenario, runs with --llm fake)",
                                f"{TEAM}: ok (team, runs with --llm fake)"]
    # The openai backend without its key: what run would say, before any work.
    rc, _, err = cli(capsys, "validate", "--llm", "openai", path, TEAM)
    lines = err.splitlines()
    assert rc == 2 and len(lines) == 2 and all("OPENAI_API_KEY is not set" in x for x in lines)
    # --llm on a scenario whose agents use no model is refused, as by run.
    rc, _, err = cli(capsys, "validate", "--llm", "fake", QUICKSTART)
    assert rc == 2 and "uses no LLM" in assert_one_line(err)
    rc, _, err = cli(capsys, "validate", "--llm", "bogus", path)
    assert rc == 2 and "--llm: expected" in assert_one_line(err)


# ----------------------------------------------------------------------------- trace --no-pager


def _trace_commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return dict(parser.commands["trace"].commands)


def test_every_trace_command_takes_no_pager_and_json() -> None:
    commands = _trace_commands()
    assert {"summary", "agent", "step", "search", "diff", "export"} <= set(commands)
    for name, p in commands.items():
        flags = {s for a in p._actions for s in a.option_strings}
        assert {"--no-pager", "--json"} <= flags, name


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "r"
    assert main(["run", str(QUICKSTART), "--users", "3", "--out", str(out), "--quiet"]) == 0
    return out


def test_every_trace_command_runs_with_no_pager(small_run: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    from simulations.record.trace import read_trace

    events = read_trace(small_run)
    user = str(next(e["user"] for e in events if e["type"] == "profile"))
    page = next(e["id"] for e in events if e["type"] == "page")
    run = str(small_run)
    argv = {"summary": [run], "agent": [run, user], "step": [run, page],
            "search": [run, "--type", "page"], "diff": [run, run],
            "export": [run, "--table", "decisions", "--out", str(tmp_path / "d.csv")]}
    assert set(argv) == set(_trace_commands())
    for name, args in argv.items():
        rc, out, err = cli(capsys, "trace", name, *args, "--no-pager")
        assert rc == 0, (name, err)
        assert out.strip(), name


def test_sigterm_outside_a_run_is_one_line_and_exit_143(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def terminated(path: object) -> str:
        signal.raise_signal(signal.SIGTERM)  # what `timeout` sends; handled by main
        raise AssertionError("not reached")

    monkeypatch.setattr("scenarios.loader.validate_file", terminated)
    rc, _, err = cli(capsys, "validate", QUICKSTART)
    assert rc == 143 and assert_one_line(err) == "recarena: terminated (SIGTERM)"
    assert issubclass(Terminated, KeyboardInterrupt)
