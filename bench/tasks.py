"""MACRec's offline tasks (rp, sr, gen) for the MACRec team and the LLMRank role with the
local model, beside the classic baselines on the same instances.

Usage::

    .venv/bin/python bench/tasks.py --data ../shared/data/ml-100k --agent llmrank
    .venv/bin/python bench/tasks.py --data ../shared/data/ml-100k --agent macrec
    .venv/bin/python bench/tasks.py --doc-only

Each ``--agent`` runs the three tasks through ``recarena eval task``'s code
(simulations/tasks/run.py) with ``--llm local`` on a few small disjoint samples of test
users (the local Gemma 3 270M answers one prompt in seconds on 2 cores; ``--users`` and
``--samples`` set the size), saves every task's result under bench/results/tasks-AGENT.json
and rebuilds the section between ``<!-- tasks:start -->`` and ``<!-- tasks:end -->`` of
docs/benchmarks.md from every saved agent. ``--agent none`` saves the baselines alone on
larger samples.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if sys.path[0] != str(ROOT):  # run as a script: the packages, not bench/memory.py, first
    sys.path.insert(0, str(ROOT))

from bench.report import command_line, machine_line, update_doc  # noqa: E402
from bench.report import fmt_interval as _ci  # noqa: E402

START, END = "<!-- tasks:start -->", "<!-- tasks:end -->"
RESULTS = ROOT / "bench" / "results"
AGENTS = {"llmrank": ROOT / "scenarios" / "roles" / "llmrank.yaml",
          "macrec": ROOT / "scenarios" / "teams" / "macrec.yaml", "none": None}
LABELS = {"llmrank": "LLMRank role (zero-shot ranker)", "macrec": "MACRec team",
          "none": "baselines only"}
BASELINE_NAMES = {"global_mean": "global mean", "user_mean": "user mean",
                  "item_mean": "item mean", "bias": "bias (global + user + item)",
                  "pop": "popularity", "ease": "EASE", "random": "random"}
METRICS = {"rp": ("rmse", "mae"), "sr": ("hr@1", "hr@5", "ndcg@1", "ndcg@5", "ndcg@10", "mrr"),
           "gen": ("hr@1", "grounded", "item_genre", "history_title", "words", "distinct")}




def run_agent(data: str, agent: str, *, users: int, samples: int, seed: int,
              llm_threads: int | None, llm_ctx: int, llm_timeout: float,
              out: Path | None, tasks: Sequence[str] = ("rp", "sr", "gen"),
              res: dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
              save: Callable[[dict[str, Any]], None] = lambda res: None) -> dict[str, Any]:
    """The tasks for one agent, added to ``res`` (earlier results of other tasks); every
    result keeps its wall time and the run that made it, and is saved as soon as it is
    done (a long run stopped midway keeps its finished tasks)."""
    from simulations.tasks.run import run_eval_task
    from simulations.tasks.suite import TASKS, TaskOptions

    team = AGENTS[agent]
    res = dict(res or {})
    for task in (t for t in TASKS if t in tasks):
        t0 = time.perf_counter()
        sub = str(out / task) if out is not None else None
        r = run_eval_task(data, TaskOptions(task=task, users=users, samples=samples,
                                            seed=seed, batch=4),
                          team=str(team) if team else None,
                          llm="local" if team else None,
                          llm_threads=llm_threads if team else None,
                          llm_ctx=llm_ctx if team else None,
                          llm_timeout=llm_timeout if team else None, out=sub)
        r["wall_seconds"] = round(time.perf_counter() - t0, 1)
        r["run"] = meta or {}
        res[task] = r
        save(res)
        print(f"{agent} {task}: {r['wall_seconds']} s", file=sys.stderr)
    return res


def _rows(label: str, res: dict[str, Any], task: str, with_baselines: bool) -> list[str]:
    r = res[task]
    users = f"{r['samples']} x {r['users_per_sample']}"
    rows = []
    for name, m in r["models"].items():
        if m["kind"] == "baseline" and not with_baselines:
            continue
        who = f"**{label}**" if m["kind"] == "agent" else BASELINE_NAMES.get(name, name)
        tok = m["tokens_per_instance"]
        cost = (f"{tok['input']:.0f} / {tok['output']:.0f}" if m["kind"] == "agent" else "-")
        rows.append(f"| {who} | {users} | " + " | ".join(_ci(m["metrics"][k])
                                                        for k in METRICS[task])
                    + f" | {m['failures']}/{m['instances']} | {cost} | "
                    f"{m['seconds_per_instance']:.2f} |")
    return rows


def build_section(parts: dict[str, dict[str, Any]]) -> list[str]:
    body = [
        "## Offline tasks (MACRec's rp, sr, gen) on MovieLens 100K",
        "",
        "`recarena eval task` (simulations/tasks/suite.py): each user's ratings are split in time "
        "(earliest 80% history); everything a model or tool sees is history, and every "
        "request carries the user's clock (their first future rating), so clock-bounded "
        "tools reveal nothing after it. Test users only (hash split; the bias model's "
        "regularisation is chosen on tuning users), several disjoint samples, mean and "
        "95% t-interval over samples. **rp**: the user's next rating; **sr**: the next "
        "liked item (>= 4) among 19 items the user never rated, shown in random order; "
        "**gen**: the agent recommends one of the sr candidates and explains it. "
        "Baselines answer the same requests through the same protocol on the same "
        "instances. Tokens are per task instance (input / output, whitespace words for "
        "the fake model, the model's own tokenizer otherwise); seconds per instance on "
        "this machine. The LLM rows use tiny samples (a local 270M model on 2 shared "
        "cores takes minutes per instance): with 2 samples the t-interval has one degree "
        "of freedom and is very wide (bounds beyond [0, 1] are the interval's, not "
        "clipped); read them as plumbing and cost figures, not as quality estimates.",
        "",
        "gen is **not** MACRec's metric: MACRec scores explanations by BLEU/ROUGE against "
        "the user's review, and MovieLens has no reviews. Reported instead: the share of "
        "explanations that mention a genre of the item, a title the user rated before the "
        "clock, or a genre they liked (grounded = any), mean length in words and the share "
        "of distinct texts; the baselines' template explanations are grounded by "
        "construction and serve as the reference, not as competitors in fluency.",
        "",
    ]
    header = {"rp": "| model | users | RMSE | MAE | failures | tokens in / out | s / inst. |",
              "sr": "| model | users | HR@1 | HR@5 | NDCG@5 | MRR | failures | "
                    "tokens in / out | s / inst. |",
              "gen": "| model | users | HR@1 | grounded | item genre | history title | "
                     "words | distinct | failures | tokens in / out | s / inst. |"}
    for task, title in (("rp", "rating prediction"), ("sr", "sequential recommendation"),
                        ("gen", "explanation generation")):
        runs = [(k, p) for k, p in parts.items() if task in p]
        if not runs:
            continue
        ncol = header[task].count("|") - 1
        body += [f"### {task}: {title}", "", header[task],
                 "| --- | --- |" + " ---: |" * (ncol - 2)]
        shown: set[tuple[int, int, int]] = set()
        for key, p in runs:
            r = p[task]
            same = (r["samples"], r["users_per_sample"], r["seed"])
            body += _rows(LABELS.get(key, key), p, task, with_baselines=same not in shown)
            shown.add(same)
        body.append("")
    body += ["Runs:", ""]
    for key, p in parts.items():
        # Tasks run by one command share a line; a task added later has its own.
        by_run: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for t in ("rp", "sr", "gen"):
            if t in p:
                meta = p[t].get("run") or p.get("meta", {})
                by_run.setdefault(json.dumps(meta, sort_keys=True), (meta, []))[1].append(t)
        for meta, ts in by_run.values():
            walls = ", ".join(f"{t} {p[t]['wall_seconds']:.0f} s" for t in ts)
            body.append(f"- {LABELS.get(key, key)}: `{meta.get('command', '')}` "
                        f"({meta.get('date', '')}; {walls}; {meta.get('machine', '')})")
    for key, p in parts.items():
        for task in ("rp", "sr", "gen"):
            m = next((m for m in p.get(task, {}).get("models", {}).values()
                      if m["kind"] == "agent"), None)
            if m is not None and m["instances"] and m["failures"] == m["instances"]:
                why = {"rp": "every rating is the agent's fallback (the item mean), not the "
                             "model's",
                       "sr": "every ranking is a fallback (candidate order)",
                       "gen": "no instance has both a ranking of the model's and an "
                              "explanation (answers.jsonl names each failure; a ranking "
                              "role that does not explain fails every one)"}[task]
                body.append(f"- {LABELS.get(key, key)}, {task}: {why}")
    for key, p in parts.items():
        missing = [t for t in ("rp", "sr", "gen") if t not in p]
        if missing:
            body.append(f"- {LABELS.get(key, key)}: {', '.join(missing)} not measured (the "
                        "run was stopped before it; rerun the command above)")
    for key in ("llmrank", "macrec"):
        if key not in parts:
            body.append(f"- {LABELS[key]}: not measured yet; run `python bench/tasks.py "
                        f"--agent {key} --users 1 --samples 2` (local model, 8192-token "
                        "context, 600 s per call at most)")
    body.append("")
    return body


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("RECARENA_DATA")
                   or str(ROOT.parent / "shared" / "data" / "ml-100k"))
    p.add_argument("--agent", choices=list(AGENTS), help="which agent to run (else only "
                   "rebuild the doc section)")
    p.add_argument("--users", type=int, default=4, help="test users per sample")
    p.add_argument("--samples", type=int, default=3, help="disjoint samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--llm-threads", type=int, default=2)
    p.add_argument("--llm-ctx", type=int, default=8192,
                   help="context window of the local model (team prompts exceed 2048)")
    p.add_argument("--llm-timeout", type=float, default=600.0,
                   help="seconds one local call may take (long team prompts on 2 busy cores "
                   "exceed the default 60)")
    p.add_argument("--tasks", default="rp,sr,gen",
                   help="comma-separated tasks to run; the agent's saved results of the "
                   "others are kept (default: rp,sr,gen)")
    p.add_argument("--out", help="keep answers, traces and LLM caches here")
    p.add_argument("--doc-only", action="store_true", help="rebuild the doc section only")
    a = p.parse_args(argv)
    tasks = [t.strip() for t in a.tasks.split(",") if t.strip()]
    bad = [t for t in tasks if t not in METRICS]
    if bad or not tasks:
        p.error(f"--tasks: unknown task {', '.join(bad) or '(none)'}; choose from rp, sr, gen")
    RESULTS.mkdir(parents=True, exist_ok=True)
    if a.agent and not a.doc_only:
        meta = {"command": command_line(__file__, sys.argv[1:] if argv is None
                                        else list(argv)),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine": machine_line()}

        saved = RESULTS / f"tasks-{a.agent}.json"
        earlier: dict[str, Any] = {}
        if saved.exists():
            old = json.loads(saved.read_text(encoding="utf-8"))
            # Results of other tasks keep the run that made them.
            earlier = {t: {**old[t], "run": old[t].get("run") or old.get("meta", {})}
                       for t in METRICS if t in old and t not in tasks}

        def save(res: dict[str, Any]) -> None:
            saved.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")

        run_agent(a.data, a.agent, users=a.users, samples=a.samples, seed=a.seed,
                  llm_threads=a.llm_threads, llm_ctx=a.llm_ctx, llm_timeout=a.llm_timeout,
                  out=Path(a.out) if a.out else None, tasks=tasks, res=earlier, meta=meta,
                  save=save)
    parts = {k: json.loads((RESULTS / f"tasks-{k}.json").read_text(encoding="utf-8"))
             for k in AGENTS if (RESULTS / f"tasks-{k}.json").exists()}
    if not parts:
        print("no saved results: run with --agent first", file=sys.stderr)
        return 1
    section = "\n".join([START, *build_section(parts), END])
    update_doc(ROOT / "docs" / "benchmarks.md", START, END, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
