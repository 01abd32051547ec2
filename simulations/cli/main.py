"""The ``recarena`` command line.

Exit status: 0 success, 1 a run or download failed (including a run in which every LLM
decision failed, or one that needs an extra that is not installed), 2 invalid input
(scenario, role, data, arguments; found before any work), 3 the run stopped at its LLM
budget (everything up to then is written), 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM, e.g. from ``timeout`` or a scheduler; a run records it like Ctrl-C: manifest
status ``interrupted``, reason ``SIGTERM``, resumable). Errors are one line on stderr,
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

from simulations.cli.agentcf import add_agentcf_parser
from simulations.cli.alignment import add_alignment_parser
from simulations.cli.analysis import add_analysis_parsers
from simulations.cli.attack import add_attack_parser
from simulations.cli.common import (
    EXIT_FAIL,
    EXIT_INPUT,
    EXIT_INTERRUPT,
    EXIT_OK,
    CliError,
    console_err,
    console_out,
    not_empty,
)
from simulations.cli.roles import add_roles_commands
from simulations.cli.run import add_run_commands
from simulations.cli.tasks import add_task_parser
from simulations.cli.trace import add_trace_commands
from simulations.cli.trust import add_trust_parsers
from simulations.cli.validity import add_validity_parser
from simulations.report.summary_table import metrics_table
from simulations.run.stop_signals import EXIT_SIGTERM, Terminated, sigterm_as_interrupt

__all__ = ["main", "metrics_table"]


# ----------------------------------------------------------------------------- commands



def cmd_schema(a: argparse.Namespace) -> int:
    from scenarios.loader import json_schemas

    schemas = json_schemas()
    obj = schemas if a.kind == "all" else schemas[a.kind]
    print(json.dumps(obj, indent=2, sort_keys=True))
    return EXIT_OK


def cmd_download(a: argparse.Namespace) -> int:
    from simulations.run.download import DownloadError, download

    target = Path(a.to) / a.name
    if not_empty(target):  # an invalid argument, like run --out
        raise CliError(f"--to: {target} already exists and is not empty; nothing downloaded")
    try:
        path = download(a.name, a.to, url=a.url)
    except DownloadError as e:
        raise CliError(str(e), EXIT_FAIL) from None
    print(f"downloaded {a.name} to {path}")
    return EXIT_OK


def cmd_eval_offline(a: argparse.Namespace) -> int:
    from simulations.eval.offline_eval import evaluate_offline, format_offline_table
    from simulations.run.runner import DATA_ENV
    from tools.dataset import load_dataset

    data = a.data or os.environ.get(DATA_ENV)
    if not data:
        raise CliError(f"eval offline: --data DIR is required (or set {DATA_ENV})")
    ds = load_dataset(data)
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    err = console_err()
    with err.status("evaluating...") as status:
        res = evaluate_offline(ds, models, k=a.k, seed=a.seed,
                               on_model=lambda m: status.update(f"evaluating {m}..."))
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        console_out().print(format_offline_table(res))
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


    add_run_commands(lambda name, help: p.command(sub, name, help))

    s = p.command(sub, "schema", "print the JSON Schema of scenario and role files")
    s.add_argument("--kind", choices=["all", "scenario", "role", "recommender", "team",
                                        "item"],
                   default="all", help="which schema to print: scenario, role (user "
                   "roles), recommender (recommender roles), team, item (item agents) (default: "
                   "all)")
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
                    help="comma-separated models: random, pop, itemknn, ease, als, bpr, or "
                    "your own (module:Class or an entry point; docs/recommenders.md) "
                    "(default: %(default)s)")
    eo.add_argument("--k", type=int, default=10,
                    help="cut-off of HR@k and NDCG@k (default: %(default)s)")
    eo.add_argument("--seed", type=int, default=0,
                    help="seed of the models and of random (default: %(default)s)")
    eo.add_argument("--json", action="store_true", help="print the result as JSON")
    eo.set_defaults(fn=cmd_eval_offline)


    add_alignment_parser(lambda name, help: ev.command(e, name, help))


    add_validity_parser(lambda name, help: ev.command(e, name, help))


    add_task_parser(lambda name, help: ev.command(e, name, help))
    add_agentcf_parser(lambda name, help: ev.command(e, name, help))
    add_trust_parsers(lambda name, help: ev.command(e, name, help))

    add_attack_parser(lambda name, help: ev.command(e, name, help))

    ro = p.command(sub, "roles", "scaffold a new role file, or list the shipped roles")
    ros = ro.add_subparsers(dest="roles_command", required=True, parser_class=_Parser,
                           metavar="COMMAND")

    add_roles_commands(lambda name, help: ro.command(ros, name, help))

    tr = p.command(sub, "trace", "read run traces: summary, agent, step, search, diff, "
                   "export")
    t = tr.add_subparsers(dest="trace_command", required=True, parser_class=_Parser,
                          metavar="COMMAND")
    add_trace_commands(lambda name, help: tr.command(t, name, help))


    add_analysis_parsers(lambda name, help: p.command(sub, name, help))
    return p


def _exit_code(e: Exception) -> int | None:
    """Exit status of an error the user can act on (printed as is), else None."""
    from agents.llm import LLMError
    from scenarios.loader import ScenarioError
    from simulations.run.runner import InputError, ResumeError, RunError
    from tools.dataset import DataError

    if isinstance(e, CliError):
        return e.code
    if isinstance(e, (ResumeError, InputError)):
        return EXIT_INPUT
    if isinstance(e, (RunError, LLMError)):
        return EXIT_FAIL
    if isinstance(e, (ScenarioError, DataError)):
        return EXIT_INPUT
    return None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        with sigterm_as_interrupt():  # SIGTERM stops a run like Ctrl-C does
            return int(args.fn(args))
    except Terminated:
        print("recarena: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_SIGTERM
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
    # subcommand modules raise ``simulations.cli.main.CliError``, which this copy's handler
    # would not recognise. Run the imported module's ``main``.
    from simulations.cli.main import main as _main

    sys.exit(_main())
