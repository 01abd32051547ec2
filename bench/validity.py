"""Recommender-ranking validity: simulated metrics vs held-out accuracy, six recommenders.

Usage::

    .venv/bin/python bench/validity.py --data ../shared/data/ml-100k

Runs ``recarena eval validity`` (all test users, the shipped utility role) and writes the
section between ``<!-- validity:start -->`` and ``<!-- validity:end -->`` of
docs/benchmarks.md; the result is kept in bench/results/validity.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if sys.path[0] != str(ROOT):  # run as a script: the packages, not bench/memory.py, first
    sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402

START, END = "<!-- validity:start -->", "<!-- validity:end -->"
RESULTS = ROOT / "bench" / "results"


def _ci(v: dict[str, Any], digits: int = 3) -> str:
    if v.get("mean") is None:
        return ""
    return f"{v['mean']:.{digits}f} [{v['lo']:.{digits}f}, {v['hi']:.{digits}f}]"


def build_section(res: dict[str, Any], seconds: float) -> list[str]:
    arms, sp = res["arms"], res["spearman"]
    top_watch = max(arms[m]["watch_rate"]["mean"] for m in res["models"])
    body = [
        "## Recommender-ranking validity on MovieLens 100K",
        "",
        f"`recarena eval validity`: the {len(res['models'])} recommenders are arms of one "
        f"feed scenario (4 items x 5 pages, one round, seed {res['seed']}) browsed by the "
        f"same {res['users']} test users (tuning users never browse) with the shipped "
        "utility role, through `simulations.runner.prepare` and `run`. Held-out accuracy: "
        "each model's top 10 for the same users, trained on the same history (history "
        "items excluded), against the users' held-out ratings (the last 20% of each "
        "user's ratings). Simulated metrics are per-user means (each user's watched / "
        "shown, interview satisfaction 1-10, exit page) with 95% t-intervals over users. "
        "Goal: Spearman >= 0.8 between simulated watch rate (and satisfaction) and held-out "
        "HR@10 over the six recommenders, no mean watch rate above 0.8.",
        "",
        "| recommender | watch rate | satisfaction | exit page | held-out HR@10 "
        "| held-out NDCG@10 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in res["heldout_order"]:
        a = arms[m]
        body.append(f"| {m} | {_ci(a['watch_rate'])} | {_ci(a['satisfaction'], 2)} | "
                    f"{_ci(a['exit_page'], 2)} | {_ci(a['hr@10'])} | {_ci(a['ndcg@10'])} |")
    body += ["", "| Spearman across recommenders | vs held-out HR@10 | vs held-out NDCG@10 |",
             "| --- | ---: | ---: |"]
    for s, row in sp.items():
        body.append(f"| {s.replace('_', ' ')} | **{row['hr@10']}** | {row['ndcg@10']} |")
    body += ["", "Neighbours in held-out HR@10 order, paired over users (better - worse):",
             "", "| pair | watch rate | satisfaction | HR@10 | NDCG@10 |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for p in res["neighbours"]:
        body.append(f"| {p['better']} - {p['worse']} | {_ci(p['watch_rate'])} | "
                    f"{_ci(p['satisfaction'], 2)} | {_ci(p['hr@10'])} | "
                    f"{_ci(p['ndcg@10'])} |")
    body += ["", f"Highest mean watch rate: {top_watch:.3f}. Agent4Rec's LLM users "
             "watched about half of what they were shown, left on page 3.2 and rated "
             "satisfaction 3.9 of 10; the utility role is calibrated to those averages on "
             f"tuning users (`bench/tune_utility.py`). {seconds:.0f} s."]
    return body


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--data", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)
    from simulations.validity import run_validity

    t0 = time.perf_counter()
    res = run_validity(args.data, seed=args.seed)
    secs = time.perf_counter() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "validity.json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(res["spearman"]), f"{secs:.0f} s")
    if not args.no_doc:
        write_section(START, END, build_section(res, secs), __file__, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
