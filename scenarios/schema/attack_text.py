"""Poisoned item text and poisoned memories (issue 21, parts 2 and 3) and their defences.

Two sub-blocks of a scenario's ``attack:`` block:

- ``item_text`` (:class:`ItemTextAttack`): target items whose title or description carry
  injected text from the shipped corpus (``scenarios/data/injection_corpus.yaml``), and the
  defences the run applies to every item text (``delimit``, ``hierarchy``, ``filter``);
- ``memory`` (:class:`MemoryAttack`): how many poisoned and benign memories a compromised
  agent's store holds when ``bench/attack_injection.py`` measures retrieval and action
  change.

Both hang under :class:`scenarios.schema.attack.AttackConfig` beside ``fake_users``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from scenarios.schema.base import FrozenModel

__all__ = [
    "TEXT_DEFENCES",
    "TEXT_FAMILIES",
    "ItemTextAttack",
    "MemoryAttack",
    "TextDefence",
    "TextFamily",
    "TextPlacement",
]

TextFamily = Literal["instruction", "persuasive", "authority", "stuffing"]
TextPlacement = Literal["title", "description"]
TextDefence = Literal["delimit", "hierarchy", "filter"]
TEXT_FAMILIES: tuple[TextFamily, ...] = ("instruction", "persuasive", "authority", "stuffing")
TEXT_DEFENCES: tuple[TextDefence, ...] = ("delimit", "hierarchy", "filter")


class ItemTextAttack(FrozenModel):
    """Injected text in target items, and the defences every item text goes through."""

    targets: list[str] = Field(
        [], description="Catalogue ids of the target items; empty: `count` items drawn "
        "with the scenario's seed among the less popular half of the catalogue.")
    count: int = Field(1, ge=0, le=500, description="Targets drawn when `targets` is empty "
                       "(0: no poison, a clean run with the defences only).")
    families: list[TextFamily] = Field(
        list(TEXT_FAMILIES), min_length=1,
        description="Corpus families used; target i gets family i mod len(families).")
    placement: list[TextPlacement] = Field(
        ["description"], min_length=1,
        description="Where the text goes: the title (seen in every candidate list, "
        "search result and knowledge-graph answer) and/or the description (item_info, "
        "search texts, user pages).")
    defences: list[TextDefence] = Field(
        [], description="delimit: item text escaped and fenced as data, with a note in "
        "every system prompt; hierarchy: an instruction hierarchy in every system prompt; "
        "filter: instruction-like, role-spoofing and stuffed text neutralised.")

    @model_validator(mode="after")
    def _distinct(self) -> ItemTextAttack:
        for name in ("families", "placement", "defences", "targets"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name}: duplicate entries")
        return self


class MemoryAttack(FrozenModel):
    """A compromised agent's poisoned memories among benign ones."""

    poisoned: list[int] = Field([1, 5, 20], min_length=1,
                                description="Numbers of poisoned memories written.")
    benign: list[int] = Field([0, 10, 100], min_length=1,
                              description="Numbers of the victim's own benign memories.")
    store: Literal["long_term", "shared"] = Field(
        "long_term", description="long_term: the victim's own store; shared: a team's "
        "shared memory (lessons) that the compromised member writes to.")
    top_k: int = Field(3, ge=1, le=50, description="Memories a query recalls.")
    filter: bool = Field(False, description="Neutralise memory text with the item-text "
                         "filter before it is written.")

    @model_validator(mode="after")
    def _non_negative(self) -> MemoryAttack:
        if any(n < 0 for n in (*self.poisoned, *self.benign)):
            raise ValueError("poisoned and benign counts must be >= 0")
        return self
