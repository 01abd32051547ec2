"""Item agents during a run: each arm's own, taught by that arm's users between rounds.

Before the run (simulations/run/prepare.py) the deterministic control is trained once on
the history (``trained_items``). Every arm then starts from its own copy (``ArmItems``),
so one arm's population never teaches another arm's items. After a round, the arm's
choices (feed and social: watches rated at least the role's ``training.liked``;
conversation: accepted items) become AgentCF steps, oldest first: the chosen item is the
positive, the negative is one the user neither rated in history nor chose in the run,
drawn as in training (``agents.items.data.sample_negatives``, seeded by seed, user,
round and step). One pass of the control's loop (``agents.items.loop.train``: forward, then the
control's update rules) teaches users and items; the items it touched are described
again, and the run's shared ``ItemTexts`` (tools/data_model.py) shows this arm's texts in
every prompt (``tools.data_model.item_note``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.items.control import TagAgents
from agents.items.data import dataset_kg, sample_negatives, train_tags
from agents.items.loop import TrainStep, train
from scenarios.item_role import ItemRole
from tools.data_model import ItemTexts
from tools.dataset import Dataset, Interactions
from tools.item_tags import describe_tags
from tools.kg import KnowledgeGraph

__all__ = ["ArmItems", "ItemStart", "ItemUpdate", "trained_items"]

NOTE_TAGS = 8  # tags a prompt's "liked by ..." text names
_ROUND_STREAM = 71  # SeedSequence part of a round's negatives (training's is 67)


@dataclass(frozen=True)
class ItemStart:
    """The item agents every arm starts from, and what describing them needs."""

    agents: TagAgents  # trained on the history; never taught in the run (arms fork it)
    texts: tuple[str, ...]  # each item's text after that training
    shown: ItemTexts  # the run's texts as prompts read them (the catalogue's agent_texts)
    dataset: Dataset
    kg: KnowledgeGraph | None
    popularity: np.ndarray  # history interactions per item (the negatives' sampler)
    rated: list[np.ndarray]  # per user: the items rated in history, sorted
    seed: int

    @property
    def role(self) -> ItemRole:
        return self.agents.role


@dataclass(frozen=True)
class ItemUpdate:
    """One arm's item agents after one round."""

    steps: int  # choices learned from
    right: int  # of them, how many the user agent would have chosen (pairwise accuracy)
    changed: tuple[int, ...]  # items whose text changed, ascending
    before: tuple[str, ...]  # the texts of ``changed`` before the round
    after: tuple[str, ...]  # and after it


def _describe(ds: Dataset, kg: KnowledgeGraph | None, agents: TagAgents, item: int) -> str:
    return describe_tags(agents.item(item), ds.catalog, kg, n=NOTE_TAGS) or "nobody yet"


def trained_items(ds: Dataset, history: Interactions, role: ItemRole,
                  seed: int) -> ItemStart:
    """The control trained on every history user's interactions, with its texts."""
    users = sorted(set(history.user.tolist()))
    agents, _ = train_tags(ds, history, role, users, seed)
    kg = dataset_kg(ds)
    texts = tuple(_describe(ds, kg, agents, i) for i in range(ds.n_items))
    m = history.matrix(ds.n_users, ds.n_items)
    return ItemStart(agents, texts, ItemTexts(texts), ds, kg,
                     np.bincount(history.item, minlength=ds.n_items),
                     [m.indices[m.indptr[u]:m.indptr[u + 1]] for u in range(ds.n_users)],
                     seed)


class ArmItems:
    """One arm's item agents: its own copy of the trained control and of the texts."""

    def __init__(self, start: ItemStart) -> None:
        self.start = start
        self.agents = start.agents.fork()
        self.texts = list(start.texts)
        self.chosen: dict[int, set[int]] = {}  # user -> items chosen in this arm's run

    @property
    def liked(self) -> float:
        """A watch rated at least this teaches items (the role's ``training.liked``)."""
        return self.start.role.training.liked

    def show(self) -> None:
        """Make this arm's texts the ones every prompt reads."""
        self.start.shown.texts = tuple(self.texts)

    def _steps(self, round_: int, chosen: Sequence[tuple[int, int]]) -> list[TrainStep]:
        s = self.start
        available = np.flatnonzero(s.popularity > 0)
        out = []
        for n, (u, i) in enumerate(chosen):
            mine = self.chosen.setdefault(u, set())
            mine.add(i)
            pool = np.setdiff1d(available, np.union1d(s.rated[u], sorted(mine)))
            if not len(pool):
                continue
            rng = np.random.default_rng(np.random.SeedSequence(
                [s.seed, u, round_, n, _ROUND_STREAM]))
            negs, swaps = sample_negatives(rng, pool, s.popularity, 1,
                                           s.role.training.sampler)
            out.append(TrainStep(u, i, int(negs[0]), float(round_), bool(swaps[0])))
        return out

    def update(self, round_: int, chosen: Sequence[tuple[int, int]]) -> ItemUpdate:
        """Teach users and items this round's choices ((user, item), in the order they
        were made), describe the touched items again and show the new texts."""
        steps = self._steps(round_, chosen)
        (stats,) = train(self.agents, steps, 1)
        touched = sorted({i for st in steps for i in (st.positive, st.negative)})
        changed, before, after = [], [], []
        for i in touched:
            text = _describe(self.start.dataset, self.start.kg, self.agents, i)
            if text != self.texts[i]:
                changed.append(i)
                before.append(self.texts[i])
                after.append(text)
                self.texts[i] = text
        self.show()
        return ItemUpdate(stats.steps, stats.right, tuple(changed), tuple(before),
                          tuple(after))
