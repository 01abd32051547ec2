"""The utility user's taste model: which item space "matches my taste" is measured in.

A role picks it under ``brain.taste``::

    brain:
      kind: utility
      taste: {family: ensemble}            # or ease, als, itemknn, bpr, puresvd
      params: {...}

Every family is a way of embedding items (and users) so that ``user taste . item`` ranks
the catalogue for that user (tools/taste.py builds them). Four of them are the shipped
recommenders' own models (EASE, ALS, item-kNN, BPR), so a simulated user with that taste
is a user that recommender describes well; PureSVD is a collaborative model that is not
an arm; ``ensemble`` averages the standardised similarities of its members, so no single
recommender's model defines the user. ``random`` and ``none`` are null models for
validity checks (a taste with no information; no taste at all, only popularity and the
crowd), not for studies. The brain's thresholds are calibrated per family on tuning users
(bench/tune_taste.py, scenarios/taste_calibration.json; docs/fidelity.md).
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

__all__ = ["DEFAULT_MEMBERS", "LEARNED_FAMILIES", "NULL_FAMILIES", "TASTE_FAMILIES",
           "TasteConfig", "TasteFamily"]

TasteFamily = Literal["ease", "als", "itemknn", "bpr", "puresvd", "ensemble", "random", "none"]
TASTE_FAMILIES: tuple[str, ...] = get_args(TasteFamily)
# The families a study may choose; the null ones exist to be compared against.
LEARNED_FAMILIES: tuple[str, ...] = ("ease", "als", "itemknn", "bpr", "puresvd", "ensemble")
NULL_FAMILIES: tuple[str, ...] = ("random", "none")
MemberFamily = Literal["ease", "als", "itemknn", "bpr", "puresvd"]
DEFAULT_MEMBERS: tuple[MemberFamily, ...] = ("ease", "als", "itemknn", "bpr", "puresvd")


class TasteConfig(BaseModel):
    """Which item space the utility user's taste lives in, and its settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: TasteFamily = Field(
        "ease", description="ease | als | itemknn | bpr | puresvd | ensemble "
        "(null models for validity checks: random, none).")
    factors: int | None = Field(
        None, ge=1, le=1024, description="Dimensions of the collaborative block (itemknn: "
        "of its low-rank cosine form); default: ease the item space's own (256), others 64.")
    genre_weight: float = Field(0.1, ge=0, description="Length of the genre block beside it.")
    l2: float | None = Field(None, gt=0, description="ease only: ridge penalty (default 500).")
    members: tuple[MemberFamily, ...] | None = Field(
        None, min_length=2, description="ensemble only: the families averaged "
        "(default ease, als, itemknn, bpr, puresvd).")

    @field_validator("l2")
    @classmethod
    def _l2_is_ease(cls, v: float | None, info: ValidationInfo) -> float | None:
        fam = info.data.get("family")
        if v is not None and fam != "ease":
            raise ValueError(f"a setting of the ease family, not {fam}")
        return v

    @field_validator("members")
    @classmethod
    def _members_of_ensemble(cls, v: tuple[str, ...] | None, info: ValidationInfo
                             ) -> tuple[str, ...] | None:
        fam = info.data.get("family")
        if v is not None and fam != "ensemble":
            raise ValueError(f"a setting of the ensemble family, not {fam}")
        if v is not None and len(set(v)) != len(v):
            raise ValueError("a family is named twice")
        return v

    @property
    def member_families(self) -> tuple[str, ...]:
        """The ensemble's members (its own family otherwise)."""
        if self.family != "ensemble":
            return (self.family,)
        return tuple(self.members or DEFAULT_MEMBERS)
