"""LLM-written shilling profiles: a model writes fake users' ratings as JSON.

Each profile is asked for once (with the project's bounded repair loop,
``agents.llm.ask_structured``): a list of ``{"item_id", "rating"}`` that must name
catalogue items, use the data's rating scale, include every target at the attack's
rating and hold ``filler`` other items. A profile the model cannot write validly is
counted as a failure and left out (never invented): the caller reports how many were
written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from agents.llm import LLMClient, ask_structured

__all__ = ["PROFILE_PROMPT", "ProfileAnswer", "RatedItem", "WrittenProfiles", "write_profiles"]

PROFILE_PROMPT = """You write the rating history of movie-site user number {k}.
Rate exactly {n_filler} movies from this list (ids before the colon), plus every target.
Ratings are whole numbers from {lo} to {hi}. Give each target the rating {target_rating}.
Make the other ratings look like an ordinary viewer's.

Targets: {targets}

Movies:
{catalogue}

Answer with JSON only: {{"ratings": [{{"item_id": "ID", "rating": 4}}]}}"""


class RatedItem(BaseModel):
    item_id: str
    rating: float


class ProfileAnswer(BaseModel):
    ratings: list[RatedItem] = Field(min_length=1)


@dataclass(frozen=True)
class WrittenProfiles:
    """Profiles as (item index, rating) lists, and how many asks failed."""

    profiles: list[list[tuple[int, float]]]
    failures: int
    errors: list[str]


def write_profiles(client: LLMClient, *, item_ids: Sequence[str], titles: Sequence[str],
                   pool: Sequence[int], targets: Sequence[int], count: int, filler: int,
                   lo: float, hi: float, target_rating: float, max_repairs: int = 1,
                   shown: int = 40) -> WrittenProfiles:
    """Ask the model for ``count`` profiles; validated against the catalogue.

    Args:
        client: The run's client for the attacker.
        item_ids, titles: The catalogue (index -> id, title).
        pool: Item indices offered as filler (the k-th profile sees a rotation of it).
        targets: Target item indices, rated ``target_rating``.
        count, filler: How many profiles; filler items per profile.
        lo, hi: The rating scale.
        shown: Filler candidates listed in the prompt.
    """
    index = {iid: i for i, iid in enumerate(item_ids)}
    target_ids = [item_ids[t] for t in targets]
    n_fill = min(filler, max(len(pool), 0))
    out: list[list[tuple[int, float]]] = []
    errors: list[str] = []
    for k in range(count):
        start = (k * shown) % max(len(pool), 1)
        offer = [pool[(start + j) % len(pool)] for j in range(min(shown, len(pool)))]
        allowed = {item_ids[i] for i in offer} | set(target_ids)
        prompt = PROFILE_PROMPT.format(
            k=k + 1, n_filler=n_fill, lo=f"{lo:g}", hi=f"{hi:g}",
            target_rating=f"{target_rating:g}",
            targets=", ".join(f"{item_ids[t]}: {titles[t]}" for t in targets),
            catalogue="\n".join(f"{item_ids[i]}: {titles[i]}" for i in offer))

        def check(ans: ProfileAnswer, allowed: set[str] = allowed) -> None:
            ids = [r.item_id for r in ans.ratings]
            unknown = [i for i in ids if i not in allowed]
            if unknown:
                raise ValueError(f"item ids not in the list: {', '.join(unknown[:5])}")
            if len(set(ids)) != len(ids):
                raise ValueError("an item is rated twice")
            bad = [r.rating for r in ans.ratings if not lo <= r.rating <= hi]
            if bad:
                raise ValueError(f"ratings must be from {lo:g} to {hi:g}")
            missing = [t for t in target_ids if t not in ids]
            if missing:
                raise ValueError(f"rate every target: missing {', '.join(missing)}")
            off = [r.item_id for r in ans.ratings
                   if r.item_id in target_ids and r.rating != target_rating]
            if off:
                raise ValueError(f"targets must be rated {target_rating:g}: {', '.join(off)}")
            if len(ids) - len(target_ids) < min(n_fill, 1):
                raise ValueError(f"rate {n_fill} movies besides the targets")

        res = ask_structured(client, [("user", prompt)], ProfileAnswer,
                             agent=f"attacker{k}", purpose="shilling_profile",
                             max_repairs=max_repairs, check=check)
        if res.value is None:
            errors.append(res.error or "no answer")
            continue
        out.append([(index[r.item_id], float(r.rating)) for r in res.value.ratings])
    return WrittenProfiles(out, count - len(out), errors)
