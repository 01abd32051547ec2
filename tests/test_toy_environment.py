"""A new environment is one module: this one.

A toy "shelf" environment with its own observation (``ShelfView``) and action (``Pick``),
its own settings model, and the interaction kind that tells agents how to handle a shelf
(what to look up in memory, which brain capability to call with which view, what to
remember), all declared and registered here, from outside the package. It runs as a
scenario with the utility brain and with the fake chat model, is traced, summarised
(gracefully without metrics; with its own take rate once its outcome plug-in, also
declared here, is registered) and rendered by ``recarena trace agent``. A brain
that lacks the capability a kind needs is refused at load, naming role and environment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pytest
from pydantic import BaseModel, Field

from agents.brains.base import PageObservation
from agents.brains.capabilities import PageDecider, Thinker
from agents.group import AgentGroup
from agents.kinds import InteractionKind, MemoryWrite, Recalled, registered_kinds
from agents.observations import Action, Failure, Observation
from agents.seeding import user_rng
from scenarios.loader import load_scenario
from simulations.analysis.arm_stats import UserSums, arm_stats
from simulations.analysis.outcomes import Marks, Outcomes, Scoped, UserAcc, temporarily_registered
from simulations.cli.main import main
from simulations.environments.base import ArmEnvironment, EnvSetup, register
from simulations.record.trace import read_trace
from simulations.run.runner import prepare, run

# ----------------------------------------------------------------------------- the world


class ShelfSettings(BaseModel):
    """environment.settings of the toy: how many items a shelf holds."""

    model_config = {"extra": "forbid"}
    shelf: int = Field(3, ge=1, le=20)


class ShelfView(Observation):
    """A shelf of items: take at most one home."""

    kind: Literal["toy_shelf"] = "toy_shelf"
    items: list[int]


class Pick(Action):
    kind: Literal["toy_pick"] = "toy_pick"
    item: int | None
    rating: int | None = None
    why: str = ""


class ShelfKind(InteractionKind[ShelfView]):
    """A shelf is decided like a one-page feed; the first item the brain would watch is
    the one taken."""

    observation = ShelfView
    needs = (PageDecider,)

    def query(self, g: AgentGroup, obs: ShelfView) -> str | None:
        return "; ".join(g.world.catalog.titles[i] for i in obs.items)

    async def decide(self, g: AgentGroup, obs: ShelfView, recalled: Recalled) -> Action:
        brain = cast(PageDecider, g.brain)
        d = await brain.adecide_page(
            PageObservation(profile=g.profiles[obs.agent], round=obs.round, page=1,
                            items=tuple(obs.items), memory=tuple(recalled.short)),
            user_rng(g.seed, obs.agent, obs.round, 77))
        took = next((x for x in d.items if x.watch), None)
        return Pick(item=took.item if took else None, rating=took.rating if took else None,
                    why=took.reason if took else "nothing caught my eye")

    def remember(self, g: AgentGroup, obs: ShelfView, action: Action) -> Sequence[MemoryWrite]:
        if not isinstance(action, Pick) or action.item is None:
            return ()
        iid, title = g.world.catalog.item_ids[action.item], g.world.catalog.titles[action.item]
        return (MemoryWrite(short={"action": "took", "item": iid, "title": title,
                                   "rating": action.rating, "round": obs.round},
                            key=iid, text=f"took '{title}' from a shelf", rating=action.rating,
                            watched=True),)


@register("toy_shelf", kinds=(ShelfKind(),), settings=ShelfSettings)
class ShelfEnvironment(ArmEnvironment):
    """Each round every user meets one shelf from the arm's recommender and picks."""

    def __init__(self, setup: EnvSetup) -> None:
        super().__init__(setup)
        self.settings = ShelfSettings.model_validate(setup.scenario.environment.settings)
        self.model = setup.fit(setup.arm, setup.history, frozenset())
        ds = setup.dataset
        self.seen = setup.history.matrix(ds.n_users, ds.n_items)
        self.pending: list[int] = []

    def begin_round(self, round_: int) -> None:
        self.round, self.pending = round_, list(self.s.users)
        self.s.trace.emit("round_start", f"{self.arm}/r{round_}", arm=self.arm, round=round_,
                          recommender=self.model.name, users=len(self.s.users),
                          environment="toy_shelf")

    def observe(self) -> list[Observation]:
        users, self.pending = self.pending, []
        if not users:
            return []
        recs = self.model.recommend(np.asarray(users), self.settings.shelf, self.seen[users])
        out: list[Observation] = []
        for u, row in zip(users, recs, strict=True):
            items = [int(i) for i in row if i >= 0]
            base, where = self._base(u, "s1"), self._where(u)
            self.s.trace.emit("shelf", base, **where,
                              items=[self.cat.item_ids[i] for i in items])
            out.append(ShelfView(agent=u, base=base, where=where, round=self.round,
                                 items=items))
        return out

    def step(self, observations: Sequence[Observation], actions: Sequence[Action]) -> None:
        for obs, a in zip(observations, actions, strict=True):
            if isinstance(a, Failure):
                self.s.trace.emit("decision_failure", f"{obs.base}/failure", **obs.where,
                                  purpose=a.purpose, error=a.error, raw=a.raw,
                                  attempts=a.attempts)
                continue
            assert isinstance(a, Pick)
            self.s.trace.emit("toy_pick", f"{obs.base}/pick", **obs.where,
                              item=self.cat.item_ids[a.item] if a.item is not None else None,
                              rating=a.rating, text=a.why)
        self.s.trace.flush()

    def end_round(self, round_: int) -> None:
        self.s.trace.flush()
        self.s.on_session_end(len(self.s.users))


