"""``recarena run``, ``resume`` and ``validate``: the commands that start, continue and
check runs (added to the parser by ``simulations.cli.main``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.flags import LLM_FLAG_HELP
from simulations.cli.common import (
    EXIT_BUDGET,
    EXIT_INPUT,
    EXIT_INTERRUPT,
    EXIT_OK,
    CliError,
    console_err,
    console_out,
    not_empty,
)
from simulations.report.summary_table import metrics_table
from simulations.run.stop_signals import EXIT_SIGTERM

__all__ = ["add_run_commands", "cmd_resume", "cmd_run", "cmd_validate", "llm_line"]


def cmd_run(a: argparse.Namespace) -> int:
    from scenarios.loader import load_scenario
    from simulations.cli.progress import RunProgress
    from simulations.run.runner import check_api_keys, prepare, run

    loaded = load_scenario(a.scenario, llm_flag=a.llm is not None)
    uses_llm = _uses_llm(loaded)
    _check_llm_flags(loaded, a.scenario, llm=a.llm, replay=a.replay)
    if a.replay is not None:
        from agents.llm import resolve_cache_path

        cache = resolve_cache_path(a.replay)
        if not cache.is_file():
            raise CliError(f"--replay: no LLM cache at {cache} (give a run folder of an LLM "
                           "run or its llm_cache.sqlite)")
    if a.out and not_empty(Path(a.out)):
        raise CliError(f"--out: {a.out} exists and is not an empty folder; choose another "
                       "(a run never writes into an earlier run)")
    if a.replay is None:  # a replay answers every call from its cache: no key needed
        check_api_keys(loaded, a.llm)
    families = _robustness_families(a, loaded)
    err = console_err()
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
    verdicts = None
    if families and result.status == "completed":
        verdicts = _run_robustness(a, loaded, families, scn.seed, result.run_dir)
    return _report(a, result, f"{scn.name} (seed {scn.seed}, {len(prep.population)} users)",
                   verdicts)


def _robustness_families(a: argparse.Namespace, loaded: Any) -> list[str]:
    """--robustness, checked before any work: families, a utility role, two arms."""
    if not a.robustness:
        return []
    from simulations.eval.compare import CompareError
    from simulations.eval.compare_taste import with_family
    from simulations.run.taste_roles import parse_families

    try:
        families = parse_families(a.robustness)
        if len(families) < 2:
            raise CompareError("name at least two families, or all")
        if len(loaded.scenario.recommenders) < 2:
            raise CompareError(f"{a.scenario} has one recommender; the check compares arms")
        for fam in families:
            with_family(loaded, fam)
    except (ValueError, CompareError) as e:
        raise CliError(f"--robustness: {str(e).removeprefix('--taste: ')}") from None
    return families


def _run_robustness(a: argparse.Namespace, loaded: Any, families: list[str], seed: int,
                    run_dir: Path) -> dict[str, Any]:
    """The run's A/B again under each taste family (in RUN_DIR/robustness/), with every
    pair's verdict written to RUN_DIR/robustness.json (``recarena report`` shows it)."""
    from simulations.eval.compare import CompareError
    from simulations.eval.compare_taste import ROBUSTNESS_FILE, run_taste_comparison

    err = console_err()
    status = None if a.quiet or a.json else err.status("robustness check...")
    try:
        with status if status is not None else contextlib.nullcontext():
            result = run_taste_comparison(
                [loaded], families, seed=seed, users=a.users, data=a.data,
                out=run_dir / "robustness",
                on_run=lambda name: status.update(f"robustness check: {name}...")
                if status else None)
    except CompareError as e:
        raise CliError(f"--robustness: {e}") from None
    (run_dir / ROBUSTNESS_FILE).write_text(
        Path(result["out"], ROBUSTNESS_FILE).read_text(encoding="utf-8"), encoding="utf-8")
    return result


