"""``recarena eval task``: MACRec's offline tasks for a role or team beside the baselines."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

from rich.table import Table

from agents.flags import LLM_FLAG_HELP
from simulations.cli.common import EXIT_OK, CliError, console_err, console_out, fmt_ci

__all__ = ["add_task_parser", "reasoning_line", "task_table"]

_LABELS = {"rmse": "RMSE", "mae": "MAE", "hr@1": "HR@1", "hr@5": "HR@5", "ndcg@1": "NDCG@1",
           "ndcg@5": "NDCG@5", "ndcg@10": "NDCG@10", "mrr": "MRR",
           "recall": "positive in candidates", "grounded": "grounded",
           "item_genre": "item genre", "history_title": "history title",
           "liked_genre": "liked genre", "words": "words", "distinct": "distinct"}
_NAMES = {"global_mean": "global mean", "user_mean": "user mean", "item_mean": "item mean",
          "bias": "bias (global + user + item)", "pop": "popularity", "ease": "EASE",
          "itemknn": "item-kNN", "bpr": "BPR",
          "random": "random"}
_TITLES = {"rp": "rating prediction", "sr": "sequential recommendation",
           "gen": "explanation generation"}


def task_table(res: dict[str, Any]) -> Table:
    """One row per model (the agent first), the task's metrics with 95% intervals, then
    failures, tokens (in/out) and seconds per instance."""
    cand = res.get("candidates", {})
    how = ""
    if cand:
        how = (f", 1 positive + {cand['negatives']} never-rated items "
               f"({cand['sampler'].split(',')[0]})" if cand["mode"] == "sampled"
               else f", top {cand['n']} of {cand['model']}")
    t = Table(title=f"{res['task']} ({_TITLES[res['task']]}) on {res['dataset']}{how}: "
              f"{res['samples']} x {res['users_per_sample']} test users, seed {res['seed']}"
              " (mean ± 95% interval over samples)")
    t.add_column("model", style="bold", no_wrap=True)
    metrics = list(next(iter(res["models"].values()))["metrics"])
    # Left to --json: recall when every positive is a candidate, and the liked-genre share
    # (it is in "grounded"), so the table fits 120 columns.
    hidden = {"liked_genre"} | ({"recall"} if cand.get("mode") == "sampled" else set())
    metrics = [m for m in metrics if m not in hidden]
    for m in metrics:
        t.add_column(_LABELS.get(m, m), justify="right")
    for col in ("failures", "tokens in/out", "s/inst."):
        t.add_column(col, justify="right")
    digits = 2 if res["task"] == "gen" else 3
    for name, r in res["models"].items():
        tok = r["tokens_per_instance"]
        label = f"{name} (agent)" if r["kind"] == "agent" else _NAMES.get(name, name)
        t.add_row(label, *(fmt_ci(r["metrics"][m], digits).replace(" ± ", "±") for m in metrics),
                  f"{r['failures']}/{r['instances']}",
                  f"{tok['input']:.0f}/{tok['output']:.0f}" if r["kind"] == "agent" else "-",
                  f"{r['seconds_per_instance']:.3f}",
                  style="bold" if r["kind"] == "agent" else None)
    return t


def reasoning_line(st: dict[str, Any]) -> str:
    """Rationales and queries of a reasoning role: prepared, reused, grounding, cost."""
    parts = []
    for kind, label in (("rationales", "rationales"), ("queries", "query sets")):
        made, reused = st.get(f"{kind}_prepared", 0), st.get(f"{kind}_reused", 0)
        if not made + reused:
            continue
        key = "rationale" if kind == "rationales" else "queries"
        text = (f"{label} {made} written, {reused} reused (hit rate "
                f"{st.get(f'{kind}_hit_rate', 0):.2f}), tokens in/out "
                f"{st.get(f'{key}_tokens_in', 0)}/{st.get(f'{key}_tokens_out', 0)}, "
                f"{st.get(f'{key}_ms', 0) / 1000:.1f} s")
        if kind == "rationales":
            text += (f"; citations {st.get('citations', 0)}, ungrounded "
                     f"{st.get('ungrounded', 0)} (all drafts: "
                     f"{st.get('draft_ungrounded', 0)}), failed drafts "
                     f"{st.get('draft_failures', 0)}")
        else:
            text += f"; failed {st.get('query_failures', 0)}"
        parts.append(text)
    return "; ".join(parts)


def _notes(res: dict[str, Any]) -> list[str]:
    out = []
    if res["task"] == "rp":
        reg = res["bias_regularisation"]
        out.append(f"bias model regularisation (user {reg['user']:g}, item {reg['item']:g}) "
                   "chosen on tuning users")
    if res["task"] == "gen":
        out.append("gen: MovieLens has no reviews, so MACRec's BLEU/ROUGE against the "
                   "user's review is not computable; grounded = mentions a genre of the item, "
                   "a title the user rated before the clock or a genre they liked; baselines "
                   "explain with a template (grounded by construction)")
    if res.get("candidates", {}).get("mode") == "model":
        out.append("positive in candidates = recall of the candidate model; a positive "
                   "outside the candidates counts as a miss in every metric")
    for name, r in res["models"].items():
        st = r.get("reasoning")
        if st:
            out.append(f"{name}: " + reasoning_line(st))
    if res.get("out"):
        out.append(f"answers.jsonl and result.json in {res['out']}")
    return out


def cmd_eval_task(a: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn

    import simulations.tasks.run as task_run
    from scenarios.loader import ScenarioError
    from simulations.cli.progress import make_progress
    from simulations.run.runner import DATA_ENV
    from simulations.tasks.suite import TaskOptions

    data = a.data or os.environ.get(DATA_ENV)
    if not data:
        raise CliError(f"eval task: --data DIR is required (or set {DATA_ENV})")
    opt = TaskOptions(task=a.task, users=a.users, samples=a.samples, negatives=a.negatives,
                      sampler=a.sampler,
                      candidates=a.candidates, per_user=a.per_user, seed=a.seed,
                      batch=a.batch, time_split=a.time_split)
    try:
        task_run.check_inputs(opt, team=a.team, llm=a.llm, replay=a.replay, out=a.out,
                              llm_threads=a.llm_threads, llm_ctx=a.llm_ctx,
                              llm_timeout=a.llm_timeout)
    except ScenarioError:  # already FILE:LINE: field: message
        raise
    except ValueError as e:
        raise CliError(f"eval task: {e}") from None
    progress = make_progress("[progress.description]{task.description}", BarColumn(),
                             MofNCompleteColumn(), TimeElapsedColumn(), console=console_err(),
                             disable=a.json)

    started: list[bool] = []

    def bar(name: str, total: int) -> Callable[[int], None]:
        # Started at the first bar: an error before it stays one line (stopping a
        # display off a terminal prints an empty line).
        if not started:
            progress.start()
            started.append(True)
        t = progress.add_task(name, total=total)
        return lambda n: progress.advance(t, n)

    try:
        res = task_run.run_eval_task(data, opt, team=a.team, llm=a.llm,
                                     llm_threads=a.llm_threads, llm_ctx=a.llm_ctx,
                                     llm_timeout=a.llm_timeout,
                                     replay=a.replay, out=a.out,
                                     progress=bar)
    finally:
        if started:
            progress.stop()
    if a.json:
        print(json.dumps(res, indent=2))
        return EXIT_OK
    out = console_out()
    out.print(task_table(res))
    for line in _notes(res):
        out.print(line)
    return EXIT_OK


def add_task_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add ``eval task`` through ``command(name, help)``."""
    # Not simulations.tasks.suite.TASKS: building the parser must stay import-light (scipy
    # probes for torch, and core installs run without it).
    p = command("task", "MACRec's offline tasks (rp, sr, gen) for a recommender role or "
                "team beside classic baselines, on test users")
    p.add_argument("--task", required=True, choices=["rp", "sr", "gen"],
                   help="rp: rating prediction (RMSE, MAE); sr: sequential recommendation "
                   "(HR@1, HR@5, NDCG@1/5/10, MRR); gen: explanation of a recommendation")
    p.add_argument("--team", metavar="FILE",
                   help="recommender role or team file (without it: baselines only)")
    p.add_argument("--data", help="data folder (else RECARENA_DATA)")
    p.add_argument("--users", type=int, default=20,
                   help="test users per sample (default: %(default)s)")
    p.add_argument("--samples", type=int, default=3,
                   help="disjoint samples of test users (default: %(default)s)")
    p.add_argument("--negatives", type=int, default=19,
                   help="sr/gen: never-rated items beside the positive, or with --candidates "
                   "one less than the candidates taken (default: %(default)s)")
    p.add_argument("--sampler", choices=["uniform", "popularity"], default="uniform",
                   help="sr/gen: how negatives are drawn among never-rated items: uniform, or "
                   "in proportion to their history popularity as in AgentCF "
                   "(default: %(default)s)")
    p.add_argument("--candidates", metavar="MODEL",
                   help="sr/gen: candidates are this classic model's top N unseen items "
                   "(random, pop, itemknn, ease, als, bpr) instead of sampled negatives")
    p.add_argument("--per-user", type=int, default=1,
                   help="rp: held-out ratings per user, the next ones (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="sampling seed (default: %(default)s)")
    p.add_argument("--batch", type=int, default=8,
                   help="requests per call of the agent (default: %(default)s)")
    p.add_argument("--time-split", choices=["global", "per_user"], default="global",
                   help="global: one time cutoff, leak-free; per_user: each user's earliest "
                   "80%% (leaks later ratings of others) (default: %(default)s)")
    p.add_argument("--llm", help=f"with --team: the model of roles without an llm: block: "
                   f"{LLM_FLAG_HELP}")
    p.add_argument("--llm-threads", type=int,
                   help="with --llm local: CPU threads of the local model")
    p.add_argument("--llm-ctx", type=int,
                   help="with --llm local: a fixed context window in tokens (default: "
                   "sized from the prompts, up to the model's trained length)")
    p.add_argument("--llm-timeout", type=float,
                   help="with --llm: seconds one model call may take (default 60)")
    p.add_argument("--replay", metavar="RUN_DIR_OR_CACHE",
                   help="with --team: answer LLM calls from an earlier --out (no network)")
    p.add_argument("--out", help="folder for answers.jsonl, result.json, the agent's trace "
                   "and LLM cache (must be new or empty)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(fn=cmd_eval_task)
