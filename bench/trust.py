"""Trust figures of the shipped classic recommenders on MovieLens 100K: fairness (user side
by gender, age band and occupation; provider side per recommender), explanation
faithfulness by deletion and citation precision, and attribute inference from traces.

Per seed: ``scenarios/movielens_feed.yaml`` with arms random, pop, itemknn, ease, als and
bpr (utility users, ``--users`` sampled users, seed S) is run, read by
``simulations.trust.fairness`` and attacked by ``simulations.trust.privacy``; the
explanation study (``simulations.trust.explain``) runs on the offline tasks' test users
with seed S. Every figure is the mean over seeds with a 95% t-interval over seeds (each
seed samples other users); explanation figures pool the seeds' disjoint samples.
Writes ``bench/results/trust.json`` and the section between ``<!-- trust:start -->`` and
``<!-- trust:end -->`` of docs/benchmarks.md.

    nice -n 5 python bench/trust.py --data ../shared/data/ml-100k --seeds 3
    # or one process per seed, then the section from their results:
    python bench/trust.py --data DATA --seeds 1 --first-seed 42 --json-out /tmp/t42.json \
        --no-doc   # (and 43, 44)
    python bench/trust.py --data DATA --merge /tmp/t42.json /tmp/t43.json /tmp/t44.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if sys.path[0] != str(ROOT):
    sys.path.insert(0, str(ROOT))

from bench.report import command_line, fmt_interval, machine_line, update_doc  # noqa: E402

START, END = "<!-- trust:start -->", "<!-- trust:end -->"
ARMS = ("random", "pop", "itemknn", "ease", "als", "bpr")
EXPLAINERS = ("itemknn", "ease", "ease+template")


def _interval(xs: list[float | None]) -> dict[str, Any]:
    from simulations.analysis.stats import interval

    return interval([x for x in xs if x is not None])


def _fmt(v: dict[str, Any], digits: int = 3) -> str:
    return fmt_interval(v, digits, missing="-")


def _run(seed: int, users: int, data: str, out: Path) -> Path:
    from scenarios.loader import load_scenario
    from simulations.eval.compare import select_arms
    from simulations.run.runner import prepare, run

    loaded = select_arms(load_scenario(ROOT / "scenarios" / "movielens_feed.yaml"),
                         list(ARMS))
    return run(prepare(loaded, seed=seed, users=users, data=data), out).run_dir


def measure(data: str, seeds: list[int], users: int, work: Path,
            permutations: int) -> dict[str, Any]:
    from simulations.tasks.data import prepare_tasks
    from simulations.trust.explain import classic_factory, deletion_study
    from simulations.trust.fairness import FairnessOptions, fairness_of_run
    from simulations.trust.privacy import privacy_of_run
    from tools.dataset import load_dataset

    ds = load_dataset(data)
    setup = prepare_tasks(ds)
    per_seed: list[dict[str, Any]] = []
    for s in seeds:
        t0 = time.perf_counter()
        run_dir = _run(s, users, data, work / f"run-{s}")
        fair = fairness_of_run(run_dir, FairnessOptions(min_users=10, seed=s))
        priv = privacy_of_run(run_dir, ds, arms=["random", "ease"], seeds=1, seed=s,
                              permutations=permutations)
        expl = {m: deletion_study(classic_factory(m.partition("+")[0], ds.catalog,
                                                  ds.n_users, seed=s,
                                                  explainer="template" if "+" in m
                                                  else "contribution"),
                                  setup, users=20, samples=3, negatives=99, seed=s,
                                  candidates="pop") for m in EXPLAINERS}
        per_seed.append({"seed": s, "fairness": fair, "privacy": priv, "explanations": expl,
                         "seconds": round(time.perf_counter() - t0, 1)})
        print(f"seed {s}: {per_seed[-1]['seconds']} s", file=sys.stderr)
    return {"seeds": seeds, "users": users, "per_seed": per_seed}


def build_section(res: dict[str, Any], command: str) -> list[str]:
    seeds = res["per_seed"]
    lines = ["### Trust: fairness, explanations, privacy "
             f"({len(seeds)} seeds: {', '.join(str(s['seed']) for s in seeds)})", "",
             f"Command: `{command}`. Machine: {machine_line()}.", "",
             f"`scenarios/movielens_feed.yaml` with arms {', '.join(ARMS)} "
             f"({res['users']} sampled users, utility brain) per seed; figures on the run's "
             "test users. Each cell: mean over seeds [95% t-interval over seeds].", "",
             "**Provider side** (long tail: outside the top 20% of items by training "
             "popularity; ARP: mean training popularity of shown items per user):", "",
             "| recommender | exposure Gini | avg rec. popularity | long-tail share |",
             "|---|---|---|---|"]
    for arm in ARMS:
        rows = [next(p for p in s["fairness"]["provider_side"] if p["arm"] == arm)
                for s in seeds]
        lines.append(f"| {arm} | {_fmt(_interval([r['gini'] for r in rows]))} | "
                     f"{_fmt(_interval([r['arp']['value'] for r in rows]), 1)} | "
                     f"{_fmt(_interval([r['long_tail_share']['value'] for r in rows]))} |")
    lines += ["", "**User side**: watch rate and satisfaction (1-10) of women minus men "
              "(gap F - rest), and the largest gap between age bands and between "
              "occupations with at least 10 test users (largest minus smallest level; a "
              "maximum over levels, so biased upwards on small groups):", "",
              "| recommender | watch rate F-M | satisfaction F-M | watch rate: age range "
              "| watch rate: occupation range | satisfaction: occupation range |",
              "|---|---|---|---|---|---|"]

    def us(s: dict[str, Any], arm: str, metric: str, attr: str) -> dict[str, Any]:
        return next(r for r in s["fairness"]["user_side"] if r["arm"] == arm
                    and r["metric"] == metric and r["attribute"] == attr)

    def gap_f(r: dict[str, Any]) -> float | None:
        return next((lv["gap_to_rest"] for lv in r["levels"] if lv["level"] == "F"), None)

    for arm in ARMS:
        cells = [
            _fmt(_interval([gap_f(us(s, arm, "watch_rate", "gender")) for s in seeds])),
            _fmt(_interval([gap_f(us(s, arm, "satisfaction", "gender")) for s in seeds]), 2),
            _fmt(_interval([us(s, arm, "watch_rate", "age")["range"] for s in seeds])),
            _fmt(_interval([us(s, arm, "watch_rate", "occupation")["range"] for s in seeds])),
            _fmt(_interval([us(s, arm, "satisfaction", "occupation")["range"]
                            for s in seeds]), 2)]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += ["", "**Explanations** (offline sr instances of test users at their clock, "
              "candidates: popularity's top 100 unseen items; per seed 3 disjoint samples; "
              "drop: rank lost by the recommended item when the cited history items, or as "
              "many random ones, are removed and the model refitted; paired: cited minus "
              "random per user; interval over the seeds' samples):", "",
              "| explainer | citation precision | cited items | drop (cited) | "
              "drop (random) | paired difference | left rank 1 (cited / random) | pairs |",
              "|---|---|---|---|---|---|---|---|"]
    for m in EXPLAINERS:
        rs = [s["explanations"][m] for s in seeds]
        # Pool the disjoint samples of every seed: the per-sample means behind each
        # seed's interval are not kept, so pool per-seed means (n = seeds).
        def pooled(k: str, rs: list[dict[str, Any]] = rs) -> dict[str, Any]:
            return _interval([r["metrics"][k]["mean"] for r in rs])
        lines.append(
            f"| {m} | {_fmt(pooled('citation_precision'))} | "
            f"{_fmt(pooled('cited_per_explanation'), 2)} | {_fmt(pooled('drop_cited'), 2)} | "
            f"{_fmt(pooled('drop_random'), 2)} | {_fmt(pooled('paired_difference'), 2)} | "
            f"{_fmt(pooled('left_top_cited'), 2)} / {_fmt(pooled('left_top_random'), 2)} | "
            f"{sum(r['deletion_pairs'] for r in rs)} |")
    perms = res.get("permutations") or 0
    lines += ["", "**Privacy**: attribute inference (logistic regression on watched-item "
              "vectors, 5-fold CV) on the same test users (users: first seed): AUC mean "
              "over seeds [t-interval over seeds]; null range: the label-permutation "
              f"null's range over {perms} permutations per seed (mean over seeds of its "
              "2.5 and 97.5 percentiles; with so few permutations a coarse guide, not a "
              "test):", "",
              "| attribute | histories | users | AUC | null range |",
              "|---|---|---|---|---|"]
    for attr in ("gender", "age"):
        for src in ("simulated:ease", "simulated:random", "real:history",
                    "null:random_taste"):
            rs = [s["privacy"]["attributes"][attr][src] for s in seeds]
            nl = [r.get("null") or {} for r in rs]
            lo = _interval([n.get("lo") for n in nl])["mean"]
            hi = _interval([n.get("hi") for n in nl])["mean"]
            rng = "-" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"
            lines.append(f"| {attr} | {src} | {rs[0]['users']} | "
                         f"{_fmt(_interval([r['auc'] for r in rs]))} | {rng} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=42)
    p.add_argument("--users", type=int, default=400)
    p.add_argument("--permutations", type=int, default=19)
    p.add_argument("--work", default="/tmp/recarena-bench-trust")
    p.add_argument("--no-doc", action="store_true")
    p.add_argument("--json-out", help="write the result here (default: "
                   "bench/results/trust.json)")
    p.add_argument("--merge", nargs="+", help="build the section from these results "
                   "(one per seed, e.g. run in parallel with --seeds 1 --first-seed S)")
    a = p.parse_args(argv)
    if a.merge:
        parts = [json.loads(Path(f).read_text()) for f in a.merge]
        res = {"seeds": [s for r in parts for s in r["seeds"]], "users": parts[0]["users"],
               "permutations": parts[0].get("permutations"),
               "per_seed": [s for r in parts for s in r["per_seed"]]}
    else:
        work = Path(a.work) / time.strftime("%Y%m%d-%H%M%S")
        res = measure(a.data, list(range(a.first_seed, a.first_seed + a.seeds)), a.users,
                      work, a.permutations)
        res["permutations"] = a.permutations
    out = Path(a.json_out) if a.json_out else ROOT / "bench" / "results" / "trust.json"
    out.parent.mkdir(exist_ok=True, parents=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    if not a.no_doc:
        cmd = command_line("bench/trust.py", sys.argv[1:] if argv is None else argv)
        update_doc(ROOT / "docs" / "benchmarks.md", START, END,
                   "\n".join([START, *build_section(res, cmd), END]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
