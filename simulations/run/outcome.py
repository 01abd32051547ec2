"""What a run's manifest and summary record beside its trace: the code's versions and
commit, metrics in one streamed pass over the trace (the trace is the record: a resumed
run's figures are the same as an uninterrupted one's), the LLM usage line, how many item
descriptions each arm's item agents rewrote per round (scenario ``item_agents:``; absent
otherwise), and per arm the reasoning roles' rationales and query sets prepared and
reused (absent without such a role)."""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from agents.llm import model_identity
from simulations.analysis.metrics import compute_metrics
from simulations.executors import ClientView
from simulations.record.trace import iter_trace
from simulations.run.reasoning_tally import KINDS, ReasoningTally

__all__ = ["TraceOutcome", "git_commit", "llm_summary", "outcome_of", "trace_outcome",
           "versions"]


@dataclass
class TraceOutcome:
    """What one pass over the trace finds."""

    metrics: dict[str, Any]
    failed: int = 0  # decision failures
    answered: bool = False  # whether any page or turn decision was answered
    # arm -> round -> item descriptions changed (``item_update`` events), in trace order
    item_updates: dict[str, dict[str, int]] = field(default_factory=dict)
    # arm -> rationales / query sets prepared, reused, failed, their cost
    reasoning: dict[str, dict[str, Any]] = field(default_factory=dict)


def trace_outcome(trace: Path) -> TraceOutcome:
    """Metrics from the trace in one streamed pass, with the counts beside them."""
    return outcome_of(iter_trace(trace))


def outcome_of(events: Iterable[dict[str, Any]]) -> TraceOutcome:
    """``trace_outcome`` of a trace's events, in order (e.g. read as the run writes them:
    simulations/run/follow.py)."""
    out = TraceOutcome({})
    tally = ReasoningTally()

    def watch(events: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for ev in events:
            t = ev["type"]
            if t == "decision_failure":
                out.failed += 1
            elif t in ("decision", "verdict"):
                out.answered = True
            elif t == "item_update":
                out.item_updates.setdefault(str(ev["arm"]), {})[str(ev["round"])] = int(
                    ev["changed"])
            elif t in KINDS:
                tally.add(ev)
            yield ev

    out.metrics = compute_metrics(watch(events))
    out.reasoning = tally.summary()
    return out


def llm_summary(clients: Sequence[ClientView]) -> dict[str, Any] | None:
    """The run's LLM usage line of summary.json and the manifest (None: no LLM)."""
    if not clients:
        return None
    recs = [r for c in clients for r in c.records]
    totals = [c.usage.total for c in clients]
    first = clients[0]
    return {
        # The local backend runs a GGUF file whatever llm.model says: name the file.
        "backend": ",".join(sorted({c.cfg.backend for c in clients})),
        "model": ",".join(sorted({model_identity(c.cfg) for c in clients})),
        "mode": "replay" if first.replay else "record",
        "calls": len(recs), "cached_calls": sum(r.cached for r in recs),
        "retries": sum(max(r.attempts - 1, 0) for r in recs),
        "input_tokens": sum(t.input_tokens for t in totals),
        "output_tokens": sum(t.output_tokens for t in totals),
        "cost_usd": round(sum(t.cost_usd for t in totals), 6),
    }


def versions() -> dict[str, str]:
    """The manifest's versions: Python and the packages a run's results depend on."""
    out = {"python": platform.python_version()}
    for dist in ("recarena", "langgraph", "langchain-core", "numpy", "scipy", "implicit",
                 "pydantic", "chromadb", "networkx"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def git_commit() -> str | None:
    """The code's git commit, for the manifest (None outside a checkout)."""
    here = Path(__file__).resolve().parent
    try:
        r = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                           text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None
