"""The deterministic item-agent control keeps its descriptions in the long-term store
(chromadb) like the LLM agents: rendered at each epoch's end, one record per agent under
the learner's prefix, readable after `recarena eval agentcf --out`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.items.control import TagAgents
from agents.items.store import Descriptions, open_store
from memory.embedders import HashEmbedder
from memory.long_term import LongTermStore
from scenarios.item_role import ItemRole
from simulations.tasks.agentcf import train_control, training_steps
from simulations.tasks.data import TaskSetup, prepare_tasks
from tools.dataset import load_dataset


@pytest.fixture(scope="module")
def setup(ml100k: Path) -> TaskSetup:
    return prepare_tasks(load_dataset(ml100k))


def _texts(store: LongTermStore, agent: str) -> list[str]:
    return [r.text for r in store.recent(agent, 50) if r.kind == "reflection"]


def test_control_writes_descriptions_to_the_store_at_each_epoch_end(
        setup: TaskSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    role = ItemRole.model_validate({"training": {"per_user": 3, "epochs": 2}})
    users = setup.tuning[:8]
    checked: list[int] = []
    with LongTermStore(None, HashEmbedder(64)) as store:
        holder: dict[str, Any] = {}

        def emit(kind: str, _id: str, **f: Any) -> None:
            # agentcf_epoch comes after the epoch's write: the store holds the state the
            # learner has now (rendered by the same function), not an older one.
            if kind != "agentcf_epoch":
                return
            ag = holder["ag"]
            for u in users:
                if ag.users[u]:
                    assert _texts(store, f"ctl/user:{u}") == [ag.desc.user(u)]
                    assert ag.desc.user(u) == ag._render_user(ag.users[u])
            checked.append(f["epoch"])

        orig = TagAgents.keep_in

        def keep_in(self: TagAgents, *a: Any) -> None:  # to reach the agents inside emit
            holder["ag"] = self
            orig(self, *a)

        monkeypatch.setattr(TagAgents, "keep_in", keep_in)
        ag, _ = train_control(setup, role, users, 0, store=store, emit=emit)
        assert checked == [1, 2]
        steps = training_steps(setup, users, role, 0)
        trained = {s.user for s in steps}
        changed = {s.positive for s in steps}
        assert ag.desc is not None
        # One description per item (seeded, then replaced by id) and per trained user.
        assert store.count() == setup.dataset.n_items + len(trained)
        for u in trained:
            assert _texts(store, f"ctl/user:{u}") == [ag.desc.user(u)]
            assert ag.desc.user(u).startswith("I like ")
        for i in changed:
            got = _texts(store, f"ctl/item:{i}")
            assert got == [ag.desc.item(i)] == [ag._render_item(ag.item(i))]
        # An item no step touched still has its seeded description.
        untouched = next(i for i in range(setup.dataset.n_items)
                         if i not in changed and all(s.negative != i for s in steps))
        assert _texts(store, f"ctl/item:{untouched}") == [
            ag._render_item(ag.seeds[untouched])]
        # What items learned shows in their descriptions: some changed item now reads
        # differently from its seed.
        assert any(ag.desc.item(i) != ag._render_item(ag.seeds[i]) for i in changed)


def test_ablation_items_keep_their_seeds_in_the_store_and_prefixes_stay_apart(
        setup: TaskSetup) -> None:
    role = ItemRole.model_validate({"training": {"per_user": 3, "item_updates": False}})
    users = setup.tuning[:5]
    with LongTermStore(None, HashEmbedder(64)) as store:
        off, _ = train_control(setup, role, users, 0, store=store, prefix="ctl-fixed/")
        on, _ = train_control(setup, role.model_copy(update={"training": role.training
                              .model_copy(update={"item_updates": True})}), users, 0,
                              store=store, prefix="ctl/")
        assert off.desc is not None and on.desc is not None
        for i in {s.positive for s in training_steps(setup, users, role, 0)}:
            assert _texts(store, f"ctl-fixed/item:{i}") == [
                off._render_item(off.seeds[i])]
            assert _texts(store, f"ctl/item:{i}") == [on.desc.item(i)]
        assert store.count("ctl/item:0") == store.count("ctl-fixed/item:0") == 1


def test_memory_store_none_keeps_no_descriptions(setup: TaskSetup) -> None:
    role = ItemRole.model_validate({"training": {"per_user": 2},
                                    "memory": {"store": "none"}})
    with LongTermStore(None, HashEmbedder(64)) as store:
        ag, _ = train_control(setup, role, setup.tuning[:3], 0, store=store)
        assert ag.desc is None and store.count() == 0


def test_batched_descriptions_write_on_flush_and_reads_flush_first() -> None:
    with LongTermStore(None, HashEmbedder(64)) as store:
        d = Descriptions(["a b c"], 1, user_default="none", store=store, prefix="p/",
                         batch=True)
        assert store.count() == 1  # the seeds at once
        d.set_item(0, "first text")
        d.set_item(0, "second text")
        d.remember_choice(0, 0, "liked it")
        assert _texts(store, "p/item:0") == ["a b c"]  # buffered
        assert d.recall(0, "liked", 3) == ["chose item 0: liked it"]  # flushed first
        assert _texts(store, "p/item:0") == ["second text"]
        assert d.flush() == 0


def test_eval_agentcf_leaves_control_descriptions_in_the_run_folder(
        ml100k: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_cli import cli

    out = tmp_path / "o"
    rc, text, err = cli(capsys, "eval", "agentcf", "--data", ml100k, "--users", "2",
                        "--samples", "1", "--train-users", "20", "--out", out, "--json")
    assert rc == 0, err
    res = json.loads(text)
    n_items = len(load_dataset(ml100k).catalog.item_ids)
    with open_store(out) as store:  # reopened from disk after the run
        assert store.count() == res["training"]["store"]["records"]
        ctl_users = [store.count(f"ctl/user:{u}") for u in range(100)]
        fixed_users = [store.count(f"ctl-fixed/user:{u}") for u in range(100)]
        assert sum(ctl_users) > 0 and sum(fixed_users) > 0
        got = store.recent(f"ctl/user:{ctl_users.index(1)}", 1)[0].text
        assert got.startswith("I like ")
        assert store.count() == 2 * n_items + sum(ctl_users) + sum(fixed_users)