def _print_estimate(prep: Any, replay: bool) -> None:
    """Say how many LLM calls and about how long, before a run that takes minutes."""
    from simulations.run.estimate import PRINT_AFTER_S, estimate_prepared

    est = None if replay else estimate_prepared(prep)
    if est is not None and est.seconds > PRINT_AFTER_S:
        console_err().print(est.line(), highlight=False, soft_wrap=True)


def _executor_flags(a: argparse.Namespace) -> dict[str, Any] | None:
    """--executor, --workers and --ray-address as overrides of the scenario's executor."""
    out = {k: v for k, v in (("kind", a.executor), ("workers", a.workers),
                             ("address", a.ray_address)) if v is not None}
    return out or None


def _report(a: argparse.Namespace, result: Any, title: str,
            robustness: dict[str, Any] | None = None) -> int:
    """Print a run's result (table or JSON, warnings) and return its exit status."""
    if a.json:
        doc = {"run_dir": str(result.run_dir), "status": result.status,
               "events": result.events, "metrics": result.metrics, "llm": result.llm}
        if robustness is not None:
            doc["robustness"] = {k: v for k, v in robustness.items() if k != "per_family"}
        print(json.dumps(doc, indent=2))
    else:
        out = console_out()
        out.print(metrics_table(result.metrics, title))
        if result.llm:
            out.print(llm_line(result.llm, result.metrics))
        if robustness is not None:
            from simulations.cli.analysis import ROBUST_LEGEND, robustness_table

            out.print(robustness_table(robustness))
            out.print(ROBUST_LEGEND.format(alpha=robustness["alpha"]))
            out.print(f"robustness runs in {robustness['out']}")
        out.print(f"run folder: {result.run_dir}  ({result.events} events)")
    failures = sum(m.get("decision_failures", 0) for m in result.metrics["arms"].values())
    if failures:
        console_err().print(f"warning: {failures} LLM decisions failed and are left out of the "
                     "metrics above (their raw answers are decision_failure events in the "
                     "trace)", style="bold yellow")
    if result.status == "budget_exhausted":
        console_err().print("stopped at the LLM budget; trace written up to there: "
                            f"{result.run_dir}")
        return EXIT_BUDGET
    if result.status == "interrupted":
        by = " by SIGTERM" if result.reason == "SIGTERM" else ""
        console_err().print(f"interrupted{by}: the run is incomplete; trace written up to there: "
                     f"{result.run_dir} (recarena resume {result.run_dir} continues it)")
        return EXIT_SIGTERM if result.reason == "SIGTERM" else EXIT_INTERRUPT
    return EXIT_OK


def cmd_resume(a: argparse.Namespace) -> int:
    from simulations.cli.progress import RunProgress
    from simulations.run.runner import load_resumable, resume

    err = console_err()
    with err.status("loading data and building agents..."):
        r = load_resumable(Path(a.run_dir), check_keys=True)
    scn = r.prep.scenario
    total = len(r.prep.population) * scn.environment.rounds * len(scn.recommenders)
    uses_llm = _uses_llm(r.prep.loaded)
    with RunProgress(f"{scn.name} (resumed)", total, console=err,
                     disable=a.quiet or a.json, llm=uses_llm) as progress:
        result = resume(r, on_session_end=progress.session_end,
                        on_llm_call=progress.llm_call)
    return _report(a, result, f"{scn.name} (seed {scn.seed}, {len(r.prep.population)} "
                   "users, resumed)")


def llm_line(llm: dict[str, Any], metrics: dict[str, Any]) -> str:
    failures = sum(m.get("decision_failures", 0) for m in metrics["arms"].values())
    return (f"LLM {llm['backend']}:{llm['model']} ({llm['mode']}): {llm['calls']} calls, "
            f"{llm['cached_calls']} from cache, {llm['retries']} retries, "
            f"{llm['input_tokens']} tokens in, {llm['output_tokens']} out, "
            f"${llm['cost_usd']:.4f}; {failures} decision failures")


def _uses_llm(loaded: Any) -> bool:
    return any(r.config.brain.kind == "llm" for r in loaded.roles) or bool(loaded.agents)


