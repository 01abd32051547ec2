"""``recarena compare`` and ``recarena report``: paired A/B tables and the HTML report."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table

from agents.flags import LLM_FLAG_HELP
from simulations.cli.common import EXIT_OK, CliError, console_err, console_out

__all__ = ["ROBUST_LEGEND", "add_analysis_parsers", "compare_tables", "robustness_table",
           "spread_tables"]

_SCENARIO_SUFFIXES = (".yaml", ".yml")


def _f(v: Any, digits: int = 3, sign: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def _p(v: float | None) -> str:
    return "-" if v is None else ("<0.001" if v < 0.001 else f"{v:.3f}")


def compare_tables(result: dict[str, Any]) -> list[Table]:
    """Overall rows (one per arm and metric) and a per-group table per arm."""
    from simulations.analysis.metrics import labels_for

    labels = labels_for(result["environment"])
    conf = round(100 * result.get("confidence", 0.95))
    tables = []
    t = Table(title=f"paired differences vs {result['baseline']} ({result['users']} users)")
    for col in ("arm", "metric", result["baseline"], "arm value", "difference",
                f"{conf}% CI", "p", "p (Holm)", ""):
        t.add_column(col, justify="left" if col in ("arm", "metric", "") else "right")
    rows = result["rows"]
    for r in (r for r in rows if r["group"] == "all"):
        if r.get("na"):  # e.g. the rating of implicit-feedback data
            t.add_row(r["arm"], labels.get(r["metric"], r["metric"]), "n/a", "n/a", "n/a",
                      "n/a", "", "", "")
            continue
        ci = "-" if r["ci_low"] is None else f"[{_f(r['ci_low'], sign=True)}, " \
            f"{_f(r['ci_high'], sign=True)}]"
        t.add_row(r["arm"], labels.get(r["metric"], r["metric"]), _f(r["baseline_value"]),
                  _f(r["arm_value"]), _f(r["diff"], sign=True), ci, _p(r["p"]),
                  _p(r["p_holm"]), "significant" if r["significant"] else "",
                  style="bold" if r["significant"] else None)
    tables.append(t)
    groups = [g for g in dict.fromkeys(r["group"] for r in rows) if g != "all"]
    if groups:
        for arm in dict.fromkeys(r["arm"] for r in rows):
            g = Table(title=f"{arm} - {result['baseline']} by user group "
                      "(* significant; intervals in --json)")
            g.add_column("group")
            g.add_column("users", justify="right")
            for m in result["metrics"]:
                g.add_column(labels.get(m, m), justify="right")
            cell = {(r["group"], r["metric"]): r for r in rows if r["arm"] == arm}
            for grp in groups:
                any_r = next(r for (gg, _), r in cell.items() if gg == grp)
                g.add_row(grp, str(any_r["users"]), *(
                    _f(cell[(grp, m)]["diff"], sign=True)
                    + ("*" if cell[(grp, m)]["significant"] else " ")
                    for m in result["metrics"]))
            tables.append(g)
    return tables


def spread_tables(result: dict[str, Any]) -> list[Table]:
    """Across seeds: the spread of each overall difference."""
    from simulations.analysis.metrics import labels_for

    labels = labels_for(result["environment"])
    n = len(result["seeds"])
    t = Table(title=f"differences vs {result['baseline']} across {n} seeds "
              f"({', '.join(str(s) for s in result['seeds'])})")
    for col in ("arm", "metric", "mean", "sd", "min", "max", "significant in"):
        t.add_column(col, justify="left" if col in ("arm", "metric") else "right")
    for r in (r for r in result["spread"] if r["group"] == "all"):
        t.add_row(r["arm"], labels.get(r["metric"], r["metric"]),
                  _f(r["mean_diff"], sign=True), _f(r["sd"]), _f(r["min"], sign=True),
                  _f(r["max"], sign=True), f"{r['significant_seeds']}/{r['seeds']} seeds")
    return [t]


ROBUST_LEGEND = ("robust: significant (Holm over the metrics of the pair, alpha {alpha}) with "
                 "the same sign under every family; depends on the user model: some family "
                 "reverses it or does not separate it; not separated: no family separates it.")


def robustness_table(result: dict[str, Any]) -> Table:
    """Per pair of arms and metric: the verdict across taste families."""
    from simulations.analysis.metrics import labels_for

    labels = labels_for(result["environment"])
    t = Table(title="does the difference hold across user models? (taste families: "
              + ", ".join(result["families"]) + ")")
    for col in ("pair (b - a)", "metric", "mean diff", "verdict", "flipped by",
                "not separated by"):
        t.add_column(col, justify="right" if col == "mean diff" else "left")
    for r in result["robustness"]:
        t.add_row(f"{r['b']} - {r['a']}", labels.get(r["metric"], r["metric"]),
                  _f(r["mean_diff"], sign=True), r["verdict"], ", ".join(r["flipped_by"]),
                  ", ".join(r["unseparated_by"]),
                  style="bold" if r["verdict"] == "robust" else None)
    return t


def _cmd_compare_taste(a: argparse.Namespace, names: list[str] | None, opt: Any) -> int:
    from scenarios.loader import load_scenario
    from simulations.eval.compare import CompareError
    from simulations.eval.compare_taste import run_taste_comparison
    from simulations.run.taste_roles import parse_families

    try:
        families = parse_families(a.taste)
    except ValueError as e:
        raise CliError(str(e)) from None
    if any(Path(x).is_dir() for x in a.inputs) or a.seeds != 1:
        raise CliError("compare: --taste runs one scenario file once per family "
                       "(not run folders, not --seeds)")
    loaded = [load_scenario(x) for x in a.inputs]
    err = console_err()
    status = None if a.quiet or a.json else err.status("running...")
    try:
        with status if status is not None else contextlib.nullcontext():
            result = run_taste_comparison(
                loaded, families, recommenders=names, seed=a.seed, users=a.users,
                data=a.data, out=Path(a.out) if a.out else None, options=opt,
                on_run=lambda name: status.update(f"running {name}...") if status else None)
    except CompareError as e:
        raise CliError(str(e)) from None
    if a.json:
        print(json.dumps(result, indent=2))
        return EXIT_OK
    out = console_out()
    out.print(robustness_table(result))
    out.print(ROBUST_LEGEND.format(alpha=result["alpha"]))
    out.print(f"runs and robustness.json in {result['out']}")
    return EXIT_OK


def cmd_compare(a: argparse.Namespace) -> int:
    from scenarios.loader import load_scenario
    from simulations.eval.compare import CompareError, CompareOptions, compare_runs, run_comparison

    names = [x.strip() for x in (a.recommenders or "").split(",") if x.strip()] or None
    opt = CompareOptions(resamples=a.resamples, permutations=a.permutations,
                         confidence=a.confidence, alpha=a.alpha, groups=not a.no_groups)
    if a.taste:
        return _cmd_compare_taste(a, names, opt)
    is_dir = [Path(x).is_dir() for x in a.inputs]
    try:
        if all(is_dir):
            flags = [f for f, v in (("--seeds", a.seeds != 1), ("--seed", a.seed is not None),
                                    ("--users", a.users is not None), ("--data", a.data),
                                    ("--llm", a.llm), ("--out", a.out)) if v]
            if flags:
                raise CliError(f"compare: {flags[0]} only applies to scenario files; "
                               "run folders are already run")
            result = compare_runs(a.inputs, names, opt)
        elif not any(is_dir):
            for x in a.inputs:
                if Path(x).suffix not in _SCENARIO_SUFFIXES:
                    raise CliError(f"{x}: not a run folder or a scenario file (.yaml)")
            loaded = [load_scenario(x) for x in a.inputs]
            if len(loaded) == 1 and names is not None and len(names) < 2:
                raise CliError("compare: --recommenders: name at least two, e.g. pop,ease")
            err = console_err()
            status = None if a.quiet or a.json else err.status("running...")
            with status if status is not None else contextlib.nullcontext():
                result = run_comparison(
                    loaded, recommenders=names, seeds=a.seeds, seed=a.seed, users=a.users,
                    data=a.data, llm=a.llm, out=Path(a.out) if a.out else None, options=opt,
                    on_run=lambda name: status.update(f"running {name}...") if status
                    else None)
            (Path(result["out"]) / "compare.json").write_text(
                json.dumps(result, indent=2) + "\n", encoding="utf-8")
        else:
            raise CliError("compare: give run folders or scenario files, not both")
    except CompareError as e:
        raise CliError(str(e)) from None
    if a.json:
        print(json.dumps(result, indent=2))
        return EXIT_OK
    out = console_out()
    first = result["per_seed"][0]  # with several seeds: the first seed's tables, then spread
    label = f" (seed {first['seed']})" if first.get("seed") is not None else ""
    out.print(f"[bold]{', '.join(first['arms'])}[/]{label}: paired on {first['users']} "
              f"users; runs: {', '.join(first['runs'])}")
    for t in compare_tables({**first, "confidence": result["confidence"]}):
        out.print(t)
    if result["spread"]:
        for t in spread_tables(result):
            out.print(t)
    out.print(f"CI: paired bootstrap over users ({result['resamples']} resamples; none for "
              f"coverage and Gini); p: paired permutation test ({result['permutations']} "
              f"resamples); significant: Holm-adjusted p < {result['alpha']} over the metrics "
              "of one arm and group. Group rows are exploratory.")
    if result.get("out"):
        out.print(f"runs and compare.json in {result['out']}")
    return EXIT_OK


def cmd_report(a: argparse.Namespace) -> int:
    from simulations.report.html import ReportError, write_report

    for d in a.runs:
        if not Path(d).is_dir():
            raise CliError(f"{d}: not a run folder")
    try:
        with console_err().status("building the report..."):
            p = write_report(a.runs, a.out, resamples=a.resamples)
    except ReportError as e:
        raise CliError(str(e)) from None
    print(f"report written to {p} ({p.stat().st_size / 1e6:.1f} MB, opens offline)")
    return EXIT_OK


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {v}")
    return v


def add_analysis_parsers(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add ``compare`` and ``report`` through ``command(name, help)``, which adds one
    ``recarena`` subcommand and returns its parser."""
    c = command("compare", "paired A/B of recommenders over the same users, with intervals")
    c.description = ("Compare recommender arms over the same seeded users: per metric, "
        "overall and per user group, the difference to the first arm with a paired "
        "bootstrap interval and a paired permutation test.")
    c.add_argument("inputs", nargs="+", metavar="SCENARIO_OR_RUN",
                   help="one scenario file (its arms, or --recommenders), several scenario "
                   "files, or run folders")
    c.add_argument("--recommenders", metavar="A,B[,C]",
                   help="arms to compare, the first is the baseline: arm names of the "
                   "scenario, or model names (random, pop, itemknn, ease, als, bpr, or "
                   "your own as module:Class or an entry point name)")
    c.add_argument("--seeds", type=_positive, default=1,
                   help="repeat with this many seeds (the scenario's and the next ones) "
                   "and report the spread")
    c.add_argument("--seed", type=int, help="first seed (default: the scenario's)")
    c.add_argument("--users", type=int, help="override the population size")
    c.add_argument("--data", help="data folder (else RECARENA_DATA, else dataset.path)")
    c.add_argument("--llm", help=f"LLM for brain: llm roles: {LLM_FLAG_HELP}")
    c.add_argument("--out", help="folder for the runs and compare.json "
                   "(default: runs/compare-NAME-TIMESTAMP)")
    c.add_argument("--resamples", type=_positive, default=2000, help="bootstrap resamples")
    c.add_argument("--permutations", type=_positive, default=9999,
                   help="permutation-test resamples (exact when 2^users is at most this)")
    c.add_argument("--confidence", type=_fraction, default=0.95,
                   help="confidence level of the intervals (default: %(default)s)")
    c.add_argument("--alpha", type=_fraction, default=0.05,
                   help="significance level for Holm-adjusted p-values")
    c.add_argument("--no-groups", action="store_true", help="overall differences only")
    c.add_argument("--taste", metavar="all|F1,F2[,...]",
                   help="re-run the scenario under these taste families (ease, als, "
                   "itemknn, bpr, puresvd, ensemble) and say, for every pair of arms and "
                   "metric, whether the verdict is robust, depends on the user model or "
                   "is not separated")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.add_argument("--quiet", action="store_true", help="no progress display")
    c.set_defaults(fn=cmd_compare)

    r = command("report", "one self-contained HTML report of run folders")
    r.description = ("Plots of one or more runs side by side in one HTML file that opens "
                     "offline (plotly.js inlined).")
    r.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    r.add_argument("-o", "--out", default="report.html", help="HTML file to write")
    r.add_argument("--resamples", type=_positive, default=1000,
                   help="bootstrap resamples for the intervals")
    r.set_defaults(fn=cmd_report)
