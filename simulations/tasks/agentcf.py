"""AgentCF on the sr task: train item and user agents on history, then rank beside the
baselines on the same instances.

Training interactions are each training user's last ``training.per_user`` liked history
ratings (before the global cutoff: nothing of anyone's future), in time order across
users; each gets one negative the user never rated in history (popularity-sampled by
default, AgentCF's) and a seeded presentation order. The trained agents then answer the
sr task through the recommender-agent protocol, one row per inference mode, beside the
control with item updates off (the ablation) and the classic baselines, all on the same
instances (simulations/tasks/suite.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agents.items import data
from agents.items.control import TagAgents
from agents.items.loop import EpochStats, TrainStep, train
from scenarios.item_role import ItemRole
from simulations.tasks.baselines import ClassicRecommender
from simulations.tasks.data import TaskSetup

__all__ = ["control_rankers", "item_seeds", "item_text", "train_control", "train_llm",
           "training_steps"]

Emit = Callable[..., None]
WORDS = 8  # tags a control description names in words (as the feed's item notes)


def training_steps(setup: TaskSetup, users: Sequence[int], role: ItemRole,
                   seed: int) -> list[TrainStep]:
    """The training interactions of ``users`` (agents/items/data.py), from the history."""
    return data.training_steps(setup.dataset, setup.history, users, role, seed)


def item_seeds(setup: TaskSetup, role: ItemRole) -> list[dict[str, float]]:
    """Every item's seeded tags (catalogue and knowledge graph)."""
    return data.item_seeds(setup.dataset, role)


def train_control(setup: TaskSetup, role: ItemRole, users: Sequence[int], seed: int, *,
                  seeds: Sequence[dict[str, float]] | None = None, emit: Emit | None = None,
                  store: Any = None, prefix: str = "ctl/",
                  ) -> tuple[TagAgents, list[EpochStats]]:
    """The control trained on ``users``' history interactions.

    With ``store`` (a long-term store; ignored with ``memory.store: none``) every user's
    and item's description, rendered in words, is a record of that store under
    ``prefix`` (``ctl/item:3``), written at each epoch's end (agents/items/control.py).
    """
    if store is None or role.memory.store == "none":
        return data.train_tags(setup.dataset, setup.history, role, users, seed,
                               seeds=seeds, emit=emit)
    ds = setup.dataset
    agents = TagAgents(role, seeds if seeds is not None else item_seeds(setup, role),
                       ds.n_users, data.history_fn(ds, setup.history, role.training.liked))
    keep_descriptions(agents, setup, store, prefix)
    stats = train(agents, training_steps(setup, users, role, seed), role.training.epochs,
                  emit=emit, ids=lambda i: ds.catalog.item_ids[i],
                  users=lambda u: ds.user_ids[u], on_epoch=agents.end_epoch)
    return agents, stats


def keep_descriptions(agents: TagAgents, setup: TaskSetup, store: Any, prefix: str) -> None:
    """Seed ``store`` with every item's rendered description and let ``agents`` write
    theirs there after each epoch (the same renderer for seeds and updates)."""
    from agents.items.store import Descriptions
    from tools.item_tags import describe_tags

    ds = setup.dataset
    kg = data.dataset_kg(ds)

    def item(t: dict[str, float]) -> str:
        return f"people who like {describe_tags(t, ds.catalog, kg, n=WORDS) or 'movies'}"

    def user(t: dict[str, float]) -> str:
        words = describe_tags(t, ds.catalog, kg, n=WORDS)
        return f"I like {words}" if words else data.USER_DEFAULT

    desc = Descriptions([item(agents.item(i)) for i in range(ds.n_items)], ds.n_users,
                        user_default=data.USER_DEFAULT, store=store,
                        ids=ds.catalog.item_ids, prefix=prefix, batch=True)
    agents.keep_in(desc, item, user)


def control_rankers(agents: TagAgents, name: str,
                    modes: Sequence[str] = ("basic",)) -> list[ClassicRecommender]:
    """One protocol recommender per inference mode (``NAME`` for basic, else
    ``NAME+MODE``)."""
    def scorer(mode: str) -> Callable[[int, np.ndarray], np.ndarray]:
        def score(u: int, items: np.ndarray) -> np.ndarray:
            # The request's clock is not passed to scorers: history mode reads every
            # history item, all of which are before any user's clock (global split).
            return np.asarray(agents.scores(u, [int(i) for i in items], None, mode))
        return score
    return [ClassicRecommender(name if m == "basic" else f"{name}+{m}", scorer=scorer(m))
            for m in modes]


def summary(stats: Sequence[EpochStats]) -> list[dict[str, Any]]:
    return [s.as_dict() for s in stats]


def item_text(setup: TaskSetup) -> Callable[[int], str]:
    """``Title (year), genres``: how the loop's prompts name an item."""
    cat = setup.dataset.catalog

    def line(i: int) -> str:
        title = f"{cat.titles[i]} ({cat.years[i]})" if cat.years[i] else cat.titles[i]
        return f"{title}, {', '.join(cat.genres[i]) or 'unclassified'}"
    return line


