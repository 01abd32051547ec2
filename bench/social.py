"""The social world against RecAgent's filter-bubble directions and Twitter15's cascades.

Usage::

    nice -n 10 .venv/bin/python bench/social.py --data ../shared/data/ml-100k
    nice -n 10 .venv/bin/python bench/social.py --data ... --part bubble --seeds 0-4

``--part bubble``: ``scenarios/social.yaml`` with EASE (and the ``random`` recommender as a
null arm in the same run), ``--users`` users, ``--rounds`` rounds of ``--ticks`` ticks, at
each seed as is and with one intervention each, all on the same users (the population
depends on the seed only): 2 random items mixed into each 4-item page (``rec_random_k``),
half the within-group ties rewired across groups (``rewire_heterophily: 0.5``), the social
features off (``social: false``), and a size-matched control for the random items
(6-item EASE pages). The figure: genre entropy (bits) of the items on each user's
recommender pages in a round (search pages left out), averaged over users, per round;
its slope over rounds per seed; paired differences per user and per seed; the same on
each user's first recommender page of the round (a fixed number of items: entropy grows
with the items counted, and users browse more pages when the social features are off).

``--part cascades``: the shipped ``scenarios/social.yaml`` (three arms, 3 rounds x 10 ticks)
at each seed; the max depths of its mention cascades against Twitter15's (Wasserstein-1
with bootstrap intervals, beside Twitter15 against itself), an independent-cascade
baseline on the same graph with p fitted to the simulated mean size from the same roots,
and IC on a degree-preserving shuffle of the graph with p refitted.

Every run sets ``graph.allow_disconnected: true``: at 300 users the SBM graph of
``social.yaml`` leaves more than 1% of users outside the largest component at most seeds.
Writes the section between ``<!-- social:start -->`` and ``<!-- social:end -->`` of
docs/benchmarks.md and bench/results/social.json (a part run alone keeps the other
part's results from the file). ``--keep DIR`` keeps the run folders; ``--reuse DIR``
re-reads the bubble's from there; ``--from-json`` rewrites the section from the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if sys.path[0] != str(ROOT):  # run as a script: the packages, not bench/memory.py, first
    sys.path.insert(0, str(ROOT))

from bench import social_bubble, social_cascades  # noqa: E402
from bench.report import write_section  # noqa: E402
from bench.social_runs import EASE, RANDOM, RunData, read_run, run_condition  # noqa: E402

START, END = "<!-- social:start -->", "<!-- social:end -->"
RESULTS = ROOT / "bench" / "results" / "social.json"


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def bubble_conditions(users: int, rounds: int, ticks: int) -> dict[str, dict[str, Any]]:
    common = {"population.size": users, "environment.rounds": rounds,
              "environment.settings.ticks": ticks,
              "environment.settings.graph.allow_disconnected": True}
    s = "environment.settings."
    return {
        "base": {**common, "recommenders": [EASE, RANDOM]},
        "random_k": {**common, "recommenders": [EASE], s + "rec_random_k": 2},
        "page6": {**common, "recommenders": [EASE], "environment.items_per_page": 6},
        "rewire": {**common, "recommenders": [EASE], s + "rewire_heterophily": 0.5},
        "social_off": {**common, "recommenders": [EASE], s + "social": False},
    }


def _run_all(conds: dict[str, dict[str, Any]], seeds: Sequence[int], data: str,
             work: Path) -> tuple[dict[tuple[int, str], RunData], dict[str, float]]:
    runs: dict[tuple[int, str], RunData] = {}
    secs: dict[str, float] = {}
    for seed in seeds:
        for name, ov in conds.items():
            rd = run_condition(seed, name, ov, data, work / f"{name}-s{seed}")
            runs[(seed, name)] = rd
            secs[f"{name}-s{seed}"] = round(rd.seconds, 1)
            print(f"{name} seed {seed}: {rd.seconds:.0f} s", flush=True)
    return runs, secs


def part_bubble(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    conds = bubble_conditions(args.users, args.rounds, args.ticks)
    if args.reuse:  # the run folders of an earlier --keep
        runs = {(s, c): read_run(args.reuse / "bubble" / f"{c}-s{s}", s, c)
                for s in args.seeds for c in conds}
        secs = args.previous.get("run_seconds", {})
    else:
        runs, secs = _run_all(conds, args.seeds, args.data, work)
    res = social_bubble.analyse(runs, args.seeds, args.rounds)
    res["first_page"] = social_bubble.analyse(runs, args.seeds, args.rounds, "first")
    graphs = {f"{c}-s{s}": rd.graph.get("ease") for (s, c), rd in runs.items()
              if c in ("base", "rewire")}
    return {"seeds": args.seeds, "users": args.users, "rounds": args.rounds,
            "ticks": args.ticks, "conditions": {k: {x: y for x, y in v.items()
                                                    if x != "recommenders"}
                                                for k, v in conds.items()},
            "graphs": graphs, "run_seconds": secs,
            "seconds": args.previous["seconds"] if args.reuse
            else round(time.perf_counter() - t0, 1), **res}


def part_cascades(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    conds = {"social": {"population.size": 300,
                        "environment.settings.graph.allow_disconnected": True}}
    runs, secs = _run_all(conds, args.seeds, args.data, work)
    prep = next(iter(runs.values())).prepared
    env = prep.scenario.environment
    max_steps = env.rounds * int(env.settings["ticks"])
    res = social_cascades.analyse([runs[(s, "social")] for s in args.seeds], max_steps,
                                  reference=args.cascades)
    return {"seeds": args.seeds, "users": 300, "rounds": env.rounds,
            "ticks": int(env.settings["ticks"]),
            "arms": [r.name for r in prep.scenario.recommenders], "run_seconds": secs,
            "seconds": round(time.perf_counter() - t0, 1), **res}


def _rewired(b: dict[str, Any]) -> str:
    """What rewiring did to the graphs (age-band assortativity and same-band ties)."""
    def mean(cond: str, f: Any) -> float:
        xs = [f(g) for k, g in b.get("graphs", {}).items() if k.startswith(cond + "-") and g]
        return sum(xs) / len(xs) if xs else float("nan")

    def assort(g: dict[str, Any]) -> float:
        return float(g["assortativity"]["age_band"])

    def same(g: dict[str, Any]) -> float:
        return float(g["same_share"]["age_band"])

    return (f"Rewiring moved the graphs as asked: age-band assortativity "
            f"{mean('base', assort):.2f} → {mean('rewire', assort):.2f}, ties within an age "
            f"band {mean('base', same):.2f} → {mean('rewire', same):.2f} (means over seeds; "
            "degrees kept).")


def section(res: dict[str, Any]) -> list[str]:
    body = ["## The social world: filter bubble and cascades", ""]
    b = res.get("bubble")
    if b:
        n = len(b["seeds"])
        body += [
            f"### Filter bubble ({n} seeds: {', '.join(map(str, b['seeds']))})", "",
            f"`scenarios/social.yaml` cut to {b['users']} MovieLens users, "
            f"{b['rounds']} rounds x {b['ticks']} ticks (EASE retrains between rounds on what "
            "users watched). At each seed one run holds EASE and the `random` recommender "
            "(the null), and one run per intervention holds EASE alone, on the same users "
            "and graph seed: `rec_random_k: 2` (4 EASE + 2 random items per page), 6-item "
            "EASE pages (as many items, no random ones: the size control), "
            "`rewire_heterophily: 0.5`, `social: false`. Figure: the genre entropy (bits) "
            "of the items on a user's **recommender pages** in a round (search pages left "
            "out), averaged over the users who browsed that round. Cells: mean over seeds "
            "[95% t-interval over seeds]; slope: least squares over rounds per seed, then "
            "mean [interval]; last − first: per user who browsed in both rounds, pooled "
            "over seeds.", "",
            *social_bubble.tables(b, b["rounds"]), "",
            _rewired(b), "",
            "Per-user intervals pool the users of all seeds (each user once per seed); "
            "the per-seed interval (n = seeds) is the conservative one. Entropy grows with "
            "the number of items counted, and that number differs between conditions "
            "(last column: with the social features on, users spend ticks chatting, posting "
            "and searching, so they browse fewer pages). The same figures on each user's "
            "**first** recommender page of the round only (4 items; 6 in the two 6-item "
            "conditions), which takes the number of pages out:", "",
            *social_bubble.tables(b["first_page"], b["rounds"]), ""]
    c = res.get("cascades")
    if c:
        body += [
            f"### Cascades ({len(c['seeds'])} seeds: {', '.join(map(str, c['seeds']))})", "",
            f"The shipped `scenarios/social.yaml` ({c['users']} users, arms "
            f"{', '.join(c['arms'])}, {c['rounds']} rounds x {c['ticks']} ticks) at each "
            "seed; the mention cascades of every arm, pooled. Max depth counts mentioners "
            "(root = 1, as Twitter15). IC: independent cascade on the same graph (posts reach "
            f"followers), at most {c['max_steps']} steps (the run's ticks), p fitted per seed "
            "so that the mean cascade size matches the simulated one from the same roots; "
            "shuffled: the same on `tools.social_graph.shuffled` (every degree kept), p "
            "refitted. W1: Wasserstein-1 distance of max-depth distributions in levels, "
            "[95% percentile bootstrap, both samples resampled, 1,000 resamples]. "
            "Depth columns: % of cascades.", "",
            *social_cascades.tables(c), ""]
    body += ["Every run sets `graph.allow_disconnected: true`: at 300 users the SBM graph of "
             "`social.yaml` leaves more than 1% of the users outside its largest component "
             "at seeds 0, 3 and 4 (98.3-98.7% in it), which the shipped scenario (seed 11) "
             "rejects; the stray users stay in their own small pieces (nothing is tied in).",
             "",
             "### Reading these figures", ""]
    if b:
        body += social_bubble.verdicts(b)
        if "first_page" in b:
            body += social_bubble.first_page_verdicts(b["first_page"], b)
    if c:
        body += social_cascades.verdicts(c)
        body += [
            "- **Scale**: a simulated cascade lives in a 300-user graph (mean degree 8) "
            f"over at most {c['max_steps']} ticks, with each user active about a third of "
            "the ticks and posting only a share of those; Twitter15's cascades were "
            "collected because they were large (108-829 users each, none shallower than "
            "depth 2). Sizes cannot be compared, and the depth comparison is of shape only: "
            "most simulated cascades are a root nobody echoed (depth 1), a class Twitter15 "
            "has none of by construction, so the all-cascades distance mostly measures "
            "that selection; the spread-only distance conditions on spreading but still "
            "compares cascades of a few users with cascades of hundreds, where depth has "
            "more room to grow. A world of Twitter15's scale (thousands of users, many more "
            "ticks) would be needed to test the depth distribution itself."]
    secs = sum(x["seconds"] for x in (b, c) if x)
    body += ["", f"Run time {secs / 60:.1f} min (wall, `nice -n 10`, on 2 cores shared with "
             "other jobs): " + ", ".join(f"{k} {x['seconds'] / 60:.1f} min"
                                          for k, x in (("bubble", b), ("cascades", c)) if x)
             + ". Raw results: bench/results/social.json."]
    return body


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--data", required=True)
    p.add_argument("--part", choices=["bubble", "cascades", "all"], default="all")
    p.add_argument("--seeds", type=_seeds, default=_seeds("0-4"))
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--ticks", type=int, default=6)
    p.add_argument("--cascades", help="folder or file of twitter15.csv (default: "
                   "$RECARENA_CASCADES, else ../shared/data/twitter-cascades)")
    p.add_argument("--reuse", type=Path, help="bubble: read the runs kept by an earlier "
                   "--keep in this folder instead of running them")
    p.add_argument("--keep", type=Path, help="keep the run folders here")
    p.add_argument("--no-doc", action="store_true", help="print only")
    p.add_argument("--from-json", action="store_true",
                   help="run nothing: rewrite the section from bench/results/social.json")
    args = p.parse_args(argv)
    res: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    args.previous = res.get("bubble", {})
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        if args.part in ("bubble", "all") and not args.from_json:
            res["bubble"] = part_bubble(args, work / "bubble")
        if args.part in ("cascades", "all") and not args.from_json:
            res["cascades"] = part_cascades(args, work / "cascades")
    body = section(res)
    print("\n".join(body))
    if args.no_doc:
        return 0
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    # The command that makes the whole section: without the options that reuse results.
    given = list(sys.argv[1:] if argv is None else argv)
    cmd: list[str] = []
    skip = False
    for a in given:
        if skip:
            skip = False
        elif a in ("--part", "--reuse", "--keep"):
            skip = True
        elif a != "--from-json" and not a.startswith(("--part=", "--reuse=", "--keep=")):
            cmd.append(a)
    write_section(START, END, body, __file__, cmd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
