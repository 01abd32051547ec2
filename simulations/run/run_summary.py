"""What a finished run says about itself in summary.json and manifest.json, read from the
trace in one streamed pass (the trace is the record: a resumed run's figures are the same
as an uninterrupted one's) and from the LLM clients.

- ``metrics_of``: every arm's metrics (simulations/analysis/metrics.py), the decision
  failures, whether any page or turn was answered, and per arm the reasoning roles'
  rationales and query sets (``reasoning_of``);
- ``llm_summary``: calls, cache hits, retries, tokens and cost over every client;
- ``versions`` and ``git_commit``: what the manifest records of the code that ran.
"""

from __future__ import annotations

import platform
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from agents.llm import model_identity
from simulations.analysis.metrics import compute_metrics
from simulations.executors import ClientView
from simulations.record.trace import iter_trace

__all__ = ["ReasoningTally", "git_commit", "llm_summary", "metrics_of", "versions"]

# Trace event type -> the prefix of its figures (agents/recsys/reasoned.py writes both).
_KINDS = {"rationale": "rationales", "queries": "queries"}


class ReasoningTally:
    """Per arm: rationales and query sets prepared (written) and reused, with the cost of
    the prepared ones (a reuse costs nothing: it is the point of preparing ahead)."""

    def __init__(self) -> None:
        self._arms: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def add(self, ev: dict[str, Any]) -> None:
        kind = _KINDS.get(ev["type"])
        if kind is None:
            return
        arm = self._arms[str(ev.get("arm"))]
        if ev.get("reused"):
            arm[f"{kind}_reused"] += 1
            return
        arm[f"{kind}_prepared"] += 1
        arm[f"{kind}_failed"] += ev.get("failure") is not None
        arm[f"{kind}_tokens_in"] += ev.get("tokens_in") or 0
        arm[f"{kind}_tokens_out"] += ev.get("tokens_out") or 0
        arm[f"{kind}_seconds"] += (ev.get("volatile") or {}).get("seconds") or 0.0

    def summary(self) -> dict[str, dict[str, Any]]:
        """{arm: figures}, only arms with a reasoning role; counts as ints, seconds rounded,
        and the hit rate reused / (prepared + reused)."""
        out: dict[str, dict[str, Any]] = {}
        for name, c in sorted(self._arms.items()):
            row: dict[str, Any] = {}
            for kind in sorted(set(_KINDS.values())):
                prepared, reused = c[f"{kind}_prepared"], c[f"{kind}_reused"]
                if not prepared + reused:
                    continue
                for key in ("prepared", "reused", "failed", "tokens_in", "tokens_out"):
                    row[f"{kind}_{key}"] = int(c[f"{kind}_{key}"])
                row[f"{kind}_seconds"] = round(c[f"{kind}_seconds"], 3)
                row[f"{kind}_hit_rate"] = round(reused / (prepared + reused), 4)
            out[name] = row
        return out


def metrics_of(trace: Path) -> tuple[dict[str, Any], int, bool, dict[str, Any]]:
    """Metrics from the trace in one streamed pass, with the number of decision failures,
    whether any page or turn decision was answered, and the reasoning figures per arm."""
    failed = 0
    answered = False
    tally = ReasoningTally()

    def watch(events: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        nonlocal failed, answered
        for ev in events:
            t = ev["type"]
            if t == "decision_failure":
                failed += 1
            elif t in ("decision", "verdict"):
                answered = True
            elif t in _KINDS:
                tally.add(ev)
            yield ev

    metrics = compute_metrics(watch(iter_trace(trace)))
    return metrics, failed, answered, tally.summary()


def llm_summary(clients: Sequence[ClientView]) -> dict[str, Any] | None:
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
    out = {"python": platform.python_version()}
    for dist in ("recarena", "langgraph", "langchain-core", "numpy", "scipy", "implicit",
                 "pydantic", "chromadb", "networkx"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        r = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                           text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None
