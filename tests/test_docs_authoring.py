"""docs/authoring-roles.md works as written: its commands and YAML files, laid out as the
walk-through says (``my_roles/`` and a scenario at the repository root), validate."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from simulations.cli.main import main
from tests.shipped import shipped

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "authoring-roles.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, re.S)


def _argv(line: str) -> list[str]:
    return shlex.split(line.split("#")[0])[1:]


def _inline_commands() -> list[list[str]]:
    """The doc's inline `recarena roles|schema|validate ...` spans (no placeholders)."""
    spans = re.findall(r"`(recarena (?:roles|schema|validate) [^`]+)`", " ".join(DOC.split()))
    return [_argv(c) for c in spans if "NAME" not in c and c.split()[-1] != "new"]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "scenarios").symlink_to(shipped())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_walk_through_commands_and_files_validate(root: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    first = [_argv(line) for line in _blocks("bash")[0].splitlines()]
    assert first == [["roles", "new", "era_ranker", "--kind", "recommender", "--output",
                      "ranking", "--dir", "my_roles"], ["validate", "my_roles/era_ranker.yaml"]]
    for argv in first:  # the scaffold validates as written
        assert main(argv) == 0, (argv, capsys.readouterr().err)
    role, arm, team, inline = _blocks("yaml")
    (root / "my_roles" / "era_ranker.yaml").write_text(role)
    later = _inline_commands()
    assert ["validate", "my_roles/crew.yaml"] in later and ["roles", "list"] in later
    scaffolds = [a for a in later if a[:2] == ["roles", "new"]]
    assert scaffolds and all(main(a) == 0 for a in scaffolds)  # taste_critic
    (root / "my_roles" / "crew.yaml").write_text(team)
    for argv in later:
        if argv not in scaffolds:
            assert main(argv) == 0, (argv, capsys.readouterr().err)
    scenario = yaml.safe_load(arm)
    scenario["recommenders"] += yaml.safe_load(inline)
    scenario["recommenders"].append({"name": "crew_file", "model": "agent",
                                     "agent": "my_roles/crew.yaml",
                                     "candidates": {"model": "pop", "n": 10}})
    scenario.update(kind="scenario", name="mine", dataset={"source": "synthetic"})
    (root / "my_scenario.yaml").write_text(yaml.safe_dump(scenario))
    files = ["my_roles/era_ranker.yaml", "my_roles/crew.yaml", "my_scenario.yaml"]
    assert main(["validate", *files]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "era_ranker.yaml: ok (recommender)" in out and "crew.yaml: ok (team)" in out


def test_documented_error_line_is_what_a_bad_variable_gives(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shown = re.search(r"^(my_roles/era_ranker\.yaml:\d+: prompts\.prompt: variable\(s\) "
                      r"target not available in this template; it gets: [^.]*)", DOC, re.M)
    assert shown
    role = _blocks("yaml")[0].replace("Rank them", "Rank them for {target}")
    (root / "my_roles").mkdir()
    (root / "my_roles" / "era_ranker.yaml").write_text(role)
    assert main(["validate", "my_roles/era_ranker.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(shown.group(1).split(", ...")[0]) and err.count("\n") == 1
