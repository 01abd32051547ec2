"""Shared by the benchmarks: where they ran, and writing a marked section of a doc."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["DOC", "ROOT", "command_line", "fmt_interval", "machine_line", "update_doc",
           "write_section"]

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _nproc() -> int:
    # Like nproc(1): the CPUs this process may run on, not the machine's total.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def fmt_interval(v: dict[str, Any] | None, digits: int = 3, missing: str = "") -> str:
    """``mean [lo, hi]`` of an interval from simulations.analysis.stats (the mean alone
    from fewer than two values; ``missing`` when there is none)."""
    if not v or v.get("mean") is None:
        return missing
    if v["n"] < 2:
        return f"{v['mean']:.{digits}f}"
    return f"{v['mean']:.{digits}f} [{v['lo']:.{digits}f}, {v['hi']:.{digits}f}]"


def machine_line() -> str:
    """One line describing where the figures were measured."""
    import implicit
    import numpy
    import scipy

    return (
        f"{_nproc()} CPUs (nproc), {_cpu_model()}; Python {platform.python_version()}, "
        f"numpy {numpy.__version__}, scipy {scipy.__version__}, implicit {implicit.__version__}"
    )


def command_line(script: str, argv: Sequence[str]) -> str:
    """The command that reproduces a figure, with paths relative to the current folder."""

    def rel(p: str) -> str:
        try:
            return os.path.relpath(p)
        except ValueError:
            return p

    # The project's venv is .venv at the root wherever the checkout lives (a worktree
    # borrowing another checkout's venv would otherwise print a path nobody has).
    python = (".venv/bin/python" if Path(sys.prefix).name == ".venv"
              else rel(sys.executable))
    return shlex.join([python, rel(script), *argv])


def update_doc(path: Path, start: str, end: str, section: str) -> None:
    """Replace the ``start``..``end`` section of ``path`` (or append it).

    ``section`` must include both markers. Creates the file if needed.

    Raises:
        ValueError: Only one of the two markers is present, or they are out of order
            (rather than guess, leave the file alone).
    """
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    has_start, has_end = start in text, end in text
    if has_start and has_end and text.index(start) < text.index(end):
        head, rest = text.split(start, 1)
        new = head + section + rest.split(end, 1)[1]
    elif not has_start and not has_end:
        new = text.rstrip("\n") + "\n\n" + section + "\n"
    else:
        raise ValueError(f"{path}: unbalanced '{start}' / '{end}' markers; fix them by hand")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")


def write_section(start: str, end: str, body: Sequence[str], script: str,
                  argv: Sequence[str] | None) -> None:
    """Write ``body`` between the markers of DOC with the command, date and machine."""
    import datetime as dt

    cmd = command_line(script, sys.argv[1:] if argv is None else list(argv))
    date = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [start, *body, "", f"Command: `{cmd}`  ", f"Date: {date}  ",
             f"Machine: {machine_line()}", end]
    update_doc(DOC, start, end, "\n".join(lines))
