"""Executors without Ray: the scenario's executor block and the CLI flags (one-line errors,
exit 2), what the Ray executor refuses at load, and the canonical order of agents' events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulations.cli.main import main
from simulations.executors.base import EventBuffer, group_events

ROLE: dict[str, Any] = {
    "kind": "role", "name": "viewer", "memory": {"short_term_window": 8},
    "planner": {"kind": "static"}, "brain": {"kind": "utility"}}
SCENARIO: dict[str, Any] = {
    "kind": "scenario", "name": "ex", "seed": 1,
    "dataset": {"source": "synthetic",
                "synthetic": {"n_users": 40, "n_items": 60, "n_genres": 5,
                              "history_mean": 10}},
    "population": {"size": 10, "role": "role.yaml"},
    "recommenders": [{"name": "pop", "model": "pop"}],
    "environment": {"kind": "feed", "items_per_page": 4, "max_pages": 2, "rounds": 1},
}


def _write(tmp: Path, scenario: dict[str, Any] | None = None,
           role: dict[str, Any] | None = None) -> Path:
    (tmp / "role.yaml").write_text(yaml.safe_dump(role or ROLE, sort_keys=False))
    path = tmp / "scn.yaml"
    path.write_text(yaml.safe_dump(scenario or SCENARIO, sort_keys=False))
    return path


def _err(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return code, err


def _line(path: Path, key: str) -> int:
    """The line of ``key`` inside the file's ``executor:`` block."""
    lines = path.read_text().splitlines()
    start = lines.index("executor:")
    return next(i for i, s in enumerate(lines[start:], start + 1)
                if s.strip().startswith(f"{key}:"))


@pytest.mark.parametrize(("executor", "field", "words"), [
    ({"kind": "rayy"}, "executor.kind", "'default' or 'ray'"),
    ({"kind": "ray", "workers": 0}, "executor.workers", "greater than or equal to 1"),
    ({"kind": "default", "address": "10.0.0.1:6379"}, "executor.address",
     "only the ray executor joins a cluster"),
    ({"kind": "ray", "threads": 3}, "executor.threads", "unknown field"),
])
def test_a_bad_executor_block_is_one_line_naming_file_line_and_field(
        executor: dict[str, Any], field: str, words: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {**SCENARIO, "executor": executor})
    for cmd in ("validate", "run"):
        code, err = _err(capsys, cmd, str(path))
        assert code == 2
        assert err.startswith(f"{path}:")
        assert f": {field}: " in err and words in err
    # The line is the block's (the field's own line where it has one).
    key = field.rsplit(".", 1)[-1]
    if key in executor:
        assert f"{path}:{_line(path, key)}:" in err


@pytest.mark.parametrize(("role", "words"), [
    ({**ROLE, "memory": {"short_term_window": 8, "shared": "club"}},
     "memory.shared"),
    ({**ROLE, "brain": {"kind": "llm"},
      "llm": {"backend": "fake", "model": "fake", "budget": {"max_tokens": 1000}}},
     "LLM budget"),
])
def test_the_ray_executor_refuses_state_that_spans_shards(
        role: dict[str, Any], words: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # In the scenario: an error at load, on the executor's kind line.
    path = _write(tmp_path, {**SCENARIO, "executor": {"kind": "ray"}}, role)
    code, err = _err(capsys, "validate", str(path))
    assert code == 2
    assert err.startswith(f"{path}:{_line(path, 'kind')}:") and words in err
    assert ": executor.kind: " in err and "use executor kind default" in err
    # From the command line: the same refusal, naming the flag, before any work.
    path = _write(tmp_path, role=role)
    out = tmp_path / "run"
    code, err = _err(capsys, "run", str(path), "--executor", "ray", "--out", str(out))
    assert code == 2
    assert err.startswith("recarena: --executor: ") and words in err
    assert not out.exists()


def test_executor_flags_are_checked_like_the_file(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path)
    code, err = _err(capsys, "run", str(path), "--executor", "ray", "--workers", "0")
    assert code == 2 and err.startswith("recarena: --workers: ")
    code, err = _err(capsys, "run", str(path), "--ray-address", "127.0.0.1:6379")
    assert code == 2 and "--ray-address: only the ray executor joins a cluster" in err
    code, err = _err(capsys, "run", str(path), "--executor", "spark")
    assert code == 2 and "--executor" in err and "spark" in err


def test_the_executor_is_left_out_of_the_config_hash(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # How agents are scheduled never changes results: the same config (hash, run_start)
    # whatever the file says, and the manifest says which executor ran.
    a = _write(tmp_path)
    assert main(["run", str(a), "--out", str(tmp_path / "a"), "--quiet", "--json"]) == 0
    other = tmp_path / "other"
    other.mkdir()
    b = _write(other, {**SCENARIO, "executor": {"kind": "default", "workers": 7}})
    assert main(["run", str(b), "--out", str(tmp_path / "b"), "--quiet", "--json"]) == 0
    capsys.readouterr()
    ma, mb = (json.loads((tmp_path / r / "manifest.json").read_text()) for r in "ab")
    assert ma["config_hash"] == mb["config_hash"]
    assert ma["executor"]["workers"] == 2 and mb["executor"]["workers"] == 7


def test_events_are_grouped_by_the_observations_users_in_order() -> None:
    buf = EventBuffer()
    buf.emit("memory", "a/u2/p1/memory", user="2")
    buf.emit("profile", "profile/u1", user="1")
    buf.emit("llm_call", "a/u2/p1/llm0", user="2")
    buf.emit("memory", "a/u1/p1/memory", user="1")
    buf.emit("note", "run/x")  # names no user: last
    groups = group_events(buf.take(), ["1", "2"])
    assert [[e[1] for e in g] for g in groups] == [
        ["profile/u1", "a/u1/p1/memory"], ["a/u2/p1/memory", "a/u2/p1/llm0"], ["run/x"]]
    assert buf.take() == []


def test_without_the_ray_extra_a_ray_run_is_a_one_line_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    path = _write(tmp_path)
    out = tmp_path / "run"
    code, err = _err(capsys, "run", str(path), "--executor", "ray", "--out", str(out))
    assert code == 1
    assert err == ("the ray executor needs the 'ray' extra: pip install 'recarena[ray]' "
                   "(or use executor kind default)")
    assert not out.exists()