def _check_llm_flags(loaded: Any, scenario: str, **flags: str | None) -> None:
    """--llm or --replay on a scenario whose agents use no model is a mistake."""
    for flag, value in flags.items():
        flag = "--" + flag
        if value is not None and not _uses_llm(loaded):
            raise CliError(f"{flag}: role {loaded.role.name!r} of {scenario} uses no LLM "
                           f"(brain: {loaded.role.brain.kind}); drop {flag} or use an llm "
                           "role")


def _validate_for_llm(path: str, llm: str) -> str:
    """What ``recarena run FILE --llm LLM`` checks before any work, for a scenario (its
    roles may leave llm: out; --llm must have something to drive; the model's extras and
    API key), or the model alone for a role or team file. Returns the file's kind."""
    from agents.setup import missing_api_key, parse_llm_flag
    from scenarios.loader import load_scenario, validate_file
    from simulations.run.runner import check_api_keys, check_requirements

    kind = validate_file(path, llm_flag=True)
    if kind == "scenario":
        loaded = load_scenario(path, llm_flag=True)
        _check_llm_flags(loaded, path, llm=llm)
        check_api_keys(loaded, llm)
        check_requirements(loaded, loaded.scenario, parse_llm_flag(llm, loaded.scenario.llm))
    else:
        problem = missing_api_key(parse_llm_flag(llm, None))
        if problem:
            raise CliError(f"--llm {llm}: {problem}")
    return kind


def cmd_validate(a: argparse.Namespace) -> int:
    from scenarios.loader import ScenarioError, load_scenario, validate_file
    from simulations.run.prepare import check_capabilities
    from simulations.run.runner import RunError

    bad = 0
    for f in a.files:
        try:
            if a.llm is None:
                kind = validate_file(f)
                if kind == "scenario":  # the roles' brains against the environment
                    check_capabilities(load_scenario(f, llm_flag=True))
                print(f"{f}: ok ({kind})")
            else:
                print(f"{f}: ok ({_validate_for_llm(f, a.llm)}, runs with --llm {a.llm})")
        except ScenarioError as e:  # every error of the file, one line each
            print("\n".join(e.lines), file=sys.stderr)
            bad += 1
        except (RunError, CliError, ValueError) as e:  # --llm: what run would refuse
            print(f"{f}: {e}", file=sys.stderr)
            bad += 1
    return EXIT_INPUT if bad else EXIT_OK


def add_run_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add ``run``, ``resume`` and ``validate`` through ``command(name, help)``, which adds
    one subcommand to the top-level parser and returns its parser."""
    r = command("run", "run a scenario and write a run folder")
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
    r.add_argument("--robustness", metavar="all|F1,F2[,...]",
                   help="after the run, re-run its A/B under these taste families (ease, "
                   "als, itemknn, bpr, puresvd, ensemble) and say per pair of arms and "
                   "metric whether the verdict is robust, depends on the user model or is "
                   "not separated (RUN_DIR/robustness.json; needs a utility role, >= 2 arms)")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(fn=cmd_run)

    rs = command("resume", "continue a run that was killed or interrupted, from its "
                   "last checkpoint (same metrics and trace as an uninterrupted run)")
    rs.add_argument("run_dir", metavar="RUN_DIR", help="the run folder to continue")
    rs.add_argument("--json", action="store_true", help="print the result as JSON")
    rs.add_argument("--quiet", action="store_true", help="no progress bar")
    rs.set_defaults(fn=cmd_resume)

    v = command("validate", "check scenario, role and team files (exit 2 if any is "
                  "invalid)")
    v.add_argument("files", nargs="+", metavar="FILE",
                   help="scenario, role (user or recommender) or team YAML files (told "
                   "apart by their kind:)")
    v.add_argument("--llm", help="also check what `recarena run FILE --llm LLM` checks before "
                   f"any work (roles may then leave llm: out; the model's extra and API key): "
                   f"{LLM_FLAG_HELP}")
    v.set_defaults(fn=cmd_validate)
