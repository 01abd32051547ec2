"""``recarena eval fairness``, ``eval explanations`` and ``eval privacy`` (docs/trust.md).

Every argument is checked before any work; errors are one line, exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table

from agents.flags import LLM_FLAG_HELP
from simulations.cli.common import EXIT_OK, CliError, console_err, console_out, fmt_ci

__all__ = ["add_trust_parsers"]

_ATTRS = ("gender", "age", "occupation")


def _f(v: Any, digits: int = 3, sign: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def _ci(lo: Any, hi: Any, sign: bool = False) -> str:
    return "-" if lo is None or hi is None else f"[{_f(lo, sign=sign)}, {_f(hi, sign=sign)}]"


def _data(a: argparse.Namespace, need: bool, why: str) -> str | None:
    from simulations.run.runner import DATA_ENV

    d = a.data or os.environ.get(DATA_ENV)
    if need and not d:
        raise CliError(f"{why}: --data DIR is required (or set {DATA_ENV})")
    if d and not Path(d).exists():
        raise CliError(f"--data: {d}: no such data folder")
    return d


def _csv(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def _llm_cfg(spec: str | None) -> Any:
    if spec is None:
        return None
    from agents.setup import missing_api_key, parse_llm_flag

    try:
        cfg = parse_llm_flag(spec, None)
    except ValueError as e:
        raise CliError(str(e)) from None
    problem = missing_api_key(cfg)
    if problem:
        raise CliError(f"--llm {spec}: {problem}")
    return cfg


def _check_agents(specs: list[str], flag: str, llm: str | None) -> None:
    from simulations.trust.agents import is_model

    for s in specs:
        if is_model(s):
            continue
        if not Path(s).is_file():
            raise CliError(f"{flag}: {s!r} is neither a model (random, pop, itemknn, ease, "
                           "als, bpr) nor a role or team file")
        from simulations.tasks.run import check_team

        try:
            check_team(Path(s), llm_given=llm is not None)
        except ValueError as e:
            raise CliError(str(e)) from None


def _workdir(out: str | None) -> contextlib.AbstractContextManager[Path]:
    from simulations.tasks.run import work_dir

    return work_dir(out, prefix="recarena-trust-")


# ----------------------------------------------------------------------------- fairness


def _fairness_tables(res: dict[str, Any]) -> list[Table]:
    from simulations.analysis.metrics import labels_for

    labels = labels_for(res["environment"])
    out = []
    if res["provider_side"]:
        t = Table(title=f"provider side ({res['users']} {res['reported_on']}; long tail: "
                  "outside the top 20% of items by training popularity)")
        for c in ("arm", "exposure Gini", "avg rec. popularity", "95% CI", "long-tail share",
                  "95% CI "):
            t.add_column(c, justify="left" if c == "arm" else "right")
        for p in res["provider_side"]:
            t.add_row(p["arm"], _f(p["gini"]), _f(p["arp"]["value"], 1),
                      _ci(p["arp"]["ci_low"], p["arp"]["ci_high"]),
                      _f(p["long_tail_share"]["value"]),
                      _ci(p["long_tail_share"]["ci_low"], p["long_tail_share"]["ci_high"]))
        out.append(t)
    if res["user_side"]:
        t = Table(title=f"user side: largest gap between groups (levels with >= "
                  f"{res['min_users']} users; 95% bootstrap CI)")
        for c in ("arm", "metric", "attribute", "highest", "lowest", "gap", "95% CI"):
            t.add_column(c, justify="right" if c in ("gap", "95% CI") else "left")
        for r in res["user_side"]:
            t.add_row(r["arm"], labels.get(r["metric"], r["metric"]), r["attribute"],
                      r["highest"] or "-", r["lowest"] or "-", _f(r["range"]),
                      _ci(r["ci_low"], r["ci_high"]))
        out.append(t)
    for name, p in (res.get("probes") or {}).items():
        t = Table(title=f"counterfactual probing of {name}: similarity to the neutral "
                  f"top-{p['k']} ({p['users']} test users); SNSR/SNSV with 95% CI")
        for c in ("attribute", "similarity", "mean over values", "SNSR", "95% CI", "SNSV",
                  "95% CI "):
            t.add_column(c, justify="left" if c in ("attribute", "similarity") else "right")
        for attr, sims in p["attributes"].items():
            for sim, s in sims.items():
                vals = [v["mean"] for v in s["values"].values()]
                t.add_row(attr, sim, _f(sum(vals) / len(vals)), _f(s["snsr"]),
                          _ci(*s["snsr_ci"]), _f(s["snsv"]), _ci(*s["snsv_ci"]))
        out.append(t)
    return out


def _probe_all(a: argparse.Namespace, data: str, out: Path | None) -> dict[str, Any]:
    from simulations.record.trace import TraceWriter
    from simulations.run.sampling import disjoint_samples
    from simulations.tasks.data import prepare_tasks
    from simulations.trust.agents import (
        classic_ranker,
        is_model,
        llm_factory,
        probe_instances,
        where_of,
    )
    from simulations.trust.probing import ATTRIBUTE_VALUES, probe
    from tools.dataset import load_dataset

    ds = load_dataset(data)
    setup = prepare_tasks(ds)
    users = disjoint_samples(setup.test, 1, a.probe_users, a.seed)[0]
    inst = probe_instances(setup, users, a.negatives, a.seed)
    attrs = {x: ATTRIBUTE_VALUES[x] for x in _csv(a.probe_attributes)}
    cfg = _llm_cfg(a.llm)
    results: dict[str, Any] = {}
    with _workdir(str(out / "probe") if out else None) as wd, contextlib.ExitStack() as st:
        trace = None
        for spec in _csv(a.probe):
            if is_model(spec):
                agent = classic_ranker(spec.strip().lower(), setup.history, ds, a.seed)
                name = spec.strip().lower()
            else:
                if trace is None:
                    trace = st.enter_context(TraceWriter(wd / "trace.jsonl"))
                agent = llm_factory(Path(spec), ds, seed=a.seed, run_dir=wd, llm=cfg,
                                    chat_model=None, emit=trace.emit)(setup.history)
                name = Path(spec).stem
            try:
                results[name] = probe(agent, inst, attrs, k=a.k, resamples=a.resamples,
                                      seed=a.seed, where=where_of(name, setup))
                i, o, c = agent.llm_usage()
                results[name]["llm_tokens"] = {"input": i, "output": o, "cost_usd": c}
            finally:
                agent.close()
    return results


def cmd_fairness(a: argparse.Namespace) -> int:
    from simulations.trust.fairness import FairnessOptions, fairness_of_run

    target = Path(a.target)
    is_scn = target.suffix in (".yaml", ".yml")
    if not target.exists():
        raise CliError(f"{target}: no such run folder or scenario file")
    if not is_scn and not (target / "trace.jsonl").exists():
        raise CliError(f"{target}: not a run folder (no trace.jsonl) or scenario file")
    if a.min_users < 1 or a.resamples < 10:
        raise CliError("--min-users must be >= 1 and --resamples >= 10")
    probes = _csv(a.probe)
    if probes:
        if a.probe_users < 2 or a.k < 1 or a.negatives < a.k:
            raise CliError("--probe-users must be >= 2, --k >= 1 and --negatives >= --k")
        bad = [x for x in _csv(a.probe_attributes) if x not in _ATTRS]
        if bad or not _csv(a.probe_attributes):
            raise CliError(f"--probe-attributes: expected some of {', '.join(_ATTRS)}")
        _check_agents(probes, "--probe", a.llm)
        _llm_cfg(a.llm)
    data = _data(a, bool(probes), "--probe")
    if a.out and Path(a.out).exists() and any(Path(a.out).iterdir()):
        raise CliError(f"--out: {a.out} exists and is not empty; choose another")
    run_dir = target
    if is_scn:
        from scenarios.loader import load_scenario
        from simulations.run.runner import check_api_keys, prepare, run

        loaded = load_scenario(target)
        check_api_keys(loaded, a.llm)
        out = Path(a.out or f"runs/fairness-{loaded.scenario.name}") / "run"
        with console_err().status("running the scenario..."):
            prep = prepare(loaded, seed=a.seed_run, users=a.users, data=a.data, llm=a.llm)
            run_dir = run(prep, out).run_dir
    attrs = None
    if data:
        from tools.dataset import load_dataset

        ds = load_dataset(data)
        attrs = {u: a_ for u, a_ in zip(ds.user_ids, ds.user_attrs, strict=False)}
    opt = FairnessOptions(min_users=a.min_users, resamples=a.resamples, seed=a.seed,
                          test_only=not a.all_users)
    res = fairness_of_run(run_dir, opt, attrs)
    if probes:
        assert data is not None
        with console_err().status("probing..."):
            res["probes"] = _probe_all(a, data, Path(a.out) if a.out else None)
    if a.out:
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "fairness.json").write_text(json.dumps(res, indent=2) + "\n")
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        for t in _fairness_tables(res):
            console_out().print(t)
        if res["attributes_missing"]:
            console_out().print("no " + ", ".join(res["attributes_missing"]) +
                                " in the trace (withheld or absent): give --data")
    return EXIT_OK


# ----------------------------------------------------------------------------- explanations


def cmd_explanations(a: argparse.Namespace) -> int:
    from simulations.trust.explain import EXPLAINED_MODELS

    data = _data(a, True, "eval explanations")
    assert data is not None
    models = _csv(a.models)
    for m in models:
        base, _, how = m.partition("+")
        if (how and how != "template") or base not in (*EXPLAINED_MODELS, "pop", "als", "bpr",
                                                       "random"):
            raise CliError(f"--models: {m!r}: expected itemknn, ease (contribution "
                           "explanations) or MODEL+template (any classic model)")
        if not how and base not in EXPLAINED_MODELS:
            raise CliError(f"--models: {base} has no contribution explanations; use "
                           f"{base}+template")
    teams = _csv(a.team)
    _check_agents(teams, "--team", a.llm)
    cfg = _llm_cfg(a.llm)
    if a.users < 1 or a.samples < 1 or a.negatives < 1:
        raise CliError("--users, --samples and --negatives must be at least 1")
    if a.candidates and a.candidates not in ("random", "pop", "itemknn", "ease", "als", "bpr"):
        raise CliError(f"--candidates: unknown model {a.candidates!r}")
    if a.out and Path(a.out).exists() and any(Path(a.out).iterdir()):
        raise CliError(f"--out: {a.out} exists and is not empty; choose another")
    from simulations.record.trace import TraceWriter
    from simulations.tasks.data import prepare_tasks
    from simulations.trust.agents import llm_factory, where_of
    from simulations.trust.explain import classic_factory, deletion_study
    from tools.dataset import load_dataset

    ds = load_dataset(data)
    setup = prepare_tasks(ds)
    res: dict[str, Any] = {"dataset": ds.name, "seed": a.seed, "models": {}}
    kw = {"users": a.users, "samples": a.samples, "negatives": a.negatives, "seed": a.seed,
          "candidates": a.candidates}
    err = console_err()
    with _workdir(a.out) as wd, contextlib.ExitStack() as st:
        for m in models:
            base, _, how = m.partition("+")
            with err.status(f"explaining {m}..."):
                f = classic_factory(base, ds.catalog, ds.n_users, seed=a.seed,
                                    explainer="template" if how else "contribution")
                res["models"][m] = deletion_study(f, setup, **kw)
        if teams:
            trace = st.enter_context(TraceWriter(wd / "trace.jsonl"))
            for team in teams:
                name = Path(team).stem
                f = llm_factory(Path(team), ds, seed=a.seed, run_dir=wd, llm=cfg,
                                chat_model=None, emit=trace.emit)
                with err.status(f"explaining {name}..."):
                    res["models"][name] = deletion_study(f, setup, where=where_of(name, setup),
                                                         **kw)
        if a.out:
            (wd / "explanations.json").write_text(json.dumps(res, indent=2) + "\n")
    if a.json:
        print(json.dumps(res, indent=2))
        return EXIT_OK
    t = Table(title=f"explanations on {ds.name}: deletion of cited vs random history items "
              "(rank drop of the recommended item; mean ± 95% interval over samples of "
              "test users)")
    for c in ("model", "citation precision", "cited", "drop (cited)", "drop (random)",
              "paired diff.", "pairs"):
        t.add_column(c, justify="left" if c == "model" else "right")
    for name, r in res["models"].items():
        mm = r["metrics"]
        t.add_row(name, fmt_ci(mm["citation_precision"]), fmt_ci(mm["cited_per_explanation"],
                                                                 2),
                  fmt_ci(mm["drop_cited"], 2), fmt_ci(mm["drop_random"], 2),
                  fmt_ci(mm["paired_difference"], 2), str(r["deletion_pairs"]))
    console_out().print(t)
    return EXIT_OK


# ----------------------------------------------------------------------------- privacy


def cmd_privacy(a: argparse.Namespace) -> int:
    from simulations.trust.privacy import privacy_of_run

    run_dir = Path(a.run)
    if not (run_dir / "trace.jsonl").exists():
        raise CliError(f"{run_dir}: not a run folder (no trace.jsonl)")
    if a.folds < 2 or a.seeds < 1 or a.permutations < 0:
        raise CliError("--folds must be >= 2, --seeds >= 1 and --permutations >= 0")
    data = _data(a, True, "eval privacy")
    assert data is not None
    from tools.dataset import load_dataset

    with console_err().status("attacking..."):
        res = privacy_of_run(run_dir, load_dataset(data), arms=_csv(a.arms) or None,
                             folds=a.folds, seeds=a.seeds, seed=a.seed,
                             test_only=not a.all_users, permutations=a.permutations)
    if a.json:
        print(json.dumps(res, indent=2))
        return EXIT_OK
    table = Table(title=f"attribute inference from watch histories ({res['users']} "
                    f"{res['reported_on']}; logistic regression, {res['folds']}-fold CV, "
                    "AUC with 95% bootstrap CI)")
    for c in ("attribute", "histories", "users", "AUC", "95% CI", "null 95% range", "p"):
        table.add_column(c, justify="left" if c in ("attribute", "histories") else "right")
    for attr, rows in res["attributes"].items():
        for src, r in rows.items():
            if not isinstance(r, dict) or "users" not in r:
                continue
            null = r.get("null") or {}
            table.add_row(attr, src, str(r["users"]), _f(r.get("auc")),
                          _ci(r.get("ci_low"), r.get("ci_high")),
                          _ci(null.get("lo"), null.get("hi")), _f(r.get("p")))
    console_out().print(table)
    return EXIT_OK


# ----------------------------------------------------------------------------- parsers


def add_trust_parsers(command: Callable[[str, str], Any]) -> None:
    """``eval fairness``, ``eval explanations`` and ``eval privacy``."""
    f = command("fairness", "fairness of a run: metrics by gender, age band and occupation "
                "with gaps; exposure Gini, popularity and long-tail share per recommender; "
                "counterfactual probing of recommenders (--probe)")
    f.add_argument("target", help="a run folder, or a scenario file to run first")
    f.add_argument("--data", help="data folder (else RECARENA_DATA): attributes of users "
                   "whose trace withheld them, and the probes' data")
    f.add_argument("--out", help="folder for fairness.json (and the scenario's run)")
    f.add_argument("--users", type=int, help="users of the scenario's run (scenario only)")
    f.add_argument("--seed-run", type=int, help="seed of the scenario's run (scenario only)")
    f.add_argument("--llm", help=f"model of LLM roles and probes: {LLM_FLAG_HELP}")
    f.add_argument("--min-users", type=int, default=10, help="levels smaller than this "
                   "stay out of the largest gap (default: %(default)s)")
    f.add_argument("--resamples", type=int, default=1000,
                   help="bootstrap resamples (default: %(default)s)")
    f.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of the "
                   "probes' users and candidates (default: %(default)s)")
    f.add_argument("--all-users", action="store_true",
                   help="report on every user of the run, not only test users")
    f.add_argument("--probe", help="comma-separated recommenders to probe: model names "
                   "(random, pop, ...) or role/team files (LLM; with --llm)")
    f.add_argument("--probe-users", type=int, default=20,
                   help="test users per probe (default: %(default)s)")
    f.add_argument("--probe-attributes", default="gender,age,occupation",
                   help="attributes stated in probes (default: %(default)s)")
    f.add_argument("--k", type=int, default=10, help="list length compared (default: "
                   "%(default)s)")
    f.add_argument("--negatives", type=int, default=19, help="never-rated candidates "
                   "beside the next liked item (default: %(default)s)")
    f.add_argument("--json", action="store_true", help="print the result as JSON")
    f.set_defaults(fn=cmd_fairness)

    e = command("explanations", "faithfulness of explanations by deletion (cited vs random "
                "history items) and citation precision, on test users")
    e.add_argument("--data", help="data folder (else RECARENA_DATA)")
    e.add_argument("--models", default="itemknn,ease,ease+template",
                   help="classic explainers: itemknn, ease (contributions) or "
                   "MODEL+template (default: %(default)s)")
    e.add_argument("--team", help="comma-separated LLM role or team files to explain too")
    e.add_argument("--llm", help=f"model of roles without an llm: block: {LLM_FLAG_HELP}")
    e.add_argument("--users", type=int, default=20, help="test users per sample "
                   "(default: %(default)s)")
    e.add_argument("--samples", type=int, default=3, help="disjoint samples "
                   "(default: %(default)s)")
    e.add_argument("--negatives", type=int, default=19, help="candidates beside the "
                   "positive (default: %(default)s)")
    e.add_argument("--candidates", help="a classic model whose top negatives+1 items are "
                   "the candidates (default: sampled never-rated items)")
    e.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    e.add_argument("--out", help="folder for explanations.json, the agents' trace and "
                   "LLM cache")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(fn=cmd_explanations)

    p = command("privacy", "attribute inference (gender, age band) from a run's simulated "
                "watch histories, beside the same users' real histories and a null")
    p.add_argument("run", help="a run folder")
    p.add_argument("--data", help="data folder with the users' attributes (else "
                   "RECARENA_DATA)")
    p.add_argument("--arms", help="comma-separated arms (default: all)")
    p.add_argument("--folds", type=int, default=5, help="CV folds (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=3, help="CV shuffles (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    p.add_argument("--permutations", type=int, default=19, help="label permutations of "
                   "the null (the test; 0: none) (default: %(default)s)")
    p.add_argument("--all-users", action="store_true",
                   help="attack every user of the run, not only test users")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(fn=cmd_privacy)
