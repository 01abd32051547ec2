"""The runs of an HTML report (simulations/report/html.py): what each run folder's trace says,
read once, and the plotted series (one per run and recommender)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulations.analysis.metrics import compute_metrics
from simulations.analysis.outcomes import outcomes_for, resolve
from simulations.analysis.user_stats import ArmTable, RunTables, arm_tables
from simulations.record.trace import read_trace

__all__ = ["PALETTE", "ReportError", "Run", "Series", "load_run", "series_of"]

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


class ReportError(ValueError):
    """A report cannot be built; the message is one line for the user."""


@dataclass
class Run:
    run_dir: Path
    label: str
    scenario: str
    seed: Any
    status: str
    environment: str
    dataset: str
    tables: RunTables
    metrics: dict[str, Any]
    reference: dict[str, Any] | None
    max_pages: int
    exits: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    ratings: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    new_items: set[str] = field(default_factory=set)
    released: dict[str, int] = field(default_factory=dict)  # item -> release round
    # arm -> round -> [impressions, impressions of new items, watches of new items]
    new_exposure: dict[str, dict[int, list[int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: [0, 0, 0])))
    tokens: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: [0.0, 0.0])))
    # What the environment's report sections read (its plug-in's ``report_data``).
    data: Any = None


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    run: Run
    arm: str

    @property
    def table(self) -> ArmTable:
        return self.run.tables.arms[self.arm]


def load_run(run_dir: Path) -> Run:
    try:
        events = read_trace(run_dir)
    except FileNotFoundError as e:
        raise ReportError(str(e)) from None
    start = next((e for e in events if e.get("type") == "run_start"), {})
    end = next((e for e in events if e.get("type") == "run_end"), None)
    status = end["status"] if end else ("truncated" if events.truncated else "incomplete")
    ref_path = run_dir / "reference.json"
    reference = json.loads(ref_path.read_text(encoding="utf-8")) if ref_path.is_file() else None
    env_cfg = (start.get("config") or {}).get("environment") or {}
    run = Run(run_dir, "", str(start.get("scenario") or run_dir.name), start.get("seed"),
               status, str(start.get("environment") or "feed"), str(start.get("dataset", "")),
               arm_tables(events), compute_metrics(events), reference,
               int(env_cfg.get("max_pages") or 0))
    for ev in events:
        t, arm = ev.get("type"), ev.get("arm")
        if t == "event" and ev.get("action") == "add_items":
            for i in ev.get("items", []):
                run.new_items.add(str(i))
                run.released.setdefault(str(i), int(ev["round"]))
        if arm is None:
            continue
        if t == "session_end" and ev.get("pages", 0) > 0:
            run.exits[arm][int(ev["pages"])] += 1
        elif t == "decision" and ev.get("action") in ("watch", "skip"):
            if ev["action"] == "watch" and ev.get("rating") is not None:
                run.ratings[arm][f"{float(ev['rating']):g}"] += 1
            cell = run.new_exposure[arm][int(ev["round"])]
            cell[0] += 1
            if str(ev.get("item")) in run.new_items:
                cell[1] += 1
                cell[2] += ev["action"] == "watch"
        elif t == "llm_call":
            agent = str(ev.get("user", "run"))
            acc = run.tokens[arm][agent]
            acc[0] += ev.get("input_tokens", 0) + ev.get("output_tokens", 0)
            acc[1] += ev.get("cost_usd", 0.0)
    plugin = outcomes_for(run.environment)
    if plugin is not None and plugin.report_data is not None:
        run.data = resolve(plugin.report_data)(events)
    return run


def series_of(runs: list[Run]) -> list[Series]:
    base = [f"{r.scenario} (seed {r.seed})" for r in runs]
    for r, b in zip(runs, base, strict=True):
        r.label = b if base.count(b) == 1 else f"{b} {r.run_dir.name}"
    out: list[Series] = []
    for r in runs:
        for arm in r.tables.arms:
            label = arm if len(runs) == 1 else f"{r.label} · {arm}"
            out.append(Series(label, PALETTE[len(out) % len(PALETTE)], r, arm))
    return out