class ThinkingShelfView(Observation):
    kind: Literal["toy_thinking_shelf"] = "toy_thinking_shelf"
    items: list[int]


class ThinkingShelfKind(InteractionKind[ThinkingShelfView]):
    """A shelf for brains that think it over first: a numeric brain cannot."""

    observation = ThinkingShelfView
    needs = (PageDecider, Thinker)

    async def decide(self, g: AgentGroup, obs: ThinkingShelfView,
                     recalled: Recalled) -> Action:
        raise AssertionError("never reached: refused at load")


@register("toy_thinking_shelf", kinds=(ThinkingShelfKind(),))
class ThinkingShelfEnvironment(ShelfEnvironment):
    pass


# ----------------------------------------------------------------------------- outcomes

_FIELDS = ("shelves", "takes")
_RATIOS = {"take_rate": ("takes", "shelves")}


class _Tally:
    def __init__(self) -> None:
        self.shelves = self.takes = 0

    def result(self) -> dict[str, Any]:
        return {"take_rate": self.takes / self.shelves if self.shelves else None,
                "shelves": self.shelves}


class ShelfMetrics:
    """Take rate: the share of shelves a user took an item from."""

    def __init__(self) -> None:
        self.scopes: Scoped[_Tally] = Scoped(_Tally)
        self.users: dict[str, UserSums] = {}

    def add(self, ev: dict[str, Any]) -> None:
        if ev.get("type") != "toy_pick":
            return
        for t in self.scopes.targets(ev):
            t.shelves += 1
            t.takes += ev["item"] is not None
        us = self.users.setdefault(ev["arm"], UserSums(_FIELDS))
        us.add(ev["user"], "shelves")
        us.add(ev["user"], "takes", float(ev["item"] is not None))

    def arms(self, n_items: int, ratings: bool) -> dict[str, dict[str, Any]]:
        return {arm: {**self.scopes.result(arm, _Tally.result),
                      "stats": arm_stats(self.users[arm], names=("take_rate",),
                                         sessions="shelves", figures=_RATIOS)}
                for arm in self.scopes.overall}


def _user_pick(a: UserAcc, ev: dict[str, Any]) -> bool:
    if ev.get("type") != "toy_pick":
        return False
    a.f["shelves"] += 1
    a.f["takes"] += ev["item"] is not None
    if ev["item"] is not None:
        a.exposure[str(ev["item"])] += 1
    return True


def _describe_pick(ev: dict[str, Any], title: Any, m: Marks) -> str:
    if ev["item"] is None:
        return "takes nothing from the shelf"
    return f"takes {m.b(m.e(title(ev['item'])))} home"


SHELF_OUTCOMES = Outcomes(
    environment="toy_shelf", labels={"take_rate": "take rate", "shelves": "shelves"},
    defaults=("take_rate",), metrics=ShelfMetrics, event_types=("toy_pick",),
    user_fields=_FIELDS, user_event=_user_pick, ratios=_RATIOS,
    compared=("take_rate", "coverage"),
    summary_columns=lambda m: (["take_rate"], ["shelves"]),
    summary_note=lambda m, ci: "take rate: share of shelves a user took an item from.",
    describe={"toy_pick": _describe_pick}, seen_types=("shelf",), result_types=("toy_pick",),
    step_title=lambda name: "shelf" if name == "s1" else None,
    setting=lambda env: {"rounds": env.get("rounds"), **(env.get("settings") or {})})

# ----------------------------------------------------------------------------- the runs

