"""``recarena eval alignment``: taste alignment and rating fidelity beside baselines.

Before any figure it prints the frozen configuration it evaluates (role, brain parameters,
user split, time split and cutoffs), so a reader of the test figures sees exactly what was
fixed on tuning/development users before test users were read.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

from rich.table import Table

from agents.flags import LLM_FLAG_HELP
from simulations.cli.common import (
    EXIT_OK,
    CliError,
    console_err,
    console_out,
    fmt_ci,
    progress_hook,
)

__all__ = ["add_alignment_parser", "alignment_tables", "configuration_lines"]

_TASTE_LABELS = {"brain": "brain (noiseless utility)", "brain_noisy": "brain (noisy utility)",
                 "brain_decisions": "brain (watch decisions)", "random": "random",
                 "popularity": "popularity only", "item_mean": "item mean only",
                 "ease": "EASE (same history)"}
_RATING_LABELS = {"brain": "brain (stars)", "brain_expected": "brain (expected, unrounded)",
                  "user_mean": "user mean", "item_mean": "item mean",
                  "bias": "global + user + item bias", "bias_stars": "bias model, rounded",
                  "history_resample": "history ratings resampled"}


def configuration_lines(res: dict[str, Any]) -> list[str]:
    """The frozen configuration of a result, one ``key: value`` line each."""
    cfg = res["configuration"]
    cut = cfg["cutoffs"]
    lines = [f"users: {res['users']} {cfg['user_split']} users "
             f"({res['split']['available_users']} available); time split: "
             f"{cfg['time_split']}, {len(cut)} cutoff(s)"]
    if cfg.get("role"):
        lines.append(f"role: {cfg['role']} ({cfg.get('role_file')}), brain {cfg['brain']}")
        params = cfg.get("brain_params") or {}
        if params:
            lines.append("brain params: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    return lines


def alignment_tables(res: dict[str, Any]) -> list[Table]:
    """The taste-alignment tables (one per ratio) and the rating table of a result."""
    tables = []
    brain = res["brain"] if res["brain"] != "llm" else f"llm {res['llm']}"
    seeds = res["seeds"]
    who = (f"{res['users']} {res['configuration']['user_split']} users, seeds "
           f"{seeds[0]}-{seeds[-1]}")
    for ratio, rows in res["taste_alignment"]["ratios"].items():
        t = Table(title=f"taste alignment {ratio}, {res['negatives']} negatives: {brain}; "
                  f"{who} (mean ± 95% interval over seeds)")
        t.add_column("scorer", style="bold", no_wrap=True)
        for col in ("AUC per user", "AUC pooled", "accuracy", "precision", "recall", "F1"):
            t.add_column(col, justify="right")
        for name, m in rows.items():
            t.add_row(_TASTE_LABELS.get(name, name),
                      *(fmt_ci(m[k]) if k in m else "" for k in
                        ("auc", "auc_pooled", "accuracy", "precision", "recall", "f1")))
        tables.append(t)
    dec = res["taste_alignment"].get("popularity_auc_by_decile_1to1", {})
    t = Table(title="popularity-only AUC of each positive against its own 1:1 negative, "
              "by popularity decile of the positive (0.5: popularity tells nothing)")
    t.add_column("decile", justify="right")
    t.add_column("popularity AUC", justify="right")
    t.add_column("pairs per seed", justify="right")
    for d, row in dec.items():
        t.add_row(d, fmt_ci(row["popularity_auc"]), f"{row['pairs_per_seed']:.0f}")
    tables.append(t)
    rf = res["rating_fidelity"]
    t = Table(title=f"rating fidelity: {rf['n_per_seed']} held-out ratings per seed, {who}"
              if rf else "rating fidelity: n/a (implicit feedback: the data has no ratings)")
    t.add_column("model", style="bold", no_wrap=True)
    for col in ("RMSE", "MAE", "histogram W1"):
        t.add_column(col, justify="right")
    if rf is None:
        t.add_row("brain", "n/a", "n/a", "n/a")
    for name, m in (rf or {}).get("models", {}).items():
        if "rmse" not in m:
            continue
        t.add_row(_RATING_LABELS.get(name, name), fmt_ci(m["rmse"]), fmt_ci(m["mae"]),
                  fmt_ci(m["w1"]) if "w1" in m else "")
    tables.append(t)
    return tables


def cmd_eval_alignment(a: argparse.Namespace) -> int:
    from simulations.cli.progress import make_progress
    from simulations.eval.alignment import run_alignment
    from simulations.run.runner import DATA_ENV

    data = a.data or os.environ.get(DATA_ENV)
    if not data:
        raise CliError(f"eval alignment: --data DIR is required (or set {DATA_ENV})")
    for flag, value in (("--llm", a.llm), ("--replay", a.replay)):
        if value is not None and a.brain != "llm":
            raise CliError(f"eval alignment: {flag} applies to --brain llm only")
    try:
        ratios = [int(x) for x in a.ratios.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"eval alignment: --ratios: not a list of integers: {a.ratios}") from None
    cutoffs = a.cutoffs if a.cutoffs is not None else (1 if a.time_split == "per_user" else 10)
    with make_progress(console=console_err(), disable=a.json) as progress:
        res = run_alignment(
            data, users=a.users, seeds=a.seeds, seed=a.seed, negatives=a.negatives,
            brain=a.brain, llm=a.llm, llm_threads=a.llm_threads, role=a.role, ratios=ratios,
            positives=a.positives, rating_items=a.rating_items, tuning_users=a.tuning_users,
            split=a.split, time_split=a.time_split, cutoffs=cutoffs, out=a.out,
            replay=a.replay, progress=progress_hook(progress))
    if a.json:
        print(json.dumps(res, indent=2))
        return EXIT_OK
    out_c = console_out()
    out_c.print("frozen configuration evaluated:")
    for line in configuration_lines(res):
        out_c.print(f"  {line}")
    for t in alignment_tables(res):
        out_c.print(t)
    pop = res["popularity"]
    out_c.print(f"median history popularity: positives {pop['median_positive']:.0f}, "
                f"negatives {pop['median_negative_1to1']:.0f}; baseline thresholds fitted "
                f"on {res['split']['baseline_thresholds_fitted_on']} tuning users")
    out_c.print("Agent4Rec reported accuracy 0.69 / F1 0.70 at 1:1 (MovieLens-1M, "
                "gpt-3.5-turbo, uniform negatives)")
    fails = (res["taste_alignment"]["failures"]
             + (res["rating_fidelity"] or {}).get("failures", 0))
    if fails:
        out_c.print(f"decision failures: {fails}")
    return EXIT_OK


def add_alignment_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add ``eval alignment`` through ``command(name, help)``."""
    ea = command("alignment", "taste alignment and rating fidelity vs real users, beside "
                 "baselines, on test users (prints the frozen configuration it evaluates)")
    ea.add_argument("--data", help="data folder (else RECARENA_DATA)")
    ea.add_argument("--split", choices=["test", "development"], default="test",
                    help="whose figures: test users (reported) or development users (for "
                    "design choices) (default: %(default)s)")
    ea.add_argument("--users", type=int, default=None,
                    help="users to evaluate; more than the split has is an error "
                    "(default: all of them)")
    ea.add_argument("--seeds", type=int, default=10,
                    help="seeds; figures are mean ± 95%% interval over them "
                    "(default: %(default)s)")
    ea.add_argument("--seed", type=int, default=0, help="first seed (default: %(default)s)")
    ea.add_argument("--time-split", choices=["global", "per_user"], default="global",
                    help="global: leak-free time cutoffs; per_user: each user's earliest "
                    "80%% (the leaky split, for comparison) (default: %(default)s)")
    ea.add_argument("--cutoffs", type=int, default=None,
                    help="rolling global cutoffs, each user evaluated at one of them with "
                    "everything fitted before it (default: 10; 1 with per_user)")
    ea.add_argument("--negatives", choices=["popularity-matched", "uniform"],
                    default="popularity-matched",
                    help="negative sampler: popularity-matched is stratified by the "
                    "positive's popularity decile; uniform is Agent4Rec's "
                    "(default: %(default)s)")
    ea.add_argument("--brain", choices=["utility", "llm", "none"], default="utility",
                    help="which brain decides; none: baselines only (default: %(default)s)")
    ea.add_argument("--llm", default=None, help=f"for --brain llm only: {LLM_FLAG_HELP} "
                    "(default: local)")
    ea.add_argument("--llm-threads", type=int, default=None,
                    help="CPU threads of the local model (1 is fastest on a busy machine)")
    ea.add_argument("--role", help="role file (default: the shipped role for the brain)")
    ea.add_argument("--ratios", default="1,3,9",
                    help="m of 1:m liked-to-unseen items, comma-separated, at most 9 "
                    "(default: %(default)s)")
    ea.add_argument("--positives", type=int, default=4,
                    help="held-out liked items per user (default: %(default)s)")
    ea.add_argument("--rating-items", type=int, default=10,
                    help="held-out items rated per user (default: %(default)s)")
    ea.add_argument("--tuning-users", type=int, default=300,
                    help="at most this many tuning users fit the baselines' thresholds "
                    "(default: %(default)s)")
    ea.add_argument("--out", help="folder for the LLM cache (record/replay)")
    ea.add_argument("--replay", metavar="RUN_DIR_OR_CACHE",
                    help="for --brain llm only: answer LLM calls from here (no network)")
    ea.add_argument("--json", action="store_true", help="print the result as JSON")
    ea.set_defaults(fn=cmd_eval_alignment)
