"""The ``recarena`` command line.

Exit status: 0 success, 1 a run or download failed (including a run in which every LLM
decision failed, or one that needs an extra that is not installed), 2 invalid input
(scenario, role, data, arguments; found before any work), 3 the run stopped at its LLM
budget (everything up to then is written), 130 interrupted. Errors are one line on stderr,
never a traceback.
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

from agents.flags import LLM_FLAG_HELP
from simulations.trace_cli import add_trace_commands

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
    """One row per recommender, and one per (recommender, role) in a mixed population.

    New-item columns only when the run released items (add_items events).
    """
    from simulations.metrics import NEW_ITEM_METRICS, labels_for

    arms = metrics["arms"]
    labels = labels_for(metrics.get("environment", "feed"))
    keys = [k for k in labels if k not in NEW_ITEM_METRICS
            or any(m["overall"].get(k) is not None for m in arms.values())]
    t = Table(title=title or None)
    t.add_column("recommender", style="bold")
    for k in keys:
        t.add_column(labels[k], justify="right")
    for arm, m in arms.items():
        t.add_row(arm, *(_fmt(m["overall"].get(k)) for k in keys))
        roles = m.get("roles", {})
        if len(roles) > 1:
            for role, rm in roles.items():
                t.add_row(f"  {arm} / {role}", *(_fmt(rm.get(k)) for k in keys),
                          style="dim")
    return t


# ----------------------------------------------------------------------------- commands


def cmd_run(a: argparse.Namespace) -> int:
    from scenarios.loader import load_scenario
    from simulations.progress import RunProgress
    from simulations.runner import prepare, run

    loaded = load_scenario(a.scenario, llm_flag=a.llm is not None)
    uses_llm = any(r.config.brain.kind == "llm" for r in loaded.roles) or bool(loaded.agents)
    for flag, value in (("--llm", a.llm), ("--replay", a.replay)):
        if value is not None and not uses_llm:
            raise CliError(f"{flag}: role {loaded.role.name!r} of {a.scenario} uses no LLM "
                           f"(brain: {loaded.role.brain.kind}); drop {flag} or use an llm "
                           "role")
    if a.replay is not None:
        from agents.llm import resolve_cache_path

        cache = resolve_cache_path(a.replay)
        if not cache.is_file():
            raise CliError(f"--replay: no LLM cache at {cache} (give a run folder of an LLM "
                           "run or its llm_cache.sqlite)")
    if a.out and _not_empty(Path(a.out)):
        raise CliError(f"--out: {a.out} exists and is not an empty folder; choose another "
                       "(a run never writes into an earlier run)")
    err = _err()
    with err.status("loading data and building agents..."):
        prep = prepare(loaded, seed=a.seed, users=a.users, data=a.data, llm=a.llm,
                       executor=_executor_flags(a))
    scn = prep.scenario
    _print_estimate(prep, a.replay is not None)
    total = len(prep.population) * scn.environment.rounds * len(scn.recommenders)
    with RunProgress(scn.name, total, console=err, disable=a.quiet or a.json,
                     llm=uses_llm) as progress:
        result = run(prep, Path(a.out) if a.out else None,
                     on_session_end=progress.session_end, argv=sys.argv,
                     replay=a.replay, on_llm_call=progress.llm_call)
    return _report(a, result, f"{scn.name} (seed {scn.seed}, {len(prep.population)} users)")


def _print_estimate(prep: Any, replay: bool) -> None:
    """Say how many LLM calls and about how long, before a run that takes minutes."""
    from simulations.estimate import PRINT_AFTER_S, estimate_prepared

    est = None if replay else estimate_prepared(prep)
    if est is not None and est.seconds > PRINT_AFTER_S:
        _err().print(est.line(), highlight=False, soft_wrap=True)


def _executor_flags(a: argparse.Namespace) -> dict[str, Any] | None:
    """--executor, --workers and --ray-address as overrides of the scenario's executor."""
    out = {k: v for k, v in (("kind", a.executor), ("workers", a.workers),
                             ("address", a.ray_address)) if v is not None}
    return out or None


