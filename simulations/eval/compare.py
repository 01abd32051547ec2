"""Paired A/B comparisons of recommender arms: from run folders, or by running scenarios.

``compare_sources`` pairs the arms of one or more traces on the users they share and
reports, per arm against the first (the baseline), per metric, overall and per user group:
both values, the difference, its paired bootstrap interval, the paired permutation test's
p-value, the Holm-adjusted p-value over the metrics of that arm and group, and whether it
is significant. ``run_comparison`` runs scenarios first (one run folder per scenario and
seed), so arms of one scenario share users, seeds and the run's LLM cache.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scenarios.loader import LoadedScenario
from scenarios.schema import RecommenderConfig, SwitchRecommenderEvent
from simulations.analysis.metrics import RATING_METRICS
from simulations.analysis.paired import holm, paired_difference, spread
from simulations.analysis.user_stats import (
    ArmTable,
    RunTables,
    arm_tables,
    metric_names,
    user_groups,
)
from simulations.record.trace import read_trace

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = [
    "CompareError",
    "CompareOptions",
    "Source",
    "compare_runs",
    "compare_sources",
    "load_source",
    "run_comparison",
    "select_arms",
]

MODELS = ("random", "pop", "itemknn", "ease", "als", "bpr")


class CompareError(ValueError):
    """Inputs that cannot be compared; the message is one line for the user."""


@dataclass(frozen=True)
class CompareOptions:
    resamples: int = 2000
    permutations: int = 9999
    confidence: float = 0.95
    alpha: float = 0.05
    groups: bool = True
    seed: int = 0  # of the bootstrap and permutation draws, not of the simulation


@dataclass(frozen=True)
class Source:
    """One run folder, read."""

    run_dir: Path
    scenario: str
    seed: int | None
    tables: RunTables
    status: str
    ratings: bool = True  # False: implicit feedback, no rating figures (n/a)


def load_source(run_dir: str | Path) -> Source:
    """A run folder's trace as per-user tables (a truncated trace is read up to its end)."""
    p = Path(run_dir)
    try:
        events = read_trace(p)
    except FileNotFoundError as e:
        raise CompareError(str(e)) from None
    start = next((e for e in events if e.get("type") == "run_start"), {})
    end = next((e for e in events if e.get("type") == "run_end"), None)
    status = end["status"] if end else ("truncated" if events.truncated else "incomplete")
    tables = arm_tables(events)
    if not tables.arms:
        raise CompareError(f"{p}: the trace has no arm events to compare")
    return Source(p, str(start.get("scenario") or p.name), start.get("seed"), tables, status,
                  start.get("ratings", True) is not False)


def _plugin_arm(spec: str) -> RecommenderConfig:
    from scenarios.plugins import model_problems
    from tools.recommenders.plugin import arm_name, is_plugin_spec

    if not is_plugin_spec(spec):
        raise CompareError(f"--recommenders: {spec!r} is not a model name or import path")
    problems = model_problems(spec, {})
    if problems:
        raise CompareError(f"--recommenders: {problems[0][1]}")
    return RecommenderConfig(name=arm_name(spec), model=spec)


def select_arms(loaded: LoadedScenario, names: Sequence[str]) -> LoadedScenario:
    """The scenario with just these arms, in this order: a scenario arm by name, else a
    model name (random, pop, itemknn, ease, als, bpr) with default parameters, else a
    plug-in (an import path module:Class or an entry point name). Scripted
    switches of arms left out are dropped with them."""
    scn = loaded.scenario
    by_name = {r.name: r for r in scn.recommenders}
    arms = []
    for n in names:
        if n in by_name:
            arms.append(by_name[n])
        elif n in MODELS:
            arms.append(RecommenderConfig(name=n, model=n))
        elif ":" in n:  # a plug-in class by import path, checked before any work
            arms.append(_plugin_arm(n))
        else:
            try:  # an installed entry point of recarena.recommenders?
                arms.append(_plugin_arm(n))
            except CompareError:
                raise CompareError(
                    f"--recommenders: {n!r} is neither an arm of {loaded.path} "
                    f"({', '.join(by_name)}), a model ({', '.join(MODELS)}), an import "
                    "path (module:Class) nor an installed entry point") from None
    if len({a.name for a in arms}) != len(arms):
        raise CompareError("--recommenders: a recommender is named twice")
    events = [e for e in scn.events if not isinstance(e, SwitchRecommenderEvent)
              or e.recommender in names]
    return dataclasses.replace(loaded, scenario=scn.model_copy(
        update={"recommenders": arms, "events": events}))


