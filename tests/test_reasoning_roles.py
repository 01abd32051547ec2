"""Reasoning recommenders (issue 20): the rationale control and its ablation, the query
control, the reasoning and query LLM roles with the fake model (grounding counts,
best-of-n judges, the rationale cache and its trace), schema errors, and the roles in the
sr task and a feed scenario."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from agents.library import Library
from agents.llm import FakeChatModel, plausible_reply
from agents.recsys.factory import AgentEnv, agent_from
from agents.recsys.protocol import RankRequest
from agents.recsys.queries import fuse, rules_queries
from agents.recsys.rationale import ItemSims, ground, rule_scores, rules_rationale
from scenarios.loader import load_scenario
from scenarios.recsys import ReasoningConfig, RecommenderRole, RuleRankerConfig
from scenarios.recsys_loader import LoadedRecRole, load_recommender_role
from scenarios.schema import LLMConfig
from simulations.cli.main import main
from simulations.record.trace import read_trace
from simulations.run.runner import prepare, run
from tests.shipped import shipped
from tools.dataset import Catalog, Interactions
from tools.world import World

ROLES = ("reasoner", "gpt4rec", "rationale_control", "rationale_ablation", "query_control")

# ------------------------------------------------------------------ a tiny world
# Items 0-5; user 0 liked 0 (Drama) and 1 (Drama, Romance), disliked 2 (Comedy), and rates
# 3 (Drama) 5/5 at t=50 (after the clock of 40 used below: the future). Users 1-3 tie
# item 1 to item 4 (co-watched) and item 2 to item 5.
CAT = Catalog(item_ids=("10", "11", "12", "13", "14", "15"),
              titles=("Quiet River", "Long Summer Night", "Big Laugh", "Late Rain",
                      "Summer Night Again", "Laugh Harder"),
              genres=(("Drama",), ("Drama", "Romance"), ("Comedy",), ("Drama",),
                      ("Romance",), ("Comedy",)),
              years=("1990", "1991", "1992", "1993", "1994", "1995"))
ROWS = [(0, 0, 5, 10), (0, 1, 4, 20), (0, 2, 1, 30), (0, 3, 5, 50),
        (1, 1, 5, 1), (1, 4, 4, 2), (2, 1, 4, 3), (2, 4, 5, 4), (3, 2, 4, 5), (3, 5, 4, 6),
        (3, 0, 3, 7)]


def _library() -> Library:
    u, i, r, t = (np.array(c) for c in zip(*ROWS, strict=True))
    inter = Interactions(u.astype(np.int32), i.astype(np.int32), r.astype(np.float32),
                         t.astype(np.float64))
    pop = np.bincount(inter.item, minlength=6).astype(np.float64)
    mean = np.array([4.0, 4.3, 2.5, 5.0, 4.5, 4.0])
    world = World(catalog=CAT, embeddings=np.eye(6), item_mean=mean, popularity=pop,
                  global_mean=4.0)
    return Library(world=world, history=inter, user_ids=("u0", "u1", "u2", "u3"), seed=0,
                   embedder="hash")


def _sims(lib: Library) -> ItemSims:
    return ItemSims(lib.history, lib.n_users, lib.n_items)


def test_rule_rationale_is_clock_bounded_and_exact() -> None:
    lib = _library()
    past = lib.histories().ratings(0, 40)  # item 3 (t=50) is the future
    r = rules_rationale(CAT, _sims(lib), past, ReasoningConfig(
        writer="rules", top_genres=2, recent_likes=5, neighbours=2))
    assert r.cited == (1, 0)  # liked items, most recent first; 2 was disliked
    assert r.genres == ("Drama", "Romance")
    # Item-kNN neighbours of the likes (4 was co-watched with 1), never an item the user
    # rated before the clock. (Similarities come from the library's past; in tasks and
    # scenarios that is before every clock, here it holds the user's own future row.)
    assert 4 in r.neighbours and not {0, 1, 2} & set(r.neighbours)
    assert "Late Rain" not in r.text.split("also watched")[0]  # not cited as a like
    assert r.text.startswith("Likes Drama, Romance (2 of 3 ratings were 4-5).")


def test_grounding_counts_cited_ids_and_free_text_titles() -> None:
    lib = _library()
    past = lib.histories().ratings(0, 40)
    # Structured: 10 and 11 are history; 13 is the user's future; 99 is no item.
    cited, bad, genres = ground(CAT, past, "They love drama.", ["10", "11", "13", "99"])
    assert cited == [0, 1] and bad == ["13", "99"] and genres == ["Drama"]
    # Free text: a history title is a citation; a long title outside the history is not.
    cited, bad, genres = ground(CAT, past, "Liked Quiet River; try Summer Night Again, "
                                "a romance.")
    assert cited == [0] and bad == ["Summer Night Again (1994)"] and genres == ["Romance"]


def test_rule_ranker_with_and_without_the_rationale() -> None:
    lib = _library()
    sims = _sims(lib)
    past = lib.histories().ratings(0, 40)
    r = rules_rationale(CAT, sims, past, ReasoningConfig(writer="rules", top_genres=1,
                                                         recent_likes=5, neighbours=0))
    cfg = RuleRankerConfig(prior="item_mean", genre_weight=1.0, neighbour_weight=0.0)
    cands = [3, 4, 5]
    # Ablation: the prior alone, (mean - 1) / 4.
    assert np.allclose(rule_scores(CAT, sims, lib.world.popularity, lib.world.item_mean,
                                   cands, None, cfg), [1.0, 0.875, 0.75])
    # With the rationale (top genre Drama): item 3 is all Drama.
    assert np.allclose(rule_scores(CAT, sims, lib.world.popularity, lib.world.item_mean,
                                   cands, r, cfg), [2.0, 0.875, 0.75])
    nb = RuleRankerConfig(prior="none", genre_weight=0.0, neighbour_weight=1.0)
    s = rule_scores(CAT, sims, lib.world.popularity, lib.world.item_mean, cands, r, nb)
    want = sims.sim[np.ix_(cands, [1, 0])].max(axis=1)
    assert np.allclose(s, want) and s[1] > 0  # 4 was co-watched with 1


def test_rule_queries_and_fusion() -> None:
    lib = _library()
    past = lib.histories().ratings(0, 40)
    assert rules_queries(CAT, past, 3) == ["Drama Romance", "Long Summer Night",
                                           "Quiet River"]
    hits = [[(4, 2.0), (1, 1.0)], [(1, 3.0)]]
    assert np.allclose(fuse([4, 1, 5], hits, "rrf"), [1 / 61, 1 / 62 + 1 / 61, 0.0])
    assert np.allclose(fuse([4, 1, 5], hits, "score"), [1.0, 1.5, 0.0])


# ------------------------------------------------------------------ roles as agents


def _agent(role: RecommenderRole, tmp: Path, reply: Callable[..., str] | None = None,
           events: list[dict[str, Any]] | None = None) -> Any:
    def emit(type_: str, id_: str, **fields: Any) -> None:
        if events is not None:
            events.append({"type": type_, "id": id_, **fields})

    fake = FakeChatModel(responses=reply or plausible_reply)
    env = AgentEnv(library=_library(), seed=0, run_dir=tmp,
                   llm=LLMConfig(backend="openai", model="fake") if role.needs_llm else None,
                   chat_model=fake, emit=emit)
    return agent_from(LoadedRecRole(role, None), env), fake


def _req(user: int = 0, now: int = 40, cands: tuple[int, ...] = (3, 4, 5),
         **where: Any) -> RankRequest:
    return RankRequest(user=user, candidates=list(cands), k=3, now=now, where=where)


def test_rule_roles_need_no_model_and_rank_as_their_functions(tmp_path: Path) -> None:
    ctrl = load_recommender_role(shipped("roles", "rationale_control.yaml"))
    abl = load_recommender_role(shipped("roles", "rationale_ablation.yaml"))
    assert not ctrl.needs_llm and not abl.needs_llm and ctrl.rules == abl.rules
    a, fake = _agent(ctrl, tmp_path / "c")
    b, _ = _agent(abl, tmp_path / "a")
    lib = _library()
    r = rules_rationale(CAT, _sims(lib), lib.histories().ratings(0, 40), ctrl.reasoning)
    for agent, rat in ((a, r), (b, None)):
        s = rule_scores(CAT, _sims(lib), lib.world.popularity, lib.world.item_mean,
                        [3, 4, 5], rat, ctrl.rules)
        want = [[3, 4, 5][j] for j in np.argsort(-s, kind="stable")]
        assert agent.rank([_req()])[0].items == want
    assert fake.calls == 0
    a.close()
    b.close()


def test_reasoner_cache_reuses_rationales_per_user_clock_and_round(tmp_path: Path) -> None:
    role = load_recommender_role(shipped("roles", "reasoner.yaml"))
    events: list[dict[str, Any]] = []
    agent, fake = _agent(role, tmp_path, events=events)
    agent.rank([_req(round=1), _req(round=1, cands=(5, 4))])
    assert fake.calls == 2 + 2  # two drafts, then two rankings
    agent.rank([_req(round=1, cands=(4, 3))])  # a later request, same key: reused
    assert fake.calls == 5  # its ranking only
    agent.rank([_req(round=2)])  # another round: written again
    rats = [e for e in events if e["type"] == "rationale"]
    assert [e["reused"] for e in rats] == [False, True, True, False]
    first = rats[0]
    assert first["user"] == "u0" and len(first["drafts"]) == role.reasoning.best_of
    # The fake cites the last two history ids before the clock: 11 and 12, both grounded.
    assert first["drafts"][0]["cited"] == ["11", "12"] and first["drafts"][0]["ungrounded"] == []
    assert first["tokens_in"] > 0 and first["volatile"]["seconds"] >= 0
    st = agent.stats()
    assert st["rationales_prepared"] == 2 and st["rationales_reused"] == 2
    assert st["rationales_hit_rate"] == 0.5 and st["citations"] == 4
    # The ranking prompt carries the chosen rationale.
    rank_prompts = [t[-1][1] for t in fake.transcripts if '"ranking": ["ID"' in t[-1][1]]
    assert rank_prompts and all("they favour dramas" in p for p in rank_prompts)
    agent.close()


def test_a_later_request_with_the_same_trace_base_still_counts_as_reuse(
        tmp_path: Path) -> None:
    # The sr task names a request's trace base after model, sample and user only: the
    # same user asked again (another sampler, same clock) must reuse, and say so.
    role = load_recommender_role(shipped("roles", "reasoner.yaml"))
    events: list[dict[str, Any]] = []
    agent, _ = _agent(role, tmp_path, events=events)
    agent.rank([_req(base="reasoner/sr/s0/u0")])
    agent.rank([_req(base="reasoner/sr/s0/u0", cands=(5, 3))])
    assert [e["reused"] for e in events if e["type"] == "rationale"] == [False, True]
    assert agent.stats()["rationales_reused"] == 1
    agent.close()


def test_reuse_off_writes_every_time(tmp_path: Path) -> None:
    base = load_recommender_role(shipped("roles", "reasoner.yaml"))
    role = base.model_copy(update={"reasoning": base.reasoning.model_copy(
        update={"reuse": False, "best_of": 1})})
    agent, _ = _agent(role, tmp_path)
    agent.rank([_req(round=1)])
    agent.rank([_req(round=1)])
    assert agent.stats()["rationales_prepared"] == 2 and "rationales_reused" not in agent.stats()
    agent.close()


def _drafts(cite: dict[int, list[str]], judge: dict[str, int] | None = None
            ) -> Callable[[list[tuple[str, str]]], str]:
    """A fake whose draft k cites ``cite[k]``; the judge scores by a word of the draft."""
    import json
    import re

    def reply(transcript: list[tuple[str, str]]) -> str:
        text = transcript[-1][1]
        m = re.search(r"\(draft (\d+)\)", text)
        if '"cited"' in text and m:
            k = int(m.group(1))
            return json.dumps({"rationale": f"draft{k} about drama", "cited": cite[k]})
        if '{"score": 7}' in text and judge:
            return json.dumps({"score": next(v for w, v in judge.items() if w in text)})
        return plausible_reply(transcript)
    return reply


def test_best_of_n_grounding_judge_penalises_ungrounded_citations(tmp_path: Path) -> None:
    base = load_recommender_role(shipped("roles", "reasoner.yaml"))
    role = base.model_copy(update={"reasoning": base.reasoning.model_copy(
        update={"best_of": 3})})
    events: list[dict[str, Any]] = []
    # Draft 1 cites the future item 13 and a non-item; draft 2 two history items.
    agent, _ = _agent(role, tmp_path, _drafts({1: ["10", "13", "99"], 2: ["10", "11"],
                                               3: ["12"]}), events)
    agent.rank([_req()])
    ev = next(e for e in events if e["type"] == "rationale")
    # Scores: cited + liked genres named (Drama) - 2 x ungrounded.
    assert [d["score"] for d in ev["drafts"]] == [1 + 1 - 4, 2 + 1, 1 + 1]
    assert ev["chosen"] == 1 and ev["drafts"][0]["ungrounded"] == ["13", "99"]
    st = agent.stats()
    assert st["ungrounded"] == 0 and st["draft_ungrounded"] == 2 and st["drafts"] == 3
    agent.close()


def test_best_of_n_llm_judge(tmp_path: Path) -> None:
    base = load_recommender_role(shipped("roles", "reasoner.yaml"))
    role = base.model_copy(update={"reasoning": base.reasoning.model_copy(
        update={"best_of": 2, "judge": "llm"})})
    events: list[dict[str, Any]] = []
    agent, _ = _agent(role, tmp_path, _drafts({1: ["10"], 2: ["10", "11"]},
                                              {"draft1": 9, "draft2": 2}), events)
    agent.rank([_req()])
    ev = next(e for e in events if e["type"] == "rationale")
    assert [d["score"] for d in ev["drafts"]] == [9, 2] and ev["chosen"] == 0
    agent.close()


def test_query_role_traces_queries_and_ranks_by_fused_retrieval(tmp_path: Path) -> None:
    role = load_recommender_role(shipped("roles", "gpt4rec.yaml"))
    events: list[dict[str, Any]] = []
    # The fake writes "drama romance" and "comedy".
    agent, _ = _agent(role, tmp_path, events=events)
    [r] = agent.rank([_req(cands=(5, 4, 3))])
    q = next(e for e in events if e["type"] == "queries")
    assert q["queries"] == ["drama romance", "comedy"] and q["reused"] is False
    ret = next(e for e in events if e["type"] == "retrieval")
    assert len(ret["retrieved"]) == 2 and set(ret["candidate_scores"]) <= {"13", "14", "15"}
    lib = _library()
    hits = [lib.bm25().search(x, role.retrieval.depth) for x in q["queries"]]
    s = fuse([5, 4, 3], hits, "rrf") + 1e-3 * rule_scores(
        CAT, _sims(lib), lib.world.popularity, lib.world.item_mean, [5, 4, 3], None,
        role.rules)
    assert r.items == [[5, 4, 3][j] for j in np.argsort(-s, kind="stable")]
    agent.close()


# ------------------------------------------------------------------ files and schema


@pytest.mark.parametrize("name", ROLES)
def test_shipped_reasoning_roles_validate(name: str, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    assert main(["validate", str(shipped("roles", f"{name}.yaml"))]) == 0


@pytest.mark.parametrize(("text", "line", "msg"), [
    ("kind: recommender\nname: x\noutput: ranking\nreasoning:\n  best_of: 0\n", 5,
     "reasoning.best_of: Input should be greater than or equal to 1"),
    ("kind: recommender\nname: x\noutput: ranking\nreasoning:\n  judge: vibes\n", 5,
     "reasoning.judge: Input should be 'grounding' or 'llm'"),
    ("kind: recommender\nname: x\noutput: ranking\nretrieval:\n  serch: bm25\n", 5,
     "retrieval.serch: unknown field"),
    ("kind: recommender\nname: x\noutput: ranking\nreasoning: {}\nprompts:\n  rationale: "
     "'{candidates}'\n", 6, "prompts.rationale: variable(s) candidates not available"),
    ("kind: recommender\nname: x\noutput: ranking\nprompts:\n  queries: '{n} {user}'\n", 1,
     "prompts.queries: used only with a retrieval: block"),
    ("kind: recommender\nname: x\noutput: rating\nranker: rules\n", 1,
     "reasoning:, retrieval: and ranker: other than llm apply to output: ranking only"),
    ("kind: recommender\nname: x\noutput: ranking\nranker: retrieval\n", 1,
     "ranker: retrieval needs a retrieval: block"),
])
def test_bad_reasoning_files_exit_2_with_file_line_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int,
        msg: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{f}:{line}: ") and msg in err and "\n" not in err


# ------------------------------------------------------------------ sr task and scenario


@pytest.fixture(scope="module")
def ml_setup(ml100k: Path) -> tuple[Any, Library]:
    """The sr task's split and a library over its history (item embeddings left out:
    these roles do not read them, and computing them takes a minute)."""
    from simulations.tasks.data import prepare_tasks
    from tools.dataset import load_dataset

    setup = prepare_tasks(load_dataset(ml100k))
    past = setup.dataset.with_interactions(setup.history)
    world = World(catalog=setup.dataset.catalog, embeddings=np.zeros((past.n_items, 1)),
                  item_mean=past.item_mean_rating, popularity=past.item_popularity,
                  global_mean=float(setup.history.rating.mean()))
    return setup, Library.for_dataset(setup.dataset, setup.history, world=world)


def test_sr_task_runs_controls_and_the_fake_reasoner(ml_setup: tuple[Any, Library],
                                                     tmp_path: Path) -> None:
    from simulations.tasks.suite import TaskOptions, evaluate_task

    setup, lib = ml_setup
    opt = TaskOptions(task="sr", users=2, samples=2, negatives=9, sampler="popularity")
    res = {}
    for name in ("rationale_control", "reasoner", "gpt4rec"):
        events: list[dict[str, Any]] = []

        def emit(type_: str, id_: str, _ev: list[dict[str, Any]] = events,
                 **fields: Any) -> None:
            _ev.append({"type": type_, "id": id_, **fields})

        agent = agent_from(LoadedRecRole(load_recommender_role(
            shipped("roles", f"{name}.yaml")), None), AgentEnv(
            library=lib, seed=0, run_dir=tmp_path / name,
            llm=LLMConfig(backend="openai", model="fake"),
            chat_model=FakeChatModel(responses=plausible_reply), emit=emit))
        res[name] = evaluate_task(setup, opt, agent)["models"][name]
        res[name]["events"] = events
        agent.close()
    ctrl, think, q = res["rationale_control"], res["reasoner"], res["gpt4rec"]
    assert ctrl["failures"] == 0 and ctrl["reasoning"]["rationales_prepared"] == 4
    assert ctrl["reasoning"]["ungrounded"] == 0 and ctrl["reasoning"]["citations"] > 0
    assert ctrl["tokens_per_instance"]["input"] == 0
    assert think["failures"] == 0 and think["reasoning"]["rationales_prepared"] == 4
    assert think["tokens_per_instance"]["input"] > 0
    assert sum(e["type"] == "rationale" for e in think["events"]) == 4
    assert q["reasoning"]["queries_prepared"] == 4
    assert sum(e["type"] == "retrieval" for e in q["events"]) == 4


def test_feed_scenario_reuses_rationales_across_pages(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({
        "kind": "scenario", "name": "think", "seed": 1,
        "dataset": {"source": "synthetic", "synthetic": {"n_users": 40, "n_items": 80}},
        "population": {"size": 2, "role": str(shipped("roles", "synthetic_viewer.yaml"))},
        "recommenders": [
            {"name": "think", "model": "agent", "agent": str(shipped("roles", "reasoner.yaml")),
             "candidates": {"model": "pop", "n": 6}},
            {"name": "ctrl", "model": "agent",
             "agent": str(shipped("roles", "rationale_control.yaml")),
             "candidates": {"model": "pop", "n": 6}}],
        "environment": {"kind": "feed", "items_per_page": 3, "max_pages": 3, "rounds": 1},
        "llm": {"backend": "openai", "model": "fake"}}))
    prep = prepare(load_scenario(tmp_path / "s.yaml"))
    res = run(prep, tmp_path / "run", chat_model=FakeChatModel(responses=plausible_reply))
    assert res.status == "completed"
    rats = [e for e in read_trace(tmp_path / "run") if e["type"] == "rationale"
            and e["arm"] == "think"]
    written = [e for e in rats if not e["reused"]]
    assert len(written) == 2 and len({e["user"] for e in written}) == 2
    pages = sum(1 for e in read_trace(tmp_path / "run") if e["type"] == "agent_task"
                and e["arm"] == "think")
    assert len(rats) == pages > 2 and any(e["reused"] for e in rats)
    # summary.json: per arm, rationales prepared and reused and the prepared ones' cost,
    # the same figures as the trace's rationale events.
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    every = [e for e in read_trace(tmp_path / "run") if e["type"] == "rationale"]
    assert set(summary["reasoning"]) == {"think", "ctrl"}
    for arm, got in summary["reasoning"].items():
        mine = [e for e in every if e["arm"] == arm]
        made = [e for e in mine if not e["reused"]]
        assert got["rationales_prepared"] == len(made) > 0
        assert got["rationales_reused"] == len(mine) - len(made) > 0
        assert got["rationales_tokens_in"] == sum(e["tokens_in"] for e in made)
        assert got["rationales_tokens_out"] == sum(e["tokens_out"] for e in made)
        assert got["rationales_seconds"] == pytest.approx(
            sum(e["volatile"]["seconds"] for e in made), abs=1e-3)
        assert got["rationales_hit_rate"] == round(
            got["rationales_reused"] / len(mine), 4)
        assert not any(k.startswith("queries") for k in got)
    # The model's rationales cost tokens; the rule control's none.
    assert summary["reasoning"]["think"]["rationales_tokens_in"] > 0
    assert summary["reasoning"]["ctrl"]["rationales_tokens_in"] == 0


def test_a_rule_role_in_a_scenario_needs_no_llm_block(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({
        "kind": "scenario", "name": "s",
        "dataset": {"source": "synthetic", "synthetic": {"n_users": 40, "n_items": 80}},
        "recommenders": [{"name": "q", "model": "agent",
                          "agent": str(shipped("roles", "query_control.yaml"))}]}))
    assert load_scenario(tmp_path / "s.yaml").agents["q"].config.name == "query_control"


def test_eval_task_line_says_reuse_grounding_and_cost() -> None:
    from simulations.cli.tasks import reasoning_line

    line = reasoning_line({"rationales_prepared": 3, "rationales_reused": 1,
                           "rationales_hit_rate": 0.25, "rationale_tokens_in": 900,
                           "rationale_tokens_out": 40, "rationale_ms": 2500, "citations": 5,
                           "ungrounded": 1, "draft_ungrounded": 2, "draft_failures": 0,
                           "queries_prepared": 2, "query_failures": 1})
    assert line == ("rationales 3 written, 1 reused (hit rate 0.25), tokens in/out 900/40, "
                    "2.5 s; citations 5, ungrounded 1 (all drafts: 2), failed drafts 0; "
                    "query sets 2 written, 0 reused (hit rate 0.00), tokens in/out 0/0, "
                    "0.0 s; failed 1")


def test_rationale_events_are_reproducible_but_for_their_volatile_block(tmp_path: Path
                                                                         ) -> None:
    from simulations.record.trace import strip_volatile

    role = load_recommender_role(shipped("roles", "reasoner.yaml"))
    runs = []
    for k in range(2):
        events: list[dict[str, Any]] = []
        agent, _ = _agent(role, tmp_path / str(k), events=events)
        agent.rank([_req(round=1), _req(round=1, cands=(4, 5))])
        agent.close()
        runs.append([strip_volatile(e) for e in events if e["type"] in ("rationale",)])
    assert runs[0] == runs[1] and runs[0] and "seconds" not in runs[0][0]


def test_a_resumed_run_reports_the_same_rationale_figures(tmp_path: Path) -> None:
    """summary.json's reasoning figures come from the trace: a run killed half-way and
    resumed reports what the uninterrupted run does (seconds aside: wall clock)."""
    from tests.test_resume import _recarena

    scn = tmp_path / "s.yaml"
    scn.write_text(yaml.safe_dump({
        "kind": "scenario", "name": "think", "seed": 1,
        "dataset": {"source": "synthetic", "synthetic": {"n_users": 40, "n_items": 80}},
        "population": {"size": 3, "role": str(shipped("roles", "synthetic_viewer.yaml"))},
        "recommenders": [
            {"name": "think", "model": "agent",
             "agent": str(shipped("roles", "reasoner.yaml")),
             "candidates": {"model": "pop", "n": 6}}],
        "environment": {"kind": "feed", "items_per_page": 3, "max_pages": 3, "rounds": 2},
        "llm": {"backend": "fake", "model": "fake"}}))

    def figures(run_dir: Path) -> dict[str, Any]:
        got = json.loads((run_dir / "summary.json").read_text())["reasoning"]
        return {arm: {k: v for k, v in f.items() if not k.endswith("_seconds")}
                for arm, f in got.items()}

    ref = tmp_path / "ref"
    proc = _recarena("run", str(scn), "--out", str(ref), "--quiet")
    assert proc.returncode == 0, proc.stderr
    n = sum(1 for _ in read_trace(ref))
    out = tmp_path / "run"
    proc = _recarena("run", str(scn), "--out", str(out), "--quiet",
                     RECARENA_CRASH_AT=f"trace:{n * 2 // 3}")
    assert proc.returncode != 0 and not (out / "summary.json").exists()
    proc = _recarena("resume", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    want = figures(ref)
    assert want["think"]["rationales_prepared"] > 0 and want["think"]["rationales_reused"] > 0
    assert figures(out) == want
