"""MACRec's offline tasks on MovieLens: rp, sr and gen, for a recommender agent beside the
classic baselines on the same instances (simulations/tasks/data.py says which).

Every model, agent or baseline, answers through the recommender-agent protocol
(agents/recsys/protocol.py) in batches. Per model: the task's figures as the mean and a
95% t-interval over disjoint samples of test users, failures (answers the model marked as
fallbacks, or that broke the protocol), LLM tokens and cost per instance (from
``llm_usage``) and wall seconds per instance. With ``out``, every answer is written to
``answers.jsonl`` (catalogue ids), the explanations of gen among them, and the result to
``result.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agents.recsys.protocol import (
    ExplainRequest,
    Ranking,
    RankRequest,
    RateRequest,
    RecommenderAgent,
)
from simulations.analysis.stats import interval
from simulations.run.sampling import disjoint_samples
from simulations.tasks.baselines import (
    TemplateExplainer,
    ranking_baselines,
    rating_baselines,
)
from simulations.tasks.data import (
    HISTORY_FRACTION,
    LIKED,
    RankInstance,
    RatingInstance,
    TaskSetup,
    rank_instances,
    rating_instances,
)
from simulations.tasks.metrics import (
    distinct_share,
    grounding,
    rank_metrics,
    rank_of,
    rating_errors,
)
from tools.candidates import CandidateGenerator
from tools.history import UserHistories
from tools.recommenders import MODELS

__all__ = ["TASKS", "TaskOptions", "evaluate_task", "fit_bias_reg"]

Task = Literal["rp", "sr", "gen"]
TASKS: tuple[Task, ...] = ("rp", "sr", "gen")
Progress = Callable[[str, int], Callable[[int], None]]
Log = Callable[[dict[str, Any]], None]
BIAS_GRID = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0)
TUNING_USERS = 300
NEGATIVES = ("uniform", "popularity")


@dataclass(frozen=True)
class TaskOptions:
    """What to evaluate; ``validate`` says what is wrong before any work."""

    task: Task
    users: int = 20
    samples: int = 3
    negatives: int = 19
    sampler: str = "uniform"  # sr/gen negatives: uniform or popularity (AgentCF's)
    candidates: str | None = None  # a classic model proposing sr/gen candidates
    per_user: int = 1  # rp: held-out ratings per user
    seed: int = 0
    batch: int = 8
    time_split: str = "global"  # global: leak-free (one time cutoff); per_user: leaky

    def validate(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"--task: expected one of {', '.join(TASKS)}, got {self.task!r}")
        for flag, v in (("--users", self.users), ("--samples", self.samples),
                        ("--negatives", self.negatives), ("--per-user", self.per_user),
                        ("--batch", self.batch)):
            if v < 1:
                raise ValueError(f"{flag}: must be at least 1, got {v}")
        if self.time_split not in ("global", "per_user"):
            raise ValueError(f"--time-split: expected global or per_user, got "
                             f"{self.time_split!r}")
        if self.sampler not in NEGATIVES:
            raise ValueError(f"--sampler: expected one of {', '.join(NEGATIVES)}, got "
                             f"{self.sampler!r}")
        if self.candidates is not None:
            if self.task == "rp":
                raise ValueError("--candidates: applies to sr and gen only")
            if self.candidates.strip().lower() not in MODELS:
                raise ValueError(f"--candidates: unknown model {self.candidates!r}; choose "
                                 f"from {', '.join(MODELS)}")


def fit_bias_reg(setup: TaskSetup, per_user: int, seed: int) -> tuple[float, float]:
    """The bias model's (user, item) regularisation with the lowest RMSE on rp instances
    of tuning users (never test users)."""
    ds = setup.dataset
    rng = np.random.default_rng([seed, 47])
    tune = sorted(rng.choice(setup.tuning, size=min(TUNING_USERS, len(setup.tuning)),
                             replace=False).tolist()) if setup.tuning else []
    inst = rating_instances(setup, tune, per_user)
    if not inst:
        return 10.0, 25.0
    users = np.array([x.user for x in inst])
    items = np.array([x.item for x in inst])
    real = np.array([x.rating for x in inst])
    best = (np.inf, 10.0, 25.0)
    for ru in BIAS_GRID:
        for ri in BIAS_GRID:
            m = rating_baselines(setup.history, ds.n_users, ds.n_items, (ru, ri))[-1]
            pred = np.array([r.value for r in m.rate(
                [RateRequest(user=int(u), item=int(i)) for u, i in zip(users, items,
                                                                       strict=True)])])
            best = min(best, (float(np.sqrt(np.mean((pred - real) ** 2))), ru, ri))
    return best[1], best[2]


class _Meter:
    """Failures, tokens and seconds of one model over its instances."""

    def __init__(self, agent: RecommenderAgent) -> None:
        self.agent = agent
        self.n = self.failures = 0
        self.seconds = 0.0
        self.used = (0, 0, 0.0)
        self._start: tuple[tuple[int, int, float], float] | None = None

    def __enter__(self) -> _Meter:
        self._start = (self.agent.llm_usage(), time.perf_counter())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._start is not None
        (i0, o0, c0), t0 = self._start
        i1, o1, c1 = self.agent.llm_usage()
        self.seconds += time.perf_counter() - t0
        self.used = (self.used[0] + i1 - i0, self.used[1] + o1 - o0, self.used[2] + c1 - c0)

    def summary(self) -> dict[str, Any]:
        n = max(self.n, 1)
        return {"instances": self.n, "failures": self.failures,
                "failure_rate": round(self.failures / n, 4),
                "tokens_per_instance": {"input": round(self.used[0] / n, 1),
                                        "output": round(self.used[1] / n, 1),
                                        "cost_usd": round(self.used[2] / n, 6)},
                "seconds_per_instance": round(self.seconds / n, 4)}


def _chunks(xs: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [xs[k:k + size] for k in range(0, len(xs), size)]


def _top(x: RankInstance, ranking: Ranking) -> int:
    """The recommended item: the answer's first candidate, else the first presented."""
    return next((i for i in ranking.items if i in x.candidates), x.candidates[0])


