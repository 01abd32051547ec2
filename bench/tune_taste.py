"""Calibrate the utility brain per taste family on tuning users; pick nothing on test users.

Usage::

    .venv/bin/python bench/tune_taste.py --data ../shared/data/ml-100k [--taste all] [--no-write]

A similarity in one family's space is not on another's scale, so the parameters that turn
similarity into behaviour are refitted for each family (scenarios/taste.py), starting from
the shipped role (fitted for its own family by bench/tune_utility.py) and with the stages
of bench/tune_utility.py, on tuning users only:

1. choice weights (``conformity_weight``, ``popularity_weight``): per-user AUC at 1:1;
2. ratings (``rating_conformity``, ``rating_taste``): RMSE of the rounded ratings;
3. feed behaviour (``watch_threshold``, ``exit_base``, ``satisfaction_center``): tuning
   users browsing the six recommenders' feeds average Agent4Rec's reported watch rate,
   exit page and satisfaction (bisection).

The null families (``random``, ``none``) get stage 3 only (their taste carries nothing
for stages 1-2 to fit). The result goes to scenarios/roles/taste_calibration.yaml, which
``--taste`` (``recarena eval validity``, ``recarena compare``) lays over the role's
parameters (simulations/taste_roles.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if sys.path[0] != str(ROOT):  # run as a script: the packages, not bench/memory.py, first
    sys.path.insert(0, str(ROOT))

from agents.brains.utility import World  # noqa: E402
from agents.profile import build_profiles  # noqa: E402
from bench.tune_utility import CUTOFFS, ROLE, tune_choice, tune_feed, tune_ratings  # noqa: E402
from scenarios.loader import load_role  # noqa: E402
from scenarios.taste import LEARNED_FAMILIES, NULL_FAMILIES  # noqa: E402
from simulations.alignment_setup import AlignmentSetup, prepare_origins  # noqa: E402
from simulations.taste_roles import CALIBRATION, calibration, role_for_family  # noqa: E402
from tools.memo import memo  # noqa: E402

KEYS = ("conformity_weight", "popularity_weight", "rating_conformity", "rating_taste",
        "watch_threshold", "exit_base", "satisfaction_center")


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
    p.add_argument("--steps", type=int, default=6, help="bisection steps of stage 3")
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
    setups = prepare_origins(load_dataset(args.data), CUTOFFS, 0)
    table = calibration()
    for fam in families:
        t1 = time.perf_counter()
        frole = role_for_family(role, fam, {})  # from the shipped values, not a past fit
        params = frole.brain.params
        if fam not in NULL_FAMILIES:
            fsetups = [family_setup(s, fam) for s in setups]
            params, choice = tune_choice(fsetups, params)
            print(fam, "stage 1", choice, flush=True)
            params, ratings = tune_ratings(fsetups, params)
            print(fam, "stage 2", {k: ratings[k] for k in ("rating_conformity",
                                                           "rating_taste")}, flush=True)
        frole = frole.model_copy(update={"brain": frole.brain.model_copy(
            update={"params": params})})
        with memo():  # every bisection step refits the same arms on the same data
            params, feed = tune_feed(args.data, params, frole, args.steps)
        print(fam, "stage 3", feed["final"], f"({time.perf_counter() - t1:.0f} s)",
              flush=True)
        table[fam] = {k: round(float(getattr(params, k)), 4) for k in KEYS}
        if not args.no_write:  # after each family: a long run keeps what it has fitted
            CALIBRATION.write_text(
                "# Utility-brain parameters per taste family, fitted on tuning users by\n"
                "# bench/tune_taste.py (`make tune`); --taste lays them over the role's.\n"
                + yaml.safe_dump(table, sort_keys=True), encoding="utf-8")
            print(f"wrote {CALIBRATION.relative_to(ROOT)}", flush=True)
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
