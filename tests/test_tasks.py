"""MACRec's offline tasks: metrics, candidates and the clock, baselines through the
recommender-agent protocol, and ``recarena eval task``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.recsys.protocol import (
    ExplainRequest,
    Explanation,
    Ranking,
    RankRequest,
    RateRequest,
    Rating,
    RecommenderAgent,
)
from simulations.cli.main import main
from simulations.eval.baselines import fit_bias_model
from simulations.tasks.baselines import (
    ClassicRecommender,
    TemplateExplainer,
    ranking_baselines,
    rating_baselines,
)
from simulations.tasks.data import (
    RankInstance,
    TaskSetup,
    prepare_tasks,
    rank_instances,
    rating_instances,
)
from simulations.tasks.metrics import (
    distinct_share,
    grounding,
    rank_metrics,
    rank_of,
    rating_errors,
    title_variants,
)
from simulations.tasks.suite import TaskOptions, evaluate_task
from tests.shipped import shipped
from tools.candidates import CandidateGenerator
from tools.dataset import load_dataset
from tools.history import UserHistories
from tools.recommenders import make_recommender

# ----------------------------------------------------------------------------- metrics


def test_rank_of_uses_the_answer_then_the_presented_order() -> None:
    cand = (9, 3, 5, 7)
    assert rank_of([5, 3, 9, 7], 3, cand) == 2
    # 7 was left out of the answer: after the answered items, in presented order.
    assert rank_of([5], 7, cand) == 4
    assert rank_of([5], 9, cand) == 2
    # Items that are not candidates (a hallucination) take no place.
    assert rank_of([42, 3], 3, cand) == 1
    assert rank_of([5, 3], 11, cand) is None


def test_rank_metrics_hand_computed() -> None:
    m = rank_metrics([1, 3, None, 6])
    assert m["hr@1"] == 0.25 and m["hr@5"] == 0.5
    assert m["ndcg@5"] == pytest.approx((1 + 1 / math.log2(4)) / 4)  # 0.375
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 6) / 4)
    assert rank_metrics([5])["ndcg@5"] == pytest.approx(1 / math.log2(6))
    assert rank_metrics([6])["ndcg@5"] == 0.0
    assert rank_metrics([6])["ndcg@10"] == pytest.approx(1 / math.log2(7))
    assert rank_metrics([11])["ndcg@10"] == 0.0
    assert rank_metrics([1, 2])["ndcg@1"] == rank_metrics([1, 2])["hr@1"] == 0.5


def test_rating_errors_hand_computed() -> None:
    e = rating_errors([3.0, 5.0], [4.0, 2.0])
    assert e["rmse"] == pytest.approx(math.sqrt(5)) and e["mae"] == 2.0


def test_grounding_matches_whole_words_and_title_forms() -> None:
    assert "the godfather" in title_variants("Godfather, The")
    assert title_variants("Up") == ()  # too short to tell from an ordinary word
    g = grounding("Fans of The Godfather will enjoy it.", ["Comedy"], ["Godfather, The"],
                  ["Drama"])
    assert g == {"item_genre": False, "history_title": True, "liked_genre": False,
                 "grounded": True}
    g = grounding("A melodramatic science fiction tale.", ["Sci-Fi"], ["Up"], ["Drama"])
    assert g["item_genre"] and not g["liked_genre"]  # "drama" inside a word is no mention
    assert not grounding("You will love it!", ["Comedy"], ["Heat"], ["Drama"])["grounded"]
    assert distinct_share(["A b", "a  B", "c"]) == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def setup(ml100k: Path) -> TaskSetup:
    # The per-user split keeps many users for the mechanics tested here; the default,
    # leak-free split is tested on its own below.
    return prepare_tasks(load_dataset(ml100k), split="per_user")


def test_default_split_is_leak_free(ml100k: Path) -> None:
    from simulations.run.sampling import user_split

    s = prepare_tasks(load_dataset(ml100k))
    h, f = s.history, s.future
    # One cutoff for everyone: no history rating is dated at or after any future rating.
    assert h.ts.max() < f.ts.min()
    assert len(s.test) >= 30 and not set(s.test) & set(s.tuning + s.development)
    ids = s.dataset.user_ids
    assert all(user_split(ids[u]) == "test" for u in s.test)
    assert all(s.clock[u] >= f.ts.min() for u in s.test)
    pop = np.bincount(h.item, minlength=s.dataset.n_items)
    for x in rank_instances(s, s.test, 19, seed=3):
        # Negatives only among items someone rated before the cutoff.
        assert (pop[[c for c in x.candidates if c != x.positive]] > 0).all()


def _rated(setup: TaskSetup, u: int) -> set[int]:
    inter = setup.dataset.interactions
    return set(inter.item[inter.user == u].tolist())


def test_split_clock_and_users(setup: TaskSetup) -> None:
    assert setup.test and setup.tuning and not set(setup.test) & set(setup.tuning)
    h, f = setup.history, setup.future
    for u in setup.test[:50]:
        assert h.ts[h.user == u].max() <= setup.clock[u] == f.ts[f.user == u].min()


def test_sampled_candidates_never_rated_and_positive_after_history(setup: TaskSetup) -> None:
    users = setup.test[:40]
    inst = rank_instances(setup, users, 19, seed=3)
    hist = UserHistories(setup.history, setup.dataset.n_users)
    for x in inst:
        assert len(x.candidates) == 20 == len(set(x.candidates)) and x.positive in x.candidates
        assert not (set(x.candidates) - {x.positive}) & _rated(setup, x.user)
        # The positive is the first future rating >= 4 and comes at or after the clock.
        f = setup.future
        fm = (f.user == x.user) & (f.item == x.positive)
        assert f.rating[fm].max() >= 4 and f.ts[fm].min() >= x.now
        earlier = (f.user == x.user) & (f.ts < f.ts[fm].min()) & (f.rating >= 4)
        assert not earlier.any()
        # Nothing at or after the clock is visible to a clock-bounded history tool.
        seen = hist.ratings(x.user, before=x.now)
        assert seen and all(r.ts is not None and r.ts < x.now for r in seen)
        assert x.positive not in {r.item for r in seen}
    # Seeded: the same seed gives the same candidates in the same order, another does not.
    assert inst == rank_instances(setup, users, 19, seed=3)
    assert inst != rank_instances(setup, users, 19, seed=4)
    # Shuffled: the positive is not always in the same place.
    assert len({x.candidates.index(x.positive) for x in inst}) > 5


def test_popularity_negatives_are_never_rated_and_more_popular(setup: TaskSetup) -> None:
    users = setup.test[:40]
    pop = np.bincount(setup.history.item, minlength=setup.dataset.n_items)
    uni = rank_instances(setup, users, 9, seed=3)
    hard = rank_instances(setup, users, 9, seed=3, sampler="popularity")
    for x in hard:
        negs = set(x.candidates) - {x.positive}
        assert len(x.candidates) == 10 == len(set(x.candidates)) and x.positive in x.candidates
        assert not negs & _rated(setup, x.user) and (pop[list(negs)] > 0).all()
    # Drawn in proportion to popularity: the negatives are far more popular than uniform ones.
    def mean_neg_pop(inst: list[RankInstance]) -> float:
        return float(np.mean([pop[c] for x in inst for c in x.candidates if c != x.positive]))
    assert mean_neg_pop(hard) > 2 * mean_neg_pop(uni)
    with pytest.raises(ValueError, match="--sampler"):
        TaskOptions(task="sr", sampler="hard").validate()


def test_model_candidates_are_unseen_top_items(setup: TaskSetup) -> None:
    ds = setup.dataset
    gen = CandidateGenerator("pop", setup.history, ds.n_users, ds.n_items)
    users = setup.test[:30]
    inst = rank_instances(setup, users, 9, seed=0, generator=gen)
    for x in inst:
        top = {i for i, _ in gen.top(x.user, 10)}
        assert set(x.candidates) == top and len(x.candidates) == 10
        assert not top & set(setup.history.item[setup.history.user == x.user].tolist())


def test_rating_instances_are_the_next_future_ratings(setup: TaskSetup) -> None:
    u = setup.test[0]
    inst = rating_instances(setup, [u], 3)
    items, ratings, ts = setup.future_of(u)
    assert [(x.item, x.rating) for x in inst] == list(zip(items[:3].tolist(),
                                                          ratings[:3].tolist(), strict=True))
    assert all(x.now == ts[0] for x in inst)


# ----------------------------------------------------------------------------- baselines


def test_classic_recommender_speaks_the_protocol(setup: TaskSetup) -> None:
    scores = {1: 0.5, 2: 0.9, 3: 0.5, 4: 0.1}
    rec = ClassicRecommender("t", scorer=lambda u, items: np.array([scores[int(i)]
                                                                     for i in items]),
                             rater=lambda u, i: 7.0 if i == 1 else -2.0)
    assert isinstance(rec, RecommenderAgent)
    (r,) = rec.rank([RankRequest(user=0, candidates=[3, 4, 1, 2], k=3)])
    assert r.items == [2, 3, 1]  # ties (3 and 1) in presented order
    assert [x.value for x in rec.rate([RateRequest(user=0, item=1),
                                       RateRequest(user=0, item=2)])] == [5.0, 1.0]
    with pytest.raises(TypeError, match="does not explain"):
        rec.explain([ExplainRequest(user=0, item=1)])
    ds = setup.dataset
    bias = rating_baselines(setup.history, ds.n_users, ds.n_items, (5.0, 10.0))[-1]
    model = fit_bias_model(setup.history, ds.n_users, ds.n_items, 5.0, 10.0)
    u, i = setup.test[0], 50
    (got,) = bias.rate([RateRequest(user=u, item=i)])
    assert got.value == pytest.approx(np.clip(model.predict(np.array([u]), np.array([i]))[0],
                                              1, 5))


def test_template_explanation_uses_only_the_past(setup: TaskSetup) -> None:
    ds = setup.dataset
    hist = UserHistories(setup.history, ds.n_users)
    expl = TemplateExplainer(ds.catalog, hist)
    u = setup.test[0]
    past = hist.ratings(u, before=float(setup.clock[u]))
    text = expl(u, 0, float(setup.clock[u]))
    liked_titles = {ds.catalog.titles[r.item] for r in past if (r.rating or 0) >= 4}
    assert any(t in text for t in liked_titles)
    # With the clock before every rating there is no past to cite.
    first = min(r.ts for r in past if r.ts is not None)
    assert expl(u, 0, first).endswith("often watched by others.")


def test_itemknn_and_bpr_rank_candidates_by_their_own_scores(setup: TaskSetup) -> None:
    ds = setup.dataset
    models = {m.name: m for m in ranking_baselines(setup.history, ds.n_users, ds.catalog, 3)}
    train = setup.history.matrix(ds.n_users, ds.n_items, binary=True)
    inst = rank_instances(setup, setup.test[:5], 9, seed=0)
    for name in ("itemknn", "bpr"):
        ref = make_recommender(name, seed=3)
        ref.fit(train)
        for x in inst:
            (got,) = models[name].rank([RankRequest(user=x.user, candidates=list(x.candidates),
                                                    k=10)])
            s = ref.score(np.array([x.user]))[0][list(x.candidates)]
            want = [x.candidates[j] for j in np.argsort(-s, kind="stable")]
            assert got.items == want, name
    # Different models, different orders somewhere: the rows are not copies of each other.
    orders = {n: [tuple(models[n].rank([RankRequest(user=x.user, candidates=list(x.candidates),
                                                    k=10)])[0].items) for x in inst]
              for n in ("itemknn", "bpr", "ease")}
    assert orders["itemknn"] != orders["bpr"] != orders["ease"]


class _Copycat:
    """An agent that ranks like EASE and counts tokens like an LLM would."""

    def __init__(self, inner: ClassicRecommender, fail_every: int = 0) -> None:
        self.name, self.inner, self.fail_every = "copycat", inner, fail_every
        self.requests: list[Any] = []
        self.tokens = [0, 0]

    def llm_usage(self) -> tuple[int, int, float]:
        return self.tokens[0], self.tokens[1], self.tokens[0] * 1e-6

    def close(self) -> None:
        pass

    def rank(self, requests: Sequence[RankRequest]) -> list[Ranking]:
        self.requests.extend(requests)
        self.tokens[0] += 100 * len(requests)
        self.tokens[1] += 10 * len(requests)
        out = self.inner.rank(requests)
        if self.fail_every:
            out = [Ranking(items=list(q.candidates[:q.k]), failure="fallback")
                   if n % self.fail_every == 0 else a
                   for n, (q, a) in enumerate(zip(requests, out, strict=True))]
        return out

    def rate(self, requests: Sequence[RateRequest]) -> list[Rating]:
        self.requests.extend(requests)
        return self.inner.rate(requests)

    def explain(self, requests: Sequence[ExplainRequest]) -> list[Explanation]:
        self.requests.extend(requests)
        self.tokens[0] += 50 * len(requests)
        return [Explanation(text="A fine Drama." if q.item % 2 else "")
                for q in requests]


def test_agent_and_baselines_meet_the_same_candidates(setup: TaskSetup, tmp_path: Path
                                                      ) -> None:
    ds = setup.dataset
    ease = ranking_baselines(setup.history, ds.n_users, ds.catalog, 0)[2]
    agent = _Copycat(ease)
    opt = TaskOptions(task="sr", users=10, samples=2, batch=3)
    res = evaluate_task(setup, opt, agent, out=tmp_path / "o")
    assert list(res["models"]) == ["copycat", "random", "pop", "ease", "item_mean",
                                   "itemknn", "bpr"]
    a, b = res["models"]["copycat"], res["models"]["ease"]
    assert a["kind"] == "agent" and b["kind"] == "baseline"
    assert a["metrics"] == b["metrics"]  # same scorer, same candidates: same figures
    assert a["instances"] == 20 and a["tokens_per_instance"]["input"] == 100.0
    assert a["tokens_per_instance"]["output"] == 10.0 and b["tokens_per_instance"]["input"] == 0
    reqs = agent.requests
    assert all(isinstance(q, RankRequest) and q.k == len(q.candidates) == 20 for q in reqs)
    assert all(q.now == setup.clock[q.user] and q.user in setup.test for q in reqs)
    assert {q.where["sample"] for q in reqs} == {0, 1}
    lines = [json.loads(x) for x in (tmp_path / "o" / "answers.jsonl").read_text().splitlines()]
    mine = [x for x in lines if x["model"] == "copycat"]
    theirs = [x for x in lines if x["model"] == "ease"]
    assert [x["candidates"] for x in mine] == [x["candidates"] for x in theirs]
    assert all(x["positive"] in x["candidates"] for x in mine)
    assert json.loads((tmp_path / "o" / "result.json").read_text())["models"] == res["models"]


def test_failures_and_explanations_are_counted(setup: TaskSetup, tmp_path: Path) -> None:
    ds = setup.dataset
    ease = ranking_baselines(setup.history, ds.n_users, ds.catalog, 0)[2]
    agent = _Copycat(ease, fail_every=2)
    res = evaluate_task(setup, TaskOptions(task="gen", users=8, samples=2, batch=4), agent,
                        out=tmp_path)
    m = res["models"]["copycat"]
    ranks = [q for q in agent.requests if isinstance(q, RankRequest)]
    asked = [q for q in agent.requests if isinstance(q, ExplainRequest)]
    # gen asks for one recommendation, then (no explanation came with it) its explanation.
    assert len(ranks) == 16 and all(q.k == 1 for q in ranks) and len(asked) == 16
    recs = [json.loads(x) for x in (tmp_path / "answers.jsonl").read_text().splitlines()]
    mine = [r for r in recs if r["model"] == "copycat"]
    # Every second ranking of a batch fell back; an empty explanation is a failure too.
    assert sum(r["failure"] == "fallback" for r in mine) == 8
    empty = sum(q.item % 2 == 0 for q in asked)
    assert sum(r["explanation_failure"] == "empty explanation" for r in mine) == empty > 0
    assert m["failures"] == sum(r["failure"] is not None or r["explanation_failure"]
                                is not None for r in mine)
    assert m["tokens_per_instance"]["input"] == 150.0
    assert 0 < m["metrics"]["item_genre"]["mean"] <= 1
    assert m["metrics"]["history_title"]["mean"] == 0  # "A fine Drama." names no title
    assert res["models"]["ease"]["metrics"]["grounded"]["mean"] == 1.0


class _Broken(_Copycat):
    """Answers with an item that is no candidate (and not in the catalogue) first."""

    def rank(self, requests: Sequence[RankRequest]) -> list[Ranking]:
        return [Ranking(items=[10**6, *a.items]) for a in super().rank(requests)]


def test_invalid_rankings_are_failures_not_crashes(setup: TaskSetup, tmp_path: Path) -> None:
    ds = setup.dataset
    ease = ranking_baselines(setup.history, ds.n_users, ds.catalog, 0)[2]
    res = evaluate_task(setup, TaskOptions(task="gen", users=3, samples=2), _Broken(ease),
                        out=tmp_path)
    m = res["models"]["copycat"]
    assert m["failures"] == m["instances"] == 6
    # The first real candidate is what was recommended, so HR@1 is EASE's.
    assert m["metrics"]["hr@1"] == res["models"]["ease"]["metrics"]["hr@1"]
    recs = [json.loads(x) for x in (tmp_path / "answers.jsonl").read_text().splitlines()]
    assert {r["failure"] for r in recs if r["model"] == "copycat"} == {"invalid ranking"}


def test_rp_figures_of_the_bias_model_beat_the_global_mean(setup: TaskSetup) -> None:
    res = evaluate_task(setup, TaskOptions(task="rp", users=60, samples=3, per_user=3))
    ms = res["models"]
    assert list(ms) == ["global_mean", "user_mean", "item_mean", "bias"]
    assert ms["bias"]["metrics"]["rmse"]["mean"] < ms["global_mean"]["metrics"]["rmse"]["mean"]
    assert res["instances_per_sample"] == [180, 180, 180]
    assert res["bias_regularisation"]["fitted_on"] == "tuning users"


def test_bias_regularisation_is_fitted_on_tuning_users_only(
        setup: TaskSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulations.tasks.suite as tasks

    seen: list[int] = []

    def spy(s: TaskSetup, users: Sequence[int], per_user: int) -> Any:
        seen.extend(users)
        return rating_instances(s, users, per_user)

    monkeypatch.setattr(tasks, "rating_instances", spy)
    reg = tasks.fit_bias_reg(setup, 1, seed=0)
    assert seen and set(seen) <= set(setup.tuning) and reg[0] in tasks.BIAS_GRID


# ----------------------------------------------------------------------------- CLI


def _cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_json_shape(capsys: pytest.CaptureFixture[str], ml100k: Path) -> None:
    rc, out, err = _cli(capsys, "eval", "task", "--task", "sr", "--data", ml100k, "--users",
                        "5", "--samples", "2", "--negatives", "9", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["task"] == "sr" and res["agent"] is None and res["samples"] == 2
    assert res["candidates"] == {"mode": "sampled", "negatives": 9,
                                 "sampler": "uniform, never rated"}
    for m in res["models"].values():
        assert set(m["metrics"]) == {"hr@1", "hr@5", "ndcg@1", "ndcg@5", "ndcg@10",
                                     "mrr", "recall"}
        assert set(m["metrics"]["mrr"]) == {"mean", "lo", "hi", "n"}
        assert m["instances"] == 10 and m["failures"] == 0


def test_cli_table(capsys: pytest.CaptureFixture[str], ml100k: Path) -> None:
    rc, out, _ = _cli(capsys, "eval", "task", "--task", "rp", "--data", ml100k, "--users",
                      "5", "--samples", "2")
    assert rc == 0 and "RMSE" in out and "bias (global + user + item)" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "sr", "--users", "0"], "--users: must be at least 1"),
    (["--task", "sr", "--candidates", "nope"], "--candidates: unknown model 'nope'"),
    (["--task", "rp", "--candidates", "ease"], "--candidates: applies to sr and gen only"),
    (["--task", "sr", "--llm", "local"], "--llm: applies with --team only"),
    (["--task", "sr", "--team", "no/such.yaml"], "no/such.yaml: no such role or team file"),
    (["--task", "xx"], "invalid choice: 'xx'"),
    (["--task", "sr", "--llm-ctx", "4096"], "--llm-ctx: a context window"),
    (["--task", "sr", "--llm-threads", "2", "--llm", "openai"], "--llm-threads: a positive"),
    (["--task", "sr", "--negatives", "-1"], "--negatives: must be at least 1"),
])
def test_cli_bad_input(capsys: pytest.CaptureFixture[str], ml100k: Path, args: list[str],
                       message: str) -> None:
    rc, out, err = _cli(capsys, "eval", "task", "--data", ml100k, *args)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and out == ""


def test_cli_data_errors_are_exactly_one_line(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    # No progress display is left behind (it printed an empty line before the error).
    for data, message in ((tmp_path / "none", "no such data folder"),
                          (tmp_path, "no dataset found")):
        rc, out, err = _cli(capsys, "eval", "task", "--task", "sr", "--data", data)
        assert rc == 2 and out == ""
        assert err.startswith(f"{data}: {message}") and err.count("\n") == 1


def test_cli_refuses_a_used_out_folder(capsys: pytest.CaptureFixture[str], ml100k: Path,
                                       tmp_path: Path) -> None:
    (tmp_path / "x").write_text("earlier")
    rc, _, err = _cli(capsys, "eval", "task", "--task", "sr", "--data", ml100k, "--out",
                      tmp_path)
    assert rc == 2 and "is not an empty folder" in err


# ----------------------------------------------------------------------------- agents


REPO = Path(__file__).resolve().parents[1]
TEAM = shipped("teams", "macrec.yaml")
LLMRANK = shipped("roles", "llmrank.yaml")


def test_team_end_to_end_with_the_fake_model(ml100k: Path, tmp_path: Path) -> None:
    from agents.llm import FakeChatModel
    from agents.llm.fake_replies import plausible_reply
    from simulations.inspection.index import open_index
    from simulations.record.trace import read_trace
    from simulations.tasks.run import run_eval_task

    fake = FakeChatModel(responses=plausible_reply)
    opt = TaskOptions(task="sr", users=2, samples=2)
    res = run_eval_task(ml100k, opt, team=str(TEAM), llm="openai:fake", out=str(tmp_path / "a"),
                        chat_model=fake)
    assert res["agent"] == "macrec" and res["llm"] == "openai:fake"
    m = res["models"]["macrec"]
    assert m["kind"] == "agent" and m["instances"] == 4 and fake.calls > 0
    events = read_trace(tmp_path / "a")
    kinds = {e["type"] for e in events}
    assert {"agent_task", "agent_answer", "delegation", "tool_call", "llm_call"} <= kinds
    # It ends like a run's trace, so the trace views do not call it incomplete.
    assert events[-1]["type"] == "run_end" and events[-1]["status"] == "completed"
    assert open_index(tmp_path / "a").end.complete
    events = events[:-1]
    assert all(e["id"].startswith("macrec/sr/s") for e in events)
    # Tokens per instance are the trace's LLM calls over the instances.
    calls = [e for e in events if e["type"] == "llm_call"]
    assert m["tokens_per_instance"]["input"] == pytest.approx(
        sum(e["input_tokens"] for e in calls) / 4, abs=0.1)
    answers = [json.loads(x) for x in (tmp_path / "a" / "answers.jsonl").read_text()
               .splitlines()]
    mine = {x["user"]: x for x in answers if x["model"] == "macrec"}
    ease = {x["user"]: x for x in answers if x["model"] == "ease"}
    tasks = [e for e in events if e["type"] == "agent_task"]
    said = [e for e in events if e["type"] == "agent_answer"]
    for t, a in zip(tasks, said, strict=True):
        # The team saw the baselines' candidates at the user's clock; answers.jsonl holds
        # what it answered.
        assert t["candidates"] == mine[t["user"]]["candidates"] == ease[t["user"]]["candidates"]
        assert t["now"] == mine[t["user"]]["now"]
        assert a["items"] == mine[t["user"]]["ranking"]
    # The user tools never show the held-out positive.
    ds = load_dataset(ml100k)
    for e in events:
        if e["type"] == "tool_call" and e["tool"].startswith("user"):
            user = next(t["user"] for t in tasks if e["id"].startswith(
                f"macrec/sr/s{t['sample']}/u{t['user']}/"))
            title = ds.catalog.titles[ds.catalog.index[mine[user]["positive"]]]
            assert title not in e["result"]
    # Replayed from the recorded cache: the same figures without the model.
    again = run_eval_task(ml100k, opt, team=str(TEAM), llm="openai:fake",
                          replay=str(tmp_path / "a"), chat_model=FakeChatModel(responses=[]))
    assert again["models"]["macrec"]["metrics"] == m["metrics"]


def test_cli_runs_a_role_with_the_fake_model(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch,
                                             ml100k: Path) -> None:
    import functools

    import simulations.tasks.run as task_run
    from agents.llm import FakeChatModel
    from agents.llm.fake_replies import plausible_reply

    fake = FakeChatModel(responses=plausible_reply)
    monkeypatch.setattr(task_run, "run_eval_task",
                        functools.partial(task_run.run_eval_task, chat_model=fake))
    rc, out, err = _cli(capsys, "eval", "task", "--task", "gen", "--team", LLMRANK, "--llm",
                        "openai:fake", "--data", ml100k, "--users", "2", "--samples", "2",
                        "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["agent"] == "llmrank" and res["team"] == str(LLMRANK)
    assert list(res["models"]) == ["llmrank", "random", "pop", "ease", "item_mean",
                                   "itemknn", "bpr"]
    agent = res["models"]["llmrank"]
    assert agent["instances"] == 4 and agent["tokens_per_instance"]["input"] > 0
    assert {"grounded", "words", "distinct", "hr@1"} <= set(agent["metrics"])
    rc, out, err = _cli(capsys, "eval", "task", "--task", "sr", "--team", LLMRANK, "--llm",
                        "openai:fake", "--data", ml100k, "--users", "2", "--samples", "1")
    assert rc == 0, err
    assert "llmrank (agent)" in out and "EASE" in out


def test_cli_team_errors(capsys: pytest.CaptureFixture[str], ml100k: Path,
                         tmp_path: Path) -> None:
    rc, _, err = _cli(capsys, "eval", "task", "--task", "sr", "--team", LLMRANK, "--data",
                      ml100k)
    assert rc == 2 and "--llm: role 'llmrank'" in err and "has no llm: block" in err
    bad = tmp_path / "team.yaml"
    bad.write_text("kind: team\nname: t\nmanager: ../nowhere.yaml\nmembers: []\n")
    rc, _, err = _cli(capsys, "eval", "task", "--task", "sr", "--team", bad, "--llm",
                      "local", "--data", ml100k)
    assert rc == 2 and err.startswith(f"{bad}:") and len(err.strip().splitlines()) == 1