class _Runner:
    """Asks one model every instance of every sample and reduces the answers."""

    def __init__(self, setup: TaskSetup, opt: TaskOptions, log: Log,
                 advance: Callable[[int], None]) -> None:
        self.setup, self.opt, self.log, self.advance = setup, opt, log, advance
        self.ids = setup.dataset.catalog.item_ids
        self.histories = UserHistories(setup.history, setup.dataset.n_users)

    def _where(self, agent: RecommenderAgent, sample: int, user: int) -> dict[str, Any]:
        # The agent's own events carry the user and its task kind: no keys of those names.
        uid = self.setup.dataset.user_ids[user]
        return {"eval_task": self.opt.task, "sample": sample,
                "base": f"{agent.name}/{self.opt.task}/s{sample}/u{uid}"}

    def rp(self, agent: RecommenderAgent, samples: list[list[RatingInstance]]
           ) -> dict[str, Any]:
        meter, per = _Meter(agent), []
        for k, inst in enumerate(samples):
            pred, real = [], []
            for chunk in _chunks(inst, self.opt.batch):
                reqs = [RateRequest(user=x.user, item=x.item, now=x.now,
                                    where=self._where(agent, k, x.user)) for x in chunk]
                with meter:
                    answers = agent.rate(reqs)
                for x, a in zip(chunk, answers, strict=True):
                    meter.n += 1
                    meter.failures += a.failure is not None
                    pred.append(a.value)
                    real.append(x.rating)
                    self.log({"sample": k, "user": self.setup.dataset.user_ids[x.user],
                              "now": x.now, "item": self.ids[x.item], "rating": x.rating,
                              "predicted": a.value, "explanation": a.explanation,
                              "failure": a.failure})
                self.advance(len(chunk))
            per.append(rating_errors(pred, real))
        return {"metrics": {m: interval([p[m] for p in per]) for m in ("rmse", "mae")},
                **meter.summary()}

    def rank(self, agent: RecommenderAgent, samples: list[list[RankInstance]],
             explain: bool) -> dict[str, Any]:
        meter = _Meter(agent)
        per: list[dict[str, Any]] = []
        for k, inst in enumerate(samples):
            ranks: list[int | None] = []
            texts: list[str] = []
            flags: list[dict[str, bool]] = []
            for chunk in _chunks(inst, self.opt.batch):
                reqs = [RankRequest(user=x.user, candidates=list(x.candidates),
                                    k=1 if explain else len(x.candidates), now=x.now,
                                    where=self._where(agent, k, x.user)) for x in chunk]
                with meter:
                    answers = agent.rank(reqs)
                    texts_of = (self._explanations(agent, chunk, answers, k) if explain
                                else [(None, None)] * len(chunk))
                for x, a, (text, efail) in zip(chunk, answers, texts_of, strict=True):
                    cand = set(x.candidates)
                    broke = len(set(a.items)) != len(a.items) or not cand.issuperset(a.items)
                    meter.n += 1
                    meter.failures += a.failure is not None or broke or efail is not None
                    r = rank_of(a.items, x.positive, x.candidates)
                    ranks.append(r)
                    rec: dict[str, Any] = {
                        "sample": k, "user": self.setup.dataset.user_ids[x.user],
                        "now": x.now, "positive": self.ids[x.positive],
                        "candidates": [self.ids[i] for i in x.candidates],
                        "ranking": [self.ids[i] for i in a.items if 0 <= i < len(self.ids)],
                        "rank": r, "failure": a.failure or ("invalid ranking" if broke
                                                            else None)}
                    if explain:
                        top = _top(x, a)
                        g = self._ground(x, top, text or "")
                        if text:
                            texts.append(text)
                        flags.append(g)
                        rec.update({"recommended": self.ids[top], "explanation": text,
                                    "explanation_failure": efail, **g})
                    self.log(rec)
                self.advance(len(chunk))
            row: dict[str, Any] = dict(rank_metrics(ranks))
            row["recall"] = float(np.mean([r is not None for r in ranks])) if ranks else 0.0
            if explain:
                row = {"hr@1": row["hr@1"],
                       **{f: float(np.mean([g[f] for g in flags])) for f in
                          ("grounded", "item_genre", "history_title", "liked_genre")},
                       # Of the explanations given (None: none was).
                       "words": (float(np.mean([len(t.split()) for t in texts]))
                                 if texts else None),
                       "distinct": distinct_share(texts) if texts else None}
            per.append(row)
        return {"metrics": {m: interval([p[m] for p in per]) for m in per[0]},
                **meter.summary()}

    def _explanations(self, agent: RecommenderAgent, chunk: Sequence[RankInstance],
                      answers: Sequence[Ranking], sample: int
                      ) -> list[tuple[str | None, str | None]]:
        """The ranking's explanation of its top item, else one asked with ``explain``."""
        out: list[tuple[str | None, str | None]] = []
        ask: list[int] = []
        for j, (x, a) in enumerate(zip(chunk, answers, strict=True)):
            text = a.explanations.get(_top(x, a), "").strip()
            out.append((text, None) if text else (None, None))
            if not text:
                ask.append(j)
        if ask:
            reqs = []
            for j in ask:
                x = chunk[j]
                reqs.append(ExplainRequest(user=x.user, item=_top(x, answers[j]), now=x.now,
                                           where=self._where(agent, sample, x.user)))
            for j, e in zip(ask, agent.explain(reqs), strict=True):
                text = e.text.strip()
                out[j] = (text or None, e.failure or (None if text else "empty explanation"))
        return out

    def _ground(self, x: RankInstance, item: int, text: str) -> dict[str, bool]:
        cat = self.setup.dataset.catalog
        past = self.histories.ratings(x.user, before=x.now)
        return grounding(text, cat.genres[item], [cat.titles[r.item] for r in past],
                         {g for r in past if (r.rating or 0) >= LIKED for g in cat.genres[r.item]})


