"""The scenario's optional ``attack:`` block: what an attacker does to the simulated platform.

Each kind of attack is one optional sub-block, named by the field (``fake_users``: shilling
profiles injected into the recommenders' training data). Other kinds are added as sibling
optional fields of ``AttackConfig``; each names the arms it reaches (``arms: all`` or a list
of arm names), so which arm sees an attack is always explicit. ``recarena eval attack``
dispatches on the fields that are set (simulations/eval/attack.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from scenarios.schema.attack_text import ItemTextAttack, MemoryAttack
from scenarios.schema.base import FrozenModel

__all__ = [
    "SHILLING_STRATEGIES",
    "AttackArms",
    "AttackConfig",
    "BandwagonConfig",
    "DefenceConfig",
    "FakeUsersConfig",
    "SegmentConfig",
    "ShillingStrategy",
    "TargetsConfig",
    "attack_problems",
]

ShillingStrategy = Literal["random", "average", "bandwagon", "segment", "llm"]
SHILLING_STRATEGIES: tuple[ShillingStrategy, ...] = (
    "random", "average", "bandwagon", "segment", "llm")

AttackArms = Literal["all"] | list[str]


class TargetsConfig(FrozenModel):
    """The items an attack pushes (or buries): ids, or a rule resolved on the history."""

    items: list[str] | None = Field(
        None, min_length=1, description="Target item ids (as in the data).")
    least_popular: int | None = Field(
        None, ge=1, le=100, description="Rule: the k least popular items of the history "
        "that have at least min_ratings ratings (ties broken by item id).")
    min_ratings: int = Field(5, ge=1, description="With least_popular: the fewest ratings "
                             "a target must have.")

    @model_validator(mode="after")
    def _one_of(self) -> TargetsConfig:
        if (self.items is None) == (self.least_popular is None):
            raise ValueError("give exactly one of items or least_popular")
        return self


class BandwagonConfig(FrozenModel):
    """The bandwagon strategy's popular items, rated highest by every fake profile."""

    popular: int | None = Field(
        None, ge=1, le=200, description="The k most popular items of the history.")
    items: list[str] | None = Field(None, min_length=1, description="Or these item ids.")

    @model_validator(mode="after")
    def _one_of(self) -> BandwagonConfig:
        if (self.popular is None) == (self.items is None):
            raise ValueError("give exactly one of popular or items")
        return self


class SegmentConfig(FrozenModel):
    """The segment strategy's segment: items liked by the users the attacker wants."""

    items: list[str] | None = Field(None, min_length=1, description="Segment item ids.")
    genre: str | None = Field(None, min_length=1, description="Or the k most popular items "
                              "of this genre (as the catalogue spells it).")
    k: int = Field(10, ge=1, le=200, description="With genre: how many items.")

    @model_validator(mode="after")
    def _one_of(self) -> SegmentConfig:
        if (self.items is None) == (self.genre is None):
            raise ValueError("give exactly one of items or genre")
        return self


class DefenceConfig(FrozenModel):
    """Filter the profiles a detector flags out of the training data before every fit."""

    detector: Literal["pca", "logistic"] = Field(
        "logistic", description="pca: unsupervised PCA variable selection; logistic: "
        "logistic regression on profile features, trained on other injections.")
    flag_share: float = Field(0.05, gt=0, lt=0.5, description="Share of the training "
                              "profiles flagged (the most suspicious first) and dropped.")


class FakeUsersConfig(FrozenModel):
    """Shilling: fake user profiles injected into the training data of the named arms."""

    arms: AttackArms = Field(description="The arms whose recommenders train on the fake "
                             "profiles: all, or a list of arm names. Required: no default.")
    strategy: ShillingStrategy = Field(description="How profiles are made: random, average, "
                                       "bandwagon, segment or llm (written by the scenario's "
                                       "model).")
    count: int | None = Field(None, ge=1, le=100_000, description="How many fake users.")
    share: float | None = Field(None, gt=0, le=1, description="Or fake users as a share of "
                                "the real users with history.")
    targets: TargetsConfig
    intent: Literal["promote", "demote"] = "promote"
    filler: int = Field(30, ge=0, le=1000, description="Filler items rated per profile.")
    bandwagon: BandwagonConfig | None = None
    segment: SegmentConfig | None = None
    seed: int = Field(0, ge=0, description="Seed of the profiles (with the run's seed).")
    defence: DefenceConfig | None = Field(None, description="A detector filter in front of "
                                          "every fit of the attacked arms.")

    @model_validator(mode="after")
    def _check(self) -> FakeUsersConfig:
        if (self.count is None) == (self.share is None):
            raise ValueError("give exactly one of count or share")
        if self.strategy == "bandwagon" and self.bandwagon is None:
            raise ValueError("strategy bandwagon needs a bandwagon: block (popular or items)")
        if self.strategy == "segment" and self.segment is None:
            raise ValueError("strategy segment needs a segment: block (items or genre)")
        if self.bandwagon is not None and self.strategy != "bandwagon":
            raise ValueError(f"bandwagon: only for strategy bandwagon, not {self.strategy}")
        if self.segment is not None and self.strategy != "segment":
            raise ValueError(f"segment: only for strategy segment, not {self.strategy}")
        return self


class AttackConfig(FrozenModel):
    """What an attacker does; each field is one kind of attack (at least one is set)."""

    fake_users: FakeUsersConfig | None = None
    # Poisoned item text changes the platform's catalogue, which every arm shares (each
    # arm is compared with the clean twin run, never with another arm of the same run).
    item_text: ItemTextAttack | None = None
    # Measured outside runs (bench/attack_injection.py); a run refuses it at prepare.
    memory: MemoryAttack | None = None

    @model_validator(mode="after")
    def _some(self) -> AttackConfig:
        if not self.kinds():
            raise ValueError("an attack: block needs at least one kind of attack "
                             f"({', '.join(type(self).model_fields)})")
        return self

    def kinds(self) -> list[str]:
        """The names of the attack kinds that are set, in field order."""
        return [k for k in type(self).model_fields if getattr(self, k) is not None]


def attack_problems(attack: AttackConfig | None, arm_names: list[str]
                    ) -> list[tuple[tuple[str | int, ...], str]]:
    """Arms named by an attack that the scenario lacks, as (location, message)."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    if attack is None:
        return out
    for kind in attack.kinds():
        arms = getattr(getattr(attack, kind), "arms", "all")
        if arms == "all":
            continue
        if not arms:
            out.append((("attack", kind, "arms"), "name at least one arm, or say all"))
        for i, a in enumerate(arms):
            if a not in arm_names:
                out.append((("attack", kind, "arms", i),
                            f"unknown recommender {a!r}; known: {', '.join(arm_names)}"))
    return out
