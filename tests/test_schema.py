"""Scenario and role files: one-line errors naming file, line and field; frozen models."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

import scenarios
from scenarios.loader import (
    LoadedScenario,
    ScenarioError,
    json_schemas,
    load_role,
    load_scenario,
    validate_file,
)
from scenarios.schema import AddItemsEvent, RoleConfig, Scenario, SwitchRecommenderEvent
from tests.shipped import shipped

GOOD_ROLE = """\
kind: role
name: tester
brain:
  kind: utility
  params:
    noise: 0.1
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A scenario folder with a valid role file at roles/r.yaml."""
    (tmp_path / "roles").mkdir()
    (tmp_path / "roles" / "r.yaml").write_text(GOOD_ROLE)
    return tmp_path


def put(folder: Path, text: str, name: str = "s.yaml") -> Path:
    p = folder / name
    p.write_text(text, encoding="utf-8")
    return p


def error_of(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as ei:
        validate_file(path)
    return ei.value


def assert_error(err: ScenarioError, path: Path, line: int, field: str, pattern: str) -> None:
    text = str(err)
    assert "\n" not in text, text
    prefix = f"{path}:{line}: {field}: " if field else f"{path}:{line}: "
    assert text.startswith(prefix), f"{text!r} does not start with {prefix!r}"
    assert re.search(pattern, text[len(prefix):]), text
    assert (err.path, err.line, err.field) == (str(path), line, field)


HEAD = "kind: scenario\nname: t\npopulation:\n  role: roles/r.yaml\n"  # lines 1-4

# (id, text, line, field, message pattern). Line numbers are counted in the text below.
BROKEN: list[tuple[str, str, int, str, str]] = [
    (
        "unknown-top-level-key",
        HEAD + "recommenders:\n  - {name: a, model: pop}\nbogus: 1\n",
        7, "bogus", "unknown field",
    ),
    (
        "unknown-key-under-environment",
        HEAD + "recommenders:\n  - {name: a, model: pop}\n"
        "environment:\n  kind: feed\n  colour: red\n",
        9, "environment.colour", "unknown field",
    ),
    (
        "items-per-page-not-an-int",
        HEAD + "recommenders:\n  - {name: a, model: pop}\n"
        "environment:\n  rounds: 2\n  items_per_page: many\n",
        9, "environment.items_per_page", "valid integer",
    ),
    (
        "items-per-page-fraction",
        HEAD + "recommenders:\n  - {name: a, model: pop}\nenvironment:\n  items_per_page: 2.5\n",
        8, "environment.items_per_page", "valid integer",
    ),
    (
        "negative-max-pages",
        HEAD + "recommenders:\n  - {name: a, model: pop}\nenvironment:\n  max_pages: -1\n",
        8, "environment.max_pages", "greater than or equal to 1",
    ),
    (
        "environment-not-a-mapping",
        HEAD + "recommenders:\n  - {name: a, model: pop}\nenvironment: 5\n",
        7, "environment", "dictionary",
    ),
    (
        "missing-recommenders",
        HEAD,
        1, "recommenders", "required field is missing",
    ),
    (
        "empty-recommenders",
        HEAD + "recommenders: []\n",
        5, "recommenders", "at least 1 item",
    ),
    (
        "unknown-model-in-second-recommender",
        HEAD + "recommenders:\n  - name: a\n    model: pop\n  - name: b\n"
        "    params: {k: 1}\n    model: transformer\n",
        10, "recommenders.1.model", r"unknown model 'transformer': not a built-in model "
        r"\(random, pop, itemknn, ease, als, bpr\)",
    ),
    (
        "bad-recommender-name",
        HEAD + "recommenders:\n  - name: a\n    model: pop\n  - name: has space\n    model: ease\n",
        8, "recommenders.1.name", "pattern",
    ),
    (
        "duplicate-recommender-name",
        HEAD + "recommenders:\n  - name: a\n    model: pop\n  - name: a\n    model: ease\n",
        8, "recommenders.1.name", "duplicate recommender name 'a'",
    ),
    (
        "event-after-last-round",
        HEAD + "recommenders:\n  - {name: a, model: pop}\nenvironment:\n  rounds: 2\n"
        "events:\n  - action: add_items\n    at_round: 2\n    count: 3\n"
        "  - action: add_items\n    count: 1\n    at_round: 3\n",
        15, "events.1.at_round", r"round 3 is after the last round \(2\)",
    ),
    (
        "switch-to-unknown-recommender",
        HEAD + "recommenders:\n  - {name: a, model: pop}\n  - {name: b, model: ease}\n"
        "environment:\n  rounds: 3\nevents:\n  - action: switch_recommender\n"
        "    at_round: 2\n    model: als\n    recommender: zz\n",
        14, "events.0.recommender", "unknown recommender 'zz'; known: a, b",
    ),
    (
        "unknown-event-action",
        HEAD + "recommenders:\n  - {name: a, model: pop}\nevents:\n  - at_round: 2\n"
        "    action: explode\n",
        8, "events.0", "'add_items', 'switch_recommender'",
    ),
    (
        "population-size-zero",
        "kind: scenario\nname: t\nrecommenders:\n  - {name: a, model: pop}\n"
        "population:\n  role: roles/r.yaml\n  size: 0\n",
        7, "population.size", "greater than or equal to 1",
    ),
    (
        "unknown-metric",
        HEAD + "recommenders:\n  - {name: a, model: pop}\nmetrics:\n  - watch_rate\n  - ndcg\n",
        9, "metrics.1", "'watch_rate'",
    ),
    (
        "unknown-ease-param",
        HEAD + "recommenders:\n  - name: a\n    model: ease\n    params:\n      l2: 100\n"
        "      l3: 500\n",
        10, "recommenders.0.params.l3", r"^unknown parameter of ease; it takes: l2$",
    ),
    (
        "param-for-pop",
        HEAD + "recommenders:\n  - {name: a, model: pop, params: {k: 3}}\n",
        6, "recommenders.0.params.k", r"^unknown parameter of pop; it takes none$",
    ),
    (
        "itemknn-fractional-neighbours",
        HEAD + "recommenders:\n  - name: a\n    model: itemknn\n    params: {k_neighbors: 2.5}\n",
        8, "recommenders.0.params.k_neighbors", "valid integer",
    ),
    (
        "ease-l2-zero",
        HEAD + "recommenders:\n  - {name: a, model: ease, params: {l2: 0}}\n",
        6, "recommenders.0.params.l2", "greater than 0",
    ),
    (
        "als-factors-as-text",
        HEAD + "recommenders:\n  - {name: a, model: als, params: {factors: '64'}}\n",
        6, "recommenders.0.params.factors", "valid integer",
    ),
    (
        "bpr-learning-rate-bool",
        HEAD + "recommenders:\n  - {name: a, model: bpr, params: {learning_rate: true}}\n",
        6, "recommenders.0.params.learning_rate", "valid number",
    ),
    (
        "switch-event-unknown-param",
        HEAD + "recommenders:\n  - {name: a, model: pop}\nenvironment:\n  rounds: 2\n"
        "events:\n  - action: switch_recommender\n    at_round: 2\n    recommender: a\n"
        "    model: als\n    params:\n      factors: 8\n      lr: 0.1\n",
        16, "events.0.params.lr",
        r"^unknown parameter of als; it takes: factors, regularization, alpha, iterations$",
    ),
    (
        "history-fraction-zero",
        HEAD + "recommenders:\n  - {name: a, model: pop}\ndataset:\n  history_fraction: 0\n",
        8, "dataset.history_fraction", "greater than 0",
    ),
]


@pytest.mark.parametrize(("text", "line", "field", "pattern"),
                         [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_scenario(folder: Path, text: str, line: int, field: str, pattern: str) -> None:
    p = put(folder, text)
    assert_error(error_of(p), p, line, field, pattern)
    # load_scenario reports exactly the same error as validate_file.
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    assert str(ei.value) == str(error_of(p))


def test_the_broken_texts_are_valid_yaml_and_only_one_thing_is_wrong(folder: Path) -> None:
    # Guard for the table above: every text parses, and HEAD plus one recommender is fine.
    for _id, text, *_ in BROKEN:
        assert isinstance(yaml.safe_load(text), dict), _id
    p = put(folder, HEAD + "recommenders:\n  - {name: a, model: pop}\n")
    assert validate_file(p) == "scenario"


def test_yaml_syntax_error_points_at_the_problem_line(folder: Path) -> None:
    p = put(folder, "kind: scenario\nname: t\nrecommenders:\n  - name: a\n     model: pop\n")
    assert_error(error_of(p), p, 5, "", r"^YAML syntax: mapping values are not allowed here$")


def test_yaml_tab_indentation(folder: Path) -> None:
    p = put(folder, "kind: scenario\nname: t\nrecommenders:\n\t- {name: a, model: pop}\n")
    assert_error(error_of(p), p, 4, "", r"^YAML syntax: .*'\\t'")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"],
                         ids=["empty", "blank", "comment"])
def test_empty_file(folder: Path, text: str) -> None:
    p = put(folder, text)
    assert_error(error_of(p), p, 1, "", r"^expected a mapping at the top level \(empty file\)$")


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just words\n", "str"),
                                            ("42\n", "int")])
def test_top_level_not_a_mapping(folder: Path, text: str, kind: str) -> None:
    p = put(folder, text)
    assert_error(error_of(p), p, 1, "", rf"^expected a mapping at the top level \(got {kind}\)$")


def test_missing_scenario_file(tmp_path: Path) -> None:
    p = tmp_path / "absent.yaml"
    assert_error(error_of(p), p, 1, "", "^no such file$")
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(p)


def test_missing_role_file(folder: Path) -> None:
    p = put(folder, "kind: scenario\nname: t\nrecommenders:\n  - {name: a, model: pop}\n"
                    "population:\n  size: 3\n  role: roles/missing.yaml\n")
    err = error_of(p)
    assert_error(err, p, 7, "population.role", "role file not found")
    assert str((folder / "roles" / "missing.yaml").resolve()) in str(err)


def test_invalid_role_file_names_the_role_file_and_its_line(folder: Path) -> None:
    role = folder / "roles" / "bad.yaml"
    role.write_text("kind: role\nname: bad\nbrain:\n  params:\n    taste_weight: 1\n"
                    "    noise: -1\n")
    p = put(folder, "kind: scenario\nname: t\nrecommenders:\n  - {name: a, model: pop}\n"
                    "population:\n  role: roles/bad.yaml\n")
    err = error_of(p)
    assert_error(err, role.resolve(), 6, "brain.params.noise", "greater than or equal to 0")
    # The role file on its own gives the same line and field.
    with pytest.raises(ScenarioError) as ei:
        load_role(role)
    assert_error(ei.value, role, 6, "brain.params.noise", "greater than or equal to 0")


@pytest.mark.parametrize(
    ("text", "line", "field", "pattern"),
    [
        ("kind: role\nname: r\nbogus: 1\n", 3, "bogus", "unknown field"),
        ("kind: role\nname: r\ntraits:\n  activity: 4\n", 4, "traits.activity",
         "less than or equal to 3"),
        ("kind: role\nname: r\nbrain:\n  kind: oracle\n", 4, "brain.kind", "'utility' or 'llm'"),
        ("kind: role\nname: r\nmemory:\n  short_term_window: -1\n", 4,
         "memory.short_term_window", "greater than or equal to 0"),
        ("kind: role\ndescription: no name\n", 1, "name", "required field is missing"),
    ],
    ids=["unknown-key", "trait-out-of-range", "unknown-brain", "negative-window", "no-name"],
)
def test_broken_role_file(folder: Path, text: str, line: int, field: str, pattern: str) -> None:
    p = put(folder, text, "role.yaml")
    assert_error(error_of(p), p, line, field, pattern)


def test_error_inside_an_event_names_the_events_field(folder: Path) -> None:
    p = put(folder, HEAD + "recommenders:\n  - {name: a, model: pop}\nenvironment:\n"
                    "  rounds: 3\nevents:\n  - action: add_items\n    count: 2\n    at_round: 1\n")
    assert_error(error_of(p), p, 12, "events.0.at_round", "greater than or equal to 2")


def test_error_inside_an_inline_role_names_the_roles_field(folder: Path) -> None:
    p = put(folder, "kind: scenario\nname: t\nrecommenders:\n  - {name: a, model: pop}\n"
                    "population:\n  role:\n    name: inline\n    bogus: 1\n")
    assert_error(error_of(p), p, 8, "population.role.bogus", "unknown field")


def test_params_are_typed_and_only_what_was_given(folder: Path) -> None:
    p = put(folder, HEAD + "recommenders:\n  - {name: a, model: ease, params: {l2: 100}}\n"
            "  - {name: b, model: itemknn}\n")
    recs = load_scenario(p).scenario.recommenders
    assert recs[0].params == {"l2": 100.0} and isinstance(recs[0].params["l2"], float)
    assert recs[1].params == {}  # defaults stay the model's, not copied into the trace


def test_a_scenario_without_a_role_uses_the_shipped_role(folder: Path) -> None:
    # A roles/utility_user.yaml beside the user's scenario is not the default role.
    (folder / "roles" / "utility_user.yaml").write_text(GOOD_ROLE.replace("tester", "impostor"))
    shipped = Path(scenarios.__file__).resolve().parent / "roles" / "utility_user.yaml"
    for where in (folder, folder / "empty"):
        where.mkdir(exist_ok=True)
        p = put(where, "kind: scenario\nname: t\nrecommenders:\n  - {name: a, model: pop}\n")
        loaded = load_scenario(p)
        assert loaded.role_path == shipped
        assert loaded.role == load_role(shipped) and loaded.role.name == "utility_user"
        assert loaded.resolved_config()["population"]["role"]["name"] == "utility_user"


LLM_ROLE = "kind: role\nname: talker\nbrain:\n  kind: llm\n"


def test_an_llm_role_needs_an_llm_block_at_load(folder: Path) -> None:
    (folder / "roles" / "l.yaml").write_text(LLM_ROLE)
    text = ("kind: scenario\nname: t\nrecommenders:\n  - {name: a, model: pop}\n"
            "population:\n  role: roles/l.yaml\n")
    p = put(folder, text)
    assert_error(error_of(p), p, 6, "llm",
                 r"^role 'talker' has brain: llm but neither it nor the scenario has an llm: "
                 r"block; add one")
    assert load_scenario(p, llm_flag=True).role.name == "talker"  # run --llm supplies it
    inline = put(folder, "kind: scenario\nname: t\nrecommenders:\n  - {name: a, model: pop}\n"
                 "population:\n  size: 2\n  role:\n    name: x\n    brain: {kind: llm}\n",
                 "inline.yaml")
    assert_error(error_of(inline), inline, 7, "llm", "role 'x' has brain: llm")
    with_block = put(folder, text + "llm: {backend: openai, model: m}\n", "ok.yaml")
    assert validate_file(with_block) == "scenario"


def test_scenario_error_format() -> None:
    e = ScenarioError("a/b.yaml", 3, "environment.rounds", "too many")
    assert str(e) == "a/b.yaml:3: environment.rounds: too many"
    assert str(ScenarioError(Path("c.yaml"), 1, "", "no such file")) == "c.yaml:1: no such file"
    assert isinstance(e, ValueError)


# ----------------------------------------------------------------------------- good files


SHIPPED = ["quickstart.yaml", "movielens_feed.yaml", "roles/utility_user.yaml",
           "llm_feed.yaml", "roles/llm_user.yaml"]


@pytest.mark.parametrize("rel", SHIPPED)
def test_shipped_files_validate(repo: Path, rel: str) -> None:
    assert validate_file(shipped(rel)) == ("role" if "roles/" in rel else "scenario")


@pytest.mark.parametrize("rel", SHIPPED[:2])
def test_shipped_scenarios_load_with_their_role(repo: Path, rel: str) -> None:
    loaded = load_scenario(shipped(rel))
    raw = yaml.safe_load(shipped(rel).read_text())
    scn = loaded.scenario
    assert scn.name == raw["name"] and scn.seed == raw["seed"]
    assert [(r.name, r.model) for r in scn.recommenders] == [
        (r["name"], r["model"]) for r in raw["recommenders"]]
    assert scn.environment.rounds == raw["environment"]["rounds"]
    role_file = (shipped() / raw["population"]["role"]).resolve()
    assert loaded.role_path == role_file
    assert loaded.role.name == role_file.stem
    assert loaded.role == load_role(role_file)


def test_quickstart_events_are_typed(repo: Path) -> None:
    scn = load_scenario(shipped("quickstart.yaml")).scenario
    assert scn.events and all(isinstance(e, AddItemsEvent) for e in scn.events)
    assert scn.events[0].at_round <= scn.environment.rounds


def test_role_path_is_relative_to_the_scenario_file(
    folder: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "sub").mkdir()
    p = put(folder / "sub", "kind: scenario\nname: t\nrecommenders:\n  - {name: a, model: pop}\n"
                            "population:\n  role: ../roles/r.yaml\n")
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    loaded = load_scenario(p)
    assert loaded.role_path == (folder / "roles" / "r.yaml").resolve()
    assert loaded.role.name == "tester"
    assert loaded.role.brain.params.noise == 0.1


def test_inline_role_and_defaults(folder: Path) -> None:
    p = put(folder, "kind: scenario\nname: t\nrecommenders:\n  - {name: a, model: pop}\n"
                    "environment:\n  rounds: 2\n"
                    "events:\n  - {action: switch_recommender, at_round: 2, recommender: a,"
                    " model: ease, params: {l2: 10}}\n"
                    "population:\n  role:\n    name: inline\n    traits: {activity: 3}\n")
    loaded = load_scenario(p)
    assert loaded.role_path is None
    assert loaded.role.name == "inline" and loaded.role.traits.activity == 3
    ev = loaded.scenario.events[0]
    assert isinstance(ev, SwitchRecommenderEvent) and ev.params == {"l2": 10}
    env = loaded.scenario.environment
    assert (env.items_per_page, env.max_pages) == (4, 5)  # the documented defaults
    cfg = loaded.resolved_config()
    assert cfg["population"]["role"]["name"] == "inline"
    assert cfg["population"]["role"]["traits"]["activity"] == 3
    json.dumps(cfg)  # the resolved config goes into traces: it must be JSON


def test_resolved_config_inlines_the_role_file(repo: Path) -> None:
    loaded = load_scenario(shipped("quickstart.yaml"))
    cfg = loaded.resolved_config()
    assert cfg["population"]["role"] == loaded.role.model_dump(mode="json")
    assert cfg["seed"] == loaded.scenario.seed
    # Dumping does not change the frozen model.
    assert loaded.scenario.population.role == "roles/synthetic_viewer.yaml"


def test_models_are_frozen(repo: Path) -> None:
    loaded = load_scenario(shipped("quickstart.yaml"))
    scn, role = loaded.scenario, loaded.role
    with pytest.raises(ValidationError, match="frozen"):
        scn.seed = 1  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        scn.environment.rounds = 9  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        scn.recommenders[0].model = "ease"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        role.brain.params.noise = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.role = role  # type: ignore[misc]
    assert scn.seed == 42 and scn.environment.rounds == 3


def test_model_copy_leaves_the_original(repo: Path) -> None:
    scn = load_scenario(shipped("quickstart.yaml")).scenario
    other = scn.model_copy(update={"seed": scn.seed + 1})
    assert other.seed == scn.seed + 1 and scn.seed == 42


# ----------------------------------------------------------------------------- JSON Schema


def test_json_schemas_have_both_kinds() -> None:
    schemas = json_schemas()
    assert set(schemas) == {"scenario", "role", "recommender", "team", "item"}
    assert schemas["item"]["properties"]["kind"]["const"] == "item"
    scn, role = schemas["scenario"], schemas["role"]
    assert scn["type"] == "object" and role["type"] == "object"
    assert {"name", "recommenders"} <= set(scn["required"])
    assert set(scn["properties"]) == set(Scenario.model_fields)
    assert set(role["properties"]) == set(RoleConfig.model_fields) | {"extends"}
    assert scn["additionalProperties"] is False  # unknown keys are rejected, as by the loader
    # Editors pick the draft from $schema; pydantic emits draft 2020-12.
    assert scn["$schema"] == role["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    json.dumps(schemas)


def _validator(schema: dict[str, Any]) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    cls = jsonschema.validators.validator_for(schema, default=None)
    assert cls is jsonschema.Draft202012Validator  # chosen by the schema's own $schema
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("rel", SHIPPED)
def test_shipped_files_validate_against_the_json_schema(repo: Path, rel: str) -> None:
    kind = "role" if "roles/" in rel else "scenario"
    v = _validator(json_schemas()[kind])
    data = yaml.safe_load(shipped(rel).read_text())
    errors = [e.message for e in v.iter_errors(data)]
    assert errors == []


def test_json_schema_rejects_what_the_loader_rejects(repo: Path) -> None:
    v = _validator(json_schemas()["scenario"])
    good = yaml.safe_load(shipped("quickstart.yaml").read_text())
    assert v.is_valid(good)
    bad_key = {**good, "bogus": 1}
    # Not a model name or import path (a bare name may be an installed entry point, which
    # only the loader can tell).
    bad_model = {**good, "recommenders": [{"name": "a", "model": "a transformer"}]}
    no_recs = {k: val for k, val in good.items() if k != "recommenders"}
    bad_pages = {**good, "environment": {**good["environment"], "max_pages": -1}}
    bad_param = {**good, "recommenders": [{"name": "a", "model": "ease", "params": {"l3": 1}}]}
    bad_value = {**good, "recommenders": [{"name": "a", "model": "als",
                                           "params": {"factors": 2.5}}]}
    pop_param = {**good, "recommenders": [{"name": "a", "model": "pop", "params": {"l2": 1}}]}
    for bad in (bad_key, bad_model, no_recs, bad_pages, bad_param, bad_value, pop_param):
        assert not v.is_valid(bad)
    ok = {**good, "recommenders": [{"name": "a", "model": "als", "params": {"factors": 8}}]}
    assert v.is_valid(ok)


def test_copied_scenario_folder_validates(repo: Path, tmp_path: Path) -> None:
    # The shipped scenarios only depend on files inside scenarios/.
    shutil.copytree(shipped(), tmp_path / "scenarios",
                    ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    loaded = load_scenario(tmp_path / "scenarios" / "quickstart.yaml")
    assert isinstance(loaded, LoadedScenario)
    assert loaded.role_path == (tmp_path / "scenarios" / "roles" /
                                "synthetic_viewer.yaml").resolve()


def test_attribute_and_index_access_in_templates_is_rejected(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("kind: role\nname: x\nbrain:\n  kind: llm\n  prompts:\n"
                 "    page: '{items.upper} {item_ids[0]}'\n")
    with pytest.raises(ScenarioError, match=r"attribute and index access are not allowed"):
        load_role(p)
