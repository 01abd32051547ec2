"""Poisoned item text and poisoned memories on MovieLens 100K, with and without defences.

Usage::

    nice -n 5 .venv/bin/python bench/attack_injection.py --data ../shared/data/ml-100k \\
        [--users 300] [--seeds 5] [--victims 50] [--embedder minilm|hash] \\
        [--local-run RUN_DIR]

1. Item text (simulations/eval/attack_text.py): per corpus family x number of poisoned
   items (1, 5, 20) x search path (BM25, vectors) x query kind x defence, the share of test
   users whose query returns a poisoned target first, mean and 95% t-interval over seeds,
   beside the same targets' first places on the clean catalogue and the share of the
   attack's excess success each defence removes.
2. Clean quality: HR@10 of the search-based recommender on the same test users with and
   without each defence (paired interval over users), and the filter's false positives on
   the clean catalogue.
3. Memories (simulations/eval/attack_memory.py): retrieval success and action change per
   benign (0, 10, 100) x poisoned (1, 5, 20) count, in the long-term store (world records),
   with the filter on the poison, and in a team's shared memory.
4. ``--local-run``: a run of scenarios/attack_injection.yaml on the local model (plumbing
   and cost: calls, tokens, seconds, and targets first / watched per arm from its trace).

Writes bench/results/attack_injection.json and the section between
``<!-- attack-injection:start -->`` and ``<!-- attack-injection:end -->`` of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from memory.embedders import HashEmbedder, MiniLMEmbedder  # noqa: E402
from scenarios.schema.attack_text import TEXT_FAMILIES, MemoryAttack  # noqa: E402
from simulations.eval.attack_memory import memory_table  # noqa: E402
from simulations.eval.attack_text import (  # noqa: E402
    Searcher,
    false_positive_rate,
    quality_rows,
    search_setup,
    text_table,
)
from simulations.eval.attack_trace import trace_outcomes  # noqa: E402
from simulations.record.trace import read_trace  # noqa: E402
from tools.dataset import load_dataset, split_interactions  # noqa: E402

START, END = "<!-- attack-injection:start -->", "<!-- attack-injection:end -->"
DEFENCES = ("none", "delimit", "filter")


def _ci(d: dict[str, Any] | None, rate: bool = True) -> str:
    """Percent, mean [interval]; a rate's t-interval is clipped to [0, 100] (a cut or a
    difference is not)."""
    if d is None or d.get("mean") is None:
        return "-"
    lo, hi = d["lo"] * 100.0, d["hi"] * 100.0
    if rate:
        lo, hi = max(lo, 0.0), min(hi, 100.0)
    return f"{d['mean'] * 100.0:.1f} [{lo:.1f}, {hi:.1f}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--victims", type=int, default=50)
    ap.add_argument("--embedder", choices=("minilm", "hash"), default="hash")
    ap.add_argument("--local-run", default=None)
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--render", action="store_true",
                    help="only write the section from bench/results/attack_injection.json "
                    "(with --local-run's figures added), measuring nothing again")
    args = ap.parse_args(argv)
    out = ROOT / "bench" / "results" / "attack_injection.json"
    if args.render:
        result = json.loads(out.read_text())
        if args.local_run:
            result["local"] = _local(Path(args.local_run))
        out.write_text(json.dumps(result, indent=1, default=str) + "\n")
        body = _section(result, args)
        body += ["", "Rendered with `--render --local-run RUN` from the measuring run below."]
        print("\n".join(body))
        # The command shown is the one that measured (kept in the results file).
        write_section(START, END, body, "bench/attack_injection.py", result.get("argv", argv))
        return 0
    seeds = list(range(args.seeds))
    ds = load_dataset(args.data)
    history, future = split_interactions(ds.interactions, 0.8, "global")
    setup = search_setup(ds, history, future, n_users=args.users, seed=0)
    t0 = time.perf_counter()
    emb = MiniLMEmbedder() if args.embedder == "minilm" else HashEmbedder()
    searcher = Searcher(ds.catalog, emb)
    t_embed = time.perf_counter() - t0
    cells = text_table(setup, searcher, families=list(TEXT_FAMILIES), counts=[1, 5, 20],
                       seeds=seeds, defences=DEFENCES)
    t_text = time.perf_counter() - t0
    quality = quality_rows(setup, searcher, ("delimit", "filter"))
    fp = false_positive_rate(ds.catalog)
    mem: list[Any] = []
    t1 = time.perf_counter()
    for cfg in (MemoryAttack(store="long_term"), MemoryAttack(store="long_term", filter=True),
                MemoryAttack(store="shared")):
        mem += memory_table(ds, history, cfg, seeds=seeds, n_victims=args.victims)
    t_mem = time.perf_counter() - t1
    local = _local(Path(args.local_run)) if args.local_run else None
    result = {"argv": sys.argv[1:] if argv is None else list(argv),
              "users": len(setup.users), "seeds": seeds, "victims": args.victims,
              "embedder": emb.name,
              "cells": [c.__dict__ for c in cells], "quality": quality,
              "false_positives": fp, "memory": [c.__dict__ for c in mem], "local": local,
              "seconds": {"embed": t_embed, "text": t_text, "memory": t_mem}}
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    body = _section(result, args)
    print("\n".join(body))
    if not args.no_doc:
        write_section(START, END, body, "bench/attack_injection.py", argv)
    return 0


def _local(run: Path) -> dict[str, Any]:
    """Plumbing and cost of a local-model run of the shipped scenario, from its trace."""
    events = read_trace(run)
    usage = next((e for e in events if e["type"] == "llm_usage"), {})
    end = next((e for e in events if e["type"] == "run_end"), {})
    calls = [json.dumps(e) for e in events if e["type"] == "llm_call"]
    targets = {str(t) for e in events if e["type"] == "attack" for t in e["targets"]}
    items = [json.loads(line) for line in (run / "items.jsonl").read_text().splitlines()]
    # The injected part of each target's (poisoned) title: what follows " — ".
    texts = [str(i["title"]).split(" — ", 1)[1] for i in items
             if str(i["id"]) in targets and " — " in str(i["title"])]
    poisoned = sum(1 for c in calls if any(json.dumps(t)[1:-1] in c for t in texts))
    usage = {**usage, "calls": len(calls), "poisoned_calls": poisoned}
    return {"outcomes": trace_outcomes(events), "usage": usage,
            "elapsed_s": end.get("elapsed_s")}


def _section(r: dict[str, Any], args: argparse.Namespace) -> list[str]:
    lines = [
        "## Poisoned item text and poisoned memories (MovieLens 100K)",
        "",
        f"Item text: {r['users']} test users (`simulations/run/sampling.py`), seeds "
        f"{r['seeds'][0]}-{r['seeds'][-1]} (each draws the targets among the less popular "
        "half of the history and the corpus templates); targets' text in the description. "
        "Success: share of users whose query returns a target first (%), mean [95% t-interval "
        "over seeds]; clean: the same targets' first places on the clean catalogue; cut: "
        "share of the attack's excess success (over clean) the defence removes, over seeds. "
        "`genres` queries: the user's two most-watched liked genres and \"movies\"; "
        "`title`: \"movies like\" their latest liked title. BM25: `search_catalog`; vectors: "
        f"`semantic_search`'s ranking ({r['embedder']}, exact cosine). `hierarchy` changes "
        "only system prompts, never the catalogue (`defend_catalog` returns the same object, "
        "tested), so on these paths it is `none` by construction and has no column.",
        "",
        "| family | poisoned | path | query | clean | none | delimit | filter | cut by filter |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    by: dict[tuple[Any, ...], dict[str, Any]] = {}
    for c in r["cells"]:
        by.setdefault((c["family"], c["n_targets"], c["path"], c["query"]), {})[
            c["defence"]] = c
    for (fam, n, path, q), row in by.items():
        lines.append(
            f"| {fam} | {n} | {path} | {q} | {_ci(row['none']['clean'])} | "
            f"{_ci(row['none']['success'])} | {_ci(row['delimit']['success'])} | "
            f"{_ci(row['filter']['success'])} | "
            f"{_ci(row['filter']['cut'], rate=False)} |")
    fp = r["false_positives"]
    lines += [
        "",
        f"Clean quality: HR@10 (%) of the search-based recommender (the user's query, "
        "history excluded) on the test users with a held-out liked item, without and with "
        "each defence on the clean catalogue; difference: paired t-interval over users. "
        f"Filter false positives on the clean catalogue: {fp['flagged']} of {fp['items']} "
        f"items ({100 * fp['rate']:.2f}%).",
        "",
        "| path | query | defence | users | items changed | HR@10 none | HR@10 defended | "
        "difference (points) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for q in r["quality"]:
        lines.append(f"| {q['path']} | {q['query']} | {q['defence']} | "
                     f"{q['hr10_none']['n']} | {q['items_changed']} | "
                     f"{_ci(q['hr10_none'])} | {_ci(q['hr10_defended'])} | "
                     f"{_ci(q['difference'], rate=False)} |")
    lines += [
        "",
        f"Memories: {r.get('victims', args.victims)} test victims per seed, one target per "
        "seed; benign memories are the victim's own latest history in the feed's words; a "
        "page of its three most popular unseen items and the target; recall with the feed's "
        "query, top 3. Retrieval: a poisoned memory recalled (%); action change: the memory-"
        "guided choice flips to the target (%); both over seeds. long_term: the compromised "
        "agent writes world records into the chromadb long-term store; shared: notes in a "
        "team's shared memory; filter: the poison neutralised by the item-text filter first.",
        "",
        "| store | filter | benign | poisoned | retrieval | action change | target chosen |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in r["memory"]:
        lines.append(f"| {m['store']} | {'yes' if m['filter'] else 'no'} | {m['benign']} | "
                     f"{m['poisoned']} | {_ci(m['retrieval'])} | {_ci(m['action_change'])} | "
                     f"{_ci(m['target_chosen'])} |")
    if r["local"]:
        loc = r["local"]
        u = loc["usage"]
        lines += [
            "",
            "Local model (Gemma 3 270M, plumbing and cost only): `recarena run "
            "scenarios/attack_injection.yaml --users 2` (5 popular targets, every family, "
            "title and description, no defence): "
            f"{u.get('calls', '?')} LLM calls, {u.get('input_tokens', '?')} tokens in, "
            f"{u.get('output_tokens', '?')} out, {loc['elapsed_s']:.0f} s.",
            "",
            "| arm | pages | target first | target shown | shown targets watched |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:.2f}"
        for arm, o in loc["outcomes"].items():
            lines.append(f"| {arm} | {o['pages']} | {f(o['target_first'])} | "
                         f"{f(o['target_shown'])} | {f(o['target_watched'])} |")
        lines += ["", f"{u.get('poisoned_calls', '?')} of the {u.get('calls', '?')} prompts "
                  "carried injected text (those whose page, candidates or tool results held "
                  "a target). Two users and three pages per arm: plumbing and cost, not "
                  "evidence about whether a model follows the injections. The 1-minute load "
                  "average was about 17 on 2 CPUs during the run."]
    s = r["seconds"]
    lines += ["", f"Time: embed {s['embed']:.0f} s, item-text table {s['text']:.0f} s, "
              f"memories {s['memory']:.0f} s."]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
