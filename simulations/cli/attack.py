"""``recarena eval attack``: a scenario with and without its attack, paired over seeds."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table

from agents.flags import LLM_FLAG_HELP
from simulations.cli.common import EXIT_OK, CliError, console_err, console_out, fmt_ci

__all__ = ["add_attack_parser", "attack_tables"]


def _ci(v: dict[str, Any] | None, digits: int = 3, sign: bool = False) -> str:
    if not v or v.get("mean") is None:
        return "-"
    s = fmt_ci(v, digits)
    return ("+" + s if sign and v["mean"] >= 0 else s).replace(" ± ", "±")


def _fake_users_tables(res: dict[str, Any], n_seeds: int) -> list[Table]:
    t = Table(title=f"fake users ({res['strategy']}, {res['intent']}, {res['fake_users']} "
              f"profiles): targets among real users, clean -> attacked (mean ± 95% "
              f"interval over {n_seeds} seed(s))")
    for col in ("arm", "attacked", "exposure clean", "exposure attacked", "Δ exposure",
                "HR@10 clean", "HR@10 attacked", "Δ HR@10"):
        t.add_column(col, justify="left" if col == "arm" else "right")
    for arm, r in res["arms"].items():
        hr = r["hr10"] or {}
        t.add_row(arm, "yes" if r["attacked"] else "no", _ci(r["exposure"]["clean"]),
                  _ci(r["exposure"]["attacked"]), _ci(r["exposure"]["diff"], sign=True),
                  _ci(hr.get("clean")), _ci(hr.get("attacked")),
                  _ci(hr.get("diff"), sign=True))
    d = Table(title="detectors: AUC on the injected profiles vs held-out real users")
    d.add_column("detector")
    d.add_column("AUC", justify="right")
    for name, label in (("pca", "PCA variable selection (unsupervised)"),
                        ("logistic", "logistic regression on profile features (supervised)")):
        d.add_row(label, _ci(res["detectors"][name]))
    return [t, d]


def _item_text_tables(res: dict[str, Any], n_seeds: int) -> list[Table]:
    defences = ", ".join(res["defences"]) or "no defence"
    t = Table(title=f"poisoned item text ({', '.join(res['families'])}; {defences}): "
              f"targets on pages, clean -> attacked (mean ± 95% interval over {n_seeds} "
              "seed(s))")
    for col in ("arm", "outcome", "clean", "attacked", "Δ"):
        t.add_column(col, justify="left" if col in ("arm", "outcome") else "right")
    labels = {"target_first": "page starts with a target", "target_shown": "page shows a "
              "target", "target_watched": "shown target watched"}
    for arm, outs in res["arms"].items():
        for o, r in outs.items():
            t.add_row(arm, labels.get(o, o), _ci(r["clean"]), _ci(r["attacked"]),
                      _ci(r["diff"], sign=True))
    return [t]


_KIND_TABLES: dict[str, Callable[[dict[str, Any], int], list[Table]]] = {
    "fake_users": _fake_users_tables,
    "item_text": _item_text_tables,
}


def attack_tables(result: dict[str, Any]) -> list[Table]:
    """One block of tables per attack kind, then the collateral change of every metric."""
    from simulations.analysis.metrics import labels_for

    n = len(result["seeds"])
    out: list[Table] = []
    for kind, res in result["attacks"].items():
        render = _KIND_TABLES.get(kind)
        if render is not None:
            out += render(res, n)
    col = result["collateral"]
    labels = labels_for(col["environment"])
    c = Table(title=f"collateral: attacked - clean, {result['population']} real users "
              f"(mean ± 95% interval over {n} seed(s); per-seed bootstrap intervals in "
              "--json)")
    metrics = list(next(iter(col["arms"].values()), {}))
    c.add_column("arm")
    for m in metrics:
        c.add_column(labels.get(m, m), justify="right")
    for arm, cells in col["arms"].items():
        c.add_row(arm, *(_ci(cells[m]["diff"], sign=True) for m in metrics))
    out.append(c)
    return out


def cmd_eval_attack(a: argparse.Namespace) -> int:
    from scenarios.loader import load_scenario
    from simulations.eval.attack import AttackError, run_attack_eval

    loaded = load_scenario(a.scenario, llm_flag=bool(a.llm))
    err = console_err()
    try:
        with err.status("running...") as status:
            result = run_attack_eval(
                loaded, seeds=a.seeds, seed=a.seed, users=a.users, data=a.data, llm=a.llm,
                out=Path(a.out) if a.out else None,
                on_run=lambda name: status.update(f"running {name}..."))
    except AttackError as e:
        raise CliError(f"eval attack: {e}") from None
    if a.json:
        print(json.dumps(result, indent=2))
        return EXIT_OK
    out = console_out()
    for t in attack_tables(result):
        out.print(t)
    out.print(f"runs and attack.json in {result['out']}")
    return EXIT_OK


def add_attack_parser(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add ``eval attack`` through ``command(name, help)``."""
    p = command("attack", "run a scenario with and without its attack: block (same seeds) "
                "and measure the damage, the detectors and the collateral change")
    p.add_argument("scenario", help="scenario YAML file with an attack: block")
    p.add_argument("--seeds", type=int, default=1,
                   help="seeds to run (the scenario's seed and the next ones; intervals "
                   "over seeds need at least 2) (default: %(default)s)")
    p.add_argument("--seed", type=int, help="first seed (default: the scenario's)")
    p.add_argument("--users", type=int, help="override the population size")
    p.add_argument("--data", help="data folder (else RECARENA_DATA, else dataset.path)")
    p.add_argument("--llm", help=f"model of LLM roles and of llm-written profiles: "
                   f"{LLM_FLAG_HELP}")
    p.add_argument("--out", help="folder for the run folders and attack.json (must be new "
                   "or empty; default: OUTPUT_DIR/attack-NAME-TIMESTAMP)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(fn=cmd_eval_attack)
