"""The report's "Robustness across user models" section, from ``robustness.json``.

``recarena compare SCENARIO --taste ...`` writes the per-pair verdicts into each family's run
folder (simulations/eval/compare_taste.py); a report of such a run shows them as a table: for
every pair of arms and metric, the mean difference over families, the verdict, the families
that flip it and those that do not separate it, and each family's difference (bold:
significant).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["robustness_section"]

_COLOURS = {"robust": "#d9f2d9", "depends on the user model": "#fde9c8",
            "not separated": "#eeeeee"}


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:+.3f}"


def _table(res: dict[str, Any]) -> str:
    fams = res["families"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in (
        "pair (b - a)", "metric", "mean diff", "verdict", "flipped by", "not separated by",
        *fams))
    rows = []
    for r in res["robustness"]:
        cells = [f"{r['b']} - {r['a']}", r["metric"], _f(r["mean_diff"]), r["verdict"],
                 ", ".join(r["flipped_by"]), ", ".join(r["unseparated_by"])]
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells)
        for f in fams:
            d = r["families"].get(f, {})
            txt = html.escape(_f(d.get("diff")))
            tds += f"<td>{f'<b>{txt}</b>' if d.get('significant') else txt}</td>"
        colour = _COLOURS.get(r["verdict"], "#fff")
        rows.append(f'<tr style="background:{colour}">{tds}</tr>')
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def robustness_section(run_dirs: Sequence[Path]) -> str:
    """The section's HTML (a note when no run carries verdicts)."""
    seen: set[str] = set()
    parts = []
    for d in run_dirs:
        p = Path(d) / "robustness.json"
        if not p.is_file():
            continue
        text = p.read_text(encoding="utf-8")
        if text in seen:  # the same comparison, reached from another family's run
            continue
        seen.add(text)
        res = json.loads(text)
        parts.append(
            f"<p>Arms {html.escape(', '.join(res['arms']))}, seed {res['seed']}, under the "
            f"taste families {html.escape(', '.join(res['families']))}. Robust: significant "
            f"(Holm over the metrics of the pair, alpha {res['alpha']}) with the same sign "
            "under every family; depends on the user model: some family reverses it or does "
            "not separate it; not separated: no family separates it. Bold: significant in "
            "that family.</p>" + _table(res))
    if not parts:
        return ('<p class="note">No verdicts across user models for these runs: run '
                "<code>recarena compare SCENARIO --taste all</code> and report one of its "
                "runs.</p>")
    return "".join(parts)
