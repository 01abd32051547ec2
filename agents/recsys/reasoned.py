"""Think, then rank: a recommender role's ``reasoning:``, ``retrieval:`` and ``ranker:``.

- ``reasoning:`` (OneRec-Think style): a rationale grounded in the user's history before
  the request's clock, written by the role's model (``best_of`` drafts, one kept by the
  judge: the deterministic grounding score or the model) or by rules (top liked genres,
  recent likes, their item-kNN neighbours). Every cited item is checked against the
  history; ungrounded citations are counted. Rationales are prepared per (user, clock,
  round, prompt version) and reused by later requests with the same key.
- ``retrieval:`` (GPT4Rec style): search queries from the history (model or rules), each
  run through BM25 or the vector index, the hits fused per candidate.
- ``ranker:``: ``llm`` (the role's ranking prompt, the rationale in ``{rationale}``),
  ``rules`` (agents/recsys/rationale.py's rule ranker) or ``retrieval`` (fused scores).

Every rationale and query set is a trace event (``rationale``, ``queries``) with its cost
(tokens, seconds) and whether it was reused; ``stats()`` sums them for a run's summary.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agents.recsys.prompts import render, template
from agents.recsys.queries import fuse, retrieve, rules_queries
from agents.recsys.rationale import (
    ItemSims,
    Rationale,
    ground,
    grounding_score,
    liked_genres,
    rule_scores,
    rules_rationale,
)
from agents.recsys.runtime import RecBrain, RecRuntime
from scenarios.recsys import RecommenderRole
from tools.history import Rating, history_lines

__all__ = ["Host", "Reasoned", "TaskLike"]


class TaskLike(Protocol):
    """What of a role's task (agents/recsys/role.py: Task) these steps read."""

    @property
    def user(self) -> int: ...
    @property
    def now(self) -> int | None: ...
    @property
    def base(self) -> str: ...
    @property
    def where(self) -> dict[str, Any]: ...
    @property
    def candidates(self) -> list[int]: ...


class Host(Protocol):
    """The role agent these steps belong to (agents/recsys/role.py: RoleAgent)."""

    role: RecommenderRole
    rt: RecRuntime
    agent: str

    @property
    def brain(self) -> RecBrain: ...

    def values(self, t: Any, notes: list[str], lessons: list[str]) -> dict[str, Any]: ...

_TIE = 1e-3  # weight of the prior that breaks ties between equal retrieval scores


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RationaleReply(_Reply):
    rationale: str = Field(min_length=1)
    cited: list[str] = []
    tastes: list[str] = []


class JudgeReply(_Reply):
    score: float = Field(ge=1, le=10)


class QueriesReply(_Reply):
    queries: list[str] = Field(min_length=1)


