"""Offline accuracy benchmark of every registered model; records it in docs/benchmarks.md.

Usage::

    .venv/bin/python bench/offline_eval.py --data ../shared/data/ml-100k

Prints a table and writes (or replaces) the section between ``<!-- offline-eval:start -->``
and ``<!-- offline-eval:end -->`` of ``docs/benchmarks.md``, leaving the rest of the file as
it is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the packages importable
    sys.path.insert(0, str(ROOT))

from bench.report import DOC, command_line, machine_line, update_doc  # noqa: E402

START = "<!-- offline-eval:start -->"
END = "<!-- offline-eval:end -->"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--data", required=True, help="dataset folder (RecBole atomic or ml-100k)")
    p.add_argument("--models", default="random,pop,itemknn,ease,als,bpr",
                   help="comma-separated model names (default: all)")
    p.add_argument("--k", type=int, default=10, help="cut-off for HR and NDCG (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--doc", type=Path, default=DOC,
                   help="markdown file to update (default docs/benchmarks.md)")
    p.add_argument("--json", type=Path, default=None, help="also write the raw result here")
    p.add_argument("--no-doc", action="store_true", help="print only; do not touch --doc")
    return p.parse_args(argv)


def _fmt_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items()) or "-"


def render_section(result: Mapping[str, Any], command: str, date: str, machine: str) -> str:
    """The markdown section (markers included) for one ``evaluate_offline`` result."""
    k = result["k"]
    lines = [
        START,
        f"## Offline evaluation: {result['dataset']}",
        "",
        f"Protocol: {result['protocol']}; {result['ties']}. "
        f"{result['n_test_users']} test users (the latest interaction of every user with at "
        f"least two), {result['n_items']} items, {result['n_train_interactions']} training "
        f"interactions (binary). MRR is over the full ranking, not truncated. "
        f"Seed {result['seed']}.",
        "",
        f"| model | HR@{k} | NDCG@{k} | MRR | fit (s) | score (s) | parameters |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, m in result["models"].items():
        lines.append(
            f"| {name} | {m[f'hr@{k}']:.4f} | {m[f'ndcg@{k}']:.4f} | {m['mrr']:.4f} | "
            f"{m['fit_seconds']:.2f} | {m['score_seconds']:.2f} | {_fmt_params(m['params'])} |"
        )
    lines += [
        "",
        f"Command: `{command}`  ",
        f"Date: {date}  ",
        f"Machine: {machine}",
        END,
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    from rich.console import Console

    from simulations.eval.offline_eval import evaluate_offline, format_offline_table
    from tools.dataset import DataError, load_dataset

    console = Console(stderr=True)
    try:
        dataset = load_dataset(args.data)
    except DataError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        with console.status("evaluating") as status:
            result = evaluate_offline(
                dataset, models, k=args.k, seed=args.seed,
                on_model=lambda name: status.update(f"fitting and scoring {name}"),
            )
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    Console().print(format_offline_table(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if not args.no_doc:
        command = command_line(__file__, sys.argv[1:] if argv is None else list(argv))
        date = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        try:
            update_doc(args.doc, START, END, render_section(result, command, date, machine_line()))
        except ValueError as exc:
            console.print(f"[red]error:[/] {exc}")
            return 2
        console.print(f"updated {os.path.relpath(args.doc)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
