"""``recarena eval validity``: one seed and family in full, or families x seeds x nulls."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

from rich.table import Table

from simulations.cli.common import (
    EXIT_OK,
    CliError,
    console_err,
    console_out,
    fmt_ci,
    fmt_value,
    progress_hook,
)

__all__ = ["add_validity_parser", "grid_tables", "validity_tables"]


def validity_tables(res: dict[str, Any]) -> list[Table]:
    """Per-arm means, Spearman correlations and neighbour differences of a result."""
    t = Table(title=f"recommender-ranking validity: {res['users']} test users, seed "
              f"{res['seed']}, taste {res.get('taste', 'ease')} "
              "(mean ± 95% interval over users)")
    t.add_column("recommender", style="bold", no_wrap=True)
    for col in ("watch rate", "satisfaction", "exit page", "held-out HR@10",
                "held-out NDCG@10"):
        t.add_column(col, justify="right")
    for m in res["heldout_order"]:
        arm = res["arms"][m]
        t.add_row(m, *(fmt_ci(arm[k]) for k in ("watch_rate", "satisfaction", "exit_page",
                                            "hr@10", "ndcg@10")))
    c = Table(title="Spearman's rank correlation across recommenders (all arms)")
    c.add_column("simulated metric", style="bold")
    c.add_column("vs HR@10", justify="right")
    c.add_column("vs NDCG@10", justify="right")
    for s, row in res["spearman"].items():
        c.add_row(s.replace("_", " "), fmt_value(row["hr@10"]), fmt_value(row["ndcg@10"]))
    n = Table(title="neighbours in held-out order: paired difference (better - worse)")
    n.add_column("pair", style="bold", no_wrap=True)
    for col in ("watch rate", "satisfaction", "HR@10", "NDCG@10"):
        n.add_column(col, justify="right")
    for p in res["neighbours"]:
        n.add_row(f"{p['better']} - {p['worse']}", fmt_ci(p["watch_rate"]),
                  fmt_ci(p["satisfaction"], 2), fmt_ci(p["hr@10"]), fmt_ci(p["ndcg@10"]))
    out = [t, c, n]
    if res.get("learned"):
        out.append(_learned_table({res.get("taste", "ease"): res["learned"]},
                                  f"learned arms only, seed {res['seed']}"))
    return out


def _iv(e: dict[str, Any] | None) -> str:
    if not e or e.get("value") is None:
        return "-"
    if e.get("lo") is None:
        return f"{e['value']:.3f}"
    return f"{e['value']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"


def _learned_table(stats: dict[str, dict[str, Any]], title: str) -> Table:
    t = Table(title=f"{title}: watch rate vs held-out HR@10 (95% bootstrap over users)")
    for col in ("taste", "Kendall tau", "Spearman", "agreement on significant pairs",
                "simulated order"):
        t.add_column(col, justify="left" if col in ("taste", "simulated order") else "right")
    for fam, s in stats.items():
        t.add_row(fam, _iv(s["kendall"]), _iv(s["spearman"]),
                  f"{_iv(s['agreement'])} ({s['agreement']['pairs']} pairs)",
                  " > ".join(s["sim_order"]))
    return t


def _dist(d: dict[str, Any] | None) -> str:
    return "-" if not d else f"{d['mean']:.3f} ({d['min']:.2f}..{d['max']:.2f})"


def grid_tables(res: dict[str, Any]) -> list[Table]:
    """Per family and null: the statistics over seeds, wins; robustness tallies."""
    summ = res["summary"]
    n = len(res["seeds"])
    cut = res.get("cutoffs") or [res.get("history_fraction")]
    where = (f"{len(cut)} pooled cutoffs" if len(cut) > 1 else f"cutoff at {cut[0]}")
    t = Table(title=f"validity per taste family over {n} seeds ({res['users_of']} users, "
              f"{res['per_seed'][0]['users']} of them; {where}; "
              "learned arms only; mean (min..max) over seeds)")
    for col in ("taste", "Kendall tau", "Spearman", "agreement (sig. pairs)",
                "seeds all sig. pairs ordered (of seeds with one)", "wins (seeds)"):
        t.add_column(col, justify="left" if col in ("taste", "wins (seeds)") else "right")
    for fam, s in summ["families"].items():
        label = fam + (" (null)" if fam in res["nulls"] else "")
        wins = ", ".join(f"{m} {k}" for m, k in s["wins"].items() if k)
        t.add_row(label, _dist(s["kendall"]), _dist(s["spearman"]), _dist(s["agreement"]),
                  (f"{s['significant_ordered_seeds']}/{s['significant_pair_seeds']}"
                   if s["significant_pairs"] else "-"),
                  wins)
    held = ", ".join(f"{m} {k}" for m, k in summ["heldout_wins"].items() if k)
    t.caption = f"held-out HR@10 winner (seeds): {held}"
    r = Table(title="robustness of learned pairs across families (pairs x seeds)")
    r.add_column("held-out difference")
    for v in ("robust", "depends on the user model", "not separated"):
        r.add_column(v, justify="right")
    for side in ("separated", "unseparated"):
        row = summ["robustness"][side]
        r.add_row("significant" if side == "separated" else "not significant",
                  *(str(row.get(v, 0)) for v in ("robust", "depends on the user model",
                                                  "not separated")))
    return [t, r]


def cmd_eval_validity(a: argparse.Namespace) -> int:
    from simulations.cli.progress import make_progress
    from simulations.run.runner import DATA_ENV

    data = a.data or os.environ.get(DATA_ENV)
    if not data:
        raise CliError(f"eval validity: --data DIR is required (or set {DATA_ENV})")
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    # One family at one seed: the full tables; several families or seeds: the grid.
    grid = a.seeds is not None or (a.taste is not None and (a.taste == "all" or "," in a.taste))
    try:
        with make_progress(console=console_err(), disable=a.json) as progress:
            if grid:
                from simulations.eval.validity_grid import (
                    CUTOFFS,
                    HISTORY_FRACTION,
                    NULLS,
                    run_grid,
                )
                from simulations.run.taste_roles import parse_families

                families = parse_families(a.taste or "ease", allow_null=True)
                seeds = _seeds(a.seeds or str(a.seed))
                res = run_grid(data, seeds=seeds, families=families,
                               nulls=() if a.no_nulls else NULLS, users=a.users,
                               models=models, role=a.role, max_pages=a.pages,
                               which=a.users_of,
                               history_fraction=a.history_fraction or HISTORY_FRACTION,
                               cutoffs=CUTOFFS if a.cutoffs is None else a.cutoffs,
                               progress=progress_hook(progress))
            else:
                from simulations.eval.validity import run_validity
                from simulations.run.taste_roles import parse_families

                if a.taste is not None:
                    parse_families(a.taste, allow_null=True)  # one-line error if unknown

                res = run_validity(data, seed=a.seed, users=a.users, models=models,
                                   role=a.role, taste=a.taste, out=a.out, split=a.split,
                                   progress=progress_hook(progress))
    except ValueError as e:
        raise CliError(str(e)) from None
    if a.json:
        print(json.dumps(res, indent=2))
        return EXIT_OK
    out_c = console_out()
    for t in (grid_tables(res) if grid else validity_tables(res)):
        out_c.print(t)
    if not grid:
        ref = res["agent4rec_reported"]
        out_c.print(f"Agent4Rec's LLM users: watch rate about {ref['watch_rate']}, exit page "
                    f"{ref['exit_page']}, satisfaction {ref['satisfaction']} of 10")
    return EXIT_OK


def _seeds(text: str) -> list[int]:
    """``0-9`` or ``0,3,5``."""
    try:
        if "-" in text.strip("-"):
            lo, hi = text.split("-", 1)
            return list(range(int(lo), int(hi) + 1))
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"eval validity: --seeds: expected 0-9 or 0,3,5, got {text!r}"
                       ) from None


def add_validity_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add ``eval validity`` through ``command(name, help)``."""
    va = command("validity", "do simulated users rank recommenders as held-out data does?")
    va.add_argument("--data", help="data folder (else RECARENA_DATA)")
    va.add_argument("--seed", type=int, default=0, help="scenario seed (default: %(default)s)")
    va.add_argument("--seeds", help="several seeds, e.g. 0-9: the statistics' distribution "
                    "over seeds (with --taste: per family, beside the null simulators)")
    va.add_argument("--taste", help="taste family (ease, als, itemknn, bpr, puresvd, "
                    "ensemble), a comma list, or all: one table per family, beside the null "
                    "simulators (random-taste and popularity-only users)")
    va.add_argument("--no-nulls", action="store_true", help="with --taste/--seeds: skip the "
                    "null simulators")
    va.add_argument("--split", choices=("global", "per_user"), default="global",
                    help="history/held-out split: global (leak-free time cutoff) or per_user "
                    "(the old leaky split; one seed and family only) (default: %(default)s)")
    va.add_argument("--cutoffs", type=int, default=None,
                    help="with --taste/--seeds: rolling global time cutoffs pooled, each user "
                    "evaluated at one (default: 5, quantiles 0.3 to 0.9; 1: the single cutoff "
                    "at --history-fraction)")
    va.add_argument("--history-fraction", type=float, default=None,
                    help="with --taste/--seeds --cutoffs 1: quantile of the global time "
                    "cutoff (default: 0.6; MovieLens 100K has few users on both sides of a "
                    "later one)")
    va.add_argument("--users-of", choices=("tuning", "development", "test"),
                    default="test", help="with --taste/--seeds: which user split browses "
                    "(design choices on tuning/development; default: %(default)s)")
    va.add_argument("--pages", type=int, default=5, help="with --taste/--seeds: feed pages "
                    "per session (default: %(default)s)")
    va.add_argument("--users", type=int, default=None,
                    help="test users to simulate (default: all of them)")
    va.add_argument("--models", default="random,pop,itemknn,ease,als,bpr",
                    help="comma-separated models, at least three; your own as module:Class "
                    "or an entry point (default: %(default)s)")
    va.add_argument("--role", help="utility role file (default: the shipped one)")
    va.add_argument("--out", help="keep the simulation's run folder here (one seed, one "
                    "family)")
    va.add_argument("--json", action="store_true", help="print the result as JSON")
    va.set_defaults(fn=cmd_eval_validity)
