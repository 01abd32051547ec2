"""``python -m simulations.cli.main`` behaves as the installed ``recarena`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_module_form_reports_subcommand_errors_as_input_errors(tmp_path: Path) -> None:
    # compare's and eval task's errors are raised in other modules (cli_analysis,
    # cli_tasks); under -m they must still be one-line input errors with exit 2.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("RECARENA_DATA", None)
    for args in (["compare", "foo", "bar"], ["eval", "task", "--task", "sr"]):
        p = subprocess.run([sys.executable, "-m", "simulations.cli.main", *args], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 2, (args, p.stderr)
        assert "internal error" not in p.stderr and "Traceback" not in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
