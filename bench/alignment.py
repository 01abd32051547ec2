"""Fidelity against real users: taste alignment and rating error, brains beside baselines.

Usage::

    .venv/bin/python bench/alignment.py --data ../shared/data/ml-100k --part utility
    nohup .venv/bin/python bench/alignment.py --data ../shared/data/ml-100k --part llm &

``--part utility`` evaluates the utility brain with both negative samplers; ``--part llm``
the local Gemma 3 270M (scored, calibrated decisions; about 20 minutes on 2 cores) with
popularity-matched negatives on fewer users. Each part saves its result as JSON under
bench/results/; the section between ``<!-- alignment:start -->`` and
``<!-- alignment:end -->`` of docs/benchmarks.md is rebuilt from every saved part.
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

from bench.report import command_line, machine_line, update_doc  # noqa: E402

START, END = "<!-- alignment:start -->", "<!-- alignment:end -->"
RESULTS = ROOT / "bench" / "results"
LABELS = {"random": "random", "popularity": "popularity only", "item_mean": "item mean only",
          "ease": "EASE (same history)"}
RATING_LABELS = {"user_mean": "user mean", "item_mean": "item mean",
                 "bias": "global + user + item bias", "bias_stars": "bias model, rounded to stars",
                 "history_resample": "user's history ratings, resampled"}


def _ci(v: dict[str, Any] | None, digits: int = 3) -> str:
    if not v or v.get("mean") is None:
        return ""
    if v["n"] < 2:
        return f"{v['mean']:.{digits}f}"
    return f"{v['mean']:.{digits}f} [{v['lo']:.{digits}f}, {v['hi']:.{digits}f}]"


def _taste_rows(label: str, res: dict[str, Any]) -> list[str]:
    users = f"{res['samples']} x {res['users_per_sample']}"
    rows = []
    for ratio, scorers in res["taste_alignment"]["ratios"].items():
        for name, m in scorers.items():
            who = f"**{label}**" if name == "brain" else LABELS[name]
            rows.append(f"| {who} | {users} | {ratio} | "
                        + " | ".join(_ci(m[k]) for k in ("auc", "accuracy", "precision",
                                                          "recall", "f1")) + " |")
    return rows


def _rating_rows(label: str, res: dict[str, Any]) -> list[str]:
    users = f"{res['samples']} x {res['users_per_sample']}"
    rows = []
    for name, m in res["rating_fidelity"]["models"].items():
        who = f"**{label}**" if name == "brain" else RATING_LABELS[name]
        rows.append(f"| {who} | {users} | {_ci(m['rmse'])} | {_ci(m['mae'])} | "
                    f"{_ci(m.get('w1'))} |")
    return rows


def _diff_line(label: str, res: dict[str, Any]) -> str:
    d = res["taste_alignment"]["brain_auc_minus"]["1:1"]
    return (f"{label}, 1:1, {res['negatives']} negatives: AUC minus EASE's "
            f"{_ci(d['ease'])}, minus popularity's {_ci(d['popularity'])} (paired by sample)")


def build_section(parts: dict[str, dict[str, Any]]) -> list[str]:
    """The docs section from the saved parts (``utility``, ``llm``)."""
    body = [
        "## Fidelity: taste alignment and rating error on MovieLens 100K",
        "",
        "Agent4Rec's protocol on **test users only**: users are split once by a hash of "
        "their id into tuning (30%) and test users (`simulations/sampling.py`); the utility "
        "brain's parameters are fitted on tuning users by `bench/tune_utility.py`, and the "
        "baselines' decision thresholds (maximum accuracy per ratio) on 300 tuning users. "
        "Each user's profile, the item statistics and embeddings, and the baselines come "
        "from the earliest 80% of every user's ratings. The simulator sees up to 4 held-out "
        "items the user rated >= 4 mixed 1:m with items the user never rated and picks what "
        "it would watch. AUC is threshold-free (each user's AUC of the brain's score -- the "
        "utility before noise, or the local model's yes-minus-no log-probability margin -- "
        "averaged over users); accuracy, precision, recall and F1 are of its actual "
        "decisions. Every figure is the mean and a 95% t-interval over disjoint samples of "
        "test users; baselines are on the same users and items.",
        "",
    ]
    for sampler, what in (("popularity-matched",
                           "each positive's negatives are drawn from the 20 unrated items "
                           "nearest to it in history popularity, so popularity alone is at "
                           "chance"),
                          ("uniform", "Agent4Rec's: any item the user never rated; most are "
                           "obscure, so popularity alone separates most pairs")):
        runs = [(lbl, r) for lbl, key in (("utility brain", "utility"),
                                          ("local Gemma 3 270M", "llm"))
                for r in [parts.get(key, {}).get(sampler)] if r]
        if not runs:
            continue
        pop = runs[0][1]["popularity"]
        body += [f"### {sampler} negatives", "",
                 f"Negatives: {what} (median history popularity of positives "
                 f"{pop['median_positive']:.0f}, of 1:1 negatives "
                 f"{pop['median_negative_1to1']:.0f}).", "",
                 "| scorer | users | ratio | AUC | accuracy | precision | recall | F1 |",
                 "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for label, res in runs:
            body += _taste_rows(label, res)
        body += [""] + [f"- {_diff_line(label, res)}" for label, res in runs] + [""]
    rated = [(lbl, parts[key]["popularity-matched"]) for lbl, key in
             (("utility brain", "utility"), ("local Gemma 3 270M", "llm"))
             if key in parts and "popularity-matched" in parts[key]]
    if rated:
        body += ["### Rating error", "",
                 "The simulator rates held-out items (up to 10 per user for the utility "
                 "brain, 5 for the local model); RMSE and MAE against the real ratings, and "
                 "the 1-Wasserstein distance between the two star histograms. The bias "
                 "model's regularisation is fitted on tuning users. Simulated ratings are "
                 "whole stars, so the bias model rounded to stars is the like-for-like row.",
                 "",
                 "| model | users | RMSE | MAE | histogram W1 |",
                 "| --- | --- | ---: | ---: | ---: |"]
        for label, res in rated:
            body += _rating_rows(label, res)
        body.append("")
    meta = [f"{k}: `{v['command']}` ({v['seconds']:.0f} s, {v['date']})"
            for k, v in ((k, p["meta"]) for k, p in parts.items())]
    body += ["Runs: " + "; ".join(meta) + "  ", f"Machine: {machine_line()}"]
    return body


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--data", required=True)
    p.add_argument("--part", choices=["utility", "llm", "doc"], default="utility")
    p.add_argument("--users", type=int, default=100, help="utility: users per sample")
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--llm-users", type=int, default=20, help="llm: users per sample")
    p.add_argument("--llm-ratios", default="1")
    p.add_argument("--llm-rating-items", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)
    import datetime as dt

    from simulations.alignment import run_alignment

    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.part != "doc":
        t0 = time.perf_counter()
        out: dict[str, Any] = {}
        if args.part == "utility":
            for sampler in ("popularity-matched", "uniform"):
                out[sampler] = run_alignment(args.data, users=args.users,
                                             samples=args.samples, seed=args.seed,
                                             negatives=sampler, brain="utility")
                print(_diff_line("utility", out[sampler]), flush=True)
        else:
            ratios = [int(x) for x in args.llm_ratios.split(",")]
            out["popularity-matched"] = run_alignment(
                args.data, users=args.llm_users, samples=args.samples, seed=args.seed,
                negatives="popularity-matched", brain="llm", llm="local", ratios=ratios,
                rating_items=args.llm_rating_items)
            print(_diff_line("llm", out["popularity-matched"]), flush=True)
        out["meta"] = {"command": command_line(__file__, sys.argv[1:] if argv is None
                                               else list(argv)),
                       "seconds": time.perf_counter() - t0,
                       "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")}
        (RESULTS / f"alignment_{args.part}.json").write_text(
            json.dumps(out, indent=1) + "\n", encoding="utf-8")
    if args.no_doc:
        return 0
    parts = {k: json.loads((RESULTS / f"alignment_{k}.json").read_text(encoding="utf-8"))
             for k in ("utility", "llm") if (RESULTS / f"alignment_{k}.json").exists()}
    if parts:
        update_doc(ROOT / "docs" / "benchmarks.md", START, END,
                   "\n".join([START, *build_section(parts), END]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
