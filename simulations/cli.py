"""The ``recarena`` command line.

Exit status: 0 success, 1 a run or download failed, 2 invalid input (scenario, role, data,
arguments), 3 the run stopped at its LLM budget (everything up to then is written),
130 interrupted. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agents.setup import LLM_FLAG_HELP

__all__ = ["main"]

EXIT_OK, EXIT_FAIL, EXIT_INPUT, EXIT_BUDGET, EXIT_INTERRUPT = 0, 1, 2, 3, 130


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def _out() -> Console:
    # Off a terminal rich assumes 80 columns, too narrow for the metrics table.
    c = Console(highlight=False, soft_wrap=True)
    return c if c.is_terminal else Console(highlight=False, soft_wrap=True, width=120)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _fmt(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def metrics_table(metrics: dict[str, Any], title: str = "") -> Table:
    """One row per recommender, and one per (recommender, role) in a mixed population."""
    from simulations.metrics import labels_for

    labels = labels_for(metrics.get("environment", "feed"))
    t = Table(title=title or None)
    t.add_column("recommender", style="bold")
    for label in labels.values():
        t.add_column(label, justify="right")
    for arm, m in metrics["arms"].items():
        t.add_row(arm, *(_fmt(m["overall"].get(k)) for k in labels))
        roles = m.get("roles", {})
        if len(roles) > 1:
            for role, rm in roles.items():
                t.add_row(f"  {arm} / {role}", *(_fmt(rm.get(k)) for k in labels),
                          style="dim")
    return t


# ----------------------------------------------------------------------------- commands


def cmd_run(a: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from scenarios.loader import load_scenario
    from simulations.runner import prepare, run

    loaded = load_scenario(a.scenario)
    err = _err()
    with err.status("loading data and building agents..."):
        prep = prepare(loaded, seed=a.seed, users=a.users, data=a.data, llm=a.llm)
    scn = prep.scenario
    total = len(prep.population) * scn.environment.rounds * len(scn.recommenders)
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err, disable=a.quiet or a.json, transient=False,
    ) as progress:
        task = progress.add_task(f"{scn.name}: sessions", total=total)
        result = run(prep, Path(a.out) if a.out else None,
                     on_session_end=lambda n: progress.advance(task, n), argv=sys.argv,
                     replay=a.replay)
    if a.json:
        print(json.dumps({"run_dir": str(result.run_dir), "status": result.status,
                          "events": result.events, "metrics": result.metrics,
                          "llm": result.llm}, indent=2))
    else:
        out = _out()
        out.print(metrics_table(result.metrics, f"{scn.name} (seed {scn.seed}, "
                                f"{len(prep.population)} users)"))
        if result.llm:
            out.print(llm_line(result.llm, result.metrics))
        out.print(f"run folder: {result.run_dir}  ({result.events} events)")
    if result.status == "budget_exhausted":
        _err().print(f"stopped at the LLM budget; trace written up to there: {result.run_dir}")
        return EXIT_BUDGET
    return EXIT_INTERRUPT if result.status == "interrupted" else EXIT_OK


def llm_line(llm: dict[str, Any], metrics: dict[str, Any]) -> str:
    failures = sum(m.get("decision_failures", 0) for m in metrics["arms"].values())
    return (f"LLM {llm['backend']}:{llm['model']} ({llm['mode']}): {llm['calls']} calls, "
            f"{llm['cached_calls']} from cache, {llm['retries']} retries, "
            f"{llm['input_tokens']} tokens in, {llm['output_tokens']} out, "
            f"${llm['cost_usd']:.4f}; {failures} decision failures")


def cmd_validate(a: argparse.Namespace) -> int:
    from scenarios.loader import ScenarioError, validate_file

    bad = 0
    for f in a.files:
        try:
            kind = validate_file(f)
            print(f"{f}: ok ({kind})")
        except ScenarioError as e:
            print(str(e), file=sys.stderr)
            bad += 1
    return EXIT_INPUT if bad else EXIT_OK


def cmd_schema(a: argparse.Namespace) -> int:
    from scenarios.loader import json_schemas

    schemas = json_schemas()
    obj = schemas if a.kind == "all" else schemas[a.kind]
    print(json.dumps(obj, indent=2, sort_keys=True))
    return EXIT_OK


def cmd_download(a: argparse.Namespace) -> int:
    from simulations.download import DownloadError, download

    try:
        path = download(a.name, a.to, url=a.url)
    except DownloadError as e:
        raise CliError(str(e), EXIT_FAIL) from None
    print(f"downloaded {a.name} to {path}")
    return EXIT_OK


def cmd_eval_offline(a: argparse.Namespace) -> int:
    from simulations.offline_eval import evaluate_offline, format_offline_table
    from simulations.runner import DATA_ENV
    from tools.dataset import load_dataset

    data = a.data or os.environ.get(DATA_ENV)
    if not data:
        raise CliError(f"eval offline: --data DIR is required (or set {DATA_ENV})")
    ds = load_dataset(data)
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    err = _err()
    with err.status("evaluating...") as status:
        res = evaluate_offline(ds, models, k=a.k, seed=a.seed,
                               on_model=lambda m: status.update(f"evaluating {m}..."))
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        _out().print(format_offline_table(res))
    return EXIT_OK


def cmd_eval_alignment(a: argparse.Namespace) -> int:
    from rich.progress import Progress

    from simulations.alignment import run_alignment
    from simulations.runner import DATA_ENV

    data = a.data or os.environ.get(DATA_ENV)
    if not data:
        raise CliError(f"eval alignment: --data DIR is required (or set {DATA_ENV})")
    try:
        ratios = [int(x) for x in a.ratios.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"eval alignment: --ratios: not a list of integers: {a.ratios}") from None
    with Progress(console=_err(), disable=a.json) as progress:
        res = run_alignment(
            data, users=a.users, seed=a.seed, brain=a.brain, llm=a.llm, role=a.role,
            ratios=ratios, positives=a.positives, out=a.out, replay=a.replay,
            progress=lambda name, total: (lambda t: lambda: progress.advance(t))(
                progress.add_task(name, total=total)))
    if a.json:
        print(json.dumps(res, indent=2))
        return EXIT_OK
    taste, ratings = res["taste_alignment"], res["rating_fidelity"]
    t = Table(title=f"taste alignment: {a.brain} brain, {res['users']} users, seed {a.seed}")
    for col in ("ratio", "accuracy", "precision", "recall", "F1"):
        t.add_column(col, justify="right")
    for ratio, m in taste["ratios"].items():
        t.add_row(ratio, *(f"{m[k]:.3f}" for k in ("accuracy", "precision", "recall", "f1")))
    out_c = _out()
    out_c.print(t)
    out_c.print(f"rating fidelity: 1-Wasserstein {ratings['wasserstein']} stars; simulated "
                f"histogram {ratings['simulated_hist']} vs real {ratings['real_hist']} "
                f"(1..5 stars, {ratings['n']} ratings)")
    out_c.print("Agent4Rec reported accuracy 0.69 / F1 0.70 at 1:1 (MovieLens-1M, gpt-3.5)")
    if taste["failures"] or ratings["failures"]:
        out_c.print(f"decision failures: {taste['failures'] + ratings['failures']}")
    return EXIT_OK


def cmd_trace_summary(a: argparse.Namespace) -> int:
    from simulations.metrics import compute_metrics
    from simulations.trace import read_trace

    try:
        events = read_trace(a.run_dir)
    except FileNotFoundError as e:
        raise CliError(str(e)) from None
    counts: dict[str, int] = {}
    for ev in events:
        counts[ev["type"]] = counts.get(ev["type"], 0) + 1
    start = next((e for e in events if e["type"] == "run_start"), {})
    end = next((e for e in events if e["type"] == "run_end"), None)
    status = end["status"] if end else ("truncated" if events.truncated else "incomplete")
    metrics = compute_metrics(events)
    summary: dict[str, Any] = {
        "run_dir": str(a.run_dir), "scenario": start.get("scenario"), "seed": start.get("seed"),
        "status": status, "reason": end.get("reason") if end else None,
        "events": len(events), "event_counts": dict(sorted(counts.items())),
        "metrics": metrics,
    }
    if a.json:
        print(json.dumps(summary, indent=2))
        return EXIT_OK
    out = _out()
    out.print(f"[bold]{summary['scenario']}[/] seed {summary['seed']} - status "
              f"[bold]{status}[/]" + (f" ({summary['reason']})" if summary["reason"] else ""))
    out.print("events: " + ", ".join(f"{k} {v}" for k, v in summary["event_counts"].items()))
    out.print(metrics_table(metrics))
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as for bad files
        raise CliError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="recarena", description="Simulate users meeting recommenders.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run a scenario and write a run folder")
    r.add_argument("scenario", help="scenario YAML file")
    r.add_argument("--out", help="run folder to create (default: runs/NAME-TIMESTAMP)")
    r.add_argument("--seed", type=int, help="override the scenario's seed")
    r.add_argument("--users", type=int, help="override the population size")
    r.add_argument("--data", help="data folder (else RECARENA_DATA, else dataset.path)")
    r.add_argument("--llm", help=f"LLM for brain: llm roles: {LLM_FLAG_HELP}")
    r.add_argument("--replay", metavar="RUN_DIR_OR_CACHE",
                   help="answer every LLM call from a recorded run (no network; a missing "
                   "entry fails the run)")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(fn=cmd_run)

    v = sub.add_parser("validate", help="check scenario and role files")
    v.add_argument("files", nargs="+")
    v.set_defaults(fn=cmd_validate)

    s = sub.add_parser("schema", help="print the JSON Schema of scenario and role files")
    s.add_argument("--kind", choices=["all", "scenario", "role"], default="all")
    s.set_defaults(fn=cmd_schema)

    d = sub.add_parser("data", help="datasets").add_subparsers(
        dest="data_command", required=True, parser_class=_Parser)
    dl = d.add_parser("download", help="download a public dataset")
    dl.add_argument("name", choices=["ml-100k"])
    dl.add_argument("--to", required=True, help="folder to unpack into")
    dl.add_argument("--url", help=argparse.SUPPRESS)  # for mirrors and loopback tests
    dl.set_defaults(fn=cmd_download)

    e = sub.add_parser("eval", help="evaluations").add_subparsers(
        dest="eval_command", required=True, parser_class=_Parser)
    eo = e.add_parser("offline", help="leave-last-out ranking metrics of classic models")
    eo.add_argument("--data", help="data folder (else RECARENA_DATA)")
    eo.add_argument("--models", default="random,pop,itemknn,ease,als")
    eo.add_argument("--k", type=int, default=10)
    eo.add_argument("--seed", type=int, default=0)
    eo.add_argument("--json", action="store_true")
    eo.set_defaults(fn=cmd_eval_offline)

    ea = e.add_parser("alignment", help="taste alignment and rating fidelity vs real users")
    ea.add_argument("--data", help="data folder (else RECARENA_DATA)")
    ea.add_argument("--users", type=int, default=200)
    ea.add_argument("--seed", type=int, default=0)
    ea.add_argument("--brain", choices=["utility", "llm"], default="utility")
    ea.add_argument("--llm", default=None, help=f"for --brain llm: {LLM_FLAG_HELP}")
    ea.add_argument("--role", help="role file (default: the shipped role for the brain)")
    ea.add_argument("--ratios", default="1,2,3,9", help="m of 1:m, comma-separated")
    ea.add_argument("--positives", type=int, default=4, help="held-out liked items per user")
    ea.add_argument("--out", help="folder for the LLM cache (record/replay) and result")
    ea.add_argument("--replay", metavar="RUN_DIR_OR_CACHE", help="answer LLM calls from here")
    ea.add_argument("--json", action="store_true")
    ea.set_defaults(fn=cmd_eval_alignment)

    t = sub.add_parser("trace", help="read run traces").add_subparsers(
        dest="trace_command", required=True, parser_class=_Parser)
    ts = t.add_parser("summary", help="status, event counts and metrics of a run")
    ts.add_argument("run_dir")
    ts.add_argument("--json", action="store_true")
    ts.set_defaults(fn=cmd_trace_summary)

    from simulations.cli_analysis import add_analysis_parsers

    add_analysis_parsers(sub)
    return p


def _exit_code(e: Exception) -> int | None:
    """Exit status of an error the user can act on (printed as is), else None."""
    from scenarios.loader import ScenarioError
    from simulations.runner import RunError
    from tools.dataset import DataError

    if isinstance(e, CliError):
        return e.code
    if isinstance(e, RunError):
        return EXIT_FAIL
    if isinstance(e, (ScenarioError, DataError)):
        return EXIT_INPUT
    return None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.fn(args))
    except KeyboardInterrupt:
        print("recarena: interrupted", file=sys.stderr)
        return EXIT_INTERRUPT
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except Exception as e:
        code = _exit_code(e)
        if code is not None:
            print(str(e), file=sys.stderr)
            return code
        if isinstance(e, (ValueError, OSError)):
            print(f"recarena: {e}", file=sys.stderr)
            return EXIT_INPUT
        if os.environ.get("RECARENA_DEBUG"):
            raise
        print(f"recarena: internal error: {type(e).__name__}: {e} "
              "(set RECARENA_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