def _report(a: argparse.Namespace, result: Any, title: str) -> int:
    """Print a run's result (table or JSON, warnings) and return its exit status."""
    if a.json:
        print(json.dumps({"run_dir": str(result.run_dir), "status": result.status,
                          "events": result.events, "metrics": result.metrics,
                          "llm": result.llm}, indent=2))
    else:
        out = _out()
        out.print(metrics_table(result.metrics, title))
        if result.llm:
            out.print(llm_line(result.llm, result.metrics))
        out.print(f"run folder: {result.run_dir}  ({result.events} events)")
    failures = sum(m.get("decision_failures", 0) for m in result.metrics["arms"].values())
    if failures:
        _err().print(f"warning: {failures} LLM decisions failed and are left out of the "
                     "metrics above (their raw answers are decision_failure events in the "
                     "trace)", style="bold yellow")
    if result.status == "budget_exhausted":
        _err().print(f"stopped at the LLM budget; trace written up to there: {result.run_dir}")
        return EXIT_BUDGET
    if result.status == "interrupted":
        _err().print(f"interrupted: the run is incomplete; trace written up to there: "
                     f"{result.run_dir}")
        return EXIT_INTERRUPT
    return EXIT_OK


def cmd_resume(a: argparse.Namespace) -> int:
    from simulations.progress import RunProgress
    from simulations.runner import load_resumable, resume

    err = _err()
    with err.status("loading data and building agents..."):
        r = load_resumable(Path(a.run_dir))
    scn = r.prep.scenario
    total = len(r.prep.population) * scn.environment.rounds * len(scn.recommenders)
    uses_llm = any(x.config.brain.kind == "llm" for x in r.prep.loaded.roles) or bool(
        r.prep.loaded.agents)
    with RunProgress(f"{scn.name} (resumed)", total, console=err,
                     disable=a.quiet or a.json, llm=uses_llm) as progress:
        result = resume(r, on_session_end=progress.session_end,
                        on_llm_call=progress.llm_call)
    return _report(a, result, f"{scn.name} (seed {scn.seed}, {len(r.prep.population)} "
                   "users, resumed)")


