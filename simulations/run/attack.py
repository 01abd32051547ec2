"""Attacks inside a run: the scenario's ``attack:`` block resolved against the data and
applied to the arms it names.

``resolve_attack`` runs at prepare time, before any work: target, bandwagon and segment
items are resolved and checked against the catalogue (a bad id or rule is a one-line
``FILE:LINE: attack.fake_users...`` error), and classic profiles are generated (seeded by
the run's seed and the block's). LLM-written profiles are written when the run starts
(``FakeUserAttack.write``), through the run's LLM service, so their calls are cached and a
resume replays them.

Fake users reach an arm only through ``FakeUserAttack.training``: the arm's fit function
(simulations/run/runner.py) hands it the arm's real training data (history plus the
simulated watches of earlier rounds) and fits on what it returns. Nothing is stored in
the environment or the dataset: another arm, a clean twin run and any later run never see
a fake user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from scenarios.loader import LoadedScenario, ScenarioError, line_of
from scenarios.schema import FakeUsersConfig, Scenario
from tools.data_model import Dataset, Interactions
from tools.shilling import (
    FakeProfiles,
    ShillingPlan,
    bandwagon_items,
    least_popular_targets,
    make_profiles,
    profiles_from_lists,
    rating_scale,
    segment_items,
)
from tools.shilling_detect import (
    LogisticDetector,
    flag_top,
    pca_scores,
    profile_features,
    train_logistic,
)

if TYPE_CHECKING:
    from agents.llm import LLMClient

__all__ = ["FakeUserAttack", "ResolvedAttack", "resolve_attack"]

Emit = Callable[..., None]


@dataclass(frozen=True)
class FakeUserAttack:
    """A fake-user attack ready to inject: its plan, profiles and defence."""

    config: FakeUsersConfig
    plan: ShillingPlan
    arms: frozenset[str]
    n_users: int  # real users in the data: fake users are n_users ..
    n_items: int
    profiles: FakeProfiles | None  # None until an llm strategy's profiles are written
    detector: LogisticDetector | None = None  # the logistic defence's model
    written: dict[str, Any] | None = None  # llm: calls and failures

    def reaches(self, arm: str) -> bool:
        return arm in self.arms

    def write(self, client: LLMClient, dataset: Dataset, history: Interactions
              ) -> FakeUserAttack:
        """The attack with its LLM-written profiles (classic strategies: unchanged)."""
        if self.plan.strategy != "llm":
            return self
        from agents.shilling_writer import write_profiles

        lo, hi = rating_scale(history)
        rated = np.flatnonzero(np.bincount(history.item, minlength=dataset.n_items) > 0)
        rng = np.random.default_rng(np.random.SeedSequence([self.plan.seed, 2108]))
        pool = [int(i) for i in rng.permutation(rated) if int(i) not in self.plan.targets]
        got = write_profiles(
            client, item_ids=dataset.catalog.item_ids, titles=dataset.catalog.titles,
            pool=pool, targets=self.plan.targets, count=self.plan.count,
            filler=self.plan.filler, lo=lo, hi=hi,
            target_rating=hi if self.plan.intent == "promote" else lo)
        ts = float(history.ts.max()) if len(history) else 0.0
        return replace(self, profiles=profiles_from_lists(got.profiles, self.n_users, ts),
                       written={"asked": self.plan.count, "written": len(got.profiles),
                                "failures": got.failures, "errors": got.errors[:3]})

    def training(self, arm: str, train: Interactions, emit: Emit | None = None,
                 where: str = "") -> tuple[Interactions, int]:
        """The arm's training data with the fake users (if it is attacked) and the
        defence's filter, and the number of user rows the matrix needs."""
        if not self.reaches(arm) or self.profiles is None:
            return train, self.n_users
        fp = self.profiles
        poisoned = train.concat(fp.interactions)
        n_rows = self.n_users + fp.count
        defence = self.config.defence
        if defence is None:
            return poisoned, n_rows
        m = poisoned.matrix(n_rows, self.n_items, binary=False)
        present = np.flatnonzero(np.diff(m.indptr) > 0)
        if defence.detector == "pca":
            scores = pca_scores(m)
        else:
            assert self.detector is not None
            scores = self.detector.scores(profile_features(m))
        flagged = flag_top(scores, defence.flag_share, among=present)
        if emit is not None:
            emit("defence", f"{arm}/{where}defence", arm=arm, detector=defence.detector,
                 flagged=int(flagged.size),
                 fake_flagged=int(np.sum(flagged >= self.n_users)), fake_users=fp.count)
        return poisoned.select(~np.isin(poisoned.user, flagged)), n_rows

    def describe(self, dataset: Dataset) -> dict[str, Any]:
        """The attack as the trace records it."""
        return {"kind": "fake_users", "strategy": self.plan.strategy,
                "fake_users": self.profiles.count if self.profiles else 0,
                "targets": [dataset.catalog.item_ids[t] for t in self.plan.targets],
                "intent": self.plan.intent, "filler": self.plan.filler,
                "arms": sorted(self.arms),
                "defence": (self.config.defence.model_dump()
                            if self.config.defence else None),
                **({"written": self.written} if self.written else {})}


