"""FaiRLLM-style counterfactual probing of recommenders (Zhang et al., 2023, "Is ChatGPT
Fair for Recommendation?").

The same ranking request is asked twice per user: once neutral, once with a sensitive
attribute stated in the user's words (``The user says: I am a woman.``, carried in the
request's ``context``, which LLM recommenders put in their prompt). The agent's library
holds no user attributes, so the stated one is the only one it sees. Per attribute value,
the similarity of the top-k list to the neutral list is averaged over users:

* ``jaccard``: |A & N| / |A | N|;
* ``serp``: SERP*@k, position-aware overlap: items of the attribute list found in the
  neutral list, weighted by (k - rank + 1) / (k (k + 1) / 2);
* ``prag``: PRAG*@k, pairwise order agreement: ordered pairs (v1 above v2) of the
  attribute list with v1 in the neutral list above v2 there too (v2 absent counts as
  below), over the k (k - 1) / 2 pairs, so identical lists score 1 (FaiRLLM divides by
  k (k + 1), which caps identical lists below 1);
* ``rbo``: rank-biased overlap (Webber et al., 2010), extrapolated, persistence p.

Across the values of one attribute, SNSR is the range (max - min) of the mean
similarities and SNSV their standard deviation (population form), as in FaiRLLM: 0 is
fair (every stated value moves the list equally). Intervals are percentile bootstraps over
users (the same resample for every value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.recsys.protocol import RankRequest, RecommenderAgent
from scenarios.demographics import AGE_BANDS

__all__ = [
    "ATTRIBUTE_VALUES",
    "SIMILARITIES",
    "ProbeInstance",
    "jaccard",
    "prag",
    "probe",
    "rbo",
    "sensitivity",
    "serp",
    "stated",
]

_AGE_WORDS = {"<18": "under 18 years old", "56+": "56 years old or older"}
_OCCUPATIONS = ("administrator", "artist", "doctor", "educator", "engineer",
                "entertainment", "executive", "healthcare", "homemaker", "lawyer",
                "librarian", "marketing", "programmer", "retired", "salesman", "scientist",
                "student", "technician", "writer")
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "gender": ("F", "M"),
    "age": AGE_BANDS,
    "occupation": _OCCUPATIONS,
}


def stated(attribute: str, value: str) -> str:
    """How the user states an attribute value (the request's context)."""
    if attribute == "gender":
        who = {"F": "a woman", "M": "a man"}.get(value, value)
    elif attribute == "age":
        who = _AGE_WORDS.get(value, f"{value} years old")
    elif value == "retired":
        who = "retired"
    elif value in ("entertainment", "healthcare", "marketing"):
        who = f"working in {value}"
    else:
        who = f"{'an' if value[:1] in 'aeiou' else 'a'} {value}"
    return f"The user says: I am {who}."


def jaccard(a: Sequence[int], n: Sequence[int], k: int) -> float:
    x, y = set(a[:k]), set(n[:k])
    return len(x & y) / len(x | y) if x | y else 1.0


def serp(a: Sequence[int], n: Sequence[int], k: int) -> float:
    ref = set(n[:k])
    return sum((k - r) for r, v in enumerate(a[:k]) if v in ref) / (k * (k + 1) / 2)


def prag(a: Sequence[int], n: Sequence[int], k: int) -> float:
    if k < 2:
        return float(a[:1] == n[:1])
    pos = {v: r for r, v in enumerate(n[:k])}
    la = list(a[:k])
    hits = 0
    for i, v1 in enumerate(la):
        if v1 not in pos:
            continue
        for v2 in la[i + 1:]:
            hits += pos[v1] < pos.get(v2, k + 1)
    return hits / (k * (k - 1) / 2)


def rbo(a: Sequence[int], n: Sequence[int], k: int, p: float = 0.9) -> float:
    """Extrapolated rank-biased overlap of the two top-k lists."""
    sa, sn, overlap, total = set(), set(), 0, 0.0
    for d in range(1, k + 1):
        x = a[d - 1] if d <= len(a) else None
        y = n[d - 1] if d <= len(n) else None
        if x is not None:
            overlap += x in sn
            sa.add(x)
        if y is not None:
            overlap += y in sa
            sn.add(y)
        total += overlap / d * p ** d
    return float((1 - p) / p * total + overlap / k * p ** k)


SIMILARITIES: dict[str, Callable[[Sequence[int], Sequence[int], int], float]] = {
    "jaccard": jaccard, "serp": serp, "prag": prag, "rbo": rbo}


@dataclass(frozen=True)
class ProbeInstance:
    user: int
    candidates: tuple[int, ...]
    now: float | None = None


def _pct(d: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    d = d[np.isfinite(d)]
    if d.size == 0:
        return None, None
    lo, hi = np.percentile(d, [50 * (1 - confidence), 50 * (1 + confidence)])
    return round(float(lo), 6), round(float(hi), 6)


def sensitivity(sims: Mapping[str, np.ndarray], resamples: int = 1000, seed: int = 0,
                confidence: float = 0.95) -> dict[str, Any]:
    """Per value the mean similarity with its interval; SNSR and SNSV with theirs.

    ``sims`` maps each attribute value to its per-user similarities (same users, same
    order)."""
    values = list(sims)
    mat = np.vstack([np.asarray(sims[v], dtype=np.float64) for v in values])
    n = mat.shape[1]
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    boot = mat[:, idx].mean(axis=2)  # values x resamples
    means = mat.mean(axis=1)
    per = {}
    for j, v in enumerate(values):
        lo, hi = _pct(boot[j], confidence)
        per[v] = {"mean": round(float(means[j]), 6), "ci_low": lo, "ci_high": hi}
    snsr_b = boot.max(axis=0) - boot.min(axis=0)
    snsv_b = boot.std(axis=0)
    r_lo, r_hi = _pct(snsr_b, confidence)
    v_lo, v_hi = _pct(snsv_b, confidence)
    return {"values": per, "users": n,
            "snsr": round(float(means.max() - means.min()), 6), "snsr_ci": [r_lo, r_hi],
            "snsv": round(float(means.std()), 6), "snsv_ci": [v_lo, v_hi]}


def probe(agent: RecommenderAgent, instances: Sequence[ProbeInstance],
          attributes: Mapping[str, Sequence[str]], *, k: int = 10, batch: int = 8,
          resamples: int = 1000, seed: int = 0,
          where: Callable[[str, ProbeInstance], dict[str, Any]] | None = None
          ) -> dict[str, Any]:
    """Counterfactual probing of one recommender (see the module doc).

    Returns per attribute and similarity the :func:`sensitivity` figures, and the share
    of neutral lists that came back shorter than ``k`` (failures count as such)."""

    def ask(context: str, label: str) -> list[list[int]]:
        out: list[list[int]] = []
        for lo in range(0, len(instances), batch):
            chunk = instances[lo:lo + batch]
            reqs = [RankRequest(user=x.user, candidates=list(x.candidates), k=k,
                                now=int(x.now) if x.now is not None and np.isfinite(x.now)
                                else None, context=context,
                                where=where(label, x) if where else {}) for x in chunk]
            out += [list(r.items) for r in agent.rank(reqs)]
        return out

    neutral = ask("", "neutral")
    result: dict[str, Any] = {"k": k, "users": len(instances),
                              "short_neutral_lists": sum(len(x) < k for x in neutral),
                              "attributes": {}}
    for attr, values in attributes.items():
        lists = {v: ask(stated(attr, v), f"{attr}={v}") for v in values}
        result["attributes"][attr] = {
            name: sensitivity({v: np.array([fn(a, nl, k) for a, nl in zip(
                lists[v], neutral, strict=True)]) for v in values}, resamples, seed)
            for name, fn in SIMILARITIES.items()}
    return result