def _not_empty(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


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

    target = Path(a.to) / a.name
    if _not_empty(target):  # an invalid argument, like run --out
        raise CliError(f"--to: {target} already exists and is not empty; nothing downloaded")
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


def _progress(progress: Any) -> Any:
    return lambda name, total: (lambda t: lambda: progress.advance(t))(
        progress.add_task(name, total=total))


def _ci(v: dict[str, Any], digits: int = 3) -> str:
    """``mean ± half-width`` of a 95% interval from simulations.stats."""
    if v.get("mean") is None:
        return "-"
    if v["n"] < 2:
        return f"{v['mean']:.{digits}f}"
    return f"{v['mean']:.{digits}f} ± {(v['hi'] - v['lo']) / 2:.{digits}f}"


_TASTE_LABELS = {"brain": "brain", "random": "random", "popularity": "popularity only",
                 "item_mean": "item mean only", "ease": "EASE (same history)"}
_RATING_LABELS = {"brain": "brain", "user_mean": "user mean", "item_mean": "item mean",
                  "bias": "global + user + item bias", "bias_stars": "bias model, rounded",
                  "history_resample": "history ratings resampled"}


def alignment_tables(res: dict[str, Any]) -> list[Table]:
    """The taste-alignment tables (one per ratio) and the rating table of a result."""
    tables = []
    brain = res["brain"] if res["brain"] != "llm" else f"llm {res['llm']}"
    for ratio, rows in res["taste_alignment"]["ratios"].items():
        t = Table(title=f"taste alignment {ratio}, {res['negatives']} negatives: {brain}; "
                  f"{res['samples']} x {res['users_per_sample']} test users, seed {res['seed']}")
        t.add_column("scorer", style="bold", no_wrap=True)
        for col in ("AUC", "accuracy", "precision", "recall", "F1"):
            t.add_column(col, justify="right")
        for name, m in rows.items():
            t.add_row(_TASTE_LABELS.get(name, name),
                      *(_ci(m[k]) for k in ("auc", "accuracy", "precision", "recall", "f1")))
        tables.append(t)
    rf = res["rating_fidelity"]
    t = Table(title=f"rating fidelity: {rf['n']} held-out ratings")
    t.add_column("model", style="bold", no_wrap=True)
    for col in ("RMSE", "MAE", "histogram W1"):
        t.add_column(col, justify="right")
    for name, m in rf["models"].items():
        t.add_row(_RATING_LABELS.get(name, name), _ci(m["rmse"]), _ci(m["mae"]),
                  _ci(m["w1"]) if "w1" in m else "")
    tables.append(t)
    return tables


def cmd_eval_alignment(a: argparse.Namespace) -> int:
    from rich.progress import Progress

    from simulations.alignment import run_alignment
    from simulations.runner import DATA_ENV

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
    with Progress(console=_err(), disable=a.json) as progress:
        res = run_alignment(
            data, users=a.users, samples=a.samples, seed=a.seed, negatives=a.negatives,
            brain=a.brain, llm=a.llm, llm_threads=a.llm_threads, role=a.role, ratios=ratios,
            positives=a.positives,
            rating_items=a.rating_items, tuning_users=a.tuning_users, out=a.out,
            replay=a.replay, progress=_progress(progress))
    if a.json:
        print(json.dumps(res, indent=2))
        return EXIT_OK
    out_c = _out()
    for t in alignment_tables(res):
        out_c.print(t)
    pop = res["popularity"]
    out_c.print(f"median history popularity: positives {pop['median_positive']:.0f}, "
                f"negatives {pop['median_negative_1to1']:.0f}; mean [95% interval] over "
                f"{res['samples']} disjoint samples of test users; baseline thresholds "
                f"fitted on {res['split']['baseline_thresholds_fitted_on']} tuning users")
    out_c.print("Agent4Rec reported accuracy 0.69 / F1 0.70 at 1:1 (MovieLens-1M, "
                "gpt-3.5-turbo, uniform negatives)")
    fails = res["taste_alignment"]["failures"] + res["rating_fidelity"]["failures"]
    if fails:
        out_c.print(f"decision failures: {fails}")
    return EXIT_OK


def validity_tables(res: dict[str, Any]) -> list[Table]:
    """Per-arm means, Spearman correlations and neighbour differences of a result."""
    t = Table(title=f"recommender-ranking validity: {res['users']} test users, seed "
              f"{res['seed']} (mean ± 95% interval over users)")
    t.add_column("recommender", style="bold", no_wrap=True)
    for col in ("watch rate", "satisfaction", "exit page", "held-out HR@10",
                "held-out NDCG@10"):
        t.add_column(col, justify="right")
    for m in res["heldout_order"]:
        arm = res["arms"][m]
        t.add_row(m, *(_ci(arm[k]) for k in ("watch_rate", "satisfaction", "exit_page",
                                            "hr@10", "ndcg@10")))
    c = Table(title="Spearman's rank correlation across recommenders")
    c.add_column("simulated metric", style="bold")
    c.add_column("vs HR@10", justify="right")
    c.add_column("vs NDCG@10", justify="right")
    for s, row in res["spearman"].items():
        c.add_row(s.replace("_", " "), _fmt(row["hr@10"]), _fmt(row["ndcg@10"]))
    n = Table(title="neighbours in held-out order: paired difference (better - worse)")
    n.add_column("pair", style="bold", no_wrap=True)
    for col in ("watch rate", "satisfaction", "HR@10", "NDCG@10"):
        n.add_column(col, justify="right")
    for p in res["neighbours"]:
        n.add_row(f"{p['better']} - {p['worse']}", _ci(p["watch_rate"]),
                  _ci(p["satisfaction"], 2), _ci(p["hr@10"]), _ci(p["ndcg@10"]))
    return [t, c, n]


def cmd_eval_validity(a: argparse.Namespace) -> int:
    from rich.progress import Progress

    from simulations.runner import DATA_ENV
    from simulations.validity import run_validity

    data = a.data or os.environ.get(DATA_ENV)
    if not data:
        raise CliError(f"eval validity: --data DIR is required (or set {DATA_ENV})")
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    with Progress(console=_err(), disable=a.json) as progress:
        res = run_validity(data, seed=a.seed, users=a.users, models=models, role=a.role,
                           out=a.out, progress=_progress(progress))
    if a.json:
        print(json.dumps(res, indent=2))
        return EXIT_OK
    out_c = _out()
    for t in validity_tables(res):
        out_c.print(t)
    ref = res["agent4rec_reported"]
    out_c.print(f"Agent4Rec's LLM users: watch rate about {ref['watch_rate']}, exit page "
                f"{ref['exit_page']}, satisfaction {ref['satisfaction']} of 10")
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """One-line errors with exit status 2; remembers its options and subcommands so a test
    can check that every one of them is described."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.options: list[argparse.Action] = []  # before super(): it adds -h/--help
        self.commands: dict[str, _Parser] = {}
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.options.append(action)
        return action

    def command(self, sub: Any, name: str, help: str) -> _Parser:
        """``sub.add_parser(name)``, described by ``help`` in the list and in its own help."""
        parser = sub.add_parser(name, help=help, description=help)
        assert isinstance(parser, _Parser)
        self.commands[name] = parser
        return parser

    def error(self, message: str) -> Any:  # one line, exit 2, as for bad files
        raise CliError(f"{self.prog}: {message}")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("recarena")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


def build_parser() -> _Parser:
    p = _Parser(prog="recarena", description="Simulate users meeting recommenders.")
    p.add_argument("--version", action="version", version=f"recarena {_version()}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser,
                           metavar="COMMAND")

    r = p.command(sub, "run", "run a scenario and write a run folder")
    r.add_argument("scenario", help="scenario YAML file")
    r.add_argument("--out", help="run folder to create; must not exist or be empty "
                   "(default: OUTPUT_DIR/NAME-TIMESTAMP)")
    r.add_argument("--seed", type=int, help="override the scenario's seed")
    r.add_argument("--users", type=int, help="override the population size (at most the "
                   "dataset's users with history)")
    r.add_argument("--data", help="data folder (else RECARENA_DATA, else dataset.path)")
    r.add_argument("--llm", help=f"LLM for roles with brain: llm and recommender agents "
                   f"without an llm: block: {LLM_FLAG_HELP}; an error when nothing uses an LLM")
    r.add_argument("--replay", metavar="RUN_DIR_OR_CACHE",
                   help="answer every LLM call from a recorded run (no network; a missing "
                   "entry fails the run)")
    r.add_argument("--executor", choices=("default", "ray"),
                   help="how agents are scheduled (overrides the scenario's executor.kind): "
                   "in this process, or sharded over Ray workers (docs/scaling.md)")
    r.add_argument("--workers", type=int, help="Ray workers (executor.workers)")
    r.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (e.g. auto or HOST:6379) instead of starting "
                   "a local instance")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(fn=cmd_run)

    rs = p.command(sub, "resume", "continue a run that was killed or interrupted, from its "
                   "last checkpoint (same metrics and trace as an uninterrupted run)")
    rs.add_argument("run_dir", metavar="RUN_DIR", help="the run folder to continue")
    rs.add_argument("--json", action="store_true", help="print the result as JSON")
    rs.add_argument("--quiet", action="store_true", help="no progress bar")
    rs.set_defaults(fn=cmd_resume)

    v = p.command(sub, "validate", "check scenario, role and team files (exit 2 if any is "
                  "invalid)")
    v.add_argument("files", nargs="+", metavar="FILE",
                   help="scenario, role (user or recommender) or team YAML files (told "
                   "apart by their kind:)")
    v.set_defaults(fn=cmd_validate)

    s = p.command(sub, "schema", "print the JSON Schema of scenario and role files")
    s.add_argument("--kind", choices=["all", "scenario", "role", "recommender", "team"],
                   default="all", help="which schema to print: scenario, role (user "
                   "roles), recommender (recommender roles), team (default: all)")
    s.set_defaults(fn=cmd_schema)

    data = p.command(sub, "data", "get public datasets")
    d = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser,
                            metavar="COMMAND")
    dl = data.command(d, "download", "download and unpack a public dataset (needs network)")
    dl.add_argument("name", choices=["ml-100k"], help="dataset: ml-100k (MovieLens 100K)")
    dl.add_argument("--to", required=True, help="folder to unpack into; the data goes to "
                    "TO/NAME, which must not exist or be empty")
    dl.add_argument("--url", help=argparse.SUPPRESS)  # for mirrors and loopback tests
    dl.set_defaults(fn=cmd_download)

    ev = p.command(sub, "eval", "evaluate recommenders offline or user agents against data")
    e = ev.add_subparsers(dest="eval_command", required=True, parser_class=_Parser,
                          metavar="COMMAND")
    eo = ev.command(e, "offline", "leave-last-out ranking metrics of classic models")
    eo.add_argument("--data", help="data folder (else RECARENA_DATA)")
    eo.add_argument("--models", default="random,pop,itemknn,ease,als",
                    help="comma-separated models: random, pop, itemknn, ease, als, bpr "
                    "(default: %(default)s)")
    eo.add_argument("--k", type=int, default=10,
                    help="cut-off of HR@k and NDCG@k (default: %(default)s)")
    eo.add_argument("--seed", type=int, default=0,
                    help="seed of the models and of random (default: %(default)s)")
    eo.add_argument("--json", action="store_true", help="print the result as JSON")
    eo.set_defaults(fn=cmd_eval_offline)

    ea = ev.command(e, "alignment", "taste alignment and rating fidelity vs real users, "
                    "beside baselines, on test users")
    ea.add_argument("--data", help="data folder (else RECARENA_DATA)")
    ea.add_argument("--users", type=int, default=100,
                    help="test users per sample (default: %(default)s)")
    ea.add_argument("--samples", type=int, default=5,
                    help="disjoint test samples (default: %(default)s)")
    ea.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    ea.add_argument("--negatives", choices=["popularity-matched", "uniform"],
                    default="popularity-matched",
                    help="negative sampler; uniform is Agent4Rec's (default: %(default)s)")
    ea.add_argument("--brain", choices=["utility", "llm", "none"], default="utility",
                    help="which brain decides; none: baselines only (default: %(default)s)")
    ea.add_argument("--llm", default=None, help=f"for --brain llm only: {LLM_FLAG_HELP} "
                    "(default: local)")
    ea.add_argument("--llm-threads", type=int, default=None,
                    help="CPU threads of the local model (1 is fastest on a busy machine)")
    ea.add_argument("--role", help="role file (default: the shipped role for the brain)")
    ea.add_argument("--ratios", default="1,3,9",
                    help="m of 1:m liked-to-unseen items, comma-separated "
                    "(default: %(default)s)")
    ea.add_argument("--positives", type=int, default=4,
                    help="held-out liked items per user (default: %(default)s)")
    ea.add_argument("--rating-items", type=int, default=10,
                    help="held-out items rated per user (default: %(default)s)")
    ea.add_argument("--tuning-users", type=int, default=300,
                    help="tuning users the baselines' thresholds are fitted on "
                    "(default: %(default)s)")
    ea.add_argument("--out", help="folder for the LLM cache (record/replay)")
    ea.add_argument("--replay", metavar="RUN_DIR_OR_CACHE",
                    help="for --brain llm only: answer LLM calls from here (no network)")
    ea.add_argument("--json", action="store_true", help="print the result as JSON")
    ea.set_defaults(fn=cmd_eval_alignment)

    va = ev.command(e, "validity", "do simulated users rank recommenders as held-out data "
                    "does?")
    va.add_argument("--data", help="data folder (else RECARENA_DATA)")
    va.add_argument("--seed", type=int, default=0, help="scenario seed (default: %(default)s)")
    va.add_argument("--users", type=int, default=None,
                    help="test users to simulate (default: all of them)")
    va.add_argument("--models", default="random,pop,itemknn,ease,als,bpr",
                    help="comma-separated models, at least three (default: %(default)s)")
    va.add_argument("--role", help="utility role file (default: the shipped one)")
    va.add_argument("--out", help="keep the simulation's run folder here")
    va.add_argument("--json", action="store_true", help="print the result as JSON")
    va.set_defaults(fn=cmd_eval_validity)

    from simulations.cli_tasks import add_task_parser

    add_task_parser(lambda name, help: ev.command(e, name, help))

    ro = p.command(sub, "roles", "scaffold a new role file, or list the shipped roles")
    ros = ro.add_subparsers(dest="roles_command", required=True, parser_class=_Parser,
                           metavar="COMMAND")
    from simulations.cli_roles import add_roles_commands

    add_roles_commands(lambda name, help: ro.command(ros, name, help))

    tr = p.command(sub, "trace", "read run traces: summary, agent, step, search, diff, "
                   "export")
    t = tr.add_subparsers(dest="trace_command", required=True, parser_class=_Parser,
                          metavar="COMMAND")
    add_trace_commands(lambda name, help: tr.command(t, name, help))

    from simulations.cli_analysis import add_analysis_parsers

    add_analysis_parsers(lambda name, help: p.command(sub, name, help))
    return p


def _exit_code(e: Exception) -> int | None:
    """Exit status of an error the user can act on (printed as is), else None."""
    from agents.llm import LLMError
    from scenarios.loader import ScenarioError
    from simulations.runner import ResumeError, RunError
    from tools.dataset import DataError

    if isinstance(e, CliError):
        return e.code
    if isinstance(e, ResumeError):
        return EXIT_INPUT
    if isinstance(e, (RunError, LLMError)):
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
    except BrokenPipeError:  # `recarena schema | head`: the reader left; nothing to say
        sys.stderr.close()
        return EXIT_OK
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
    # Under ``python -m`` this file is ``__main__``, a second copy of the module; the
    # subcommand modules raise ``simulations.cli.CliError``, which this copy's handler
    # would not recognise. Run the imported module's ``main``.
    from simulations.cli import main as _main

    sys.exit(_main())