@dataclass(frozen=True)
class _Arm:
    label: str
    source: Source
    table: ArmTable


def _arms(sources: Sequence[Source], names: Sequence[str] | None) -> list[_Arm]:
    picked: list[tuple[Source, str]] = []
    if names:
        for n in names:
            found = [(s, n) for s in sources if n in s.tables.arms]
            if not found:
                raise CompareError(f"--recommenders: no arm {n!r} in "
                                   + ", ".join(f"{s.run_dir} ({', '.join(s.tables.arms)})"
                                               for s in sources))
            picked += found
    else:
        picked = [(s, a) for s in sources for a in s.tables.arms]
    counts: dict[str, int] = {}
    for _, a in picked:
        counts[a] = counts.get(a, 0) + 1
    return [_Arm(a if counts[a] == 1 else f"{s.run_dir.name}:{a}", s, s.tables.arms[a])
            for s, a in picked]


def _paired_users(sources: Sequence[Source]) -> list[str]:
    common = set(sources[0].tables.users)
    for s in sources[1:]:
        common &= set(s.tables.users)
    users = [u for u in sources[0].tables.users if u in common]
    if not users:
        raise CompareError("these runs share no users: a paired comparison needs the same "
                           "users (same data, seed and population)")
    return users


def compare_sources(sources: Sequence[Source], recommenders: Sequence[str] | None = None,
                    options: CompareOptions | None = None) -> dict[str, Any]:
    """Every arm against the first, per metric, overall and per user group."""
    opt = options or CompareOptions()
    envs = {s.tables.environment for s in sources}
    if len(envs) > 1:
        raise CompareError(f"cannot compare environments {', '.join(sorted(envs))}")
    env = envs.pop()
    arms = _arms(sources, recommenders)
    if len(arms) < 2:
        raise CompareError("a comparison needs at least two arms; got "
                           + ", ".join(a.label for a in arms))
    users = _paired_users([a.source for a in arms])
    items = sorted({i for a in arms for i in a.table.items})
    tables = [a.table.reindex(users, items) for a in arms]
    base = arms[0]
    groups: list[tuple[str, np.ndarray]] = [("all", np.ones(len(users), dtype=bool))]
    if opt.groups:
        for dim, levels in user_groups(users, base.source.tables.info).items():
            groups += [(f"{dim}={lv}", m) for lv, m in levels.items()]
    # Implicit feedback: the simulated ratings have no real scale; rating rows say n/a.
    na = ({m: "n/a: implicit feedback, the data has no ratings" for m in RATING_METRICS}
          if not all(a.source.ratings for a in arms) else {})
    metrics = [m for m in metric_names(env) if m not in na]
    rows: list[dict[str, Any]] = []
    for arm, table in zip(arms[1:], tables[1:], strict=True):
        for group, mask in groups:
            a, b = tables[0].subset(mask), table.subset(mask)
            block = []
            for m in metrics:
                r = paired_difference(a, b, m, resamples=opt.resamples,
                                      permutations=opt.permutations,
                                      confidence=opt.confidence, seed=opt.seed)
                block.append({"baseline": base.label, "arm": arm.label, "group": group,
                              "users": int(mask.sum()), "metric": m,
                              **dataclasses.asdict(r)})
            for r_, ph in zip(block, holm([r["p"] for r in block]), strict=True):
                r_["p_holm"] = ph
                r_["significant"] = ph is not None and ph < opt.alpha
            rows += block
            if group == "all":
                rows += [{"baseline": base.label, "arm": arm.label, "group": group,
                          "users": int(mask.sum()), "metric": m, "na": why}
                         for m, why in na.items() if m in metric_names(env)]
    return {
        "environment": env, "users": len(users), "baseline": base.label,
        "arms": [a.label for a in arms],
        "runs": sorted({str(a.source.run_dir) for a in arms}),
        "statuses": {str(a.source.run_dir): a.source.status for a in arms},
        "metrics": list(metrics), "rows": rows, "not_available": na,
    }


