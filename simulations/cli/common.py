"""What every ``recarena`` subcommand module shares: exit codes, the error that carries one,
the consoles, and value formatting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

__all__ = [
    "EXIT_BUDGET",
    "EXIT_FAIL",
    "EXIT_INPUT",
    "EXIT_INTERRUPT",
    "EXIT_OK",
    "CliError",
    "console_err",
    "console_out",
    "fmt_ci",
    "fmt_value",
    "not_empty",
    "progress_hook",
]

EXIT_OK, EXIT_FAIL, EXIT_INPUT, EXIT_BUDGET, EXIT_INTERRUPT = 0, 1, 2, 3, 130


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def console_out() -> Console:
    # Off a terminal rich assumes 80 columns, too narrow for the metrics table.
    c = Console(highlight=False, soft_wrap=True)
    return c if c.is_terminal else Console(highlight=False, soft_wrap=True, width=120)


def console_err() -> Console:
    # soft_wrap: a message is one line however narrow the terminal or log (a path split
    # over lines cannot be copied).
    return Console(stderr=True, highlight=False, soft_wrap=True)


def fmt_value(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def not_empty(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


def progress_hook(progress: Any) -> Any:
    return lambda name, total: (lambda t: lambda: progress.advance(t))(
        progress.add_task(name, total=total))


def fmt_ci(v: dict[str, Any], digits: int = 3) -> str:
    """``mean ± half-width`` of a 95% interval from simulations.analysis.stats."""
    if v.get("mean") is None:
        return "-"
    if v["n"] < 2:
        return f"{v['mean']:.{digits}f}"
    return f"{v['mean']:.{digits}f} ± {(v['hi'] - v['lo']) / 2:.{digits}f}"