class Reasoned:
    """The reasoning / retrieval steps of one role agent, with their caches and counts."""

    def __init__(self, agent: Host) -> None:
        self.agent, self.role, self.rt = agent, agent.role, agent.rt
        self._sims: ItemSims | None = None
        self._rationales: dict[tuple[Any, ...], Rationale | None] = {}
        self._queries: dict[tuple[Any, ...], list[str]] = {}
        # Prepared ahead and not yet ranked, per (kind, key): the ranking step of a request
        # takes what its own prepare step wrote or reused, without counting it again.
        self._pending: Counter[tuple[Any, ...]] = Counter()
        self.counts: Counter[str] = Counter()
        self.version = self._version()

    # ------------------------------------------------------------------ helpers

    @property
    def sims(self) -> ItemSims:
        if self._sims is None:
            lib = self.rt.library
            self._sims = ItemSims(lib.history, lib.n_users, lib.n_items)
        return self._sims

    def _version(self) -> str:
        """The prompt version: templates and settings a rationale or query set comes from."""
        r = self.role
        parts = {name: (template(r, name), template(r, name, True))
                 for name in ("rationale", "judge", "queries")}
        blob = json.dumps({"t": parts, "instructions": r.instructions,
                           "reasoning": r.reasoning.model_dump() if r.reasoning else None,
                           "retrieval": r.retrieval.model_dump() if r.retrieval else None},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def _key(self, t: TaskLike) -> tuple[Any, ...]:
        return (t.user, t.now, t.where.get("round"), self.version)

    def _past(self, t: TaskLike) -> list[Rating]:
        return self.rt.library.histories().ratings(t.user, t.now)

    def _values(self, t: TaskLike, past: list[Rating], n_lines: int) -> dict[str, Any]:
        v = self.agent.values(t, [], [])
        v["history"] = "\n".join(history_lines(self.rt.library.world.catalog, past,
                                               n_lines)) or "no ratings yet"
        return v

    def _cost(self, start: tuple[tuple[int, int, float], float]) -> dict[str, Any]:
        (i0, o0, _), t0 = start
        i1, o1, _ = self.rt.usage()
        return {"tokens_in": i1 - i0, "tokens_out": o1 - o0,
                # Wall clock: in the trace's volatile block, which a replay or a resume's
                # re-execution does not compare.
                "volatile": {"seconds": round(time.perf_counter() - t0, 4)}}

    def _emit(self, kind: str, t: TaskLike, **fields: Any) -> None:
        self.rt.note(kind, f"{t.base}/{self.role.name}/{kind}", t.where,
                     agent=self.agent.agent, user=self.rt.library.user_ids[t.user],
                     now=t.now, version=self.version, **fields)

    def _add_cost(self, prefix: str, cost: dict[str, Any]) -> None:
        self.counts[f"{prefix}_tokens_in"] += cost["tokens_in"]
        self.counts[f"{prefix}_tokens_out"] += cost["tokens_out"]
        self.counts[f"{prefix}_ms"] += round(cost["volatile"]["seconds"] * 1000)

    # ------------------------------------------------------------------ rationale

    def rationale(self, t: TaskLike) -> Rationale | None:
        """The rationale for ``t``'s user and clock: reused if prepared, else written."""
        cfg = self.role.reasoning
        if cfg is None:
            return None
        key = self._key(t)
        if self._pending["r", key] > 0:
            self._pending["r", key] -= 1
            return self._rationales[key]
        if cfg.reuse and key in self._rationales:
            got = self._rationales[key]
            self.counts["rationales_reused"] += 1
            self._emit("rationale", t, reused=True, text=got.text if got else None)
            return got
        start = (self.rt.usage(), time.perf_counter())
        past = self._past(t)
        cat = self.rt.library.world.catalog
        if cfg.writer == "rules":
            drafts = [rules_rationale(cat, self.sims, past, cfg)]
        else:
            drafts = [d for d in (self._draft(t, past, k) for k in range(1, cfg.best_of + 1))
                      if d is not None]
        chosen = self._judge(t, past, drafts) if drafts else None
        cost = self._cost(start)
        self.counts["rationales_prepared"] += 1
        self.counts["drafts"] += len(drafts)
        self.counts["draft_failures"] += (cfg.best_of if cfg.writer == "llm" else 1) - len(drafts)
        if chosen is not None:
            self.counts["citations"] += len(chosen.cited)
            self.counts["ungrounded"] += len(chosen.ungrounded)
        self.counts["draft_ungrounded"] += sum(len(d.ungrounded) for d in drafts)
        self._add_cost("rationale", cost)
        self._emit("rationale", t, reused=False, source=cfg.writer, judge=cfg.judge,
                   chosen=drafts.index(chosen) if chosen is not None else None,
                   drafts=[{"text": d.text[:1500], "cited": [cat.item_ids[i] for i in d.cited],
                            "ungrounded": list(d.ungrounded), "genres": list(d.genres),
                            "neighbours": [cat.item_ids[i] for i in d.neighbours],
                            "score": d.score} for d in drafts],
                   failure=None if drafts else "no valid draft", **cost)
        self._rationales[key] = chosen  # without reuse, only for this request's ranking
        return chosen

    def _draft(self, t: TaskLike, past: list[Rating], k: int) -> Rationale | None:
        cfg = self.role.reasoning
        assert cfg is not None
        brain = self.agent.brain
        cat = self.rt.library.world.catalog
        v = {**self._values(t, past, cfg.history_items), "draft": k}
        system = render(self.role, "system", v)
        prompt = render(self.role, "rationale", v, brain.scored)
        if brain.scored:
            text = brain.say(system, prompt, "rationale")
            if not text:
                return None
            cited, bad, genres = ground(cat, past, text)
        else:
            res = brain.ask(system, prompt, RationaleReply, "rationale")
            if res.value is None:
                return None
            text = res.value.rationale
            cited, bad, genres = ground(cat, past, text + " " + " ".join(res.value.tastes),
                                        res.value.cited)
        return Rationale(text=text, cited=tuple(cited), ungrounded=tuple(bad),
                         genres=tuple(genres), source="llm")

    def _judge(self, t: TaskLike, past: list[Rating], drafts: list[Rationale]) -> Rationale:
        cfg = self.role.reasoning
        assert cfg is not None
        liked = liked_genres(self.rt.library.world.catalog, past)
        scored = []
        for d in drafts:
            if cfg.judge == "llm" and len(drafts) > 1:
                s = self._llm_judge(t, past, d)
            else:
                s = grounding_score(d, liked)
            scored.append(Rationale(**{**d.__dict__, "score": round(s, 4)}))
        best = max(range(len(scored)), key=lambda j: (scored[j].score, -j))
        drafts[:] = scored
        return scored[best]

    def _llm_judge(self, t: TaskLike, past: list[Rating], d: Rationale) -> float:
        cfg = self.role.reasoning
        assert cfg is not None
        brain = self.agent.brain
        v = {**self._values(t, past, cfg.history_items), "rationale": d.text}
        prompt = render(self.role, "judge", v, brain.scored)
        if brain.scored:
            lp = brain.score(prompt, (" yes", " no"), "judge:scored")
            return lp[0] - lp[1]
        res = brain.ask(render(self.role, "system", v), prompt, JudgeReply, "judge")
        if res.value is None:
            self.counts["judge_failures"] += 1
            return float("-inf")
        return res.value.score

    # ------------------------------------------------------------------ queries

    def queries(self, t: TaskLike) -> list[str]:
        cfg = self.role.retrieval
        if cfg is None:
            return []
        key = self._key(t)
        if self._pending["q", key] > 0:
            self._pending["q", key] -= 1
            return self._queries[key]
        if cfg.reuse and key in self._queries:
            self.counts["queries_reused"] += 1
            self._emit("queries", t, reused=True, queries=self._queries[key])
            return self._queries[key]
        start = (self.rt.usage(), time.perf_counter())
        past = self._past(t)
        cat = self.rt.library.world.catalog
        failure = None
        if cfg.writer == "rules":
            qs = rules_queries(cat, past, cfg.queries)
        else:
            qs, failure = self._llm_queries(t, past)
        cost = self._cost(start)
        self.counts["queries_prepared"] += 1
        self.counts["query_failures"] += failure is not None
        self._add_cost("queries", cost)
        self._emit("queries", t, reused=False, source=cfg.writer, queries=qs,
                   failure=failure, **cost)
        self._queries[key] = qs
        return qs

    def _llm_queries(self, t: TaskLike, past: list[Rating]) -> tuple[list[str], str | None]:
        cfg = self.role.retrieval
        assert cfg is not None
        brain = self.agent.brain
        v = {**self._values(t, past, 20), "draft": 1, "n": cfg.queries}
        system = render(self.role, "system", v)
        prompt = render(self.role, "queries", v, brain.scored)
        if brain.scored:
            text = brain.say(system, prompt, "queries")
            # One query per line; the list numbering the prompt starts is not a query.
            lines = [ln.strip().lstrip("0123456789.-) ").strip() for ln in text.splitlines()]
            qs = [ln for ln in lines if ln][:cfg.queries]
            return qs, None if qs else "no query in the answer"
        res = brain.ask(system, prompt, QueriesReply, "queries")
        if res.value is None:
            return [], res.error or "no answer"
        return [q.strip() for q in res.value.queries if q.strip()][:cfg.queries], None

    # ------------------------------------------------------------------ ranking

    def prepare(self, t: TaskLike) -> None:
        """Write (or find) the rationale and queries of ``t`` ahead of ranking it."""
        with self.rt.filed(f"{t.base}/{self.role.name}/prep", t.where):
            key = self._key(t)
            if self.role.reasoning is not None:
                self.rationale(t)
                self._pending["r", key] += 1
            if self.role.retrieval is not None:
                self.queries(t)
                self._pending["q", key] += 1

    def rank(self, t: TaskLike, v: dict[str, Any]
             ) -> tuple[list[int] | None, str, dict[str, Any]]:
        """(ranking, reason, prompt values): with ``ranker: llm`` the ranking is None and
        the role ranks with the returned values (the rationale and retrieved items in)."""
        lib = self.rt.library
        cat, world = lib.world.catalog, lib.world
        r = self.rationale(t)
        qs = self.queries(t)
        fused = None
        if self.role.retrieval is not None:
            hits = retrieve(lib, qs, self.role.retrieval) if qs else []
            fused = fuse(t.candidates, hits, self.role.retrieval.fusion)
            self._emit("retrieval", t, queries=qs,
                       retrieved=[[cat.item_ids[i] for i, _ in h[:10]] for h in hits],
                       candidate_scores={cat.item_ids[c]: round(float(s), 6) for c, s in
                                         zip(t.candidates, fused, strict=True) if s})
        reason = r.text[:600] if r is not None else ""
        if self.role.ranker == "llm":
            v = dict(v)
            if r is not None:
                v["rationale"] = r.text
                if "{rationale}" not in template(self.role, "prompt") + template(
                        self.role, "scored"):
                    v["notes"] = f"Rationale: {r.text}\n{v['notes']}"
            if fused is not None and fused.any():
                order = np.argsort(-fused, kind="stable")
                v["notes"] = ("Retrieved by the queries " + "; ".join(qs) + ": " + ", ".join(
                    cat.item_ids[t.candidates[j]] for j in order if fused[j] > 0)
                    + f"\n{v['notes']}")
            return None, reason, v
        prior = rule_scores(cat, self.sims, world.popularity, world.item_mean, t.candidates,
                            None, self.role.rules)
        if self.role.ranker == "retrieval":
            assert fused is not None
            s = fused + _TIE * prior
        else:
            s = rule_scores(cat, self.sims, world.popularity, world.item_mean, t.candidates,
                            r, self.role.rules)
        order = np.argsort(-s, kind="stable")
        return [t.candidates[j] for j in order], reason, v

    def stats(self) -> dict[str, Any]:
        """Counts, reuse and cost of the rationales and queries so far."""
        c = self.counts
        out: dict[str, Any] = dict(sorted(c.items()))
        for kind in ("rationales", "queries"):
            prepared, reused = c[f"{kind}_prepared"], c[f"{kind}_reused"]
            if prepared + reused:
                out[f"{kind}_hit_rate"] = round(reused / (prepared + reused), 4)
        return out