def train_llm(setup: TaskSetup, role: ItemRole, users: Sequence[int], seed: int,
              client: Any, *, store: Any = None, emit: Emit | None = None,
              seeds: Sequence[dict[str, float]] | None = None,
              on_step: Callable[[int], None] | None = None,
              ) -> tuple[Any, list[EpochStats]]:
    """The LLM agents (agents/items/llm_agents.py) trained on ``users``' interactions."""
    from agents.items.llm_agents import LLMItemAgents
    from agents.items.store import Descriptions

    ds = setup.dataset
    if role.memory.store == "none":
        store = None
    desc = Descriptions(data.seeded_descriptions(ds, role, seeds), ds.n_users,
                        user_default=data.USER_DEFAULT, store=store, ids=ds.catalog.item_ids)
    agents = LLMItemAgents(role, client, desc, item_text(setup),
                           data.history_fn(ds, setup.history, role.training.liked))
    steps = training_steps(setup, users, role, seed)
    stats = train(agents, steps, role.training.epochs, emit=emit,
                  ids=lambda i: ds.catalog.item_ids[i], users=lambda u: ds.user_ids[u],
                  on_step=on_step)
    return agents, stats


def run_agentcf(data: str, role_path: str, opt: Any, *, train_users: int | None = None,
                llm: str | None = None, llm_train_users: int = 2,
                llm_threads: int | None = None, out: str | None = None,
                chat_model: Any = None,
                progress: Callable[[str, int], Callable[[int], None]] = (
                    lambda name, total: lambda n: None)) -> dict[str, Any]:
    """``recarena eval agentcf``: train the control and its ablation (and with ``llm`` the
    LLM agents) on history, then evaluate them on sr beside the baselines.

    Raises:
        ValueError: Bad options, before any work. ScenarioError: a bad role file.
    """
    from pathlib import Path

    from agents.items.store import open_store
    from scenarios.item_role import load_item_role
    from simulations.tasks.data import prepare_tasks
    from simulations.tasks.suite import evaluate_task
    from tools.dataset import load_dataset

    opt.validate()
    if opt.task != "sr":
        raise ValueError("--task: item agents answer sr only")
    if out is not None and Path(out).exists() and any(Path(out).iterdir()):
        raise ValueError(f"--out: {out} exists and is not an empty folder; choose another")
    if train_users is not None and train_users < 1:
        raise ValueError(f"--train-users: must be at least 1, got {train_users}")
    role = load_item_role(role_path)
    llm_cfg = None
    if llm is not None:
        from agents.setup import missing_api_key, parse_llm_flag

        llm_cfg = parse_llm_flag(llm, role.llm)
        if chat_model is None and (problem := missing_api_key(llm_cfg)):
            raise ValueError(f"--llm {llm}: {problem}")
        if llm_threads is not None:
            llm_cfg = llm_cfg.model_copy(update={"n_threads": llm_threads})
    setup = prepare_tasks(load_dataset(data), split=opt.time_split)
    users = sorted(set(setup.history.user.tolist()))
    if train_users is not None:
        users = users[:train_users]
    seeds = item_seeds(setup, role)
    fixed_role = role.model_copy(update={"training": role.training.model_copy(
        update={"item_updates": False})})
    folder = Path(out) if out else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    # One store for every learner (prefixes keep them apart): with --out it is the run's
    # memory folder, where the descriptions can be read after the run.
    store = open_store(folder) if role.memory.store != "none" else None
    trace = None
    try:
        on, on_stats = train_control(setup, role, users, opt.seed, seeds=seeds, store=store,
                                     prefix="ctl/")
        off, off_stats = train_control(setup, fixed_role, users, opt.seed, seeds=seeds,
                                       store=store, prefix="ctl-fixed/")
        rows: list[Any] = (control_rankers(on, "ctl", ("basic", "history", "retrieval"))
                           + control_rankers(off, "ctl-fixed"))
        training: dict[str, Any] = {"control": [s.as_dict() for s in on_stats],
                                    "control_fixed": [s.as_dict() for s in off_stats],
                                    "train_users": len(users)}
        if llm_cfg is not None:
            from agents.llm import LLMClient
            from simulations.record.trace import TraceWriter

            client = LLMClient(llm_cfg, chat_model=chat_model)
            if folder is not None:
                trace = TraceWriter(folder / "trace.jsonl")
            few = (sorted(setup.tuning)[:llm_train_users]
                   + sorted(setup.test)[:llm_train_users])
            agents, stats = train_llm(setup, role, few, opt.seed, client, store=store,
                                      seeds=seeds, emit=trace.emit if trace else None)
            training["llm"] = [s.as_dict() for s in stats]
            training["llm_train_users"] = len(few)
            rows = [*(agents.with_mode(m) for m in ("basic", "history", "retrieval")), *rows]
        if store is not None:  # every learner's descriptions (and the LLM users' choices)
            training["store"] = {"records": store.count(), "folder": (
                str(folder / "memory") if folder else None)}
        res = evaluate_task(setup, opt, more=rows, out=folder,
                            info={"item_role": role_path, "llm": llm}, progress=progress)
    finally:
        if trace is not None:
            trace.close()
        if store is not None:
            store.close()
    res["training"] = training
    if out is not None:
        import json

        (Path(out) / "result.json").write_text(json.dumps(res, indent=2) + "\n",
                                               encoding="utf-8")
    return res
