"""A run's poisoned item text and its defences, applied to the dataset before any work.

``prepare`` calls :func:`attacked_dataset` right after the split, so that everything a run
builds (the worlds, the library's BM25 and vector indexes, the knowledge-graph answers,
every prompt) reads the same poisoned and defended catalogue; the targets are drawn among
the less popular half of the *history* (nothing after the clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from scenarios.loader import LoadedScenario, ScenarioError, line_of
from scenarios.schema import Scenario
from tools.dataset import Dataset, Interactions
from tools.poison import Poisoned, pick_targets, poison_catalog
from tools.text_guard import defend_catalog, guard_note

__all__ = ["ItemTextAttackState", "attacked_dataset"]


@dataclass(frozen=True)
class ItemTextAttackState:
    """What a run's item-text attack did: the poisoned items, the defences, the items the
    filter changed, and the system-prompt note (empty without delimit/hierarchy)."""

    poisoned: tuple[Poisoned, ...] = ()
    defences: tuple[str, ...] = ()
    flagged: dict[int, list[str]] = field(default_factory=dict)
    note: str = ""

    def event(self, catalog_ids: tuple[str, ...]) -> dict[str, object]:
        """The trace's ``attack`` event fields (item ids, not indices)."""
        return {"kind": "item_text", "defences": list(self.defences),
                "targets": [catalog_ids[p.item] for p in self.poisoned],
                "families": [p.family for p in self.poisoned],
                "filtered": [catalog_ids[i] for i in sorted(self.flagged)]}


def attacked_dataset(loaded: LoadedScenario, scn: Scenario, ds: Dataset,
                     history: Interactions) -> tuple[Dataset, ItemTextAttackState | None]:
    """``ds`` with the scenario's poisoned item text and defences (unchanged without an
    ``attack.item_text`` block). Unknown target ids are a one-line scenario error."""
    cfg = scn.attack.item_text if scn.attack is not None else None
    if cfg is None:
        return ds, None
    cat = ds.catalog
    if cfg.targets:
        for n, iid in enumerate(cfg.targets):
            if iid not in cat.index:
                loc = ("attack", "item_text", "targets", n)
                raise ScenarioError(loaded.path, line_of(loaded.path, loc),
                                    f"attack.item_text.targets.{n}",
                                    f"no item {iid!r} in the dataset's catalogue")
        targets = [cat.index[i] for i in cfg.targets]
    else:
        popularity = ds.with_interactions(history).item_popularity
        targets = pick_targets(popularity, cfg.count, scn.seed)
    poisoned_cat, done = poison_catalog(cat, targets, cfg.families, cfg.placement, scn.seed)
    defended, flagged = defend_catalog(poisoned_cat, cfg.defences)
    state = ItemTextAttackState(tuple(done), tuple(cfg.defences), flagged,
                                guard_note(cfg.defences))
    return replace(ds, catalog=defended), state
