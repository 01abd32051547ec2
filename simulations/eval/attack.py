"""``recarena eval attack``: run a scenario with and without its attack, same seeds, and
measure the damage.

Per seed, the scenario runs twice into ``OUT/clean-seedS`` (the ``attack:`` block removed:
the clean twin) and ``OUT/attack-seedS``; users, seeds and arms are the same, so every
figure is paired. What is measured depends on the attack kinds the block sets: each kind
(a field of ``scenarios.schema.AttackConfig``) has a measure in ``ATTACK_MEASURES``, given
as ``"module:function"`` and imported only when used; a new kind of attack registers its
own with ``register_attack_measure``. Every kind also gets the collateral change of the
environment's summary metrics per arm (``collateral``: the paired machinery of
``recarena compare``, simulations/analysis/paired.py).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenarios.loader import LoadedScenario
from simulations.analysis.paired import paired_difference
from simulations.analysis.stats import interval, paired_interval
from simulations.analysis.user_stats import metric_names
from simulations.eval.compare import load_source

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from simulations.run.prepare import Prepared

__all__ = [
    "ATTACK_MEASURES",
    "AttackContext",
    "AttackError",
    "SeedRuns",
    "clean_attacked",
    "clean_twin",
    "collateral",
    "register_attack_measure",
    "run_attack_eval",
]

# attack kind (a field of the attack: block) -> "module:function" of (AttackContext -> dict)
ATTACK_MEASURES: dict[str, str] = {
    "fake_users": "simulations.eval.attack_fake_users:measure",
    "item_text": "simulations.eval.attack_item_text:measure",
}


class AttackError(ValueError):
    """An attack evaluation that cannot run; one line for the user."""


def register_attack_measure(kind: str, spec: str) -> None:
    """Measure attacks of ``kind`` (the attack: block's field) with ``module:function``."""
    ATTACK_MEASURES[kind] = spec


@dataclass(frozen=True)
class SeedRuns:
    """One seed's twin runs."""

    seed: int
    clean: Prepared
    attacked: Prepared
    clean_dir: Path
    attacked_dir: Path


@dataclass(frozen=True)
class AttackContext:
    """What a measure gets: the scenario and every seed's twin runs."""

    loaded: LoadedScenario
    runs: list[SeedRuns]


def clean_attacked(clean: list[float], attacked: list[float]) -> dict[str, Any]:
    """A figure per seed, clean twin and attacked run: each one's interval over seeds and
    the paired difference (attacked - clean)."""
    return {"clean": interval(clean), "attacked": interval(attacked),
            "diff": paired_interval(attacked, clean)}


def clean_twin(loaded: LoadedScenario) -> LoadedScenario:
    """The scenario without its attack: block (everything else the same)."""
    return dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(
        update={"attack": None}))


def _measure(kind: str) -> Callable[[AttackContext], dict[str, Any]]:
    spec = ATTACK_MEASURES.get(kind)
    if spec is None:
        raise AttackError(f"no measure for attack kind {kind!r}; known: "
                          + ", ".join(sorted(ATTACK_MEASURES)))
    module, _, name = spec.partition(":")
    fn: Callable[[AttackContext], dict[str, Any]] = getattr(
        importlib.import_module(module), name)
    return fn


def collateral(ctx: AttackContext, *, resamples: int = 1000) -> dict[str, Any]:
    """Per arm and metric: clean and attacked values, the paired difference per seed (with
    its bootstrap interval over users) and the mean difference over seeds (t-interval)."""
    per_arm: dict[str, dict[str, Any]] = {}
    env = ""
    for sr in ctx.runs:
        a, b = load_source(sr.clean_dir), load_source(sr.attacked_dir)
        env = a.tables.environment
        common = set(b.tables.users)
        users = [u for u in a.tables.users if u in common]
        for arm in a.tables.arms:
            if arm not in b.tables.arms:
                continue
            ta, tb = a.tables.arms[arm], b.tables.arms[arm]
            items = sorted(set(ta.items) | set(tb.items))
            ta, tb = ta.reindex(users, items), tb.reindex(users, items)
            for m in metric_names(env):
                r = paired_difference(ta, tb, m, resamples=resamples, permutations=0,
                                      seed=sr.seed)
                cell = per_arm.setdefault(arm, {}).setdefault(m, {"per_seed": []})
                cell["per_seed"].append({"seed": sr.seed, "clean": r.baseline_value,
                                         "attacked": r.arm_value, "diff": r.diff,
                                         "ci_low": r.ci_low, "ci_high": r.ci_high})
    for cells in per_arm.values():
        for cell in cells.values():
            ps = cell["per_seed"]
            cell["clean"] = interval([p["clean"] for p in ps if p["clean"] is not None])
            cell["attacked"] = interval([p["attacked"] for p in ps
                                         if p["attacked"] is not None])
            cell["diff"] = interval([p["diff"] for p in ps if p["diff"] is not None])
    return {"environment": env, "arms": per_arm}


def run_attack_eval(
    loaded: LoadedScenario, *, seeds: int = 1, seed: int | None = None,
    users: int | None = None, data: str | None = None, llm: str | None = None,
    out: Path | None = None, chat_model: BaseChatModel | None = None,
    on_run: Callable[[str], None] = lambda name: None,
    on_session_end: Callable[[int], None] = lambda n: None,
) -> dict[str, Any]:
    """Run the scenario with and without its attack for ``seeds`` seeds (the scenario's
    seed, or ``seed``, and the next ones) and measure every attack kind it sets."""
    from simulations.run.runner import check_api_keys, prepare, run

    scn = loaded.scenario
    if scn.attack is None:
        raise AttackError(f"{loaded.path}: the scenario has no attack: block "
                          "(see docs/attacks.md)")
    if seeds < 1:
        raise AttackError(f"--seeds: must be at least 1, got {seeds}")
    kinds = scn.attack.kinds()
    measures = {k: _measure(k) for k in kinds}  # an unknown kind fails before any work
    if chat_model is None:
        check_api_keys(loaded, llm)
    root = out or Path(scn.output.dir) / f"attack-{scn.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if root.exists() and any(root.iterdir()):
        raise AttackError(f"{root}: folder exists and is not empty; choose another --out")
    twin = clean_twin(loaded)
    base = seed if seed is not None else scn.seed
    runs: list[SeedRuns] = []
    for k in range(seeds):
        s = base + k
        got: dict[str, tuple[Prepared, Path]] = {}
        for label, which in (("clean", twin), ("attack", loaded)):
            on_run(f"{label} seed {s}")
            prep = prepare(which, seed=s, users=users, data=data, llm=llm)
            res = run(prep, root / f"{label}-seed{s}", on_session_end=on_session_end,
                      chat_model=chat_model)
            got[label] = (prep, res.run_dir)
        runs.append(SeedRuns(s, got["clean"][0], got["attack"][0], got["clean"][1],
                             got["attack"][1]))
    ctx = AttackContext(loaded, runs)
    result = {
        "scenario": scn.name, "scenario_file": str(loaded.path), "out": str(root),
        "seeds": [r.seed for r in runs], "kinds": kinds,
        "population": len(runs[0].clean.population),
        "attacks": {k: fn(ctx) for k, fn in measures.items()},
        "collateral": collateral(ctx),
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "attack.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n",
                                      encoding="utf-8")
    return result

