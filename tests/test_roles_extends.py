"""`roles new` scaffolds the tuned utility role; a role may `extends:` another and override
fields (deep merge, validated after the merge; cycles and missing parents are FILE:LINE
errors)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scenarios.loader import SHIPPED_ROLES, ScenarioError, load_role
from simulations.cli.main import main


def _line(path: Path, text: str) -> int:
    return next(n for n, t in enumerate(path.read_text().splitlines(), 1) if text in t)


def test_roles_new_user_has_the_tuned_parameters(tmp_path: Path) -> None:
    assert main(["roles", "new", "viewer", "--dir", str(tmp_path)]) == 0
    role = load_role(tmp_path / "viewer.yaml")
    shipped = load_role(SHIPPED_ROLES / "utility_user.yaml")
    assert role.brain.params == shipped.brain.params
    # The fitted threshold, not the schema's untuned 0.5 default.
    default = type(role.brain.params)().watch_threshold
    assert shipped.brain.params.watch_threshold != pytest.approx(default)


def test_extends_a_shipped_role_by_name_and_overrides(tmp_path: Path) -> None:
    child = tmp_path / "picky.yaml"
    child.write_text(yaml.safe_dump({
        "kind": "role", "name": "picky", "extends": "utility_user",
        "brain": {"params": {"watch_threshold": 2.0}}, "traits": {"activity": 1}}))
    role = load_role(child)
    shipped = load_role(SHIPPED_ROLES / "utility_user.yaml")
    assert role.name == "picky" and role.traits.activity == 1
    assert role.brain.params.watch_threshold == 2.0
    # Deep merge: the other tuned parameters stay.
    assert role.brain.params.exit_base == shipped.brain.params.exit_base
    assert role.brain.params.satisfaction_center == shipped.brain.params.satisfaction_center
    assert role.instructions == shipped.instructions
    assert main(["validate", str(child)]) == 0


def test_extends_a_file_chain(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({
        "kind": "role", "name": "base", "extends": "utility_user",
        "brain": {"params": {"noise": 0.5}}}))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "leaf.yaml").write_text(yaml.safe_dump({
        "kind": "role", "name": "leaf", "extends": "../base.yaml",
        "brain": {"params": {"fatigue": 0.3}}}))
    role = load_role(sub / "leaf.yaml")
    assert (role.brain.params.noise, role.brain.params.fatigue) == (0.5, 0.3)
    shipped = load_role(SHIPPED_ROLES / "utility_user.yaml")
    assert role.brain.params.watch_threshold == shipped.brain.params.watch_threshold


def test_invalid_after_merge_is_located(tmp_path: Path) -> None:
    child = tmp_path / "bad.yaml"
    child.write_text("kind: role\nname: bad\nextends: utility_user\nbrain:\n  params:\n"
                     "    noise: -1\n")
    with pytest.raises(ScenarioError) as e:
        load_role(child)
    assert str(e.value).startswith(f"{child}:6: brain.params.noise")


def test_missing_parent_and_cycles_are_file_line_errors(tmp_path: Path) -> None:
    child = tmp_path / "orphan.yaml"
    child.write_text("kind: role\nname: orphan\n# a comment\nextends: nobody\n")
    with pytest.raises(ScenarioError) as e:
        load_role(child)
    assert str(e.value).startswith(f"{child}:4: extends: role not found")
    assert "utility_user" in str(e.value)  # the shipped roles are listed

    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("kind: role\nname: a\nextends: b.yaml\n")
    b.write_text("kind: role\nname: b\n\nextends: ./a.yaml\n")
    with pytest.raises(ScenarioError) as e:
        load_role(a)
    msg = str(e.value)
    assert msg.startswith(f"{b}:4: extends: cycle: ") and "\n" not in msg
    me = tmp_path / "me.yaml"
    me.write_text("kind: role\nname: me\nextends: me.yaml\n")
    with pytest.raises(ScenarioError, match=r"me.yaml:3: extends: cycle"):
        load_role(me)
    assert main(["validate", str(a)]) == 2


def test_extends_a_recommender_role_is_refused(tmp_path: Path) -> None:
    child = tmp_path / "x.yaml"
    child.write_text("kind: role\nname: x\nextends: llmrank\n")
    with pytest.raises(ScenarioError, match=r"x.yaml:3: extends: .* recommender file"):
        load_role(child)


def test_the_documented_example_loads(tmp_path: Path) -> None:
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "authoring-roles.md").read_text()
    (block,) = re.findall(r"```yml\n(.*?)```", doc, re.S)
    (tmp_path / "picky.yaml").write_text(block)
    role = load_role(tmp_path / "picky.yaml")
    assert role.name == "picky_viewer" and role.brain.params.watch_threshold == 2.0


def test_json_schema_accepts_extends() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from scenarios.loader import json_schemas

    schema = json_schemas()["role"]
    role = {"kind": "role", "name": "x", "extends": "utility_user",
            "brain": {"params": {"noise": 0.3}}}
    assert jsonschema.Draft202012Validator(schema).is_valid(role)
    assert not jsonschema.Draft202012Validator(schema).is_valid({**role, "extend": "x"})
