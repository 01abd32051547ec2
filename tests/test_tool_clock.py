"""The simulation clock bounds the user tools: whatever a planner asks at any point of a
run, no tool shows what the user does after now.

A world is written to files twice with the same history and two different held-out
futures (every future interaction moved to another item, same time). LLM agents (a
scripted model) call user_history, user_profile and candidates on every page of two
rounds. The tool answers must (1) name no item that is only in the user's future, and
(2) be identical in both worlds: the future cannot change them.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.llm import FakeChatModel
from scenarios.loader import load_scenario
from simulations.record.trace import read_trace
from simulations.run.runner import prepare, run
from tools.dataset import Dataset, Interactions, global_split, load_dataset
from tools.synthetic import make_world

Transcript = list[tuple[str, str]]
CALLS = [("user_history", {"n": 20}), ("user_profile", {}),
         ("candidates", {"model": "ease", "n": 15})]


def _responder(transcript: Transcript) -> str:
    """ReAct: the three user tools in turn, then shortlist the first item; watch it."""
    prompt = transcript[-1][1]
    if "either a tool call" in prompt:
        done = prompt.count("Observation:")
        first = re.search(r"Items:\n- ([^:]+):", prompt)
        if done < len(CALLS):
            tool, args = CALLS[done]
            return json.dumps({"thought": "look", "action": tool, "input": args})
        return json.dumps({"thought": "ok", "action": "final",
                           "answer": {"shortlist": [first.group(1)] if first else [],
                                      "note": "first"}})
    if "Refer to items only by their id" in prompt:
        plan = re.search(r"the best candidates are ([^.]*)\.", prompt)
        keep = {x.strip() for x in plan.group(1).split(",")} if plan else set()
        ids = re.search(r"by their id \(([^)]*)\)", prompt)
        return json.dumps({"items": [{"item_id": i.strip(), "watch": i.strip() in keep,
                                      "rating": 4 if i.strip() in keep else None,
                                      "reason": "plan"}
                                     for i in (ids.group(1).split(",") if ids else [])],
                           "feeling": "fine", "leave": False})
    if "How satisfied" in prompt:
        return json.dumps({"satisfaction": 6, "reason": "fine"})
    return "fine"


def _write_inter(path: Path, ds: Dataset, inter: Interactions) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        for u, i, r, t in zip(inter.user, inter.item, inter.rating, inter.ts, strict=True):
            f.write(f"{ds.user_ids[u]}\t{ds.catalog.item_ids[i]}\t{r:g}\t{float(t)!r}\n")


def _write_items(path: Path, ds: Dataset) -> None:
    cat = ds.catalog
    with path.open("w", encoding="utf-8") as f:
        f.write("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n")
        for i in range(cat.n_items):
            f.write(f"{cat.item_ids[i]}\t{cat.titles[i]}\t{cat.years[i]}\t"
                    f"{' '.join(cat.genres[i])}\n")


def _moved_future(ds: Dataset, fraction: float, seed: int) -> Interactions:
    """The same interactions, but every held-out one on another item the user never had."""
    hist, fut = global_split(ds.interactions, fraction)
    rng = np.random.default_rng(seed)
    had: dict[int, set[int]] = {}
    for u, i in zip(ds.interactions.user, ds.interactions.item, strict=True):
        had.setdefault(int(u), set()).add(int(i))
    items = fut.item.copy()
    for k, u in enumerate(fut.user):
        free = [i for i in range(ds.n_items) if i not in had[int(u)]]
        items[k] = free[int(rng.integers(len(free)))]
        had[int(u)].add(int(items[k]))
    moved = Interactions(fut.user, items, fut.rating, fut.ts)
    # History first, then the future, as in a file sorted by time per user.
    return hist.concat(moved)


def _worlds(tmp: Path, ds: Dataset, copy_from: Path | None) -> tuple[Path, Path]:
    a, b = tmp / "a", tmp / "b"
    for folder, inter in ((a, ds.interactions), (b, _moved_future(ds, 0.8, 5))):
        folder.mkdir(parents=True)
        if copy_from is not None:
            for ext in ("item", "user"):
                shutil.copy(copy_from / f"{ds.name}.{ext}", folder / f"{ds.name}.{ext}")
        else:
            _write_items(folder / f"{ds.name}.item", ds)
        _write_inter(folder / f"{ds.name}.inter", ds, inter)
    return a, b


def _scenario(tmp: Path, data: Path, users: int) -> Path:
    role = {"kind": "role", "name": "looker",
            "brain": {"kind": "llm", "decision_mode": "structured"},
            "planner": {"kind": "reactive", "max_steps": 4},
            "tools": ["user_history", "user_profile", "candidates"]}
    body: dict[str, Any] = {
        "kind": "scenario", "name": "clock", "seed": 2,
        "dataset": {"source": "files", "path": str(data), "history_fraction": 0.8},
        "population": {"size": users, "roles": [{"role": role, "share": 1.0}]},
        "recommenders": [{"name": "ease", "model": "ease", "retrain": True}],
        "environment": {"kind": "feed", "items_per_page": 3, "max_pages": 3, "rounds": 2},
        "llm": {"backend": "fake", "model": "fake"},
    }
    p = tmp / f"{data.name}.yaml"
    p.write_text(json.dumps(body))
    return p


def _tool_answers(tmp: Path, data: Path, users: int) -> tuple[list[dict[str, Any]],
                                                                list[dict[str, Any]]]:
    out = tmp / f"run-{data.name}"
    # data= beats RECARENA_DATA, which the test session may set.
    res = run(prepare(load_scenario(_scenario(tmp, data, users)), data=str(data)), out,
              chat_model=FakeChatModel(responses=_responder))
    assert res.status == "completed", res
    events = list(read_trace(out))
    return [e for e in events if e["type"] == "plan" and e["step"] == "tool"], events


def _ids(text: str) -> set[str]:
    return set(re.findall(r"^([^\s:]+): ", text, flags=re.M))


def _check(tmp: Path, ds: Dataset, copy_from: Path | None, users: int) -> None:
    a, b = _worlds(tmp, ds, copy_from)
    calls_a, events = _tool_answers(tmp, a, users)
    calls_b, _ = _tool_answers(tmp, b, users)
    assert len(calls_a) >= users * 2 * len(CALLS)  # every user, both rounds
    assert {c["tool"] for c in calls_a} == {t for t, _ in CALLS}
    assert all(c["ok"] for c in calls_a)
    # (2) the same answers whatever the future holds.
    assert [(c["id"], c["observation"]) for c in calls_a] == \
        [(c["id"], c["observation"]) for c in calls_b]
    # (1) no item only the future knows, at any point: history and what the user watched
    # in this run before the call are the only items a history tool may name.
    data = load_dataset(a)
    hist, fut = global_split(data.interactions, 0.8)
    uid = {u: k for k, u in enumerate(data.user_ids)}
    ids = data.catalog.item_ids
    watched: dict[str, set[str]] = {}
    checked = 0
    for e in events:
        if e["type"] == "decision" and e.get("action") == "watch":
            watched.setdefault(e["user"], set()).add(e["item"])
        if e["type"] == "plan" and e["step"] == "tool" and e["tool"] != "candidates":
            u = uid[e["user"]]
            past = {ids[i] for i in hist.item[hist.user == u]}
            future_only = {ids[i] for i in fut.item[fut.user == u]} - past - \
                watched.get(e["user"], set())
            named = _ids(e["observation"])
            assert not named & future_only, (e["id"], named & future_only)
            if e["tool"] == "user_history":
                assert named and named <= past | watched.get(e["user"], set())
                checked += 1
            else:  # the profile counts only the past and this run's watches
                n = int(re.search(r"(\d+) movies watched so far", e["observation"]).group(1))
                assert n == len(past) + len(watched.get(e["user"], set()))
    assert checked >= users * 2
    assert any(watched.values())  # the run itself added to what the tools may show


def test_user_tools_never_show_the_future_synthetic(tmp_path: Path) -> None:
    ds = make_world(n_users=40, n_items=60, history_mean=15, seed=4)
    _check(tmp_path, ds, None, users=6)


@pytest.mark.slow
def test_user_tools_never_show_the_future_movielens(tmp_path: Path, ml100k: Path) -> None:
    ds = load_dataset(ml100k)
    _check(tmp_path, ds, ml100k, users=4)
