#!/usr/bin/env python3
"""Give simulations/ sub-packages by job, and rewrite every reference to the moved modules.

Run once, from the repository root, on a clean work tree (after every branch is merged):

    python .ci/move_simulations.py            # git mv + rewrite; prints what it did
    python .ci/move_simulations.py --dry-run  # prints the plan only

What it does:

1. ``git mv`` each module of MOVES to its new place (a module whose source is gone and
   whose target exists was moved already: skipped; one missing at both is reported), and
   writes an ``__init__.py`` for each new sub-package that lacks one.
2. Rewrites, in every tracked ``*.py``, ``*.md``, ``*.toml``, ``*.cfg``, ``*.ini``,
   ``*.yaml``, ``Makefile`` and ``.ci/*`` file, each moved module's dotted path
   (``simulations.runner`` -> ``simulations.run.runner``: imports, ``mock.patch``
   strings, ``python -m``, the ``[project.scripts]`` entry) and file path
   (``simulations/runner.py`` -> ``simulations/run/runner.py``). It rewrites by module name,
   not by line, so edits other branches made around the references do not matter, and a
   second run changes nothing: a path already rewritten is not matched again.
3. Adds ``simulations/cli/__main__.py`` so that ``python -m simulations.cli`` still runs
   the command line (``recarena = "simulations.cli.main:main"`` is rewritten in
   pyproject.toml by step 2).

Afterwards: ruff check --fix (import order), mypy, lint-imports and the tests.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import textwrap
from pathlib import Path

# old module (under simulations/) -> new module path (under simulations/), by job.
MOVES: dict[str, str] = {
    # run/: preparing, running, resuming a run and what its folder holds
    "prepare": "run.prepare",
    "runner": "run.runner",
    # The loop that steps an environment with an actor (executors implement the actor).
    "loop": "environments.loop",
    "pipeline": "environments.pipeline",
    "data_source": "run.data_source",
    "download": "run.download",
    "estimate": "run.estimate",
    "stop_signals": "run.stop_signals",
    "worlds": "run.worlds",
    "sampling": "run.sampling",
    "taste_roles": "run.taste_roles",
    # record/: what a run writes, used by every other part (below all of them)
    "trace": "record.trace",
    "redact": "record.redact",
    "crash": "record.crash",
    # analysis/: reading a trace: metrics, per-user statistics, intervals, paired tests
    "metrics": "analysis.metrics",
    "user_stats": "analysis.user_stats",
    "arm_stats": "analysis.arm_stats",
    "stats": "analysis.stats",
    "paired": "analysis.paired",
    "diversity": "analysis.diversity",
    # What an environment's trace means (its outcome plug-in) and the shipped plug-ins
    "outcomes": "analysis.outcomes",
    "outcomes_feed": "analysis.outcomes_feed",
    "outcomes_conversation": "analysis.outcomes_conversation",
    # cli/: the recarena command (cli.py becomes cli/main.py)
    "cli": "cli.main",
    "cli_common": "cli.common",
    "cli_run": "cli.run",
    "cli_alignment": "cli.alignment",
    "cli_validity": "cli.validity",
    "cli_tasks": "cli.tasks",
    "cli_roles": "cli.roles",
    "cli_analysis": "cli.analysis",
    "trace_cli": "cli.trace",
    "progress": "cli.progress",
    # eval/: judging simulators and recommenders by running them: fidelity (alignment,
    # validity), offline evaluation, A/B comparisons and their robustness
    "alignment": "eval.alignment",
    "alignment_ratings": "eval.alignment_ratings",
    "alignment_setup": "eval.alignment_setup",
    "alignment_taste": "eval.alignment_taste",
    "validity": "eval.validity",
    "validity_grid": "eval.validity_grid",
    "validity_stats": "eval.validity_stats",
    "offline_eval": "eval.offline_eval",
    "baselines": "eval.baselines",
    "compare": "eval.compare",
    "compare_taste": "eval.compare_taste",
    "robust": "eval.robust",
    # tasks/: MACRec's offline tasks (tasks.py becomes tasks/suite.py)
    "tasks": "tasks.suite",
    "task_baselines": "tasks.baselines",
    "task_data": "tasks.data",
    "task_metrics": "tasks.metrics",
    "task_run": "tasks.run",
    # report/: the HTML report and the results table
    "report": "report.html",
    "report_figures": "report.figures",
    "report_robust": "report.robust",
    "report_data": "report.data",
    "report_sections": "report.sections",
    "summary_table": "report.summary_table",
}
# Stay where they are: environments/ (which gains loop.py), executors/, inspection/ and
# api.py (the stable scripting entry point, ``from simulations import api``).

PACKAGE_DOCS = {
    "run": "Preparing, running and resuming a run: data, worlds, users, the run folder.",
    "record": "What a run writes: the trace, redaction of secrets, crash points for tests.",
    "analysis": "Reading a trace: metrics, per-user statistics, intervals, paired tests.",
    "cli": "The ``recarena`` command line (``main``) and its subcommand modules.",
    "eval": "Judging simulators and recommenders by running them: fidelity, offline "
            "evaluation, A/B comparisons.",
    "tasks": "MACRec's offline tasks: instances, baselines, metrics and the runner.",
    "report": "The HTML report and the results table.",
}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".cfg", ".yaml", ".yml", ".ini"}


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True,
                          text=True).stdout


def _children(old: str) -> set[str]:
    """Sub-module names of the package ``simulations.OLD`` becomes (cli -> main, run, ...)."""
    return {new.split(".")[1] for new in MOVES.values() if new.split(".")[0] == old}


def _rewriters() -> list[tuple[re.Pattern[str], str]]:
    """Dotted and file-path patterns, longest module name first."""
    out = []
    for old in sorted(MOVES, key=len, reverse=True):
        new = MOVES[old]
        kids = _children(old)
        # Not followed by a word character (simulations.cli is not simulations.cli_run),
        # nor, for a module that became a package, by one of that package's modules (a
        # reference already rewritten, e.g. simulations.cli.run).
        guard = r"(?![\w])" + (rf"(?!\.(?:{'|'.join(sorted(kids))})\b)" if kids else "")
        out.append((re.compile(rf"\bsimulations\.{re.escape(old)}{guard}"),
                    f"simulations.{new}"))
        out.append((re.compile(rf"\bsimulations/{re.escape(old)}\.py\b"),
                    f"simulations/{new.replace('.', '/')}.py"))
        # ``from simulations import task_run`` keeps its local name.
        out.append((re.compile(rf"^(\s*)from simulations import {re.escape(old)}[ \t]*$",
                               re.MULTILINE), rf"\1import simulations.{new} as {old}"))
    return out


def _text_files() -> list[Path]:
    files = []
    for name in _git("ls-files").splitlines():
        p = Path(name)
        if not p.is_file():
            continue
        if p.suffix in TEXT_SUFFIXES or p.name == "Makefile" or p.parts[0] == ".ci":
            files.append(p)
    return files


def move(dry_run: bool) -> list[str]:
    done = []
    for old, new in MOVES.items():
        src = Path("simulations") / f"{old}.py"
        dest = Path("simulations") / (new.replace(".", "/") + ".py")
        if not src.exists():
            if not dest.exists():
                print(f"warning: neither {src} nor {dest} exists", file=sys.stderr)
            continue
        if dest.exists():
            sys.exit(f"error: both {src} and {dest} exist; resolve by hand")
        print(f"git mv {src} {dest}")
        if not dry_run:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _git("mv", str(src), str(dest))
        done.append(old)
    for pkg, doc in PACKAGE_DOCS.items():
        init = Path("simulations") / pkg / "__init__.py"
        if not init.exists():
            print(f"write {init}")
            if not dry_run:
                init.parent.mkdir(parents=True, exist_ok=True)
                body = "\n".join(textwrap.wrap(f'"""{doc}"""', width=92))
                init.write_text(f"{body}\n\n__all__: list[str] = []\n")
                _git("add", str(init))
    main = Path("simulations") / "cli" / "__main__.py"
    if not main.exists():
        print(f"write {main}")
        if not dry_run:
            main.write_text('"""``python -m simulations.cli``: the recarena command."""\n\n'
                            "import sys\n\nfrom simulations.cli.main import main\n\n"
                            "sys.exit(main())\n")
            _git("add", str(main))
    return done


def rewrite(dry_run: bool) -> int:
    rules = _rewriters()
    changed = 0
    for path in _text_files():
        if path.resolve() == Path(__file__).resolve():
            continue  # this script names the old paths on purpose
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        new = text
        for pattern, repl in rules:
            new = pattern.sub(repl, new)
        if new != text:
            changed += 1
            print(f"rewrite {path}")
            if not dry_run:
                path.write_text(new)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the plan only")
    args = parser.parse_args(argv)
    if not Path("simulations").is_dir() or not Path("pyproject.toml").is_file():
        sys.exit("error: run from the repository root")
    moved = move(args.dry_run)
    n = rewrite(args.dry_run)
    print(f"{len(moved)} modules moved, {n} files rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
