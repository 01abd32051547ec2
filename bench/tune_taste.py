"""Calibrate the utility brain per taste family on tuning users; pick nothing on test users.

Usage::

    .venv/bin/python bench/tune_taste.py --data ../shared/data/ml-100k [--taste all] [--no-write]

A similarity in one family's space is not on another's scale, so the parameters that turn
similarity into behaviour are refitted for each family (scenarios/taste.py), starting from
the shipped role (fitted for its own family by bench/tune_utility.py) and with the stages
of bench/tune_utility.py, on tuning users only:

1. choice weights (``conformity_weight``, ``popularity_weight``): per-user AUC at 1:1;
2. ratings (``rating_conformity``, ``rating_taste``): RMSE of the rounded ratings;
3. feed behaviour (``watch_threshold``, ``exit_base``): a seeded sample of tuning users
   (``--users``) browsing the six recommenders' feeds average Agent4Rec's reported watch
   rate and exit page (bisection around the role's values; the interview's centre changes
   no decision and keeps the role's value).

Stages 1-2 use ``CUTOFFS`` leak-free rolling origins (bench/tune_utility.py uses 10; fewer
keep eight families within about half an hour on two shared cores).

The null families (``random``, ``none``) get stage 3 only (their taste carries nothing
for stages 1-2 to fit). The result goes to scenarios/taste_calibration.json, which
``--taste`` (``recarena eval validity``, ``recarena compare``) lays over the role's
parameters (simulations/run/taste_roles.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if sys.path[0] != str(ROOT):  # run as a script: the packages, not bench/memory.py, first
    sys.path.insert(0, str(ROOT))

from agents.profile import build_profiles  # noqa: E402
from bench.tune_utility import (  # noqa: E402
    ROLE,
    TARGETS,
    TUNE_SEED,
    _feed,
    tune_choice,
    tune_ratings,
)
from scenarios.loader import load_role  # noqa: E402
from scenarios.schema import RoleConfig, UtilityParams  # noqa: E402
from scenarios.taste import LEARNED_FAMILIES, NULL_FAMILIES  # noqa: E402
from simulations.eval.alignment_setup import AlignmentSetup, prepare_origins  # noqa: E402
from simulations.eval.validity_grid import HISTORY_FRACTION  # noqa: E402
from simulations.run.taste_roles import CALIBRATION, calibration, role_for_family  # noqa: E402
from tools.memo import memo  # noqa: E402
from tools.world import World  # noqa: E402

CUTOFFS = 3  # leak-free origins for stages 1-2 (bench/tune_utility.py uses 10)
WIDTH = {"watch_threshold": 1.5, "exit_base": 2.0}  # bracket half-widths around the start


def tune_feed_sample(data: str, role: RoleConfig, steps: int, users: int
                     ) -> tuple[UtilityParams, dict[str, Any]]:
    """Stage 3 on a seeded sample of tuning users: watch threshold and exit together.

    As bench/tune_utility.py ``tune_feed`` (same targets, bisection, feed runs), with the
    bracket centred on the role's current values and without the interview's centre
    (it changes no decision, so no validity figure).
    """
    from simulations.eval.validity import test_population, validity_scenario
    from simulations.run.runner import prepare

    full = prepare(validity_scenario(data, role, seed=TUNE_SEED,
                                     history_fraction=HISTORY_FRACTION), data=data)
    # Calibration needs no held-out items: any tuning user with a history browses.
    prep = replace(full, population=test_population(full, TUNE_SEED, users, "tuning",
                                                    heldout=False))
    params = role.brain.params
    knobs = [("watch_threshold", "watch_rate"), ("exit_base", "exit_page")]
    brackets = {k: [getattr(params, k) - WIDTH[k], getattr(params, k) + WIDTH[k]]
                for k, _ in knobs}
    log: list[dict[str, Any]] = []
    for step in range(steps + 1):
        params = UtilityParams.model_validate({**params.model_dump(), **{
            k: round((b[0] + b[1]) / 2, 4) for k, b in brackets.items()}})
        got = _feed(prep, params, role)
        log.append({**{k: getattr(params, k) for k, _ in knobs},
                    **{k: round(v, 4) for k, v in got.items()}})
        print("  feed", log[-1], flush=True)
        if step == steps:
            break
        for name, metric in knobs:
            # Each metric falls as its knob grows: too high means the knob must grow.
            brackets[name][0 if got[metric] > TARGETS[metric] else 1] = getattr(params, name)
    return params, {"tuning_users": len(prep.population), "final": log[-1], "steps": log}


KEYS = ("conformity_weight", "popularity_weight", "rating_conformity", "rating_taste",
        "watch_threshold", "exit_base")


def family_setup(setup: AlignmentSetup, family: str, seed: int = 0) -> AlignmentSetup:
    """The alignment setup with its world and profiles in ``family``'s taste space."""
    from scenarios.taste import TasteConfig
    from tools.taste import taste_space

    space = taste_space(setup.dataset, setup.history, TasteConfig(family=family),
                        seed=seed)
    w = setup.world
    world = World(w.catalog, space.items, w.item_mean, w.popularity, w.global_mean)
    return replace(setup, world=world, profiles=build_profiles(
        setup.dataset, setup.history, space.items, tastes=space.users))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--data", required=True)
    p.add_argument("--taste", default="all",
                   help="all (every family and null) or a comma list (default: %(default)s)")
    p.add_argument("--steps", type=int, default=5, help="bisection steps of stage 3")
    p.add_argument("--users", type=int, default=120, help="tuning users browsing in stage 3")
    p.add_argument("--feed-only", action="store_true",
                   help="stage 3 only (choice and rating weights stay the role's)")
    p.add_argument("--no-write", action="store_true", help="print, do not write the file")
    args = p.parse_args(argv)
    from tools.dataset import load_dataset

    families = (list(LEARNED_FAMILIES + NULL_FAMILIES) if args.taste == "all"
                else [f.strip() for f in args.taste.split(",") if f.strip()])
    bad = [f for f in families if f not in LEARNED_FAMILIES + NULL_FAMILIES]
    if bad:
        print(f"tune_taste: --taste: unknown family {', '.join(bad)}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    role = load_role(ROLE)
    # The leak-free rolling origins of bench/tune_utility.py (tuning users only are read).
    setups = [] if args.feed_only else prepare_origins(load_dataset(args.data), CUTOFFS, 0)
    print(f"origins: {len(setups)}; tuning users: {sum(len(s.tuning) for s in setups)}",
          flush=True)
    table = calibration()
    with memo():  # the arms' fits and the taste spaces repeat across steps and families
        for fam in families:
            _tune_family(args, role, setups, table, fam)
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


def _tune_family(args: argparse.Namespace, role: RoleConfig, setups: list[AlignmentSetup],
                 table: dict[str, dict[str, float]], fam: str) -> None:
    t1 = time.perf_counter()
    frole = role_for_family(role, fam, {})  # from the shipped values, not a past fit
    params = frole.brain.params
    if fam not in NULL_FAMILIES and setups:
        fsetups = [family_setup(s, fam) for s in setups]
        params, choice = tune_choice(fsetups, params)
        print(fam, "stage 1", choice, flush=True)
        params, ratings = tune_ratings(fsetups, params)
        print(fam, "stage 2", {k: ratings[k] for k in ("rating_conformity",
                                                       "rating_taste")}, flush=True)
    frole = frole.model_copy(update={"brain": frole.brain.model_copy(
        update={"params": params})})
    params, feed = tune_feed_sample(args.data, frole, args.steps, args.users)
    print(fam, "stage 3", feed["final"], f"({time.perf_counter() - t1:.0f} s)",
          flush=True)
    keys = KEYS if setups else ("watch_threshold", "exit_base")
    table[fam] = {k: round(float(getattr(params, k)), 4) for k in keys}
    if not args.no_write:  # after each family: a long run keeps what it has fitted
        note = ("Utility-brain parameters per taste family, fitted on tuning users by "
                "bench/tune_taste.py (make tune); --taste lays them over the role's.")
        CALIBRATION.write_text(json.dumps({"_comment": note, **table}, indent=1,
                                          sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {CALIBRATION.relative_to(ROOT)}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