def evaluate_task(
    setup: TaskSetup,
    opt: TaskOptions,
    agent: RecommenderAgent | None = None,
    *,
    out: Path | None = None,
    info: dict[str, Any] | None = None,
    progress: Progress = lambda name, total: lambda n: None,
    more: Sequence[RecommenderAgent] = (),
) -> dict[str, Any]:
    """The task's figures for ``agent`` (if any), the agents in ``more`` (rows of kind
    agent after it: e.g. a control and its ablation) and the classic baselines; ``info``
    is added to the result (what the agent is, which model it used).

    Raises:
        ValueError: Invalid options, or fewer eligible test users than samples.
    """
    opt.validate()
    ds = setup.dataset
    groups = disjoint_samples(setup.test, opt.samples, opt.users, opt.seed)
    models: list[RecommenderAgent] = [agent] if agent is not None else []
    models += list(more)
    extra: dict[str, Any] = {}
    samples: list[Any]
    if opt.task == "rp":
        reg = fit_bias_reg(setup, opt.per_user, opt.seed)
        models += rating_baselines(setup.history, ds.n_users, ds.n_items, reg)
        samples = [rating_instances(setup, g, opt.per_user) for g in groups]
        extra["bias_regularisation"] = {"user": reg[0], "item": reg[1],
                                        "fitted_on": "tuning users"}
    else:
        gen = (CandidateGenerator(opt.candidates, setup.history, ds.n_users, ds.n_items,
                                  seed=opt.seed) if opt.candidates else None)
        explainer = TemplateExplainer(ds.catalog, UserHistories(setup.history, ds.n_users))
        models += ranking_baselines(setup.history, ds.n_users, ds.catalog, opt.seed,
                                    explainer if opt.task == "gen" else None)
        samples = [rank_instances(setup, g, opt.negatives, opt.seed, gen,
                                  sampler=opt.sampler) for g in groups]
        extra["candidates"] = (
            {"mode": "sampled", "negatives": opt.negatives,
             "sampler": f"{opt.sampler}, never rated"}
            if gen is None else {"mode": "model", "model": gen.name, "n": opt.negatives + 1})
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"--team: the agent is named {names[0]!r}, as a baseline; rename it")
    answers = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        answers = (out / "answers.jsonl").open("w", encoding="utf-8")
    n = sum(len(s) for s in samples)
    results: dict[str, Any] = {}
    try:
        for m in models:
            def log(rec: dict[str, Any], name: str = m.name) -> None:
                if answers is not None:
                    # Flushed per answer: an interrupted run leaves every answer so far.
                    answers.write(json.dumps({"task": opt.task, "model": name, **rec}) + "\n")
                    answers.flush()

            runner = _Runner(setup, opt, log, progress(f"{opt.task}: {m.name}", n))
            res = (runner.rp(m, samples) if opt.task == "rp"
                   else runner.rank(m, samples, explain=opt.task == "gen"))
            res["kind"] = ("agent" if m is agent or any(m is x for x in more)
                           else "baseline")
            stats = getattr(m, "stats", None)  # reasoning roles: rationales, queries, reuse
            if callable(stats) and stats():
                res["reasoning"] = stats()
            results[m.name] = res
    finally:
        if answers is not None:
            answers.close()
    result: dict[str, Any] = {
        "task": opt.task, "dataset": ds.name, "seed": opt.seed,
        "agent": agent.name if agent is not None else None, **(info or {}),
        "samples": len(groups), "users_per_sample": len(groups[0]),
        "instances_per_sample": [len(s) for s in samples],
        "split": {"history_fraction": HISTORY_FRACTION, "time_split": opt.time_split,
                  "tuning_users": len(setup.tuning),
                  "development_users": len(setup.development),
                  "test_users": len(setup.test), "reported_on": "test users"},
        **extra, "models": results,
    }
    if out is not None:
        (out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        result["out"] = str(out)
    return result