@dataclass(frozen=True)
class ResolvedAttack:
    """Every attack kind of the scenario, resolved (None: not in the scenario)."""

    fake_users: FakeUserAttack | None = None


def _fail(loaded: LoadedScenario, loc: tuple[str | int, ...], msg: str) -> ScenarioError:
    return ScenarioError(loaded.path, line_of(loaded.path, loc),
                         ".".join(str(x) for x in loc), msg)


def _items(loaded: LoadedScenario, ds: Dataset, ids: list[str],
           loc: tuple[str | int, ...]) -> list[int]:
    index = {iid: i for i, iid in enumerate(ds.catalog.item_ids)}
    unknown = [i for i in ids if i not in index]
    if unknown:
        raise _fail(loaded, loc, f"unknown item id(s) {', '.join(map(repr, unknown[:5]))} "
                    f"(not in the {ds.name} catalogue)")
    return [index[i] for i in ids]


def resolve_attack(loaded: LoadedScenario, scn: Scenario, ds: Dataset,
                   history: Interactions) -> ResolvedAttack | None:
    """The scenario's attack against this data (ScenarioError when it cannot be)."""
    if scn.attack is None:
        return None
    fu = scn.attack.fake_users
    return ResolvedAttack(
        fake_users=_fake_users(loaded, scn, fu, ds, history) if fu is not None else None)


def _fake_users(loaded: LoadedScenario, scn: Scenario, fu: FakeUsersConfig, ds: Dataset,
                history: Interactions) -> FakeUserAttack:
    base = ("attack", "fake_users")
    t = fu.targets
    if t.items is not None:
        targets = _items(loaded, ds, t.items, (*base, "targets", "items"))
    else:
        try:
            targets = least_popular_targets(history, ds.n_items, t.least_popular or 1,
                                            t.min_ratings)
        except ValueError as e:
            raise _fail(loaded, (*base, "targets"), str(e)) from None
    selected: list[int] = []
    if fu.bandwagon is not None:
        selected = (_items(loaded, ds, fu.bandwagon.items, (*base, "bandwagon", "items"))
                    if fu.bandwagon.items is not None
                    else bandwagon_items(history, ds.n_items, fu.bandwagon.popular or 1))
    if fu.segment is not None:
        if fu.segment.items is not None:
            selected = _items(loaded, ds, fu.segment.items, (*base, "segment", "items"))
        else:
            try:
                selected = segment_items(history, ds.catalog, fu.segment.genre or "",
                                         fu.segment.k)
            except ValueError as e:
                raise _fail(loaded, (*base, "segment", "genre"), str(e)) from None
    selected = [i for i in selected if i not in targets]
    n_real = int(np.unique(history.user).size)
    count = fu.count if fu.count is not None else max(1, round((fu.share or 0) * n_real))
    plan = ShillingPlan(fu.strategy, count, tuple(targets), fu.intent, fu.filler,
                        tuple(selected), fu.seed)
    arms = frozenset(r.name for r in scn.recommenders) if fu.arms == "all" else frozenset(
        fu.arms)
    profiles = (make_profiles(plan, history, ds.n_users, ds.n_items, scn.seed)
                if fu.strategy != "llm" else None)
    detector = None
    if fu.defence is not None and fu.defence.detector == "logistic":
        real = np.unique(history.user)
        detector = train_logistic(history, ds.n_users, ds.n_items, ds.catalog, real,
                                  avoid=targets, count=count, seed=scn.seed + 7919)
    return FakeUserAttack(fu, plan, arms, ds.n_users, ds.n_items, profiles, detector)