def _envelope(per_seed: list[dict[str, Any]], opt: CompareOptions, out: str | None
              ) -> dict[str, Any]:
    head = per_seed[0]
    return {
        "out": out, "seeds": [p["seed"] for p in per_seed],
        "baseline": head["baseline"], "arms": head["arms"], "metrics": head["metrics"],
        "environment": head["environment"], "alpha": opt.alpha,
        "confidence": opt.confidence, "resamples": opt.resamples,
        "permutations": opt.permutations, "per_seed": per_seed,
        "spread": spread([[r for r in p["rows"] if not r.get("na")] for p in per_seed])
        if len(per_seed) > 1 else [],
    }


def compare_runs(run_dirs: Sequence[str | Path], recommenders: Sequence[str] | None = None,
                 options: CompareOptions | None = None) -> dict[str, Any]:
    """Compare the arms of existing run folders (same shape as ``run_comparison``)."""
    sources = [load_source(d) for d in run_dirs]
    result = compare_sources(sources, recommenders, options)
    seeds = {s.seed for s in sources}
    return _envelope([{"seed": seeds.pop() if len(seeds) == 1 else None, **result}],
                     options or CompareOptions(), None)


def run_comparison(
    scenarios: Sequence[LoadedScenario], *, recommenders: Sequence[str] | None = None,
    seeds: int = 1, seed: int | None = None, users: int | None = None,
    data: str | None = None, llm: str | None = None, out: Path | None = None,
    options: CompareOptions | None = None,
    on_run: Callable[[str], None] = lambda name: None,
    on_session_end: Callable[[int], None] = lambda n: None,
    chat_model: BaseChatModel | None = None,
) -> dict[str, Any]:
    """Run each scenario for each of ``seeds`` seeds (the scenario's seed, or ``seed``, and
    the next ones) and compare the arms per seed, with the spread across seeds.

    With one scenario its arms (``recommenders`` selects or adds them) run in one run
    folder: same users, one LLM cache. With several scenarios, each seed's later runs
    start from a copy of the first run's LLM cache, so prompts that coincide are asked
    once. ``chat_model`` replaces the configured model (tests pass a FakeChatModel).
    """
    from simulations.run.runner import check_api_keys, prepare, run

    if seeds < 1:
        raise CompareError(f"--seeds: must be at least 1, got {seeds}")
    if len(scenarios) == 1 and recommenders:
        scenarios = [select_arms(scenarios[0], recommenders)]
        recommenders = None
    arms = [r.name for s in scenarios for r in s.scenario.recommenders]
    for n in recommenders or ():
        if n not in arms:
            raise CompareError(f"--recommenders: no arm {n!r} in these scenarios "
                               f"({', '.join(dict.fromkeys(arms))})")
    if len(scenarios) == 1 and len(arms) < 2:
        raise CompareError(f"{scenarios[0].path}: one recommender; name others with "
                           "--recommenders, e.g. pop,ease")
    if chat_model is None:  # before any work: every run would stop at its first call
        for loaded in scenarios:
            check_api_keys(loaded, llm)
    base_seed = seed if seed is not None else scenarios[0].scenario.seed
    root = out or Path(scenarios[0].scenario.output.dir) / (
        f"compare-{scenarios[0].scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if root.exists() and any(root.iterdir()):
        raise CompareError(f"{root}: folder exists and is not empty; choose another --out")
    names = [s.scenario.name for s in scenarios]
    folder = [n if names.count(n) == 1 else f"{n}-{k + 1}" for k, n in enumerate(names)]
    per_seed: list[dict[str, Any]] = []
    for k in range(seeds):
        s_ = base_seed + k
        run_dirs: list[Path] = []
        for loaded, name in zip(scenarios, folder, strict=True):
            on_run(f"{name} seed {s_}")
            prep = prepare(loaded, seed=s_, users=users, data=data, llm=llm)
            warm = str(run_dirs[0]) if run_dirs else None
            res = run(prep, root / f"{name}-seed{s_}", on_session_end=on_session_end,
                      warm_cache=warm, chat_model=chat_model)
            run_dirs.append(res.run_dir)
        result = compare_sources([load_source(d) for d in run_dirs], recommenders, options)
        per_seed.append({"seed": s_, **result})
    return _envelope(per_seed, options or CompareOptions(), str(root))
