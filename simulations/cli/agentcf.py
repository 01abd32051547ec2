"""``recarena eval agentcf``: item agents (AgentCF) trained on history, then ranked on sr
beside their ablation and the classic baselines."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.flags import LLM_FLAG_HELP
from simulations.cli.common import EXIT_OK, CliError, console_out

__all__ = ["add_agentcf_parser"]

_ROLE = Path(__file__).resolve().parents[2] / "scenarios" / "roles" / "item_agent.yaml"


def _training_lines(tr: dict[str, Any]) -> list[str]:
    out = []
    for key, label in (("control", "control"), ("control_fixed", "control, item updates off"),
                       ("llm", "LLM agents")):
        if key in tr:
            acc = ", ".join(f"{e['accuracy']:.3f}" for e in tr[key])
            line = f"{label}: pairwise training accuracy per epoch {acc}"
            if key == "llm":
                line += ("; reflections " + ", ".join(str(e["reflections"]) for e in tr[key])
                         + ", parse failures (not applied) "
                         + ", ".join(str(e["parse_failures"]) for e in tr[key])
                         + ", parse-failure rate "
                         + ", ".join(f"{e['parse_failure_rate']:.2f}" for e in tr[key])
                         + ", unreadable choices "
                         + ", ".join(str(e["choice_failures"]) for e in tr[key]))
            out.append(line + f" ({tr[key][0]['steps']} interactions per epoch)")
    if tr.get("store"):
        where = tr["store"]["folder"] or "in memory, not kept (no --out)"
        llm = ", the LLM agents' item: and user:" if "llm" in tr else ""
        out.append(f"descriptions: {tr['store']['records']} records in the memory store "
                   f"({where}): ctl/, ctl-fixed/{llm}")
    return out


def cmd_eval_agentcf(a: argparse.Namespace) -> int:
    from scenarios.loader import ScenarioError
    from simulations.cli.tasks import task_table
    from simulations.run.runner import DATA_ENV
    from simulations.tasks.agentcf import run_agentcf
    from simulations.tasks.suite import TaskOptions

    data = a.data or os.environ.get(DATA_ENV)
    if not data:
        raise CliError(f"eval agentcf: --data DIR is required (or set {DATA_ENV})")
    if not Path(a.role).is_file():
        raise CliError(f"eval agentcf: --role: no such file: {a.role}")
    opt = TaskOptions(task="sr", users=a.users, samples=a.samples, negatives=a.negatives,
                      sampler=a.sampler, seed=a.seed)
    try:
        res = run_agentcf(data, a.role, opt, train_users=a.train_users, llm=a.llm,
                          llm_train_users=a.llm_train_users, llm_threads=a.llm_threads,
                          out=a.out)
    except ScenarioError:
        raise
    except ValueError as e:
        raise CliError(f"eval agentcf: {e}") from None
    if a.json:
        print(json.dumps(res, indent=2))
        return EXIT_OK
    out = console_out()
    out.print(task_table(res))
    for line in _training_lines(res["training"]):
        out.print(line)
    out.print("rows: ctl = item-agent control (basic, +history, +retrieval), ctl-fixed = "
              "the same with item updates off; trained on history only")
    return EXIT_OK


def add_agentcf_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add ``eval agentcf`` through ``command(name, help)``."""
    p = command("agentcf", "item agents (AgentCF): train on history, rank sr beside the "
                "control with item updates off and the baselines, on test users")
    p.add_argument("--role", default=str(_ROLE),
                   help="item role file (kind: item; default: the shipped item_agent.yaml)")
    p.add_argument("--data", help="data folder (else RECARENA_DATA)")
    p.add_argument("--users", type=int, default=9, help="test users per sample (default: "
                   "%(default)s)")
    p.add_argument("--samples", type=int, default=5, help="disjoint samples of test users "
                   "(default: %(default)s)")
    p.add_argument("--negatives", type=int, default=9, help="never-rated items beside the "
                   "positive (default: %(default)s, AgentCF's 1 + 9)")
    p.add_argument("--sampler", choices=["uniform", "popularity"], default="popularity",
                   help="how negatives are drawn (default: %(default)s, AgentCF's)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    p.add_argument("--train-users", type=int, help="train the control on the first N users "
                   "with history (default: all)")
    p.add_argument("--llm", help=f"also train and rank with LLM agents: {LLM_FLAG_HELP}")
    p.add_argument("--llm-train-users", type=int, default=2, help="with --llm: tuning and "
                   "test users each whose last interactions the LLM agents train on "
                   "(default: %(default)s of each)")
    p.add_argument("--llm-threads", type=int, help="with --llm local: CPU threads")
    p.add_argument("--out", help="folder for answers.jsonl, result.json and (with --llm) "
                   "the training trace and memory store (must be new or empty)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(fn=cmd_eval_agentcf)
