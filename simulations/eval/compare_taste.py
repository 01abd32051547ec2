"""``recarena compare SCENARIO --taste ...``: the same A/B under several taste families.

The scenario runs once per family (every utility role switched to that family with its
calibrated parameters, simulations/run/taste_roles.py; same seed, users and arms), every pair
of arms is compared per metric in each run (simulations/eval/robust.py ``pairwise``), and each
pair and metric is classified across families: robust, depends on the user model (naming
the families that flip it or do not separate it), or not separated. The verdicts are
written to ``robustness.json`` in the comparison folder and in each family's run folder,
where ``recarena report`` shows them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenarios.loader import LoadedScenario
from simulations.analysis.user_stats import metric_names
from simulations.eval.compare import CompareError, CompareOptions, load_source, run_comparison
from simulations.eval.robust import pairwise, robustness
from simulations.run.taste_roles import role_for_family

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["ROBUSTNESS_FILE", "family_tables", "run_taste_comparison", "with_family"]

ROBUSTNESS_FILE = "robustness.json"


def with_family(loaded: LoadedScenario, family: str) -> LoadedScenario:
    """The scenario with every utility role under ``family`` (calibrated)."""
    roles = tuple(dataclasses.replace(r, config=role_for_family(r.config, family))
                  for r in loaded.roles)
    if not any(r.config.brain.kind == "utility" for r in roles):
        raise CompareError(f"{loaded.path}: --taste needs a utility role; this scenario's "
                           "roles are all LLM roles")
    return dataclasses.replace(loaded, role=roles[0].config, roles=roles)


def family_tables(run_dir: Path, options: CompareOptions) -> list[dict[str, Any]]:
    """Every pair of arms of one run folder per metric (``robust.pairwise`` rows)."""
    src = load_source(run_dir)
    users = list(src.tables.users)
    items = sorted({i for t in src.tables.arms.values() for i in t.items})
    tables = {a: t.reindex(users, items) for a, t in src.tables.arms.items()}
    return pairwise(tables, metric_names(src.tables.environment), alpha=options.alpha,
                    resamples=options.resamples, permutations=options.permutations,
                    seed=options.seed)


def run_taste_comparison(
    scenarios: Sequence[LoadedScenario], families: Sequence[str], *,
    recommenders: Sequence[str] | None = None, seed: int | None = None,
    users: int | None = None, data: str | None = None, out: Path | None = None,
    options: CompareOptions | None = None,
    on_run: Callable[[str], None] = lambda name: None,
    chat_model: BaseChatModel | None = None,
) -> dict[str, Any]:
    """Run one scenario under each family and classify every pair of arms."""
    if len(scenarios) != 1:
        raise CompareError("--taste: give one scenario file (its arms are compared under "
                           "each taste family)")
    if len(families) < 2:
        raise CompareError("--taste: name at least two families, or all")
    opt = options or CompareOptions()
    loaded = scenarios[0]
    root = out or Path(loaded.scenario.output.dir) / f"compare-taste-{loaded.scenario.name}"
    if root.exists() and any(root.iterdir()):
        raise CompareError(f"{root}: folder exists and is not empty; choose another --out")
    per_family: dict[str, dict[str, Any]] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for fam in families:
        on_run(f"taste {fam}")
        res = run_comparison([with_family(loaded, fam)], recommenders=recommenders, seeds=1,
                             seed=seed, users=users, data=data, out=root / fam, options=opt,
                             chat_model=chat_model)
        run_dir = Path(res["per_seed"][0]["runs"][0])
        rows[fam] = family_tables(run_dir, opt)
        per_family[fam] = {"run": str(run_dir), "comparison": res}
    verdicts = robustness(rows)
    head = next(iter(per_family.values()))["comparison"]
    result = {
        "out": str(root), "families": list(families), "seed": head["seeds"][0],
        "arms": head["arms"], "metrics": head["metrics"], "environment": head["environment"],
        "alpha": opt.alpha, "robustness": verdicts, "per_family": per_family,
    }
    text = json.dumps({k: v for k, v in result.items() if k != "per_family"}, indent=2) + "\n"
    (root / ROBUSTNESS_FILE).write_text(text, encoding="utf-8")
    for info in per_family.values():
        (Path(info["run"]) / ROBUSTNESS_FILE).write_text(text, encoding="utf-8")
    return result
