"""Shilling on MovieLens 100K: attack strength x strategy x recommender x defence.

Two parts, both on the users and seeds of scenarios/attack_shilling.yaml:

* **offline** (every share, strategy and defence): HR@10 of the targets among the
  population for each arm's model fitted on the history, clean and attacked (and
  attacked behind the logistic detector's filter), and both detectors' AUC on the
  injected profiles vs held-out real users; seeds are the run seeds (population,
  profiles and detector training all change with them);
* **simulated** (3% fake users, the average strategy, no defence: what the machine's
  share allowed): the targets' exposure on the feed pages of utility users, one clean run
  per seed shared by the attacked runs of that seed.

Intervals are Student-t over seeds of the paired (attacked - clean) differences.
Writes bench/results/attack_shilling.json (and _sim.json) and the section of
docs/benchmarks.md:

    nice -n 5 python bench/attack_shilling.py --data ../shared/data/ml-100k --seeds 3

or the two parts in two processes, then the section from their files:

    nice -n 5 python bench/attack_shilling.py --data ... --seeds 3 --part offline &
    nice -n 5 python bench/attack_shilling.py --data ... --seeds 3 --part sim
    python bench/attack_shilling.py --data ... --seeds 3 --from-json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if sys.path[0] != str(ROOT):  # run as a script: the packages, not bench/memory.py, first
    sys.path.insert(0, str(ROOT))


from bench.report import write_section  # noqa: E402

START, END = "<!-- attack_shilling:start -->", "<!-- attack_shilling:end -->"
RESULTS = ROOT / "bench" / "results" / "attack_shilling.json"
SIM_RESULTS = ROOT / "bench" / "results" / "attack_shilling_sim.json"
STRATEGIES = ("random", "average", "bandwagon", "segment")
SHARES = (0.01, 0.03, 0.05)
DEFENDED_SHARE = 0.03
SIM_STRATEGIES = ("average",)
ARMS = ("pop", "itemknn", "ease", "als")


def _attack(strategy: str, share: float, defence: bool) -> dict[str, Any]:
    block: dict[str, Any] = {
        "arms": list(ARMS), "strategy": strategy, "share": share,
        "targets": {"least_popular": 5, "min_ratings": 5}, "filler": 30, "seed": 0}
    if strategy == "bandwagon":
        block["bandwagon"] = {"popular": 10}
    if strategy == "segment":
        block["segment"] = {"genre": "Sci-Fi", "k": 10}
    if defence:
        block["defence"] = {"detector": "logistic", "flag_share": 0.05}
    return block


def _variant(loaded: Any, attack: dict[str, Any] | None, rounds: int) -> Any:
    from scenarios.schema import Scenario

    scn = loaded.scenario
    data = scn.model_dump()
    data["attack"] = {"fake_users": attack} if attack else None
    data["recommenders"] = [r for r in data["recommenders"] if r["name"] in ARMS]
    for r in data["recommenders"]:
        r["retrain"] = False
    data["environment"]["rounds"] = rounds
    return replace(loaded, scenario=Scenario.model_validate(data))


def offline(loaded: Any, seeds: list[int], users: int, data: str,
            save: Any = lambda rows: None) -> list[dict[str, Any]]:
    """Rows of the offline part; 3% first (the goal's share), every seed, then 1% and 5%;
    ``save(rows)`` after each share, so a part cut short still reports what it did."""
    from simulations.eval.attack_fake_users import detector_aucs, eval_detector, hit_rate
    from simulations.run.attack import resolve_attack
    from simulations.run.runner import prepare

    rows: list[dict[str, Any]] = []
    bases = {}
    for s in seeds:
        bases[s] = prepare(_variant(loaded, None, 1), seed=s, users=users, data=data)
    clean: dict[int, dict[str, float]] = {}
    # One supervised detector per seed (trained on its own injections and seed, never the
    # evaluated targets, against one half of the real users): scored on the other half for
    # the AUC, and the defence's filter (2 cores shared by five: one fit per seed).
    detectors: dict[int, Any] = {}
    for share in sorted(SHARES, key=lambda x: x != DEFENDED_SHARE):
        for s in seeds:
            base = bases[s]
            arms = {r.name: r for r in base.scenario.recommenders}
            for strategy in STRATEGIES:
                v = _variant(loaded, _attack(strategy, share, False), 1)
                resolved = resolve_attack(v, v.scenario.model_copy(update={"seed": s}),
                                          base.dataset, base.history)
                assert resolved is not None and resolved.fake_users is not None
                plain = resolved.fake_users
                targets = plain.plan.targets
                if s not in clean:
                    clean[s] = {a: hit_rate(base, arms[a], None, targets) for a in ARMS}
                if s not in detectors:
                    detectors[s] = eval_detector(base, plain)
                aucs = detector_aucs(base, plain, detectors[s])
                with_defence = _variant(loaded, _attack(strategy, share, True), 1)
                cfg = with_defence.scenario.attack.fake_users
                for defence in (False, True) if share == DEFENDED_SHARE else (False,):
                    fake = (replace(plain, config=cfg, detector=detectors[s]) if defence
                            else plain)
                    hr = {a: hit_rate(base, arms[a], fake, targets) for a in ARMS}
                    rows.append({"seed": s, "share": share, "strategy": strategy,
                                 "defence": "logistic filter" if defence else "none",
                                 "fake_users": fake.plan.count, "hr_clean": clean[s],
                                 "hr_attacked": hr, "auc": aucs})
                    print(f"offline seed {s} {share:.0%} {strategy} defence={defence}: "
                          f"{hr} auc={aucs}", flush=True)
        save(rows)
    return rows


def simulated(loaded: Any, seeds: list[int], users: int, data: str, out: Path,
              save: Any = lambda rows: None) -> list[dict[str, Any]]:
    from simulations.eval.attack_fake_users import exposure
    from simulations.run.runner import prepare, run

    rows: list[dict[str, Any]] = []
    for s in seeds:
        clean_dir = out / f"clean-seed{s}"
        prep = prepare(_variant(loaded, None, 1), seed=s, users=users, data=data)
        run(prep, clean_dir)
        for strategy in SIM_STRATEGIES:
            for defence in (False,):
                v = _variant(loaded, _attack(strategy, 0.03, defence), 1)
                prep = prepare(v, seed=s, users=users, data=data)
                assert prep.attack is not None and prep.attack.fake_users is not None
                fake = prep.attack.fake_users
                ids = {prep.dataset.catalog.item_ids[t] for t in fake.plan.targets}
                d = out / f"{strategy}-{'filter' if defence else 'none'}-seed{s}"
                t0 = time.perf_counter()
                run(prep, d)
                rows.append({"seed": s, "share": 0.03, "strategy": strategy,
                             "defence": "logistic filter" if defence else "none",
                             "exposure_clean": exposure(clean_dir, ids),
                             "exposure_attacked": exposure(d, ids),
                             "seconds": round(time.perf_counter() - t0, 1)})
                print(f"simulated seed {s} {strategy} defence={defence}: "
                      f"{rows[-1]['exposure_attacked']}", flush=True)
        save(rows)
    return rows


def _ci(values: list[float], digits: int = 3) -> str:
    from simulations.analysis.stats import interval

    v = interval(values)
    if v["mean"] is None:
        return "-"
    if v["n"] < 2:
        return f"{v['mean']:.{digits}f}"
    return f"{v['mean']:+.{digits}f} [{v['lo']:+.{digits}f}, {v['hi']:+.{digits}f}]"


def _plain(values: list[float], digits: int = 3) -> str:
    from simulations.analysis.stats import interval

    v = interval(values)
    return "-" if v["mean"] is None else (
        f"{v['mean']:.{digits}f} [{v['lo']:.{digits}f}, {v['hi']:.{digits}f}]")


def body(res: dict[str, Any]) -> list[str]:
    off, sim = res["offline"], res["simulated"]
    n = len(res["seeds"])
    lines = [
        "## Shilling attacks: fake users against classic recommenders (MovieLens 100K)",
        "",
        f"Scenario `scenarios/attack_shilling.yaml` ({res['users']} utility users, seeds "
        f"{', '.join(map(str, res['seeds']))}); targets: the 5 least popular items with at "
        "least 5 history ratings; 30 filler items per profile; bandwagon: the 10 most "
        "popular items; segment: the 10 most popular Sci-Fi items. Share = fake users / "
        "real users with history (943 x share). Defence (at 3% only): the logistic "
        "detector (trained on its own injections, seed and targets, against half of the "
        "real users) flags the 5% most suspicious training profiles, dropped before the "
        "fit. Cells: attacked - clean, mean over seeds "
        f"with the 95% t-interval over the seeds of the row (of {n} run; paired: same users, "
        "seeds and arms).",
        "",
        "### HR@10 of the targets among the population (offline fits), change",
        "",
        "| share | strategy | defence | fake users | seeds | " + " | ".join(ARMS) + " |",
        "|---|---|---|---:|---:|" + "---:|" * len(ARMS),
    ]
    keys = sorted({(r["share"], r["strategy"], r["defence"]) for r in off},
                  key=lambda k: (k[0], STRATEGIES.index(k[1]), k[2] != "none"))
    for share, strategy, defence in keys:
        rs = [r for r in off if (r["share"], r["strategy"], r["defence"]) ==
              (share, strategy, defence)]
        lines.append(f"| {share:.0%} | {strategy} | {defence} | {rs[0]['fake_users']} | "
                     f"{len(rs)} | "
                     + " | ".join(_ci([r["hr_attacked"][a] - r["hr_clean"][a] for r in rs])
                                  for a in ARMS) + " |")
    per_seed = {r["seed"]: r["hr_clean"] for r in off}  # the same clean fit per seed
    clean_hr = {a: _plain([h[a] for h in per_seed.values()]) for a in ARMS}
    done = {r["share"] for r in off}
    missing = [f"{x:.0%}" for x in SHARES if x not in done]
    if missing:
        lines += ["", f"Not measured in this run (it stopped before them): shares "
                  f"{', '.join(missing)}; `--part offline` measures them."]
    lines += ["", "Clean HR@10 of the targets: " + ", ".join(
        f"{a} {v}" for a, v in clean_hr.items()) + ".", "",
        "### Detectors: AUC on the injected profiles vs held-out real users", "",
        "| share | strategy | seeds | PCA (unsupervised) | logistic (supervised) |",
        "|---|---|---:|---:|---:|"]
    for share in SHARES:
        for strategy in STRATEGIES:
            rs = [r for r in off if r["share"] == share and r["strategy"] == strategy
                  and r["defence"] == "none"]
            if not rs:
                continue
            lines.append(f"| {share:.0%} | {strategy} | {len(rs)} | "
                         f"{_plain([r['auc']['pca'] for r in rs])} | "
                         f"{_plain([r['auc']['logistic'] for r in rs])} |")
    if sim:
        lines += ["", "### Exposure of the targets on simulated feed pages (3% fake users)",
                  "", "Share of the real users' pages (4 items, up to 5 pages, one round) "
                  "showing a target; attacked - clean.", "",
                  "| strategy | defence | " + " | ".join(ARMS) + " |",
                  "|---|---|" + "---:|" * len(ARMS)]
        for strategy in SIM_STRATEGIES:
            for defence in ("none",):
                rs = [r for r in sim if r["strategy"] == strategy and r["defence"] == defence]
                lines.append(f"| {strategy} | {defence} | " + " | ".join(
                    _ci([r["exposure_attacked"].get(a, 0.0) - r["exposure_clean"].get(a, 0.0)
                         for r in rs]) for a in ARMS) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--skip-sim", action="store_true", help="offline part only")
    p.add_argument("--out", default="/tmp/recarena-bench-attack")
    p.add_argument("--from-json", action="store_true", help="rewrite the doc section from "
                   "bench/results/attack_shilling.json")
    p.add_argument("--part", choices=["all", "offline", "sim"], default="all",
                   help="run one part only (two processes; then --from-json)")
    a = p.parse_args(argv)
    if not a.from_json:
        from scenarios.loader import load_scenario

        loaded = load_scenario(ROOT / "scenarios" / "attack_shilling.yaml")
        seeds = [loaded.scenario.seed + k for k in range(a.seeds)]
        head = {"seeds": seeds, "users": a.users}
        if a.part in ("all", "offline"):
            def save(rows: list[dict[str, Any]]) -> None:
                RESULTS.write_text(json.dumps({**head, "offline": rows}, indent=1) + "\n",
                                   encoding="utf-8")

            save(offline(loaded, seeds, a.users, a.data, save))
        if a.part in ("all", "sim") and not a.skip_sim:
            out = Path(a.out)
            if out.exists() and any(out.iterdir()):
                raise SystemExit(f"{out}: not empty")
            def save_sim(rows: list[dict[str, Any]]) -> None:
                SIM_RESULTS.write_text(json.dumps({**head, "simulated": rows}, indent=1)
                                       + "\n", encoding="utf-8")

            save_sim(simulated(loaded, seeds, a.users, a.data, out, save_sim))
        if a.part != "all":
            return 0
    res = json.loads(RESULTS.read_text(encoding="utf-8"))
    res["simulated"] = (json.loads(SIM_RESULTS.read_text(encoding="utf-8"))["simulated"]
                        if SIM_RESULTS.exists() else [])
    argv_doc = [x for x in (sys.argv[1:] if argv is None else argv)
                if x != "--from-json" and not x.startswith("--part")]
    write_section(START, END, body(res), __file__, argv_doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