ROLE = {"name": "shopper", "memory": {"short_term_window": 4}, "brain": {"kind": "utility"}}
LLM_ROLE = {"name": "llm_shopper", "memory": {"short_term_window": 4},
            "brain": {"kind": "llm", "decision_mode": "structured"}}


def _scenario(folder: Path, role: dict[str, Any], kind: str = "toy_shelf",
              settings: dict[str, Any] | None = None, **more: Any) -> Path:
    env: dict[str, Any] = {"kind": kind, "rounds": 2}
    if settings is not None:
        env["settings"] = settings
    scn = {"kind": "scenario", "name": "toy", "seed": 11,
           "dataset": {"source": "synthetic",
                       "synthetic": {"n_users": 60, "n_items": 80, "n_genres": 5,
                                     "history_mean": 12}},
           "population": {"size": 6, "role": role},
           "recommenders": [{"name": "pop", "model": "pop"}],
           "environment": env, "output": {"dir": str(folder / "runs")}, **more}
    path = folder / "toy.yaml"
    path.write_text(json.dumps(scn, indent=2))  # JSON is YAML
    return path


def _events(run_dir: Path) -> list[dict[str, Any]]:
    return list(read_trace(run_dir))


@pytest.mark.parametrize("brain", ["utility", "llm"])
def test_the_toy_environment_runs_is_traced_and_rendered(
        brain: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    role = ROLE if brain == "utility" else LLM_ROLE
    path = _scenario(tmp_path, role, settings={"shelf": 4})
    prep = prepare(load_scenario(path, llm_flag=brain == "llm"),
                   llm="fake" if brain == "llm" else None)
    assert prep.scenario.environment.settings == {"shelf": 4}
    out = tmp_path / "run"
    res = run(prep, out)
    events = _events(out)
    shelves = [e for e in events if e["type"] == "shelf"]
    picks = [e for e in events if e["type"] == "toy_pick"]
    # Every user meets a shelf of 4 each round and answers it, under the shelf's step.
    assert len(shelves) == len(picks) == 2 * 6
    assert all(len(e["items"]) == 4 for e in shelves)
    assert {p["id"].rsplit("/", 1)[0] for p in picks} == {s["id"] for s in shelves}
    # What was picked was on the shelf: the agent's decision, not the environment's.
    on_shelf = {s["id"]: s["items"] for s in shelves}
    taken = [p for p in picks if p["item"] is not None]
    assert taken and all(p["item"] in on_shelf[p["id"].rsplit("/", 1)[0]] for p in taken)
    # The agent graph ran its memory: round 2 recalls what round 1 took.
    reads = [e for e in events if e["type"] == "memory" and e.get("kind") == "short_term"]
    assert reads and all(e["round"] == 2 for e in reads)
    assert all(r.split(":", 1)[0] == "took" for e in reads for r in e["recalled"])
    if brain == "llm":
        calls = [e for e in events if e["type"] == "llm_call"]
        assert len(calls) == 2 * 6 and all(c["id"].startswith(tuple(on_shelf)) for c in calls)
    else:  # the utility brain's numbers reached the trace through the pick's reason
        assert all(p["text"].startswith(("watch:", "nothing")) for p in picks)
    # Seeded: the same scenario picks the same items again.
    again = tmp_path / "again"
    run(prepare(load_scenario(path, llm_flag=brain == "llm"),
                llm="fake" if brain == "llm" else None), again)
    assert [p["item"] for p in picks] == [
        e["item"] for e in _events(again) if e["type"] == "toy_pick"]
    # Summarised without metrics of its own yet (no crash, no made-up figures).
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["metrics"]["arms"] == {} and "no outcome plug-in" in summary["metrics"]["note"]
    assert res.run_dir == out
    assert main(["trace", "summary", str(out)]) == 0
    text = capsys.readouterr().out
    assert "toy_shelf: rounds 2, shelf 4" in text and "toy_pick 12" in text
    # recarena trace agent renders the agent's steps, the toy's events among them.
    user = picks[0]["user"]
    assert main(["trace", "agent", str(out), f"u{user}", "--no-pager"]) == 0
    text = capsys.readouterr().out
    assert "s1" in text and f"agent {user}" in text
    assert main(["trace", "agent", str(out), f"u{user}", "--json"]) == 0
    story = json.loads(capsys.readouterr().out)
    types = [e["type"] for e in story["events"]]
    assert types.count("shelf") == 2 and types.count("toy_pick") == 2


def test_the_toy_outcomes_give_its_metrics_summary_and_story(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With its outcome plug-in registered, the toy's run has a take rate (with an
    interval over users) in summary.json, the run table and ``trace summary``, and ``trace
    agent`` tells each pick in its own words."""
    with temporarily_registered(SHELF_OUTCOMES):
        out = tmp_path / "run"
        run(prepare(load_scenario(_scenario(tmp_path, ROLE))), out)
        picks = [e for e in _events(out) if e["type"] == "toy_pick"]
        takes = sum(p["item"] is not None for p in picks)
        arm = json.loads((out / "summary.json").read_text())["metrics"]["arms"]["pop"]
        assert arm["overall"] == {"take_rate": takes / len(picks), "shelves": len(picks)}
        stat = arm["stats"]["take_rate"]
        assert stat["n"] == 6 and stat["lo"] <= stat["value"] <= stat["hi"]
        assert main(["trace", "summary", str(out), "--no-pager"]) == 0
        text = capsys.readouterr().out
        assert "take rate" in text and "share of shelves a user took" in text
        assert "no outcome plug-in" not in text
        user = next(p for p in picks if p["item"] is not None)["user"]
        assert main(["trace", "agent", str(out), f"u{user}", "--no-pager"]) == 0
        text = capsys.readouterr().out
        assert "takes " in text and " home" in text and "shelf" in text


def test_toy_settings_are_validated_at_load(tmp_path: Path) -> None:
    from scenarios.loader import ScenarioError

    with pytest.raises(ScenarioError, match=r"environment\.settings.*shelf"):
        load_scenario(_scenario(tmp_path, ROLE, settings={"shelf": 0}))
    with pytest.raises(ScenarioError, match="unknown environment kind 'no_such'"):
        load_scenario(_scenario(tmp_path, ROLE, kind="no_such"))


def test_a_brain_without_the_capability_is_a_load_time_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _scenario(tmp_path, ROLE, kind="toy_thinking_shelf")
    out = tmp_path / "never"
    code = main(["run", str(path), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "'shopper'" in err and "'toy_thinking_shelf'" in err and "Thinker" in err
    assert str(path) in err
    assert not (out / "trace.jsonl").exists()  # refused before any work
    assert main(["validate", str(path)]) != 0  # validate says the same
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'toy_thinking_shelf'" in err and "Thinker" in err
    assert main(["validate", str(_scenario(tmp_path, ROLE))]) == 0


def test_the_kinds_are_registered_by_the_environments() -> None:
    from agents.setup import brain_class
    from simulations.environments import interaction_kinds

    kinds = registered_kinds()
    assert isinstance(kinds["toy_shelf"], ShelfKind)
    assert interaction_kinds("toy_shelf") == (kinds["toy_shelf"],)
    shipped = [*interaction_kinds("feed"), *interaction_kinds("conversation")]
    assert [k.kind for k in shipped] == ["feed_page", "interview", "conversation_open",
                                         "conversation_turn"]
    # Both shipped brains play every shipped kind; only the LLM brain thinks.
    for brain in ("utility", "llm"):
        assert all(issubclass(brain_class(brain), cap) for k in shipped for cap in k.needs)
    assert issubclass(brain_class("llm"), Thinker)
    assert not issubclass(brain_class("utility"), Thinker)
    with pytest.raises(ValueError, match="already handled"):
        from agents.kinds import register_kind

        class Other(ShelfKind):
            pass

        register_kind(Other())


def test_an_installed_environment_is_found_through_its_entry_point(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``recarena run`` on a scenario naming an installed plug-in: the kind is looked up
    among the ``recarena.environments`` entry points and its module imported at load."""
    import importlib.metadata

    import scenarios.environment_kinds as ek

    (tmp_path / "shelf_plugin_ep.py").write_text(
        "from simulations.environments.base import register\n"
        "from tests.test_toy_environment import ShelfEnvironment, ShelfKind, ShelfSettings\n"
        "@register('toy_shelf_ep', kinds=(ShelfKind(),), settings=ShelfSettings)\n"
        "class Installed(ShelfEnvironment):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [importlib.metadata.EntryPoint("toy_shelf_ep", "shelf_plugin_ep",
                                         ek.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(ek.importlib.metadata, "entry_points",
                        lambda group: eps if group == ek.ENTRY_POINT_GROUP else [])
    assert "toy_shelf_ep" not in ek.environment_kinds()
    loaded = load_scenario(_scenario(tmp_path, ROLE, kind="toy_shelf_ep",
                                     settings={"shelf": 2}))
    assert loaded.scenario.environment.kind == "toy_shelf_ep"
    run(prepare(loaded), tmp_path / "run")
    shelves = [e for e in _events(tmp_path / "run") if e["type"] == "shelf"]
    assert len(shelves) == 12 and all(len(e["items"]) == 2 for e in shelves)
