"""AgentCF with a language model: users and items write their own descriptions.

- forward: the user agent reads its self-description and the two items' descriptions and
  names the one it prefers with a reason (``choose``; base models: the log-probabilities
  of " A" and " B" after ``choose_scored``, valid by construction).
- backward: on a wrong choice the user rewrites its self-description (``reflect_user``),
  then each item rewrites its "who likes me" description given the updated user
  (``reflect_item``: the positive as chosen, the negative as passed over); on a right one,
  with ``on_right: reinforce``, the user and the positive are asked the same with outcome
  "right". A reflection is structured output: a JSON object ``{"description": ...}``
  validated by :class:`Reflection` through agents/llm/structured.py (re-asked up to
  ``max_repairs`` times with the error). An answer still invalid failed to parse: the
  description stays, the failure is counted per epoch and traced
  (``agentcf_parse_failure``), never dropped silently. Base models rarely write JSON, so
  with the local 270M model most reflections are counted failures: that is the measure.
- inference (``rank``): base models score each candidate by log P(" yes") - log P(" no")
  after ``rank_scored``; chat models list the candidates' ids best first after ``rank``
  (an answer naming no candidate is a failure, counted by the task). Both read the user's
  description, plus the history (``history`` mode) or the user's remembered choices and
  reasons retrieved from the memory store (``retrieval``).

Descriptions live in :class:`agents.items.store.Descriptions` (the long-term store).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, field_validator

from agents.items.loop import Backward, Choice, ParseFailure, TrainStep
from agents.items.store import Descriptions
from agents.llm import LLMClient
from agents.llm.structured import ask_structured, extract_json
from agents.recsys.protocol import Ranking, RankRequest
from scenarios.item_role import ItemRole

__all__ = ["LLMItemAgents", "Reflection", "parse_reflection"]

MIN_WORDS = 3
History = Callable[[int, float | None], Sequence[int]]


class Reflection(BaseModel):
    """A reflection's answer: the agent's new description."""

    description: str

    @field_validator("description")
    @classmethod
    def _readable(cls, v: str) -> str:
        words = v.split()
        # Fewer words cannot say who likes an item and why ("ok", "yes", "Drama").
        if len(words) < MIN_WORDS:
            raise ValueError(f"a description of at least {MIN_WORDS} words, got {v!r}")
        return " ".join(words)


def cut(desc: str, max_words: int) -> str:
    """A description kept to ``max_words`` words (memory.words: longer ones are cut)."""
    return " ".join(desc.split()[:max_words])


def parse_reflection(text: str, max_words: int) -> str | None:
    """The description in a reflection's JSON answer (at most ``max_words`` words), or
    None when the answer holds no valid :class:`Reflection`."""
    try:
        return cut(Reflection.model_validate(extract_json(text)).description, max_words)
    except (ValueError, TypeError):  # no JSON, or a ValidationError (a ValueError)
        return None


class LLMItemAgents:
    """The LLM learner of the loop and a recommender-agent protocol ranker."""

    def __init__(self, role: ItemRole, client: LLMClient, store: Descriptions,
                 item_line: Callable[[int], str], history: History, *,
                 name: str = "agentcf", mode: str | None = None) -> None:
        self.role, self.client, self.store = role, client, store
        self.item_line, self.history = item_line, history
        self.name = name
        self.mode = mode or role.inference
        dm = role.decision_mode
        self.scored = dm == "scored" or (dm == "auto" and client.cfg.backend == "local")
        self.system = role.prompts.system.format(instructions=role.instructions.strip())

    def with_mode(self, mode: str) -> LLMItemAgents:
        """The same trained agents ranking in another inference mode (its own row)."""
        twin = LLMItemAgents(self.role, self.client, self.store, self.item_line,
                             self.history, mode=mode,
                             name=self.name if mode == "basic" else f"{self.name}+{mode}")
        twin.scored = self.scored
        return twin

    # ------------------------------------------------------------------ helpers

    def _user(self, u: int) -> str:
        return self.store.user(u)

    def _item(self, i: int) -> str:
        return f"{self.item_line(i)}. Liked by: {self.store.item(i)}"

    def _chat(self, prompt: str, agent: str, purpose: str) -> str:
        return self.client.chat([("system", self.system), ("user", prompt)], agent=agent,
                                purpose=purpose).text

    # ------------------------------------------------------------------ training

    def forward(self, step: TrainStep) -> Choice:
        first, second = ((step.negative, step.positive) if step.swap
                         else (step.positive, step.negative))
        v = {"user": self._user(step.user), "first": self._item(first),
             "second": self._item(second)}
        agent = f"user:{step.user}"
        if self.scored:
            lp = self.client.score(self.role.prompts.choose_scored.format(**v), (" A", " B"),
                                   agent=agent, purpose="agentcf:choose").logprobs
            chose = first if lp[0] >= lp[1] else second
            return Choice(chose, fields={"logprobs": [round(x, 4) for x in lp]})
        text = self._chat(self.role.prompts.choose.format(**v), agent, "agentcf:choose")
        head = text.strip()[:1].upper()
        if head not in ("A", "B"):
            return Choice(first, text.strip()[:200], failure="no A or B in the answer")
        rest = text.strip()[1:].strip(" .:-\n")
        return Choice(first if head == "A" else second, rest[:300])

    def _reflect(self, prompt: str, agent: str, purpose: str, who: str
                 ) -> str | ParseFailure:
        """The new description, or the failure when the answer is not a valid
        :class:`Reflection` after ``max_repairs`` re-asks."""
        got = ask_structured(self.client, [("system", self.system), ("user", prompt)],
                             Reflection, agent=agent, purpose=purpose,
                             max_repairs=self.role.max_repairs)
        if got.value is None:
            raw = got.raw[-1] if got.raw else ""
            return ParseFailure(who, got.error or "no answer", raw[:300], got.attempts)
        return cut(got.value.description, self.role.memory.words)

    def backward(self, step: TrainStep, choice: Choice, right: bool) -> Backward:
        if right and self.role.training.on_right == "none":
            return Backward()
        outcome = "right" if right else "wrong"
        failures: list[ParseFailure] = []
        n = 0
        u = step.user
        ask = self.role.prompts.reflect_user.format(
            user=self._user(u), chosen=self.item_line(choice.chose),
            rejected=self.item_line(step.negative if right else step.positive),
            positive=self.item_line(step.positive), negative=self.item_line(step.negative),
            explanation=choice.explanation or "no reason given", outcome=outcome)
        n += 1
        new = self._reflect(ask, f"user:{u}", "agentcf:reflect_user", "user")
        if isinstance(new, ParseFailure):
            failures.append(new)
        else:
            self.store.set_user(u, new, step=step)
        if self.role.training.item_updates:
            items = [(step.positive, "chose")] + ([] if right else
                                                  [(step.negative, "passed over")])
            for item, how in items:
                n += 1
                ask = self.role.prompts.reflect_item.format(
                    item=self._item(item), user=self._user(u), outcome=outcome, role=how)
                new = self._reflect(ask, f"item:{item}", "agentcf:reflect_item",
                                    f"item {self.store.item_ids[item]}")
                if isinstance(new, ParseFailure):
                    failures.append(new)
                else:
                    self.store.set_item(item, new, step=step)
        self.store.remember_choice(u, step.positive, choice.explanation)
        return Backward(n, tuple(failures), {"user_description": self._user(u)})

    # ------------------------------------------------------------------ inference

    def _context(self, user: int, now: float | None, query: str) -> tuple[str, str]:
        hist = mem = "- none"
        if self.mode == "history":
            past = self.history(user, now)[-self.role.control.history:]
            hist = "\n".join(f"- {self.item_line(i)}" for i in past) or "- none"
        if self.mode == "retrieval":
            got = self.store.recall(user, query, k=3)
            mem = "\n".join(f"- {t}" for t in got) or "- none"
        return hist, mem

    def _chat_rank(self, r: RankRequest) -> Ranking:
        """Chat models: one answer listing the candidates' ids, best first; ids it leaves
        out follow in presented order; no id at all is a failure (presented order)."""
        ids = self.store.item_ids
        hist, mem = self._context(r.user, r.now, " ".join(self.item_line(i)
                                                           for i in r.candidates[:3]))
        lines = "\n".join(f"{ids[i]}: {self._item(i)}" for i in r.candidates)
        text = self._chat(self.role.prompts.rank.format(
            user=self._user(r.user), history=hist, memories=mem, candidates=lines),
            f"user:{r.user}", f"agentcf:rank:{self.mode}")
        by_id = {ids[i]: i for i in r.candidates}
        got: list[int] = []
        for tok in re.findall(r"[A-Za-z0-9_.-]+", text):
            i = by_id.get(tok)
            if i is not None and i not in got:
                got.append(i)
        failure = None if got else "no candidate id in the answer"
        rest = [i for i in r.candidates if i not in got]
        return Ranking(items=(got + rest)[:r.k], failure=failure)

    def scores(self, user: int, items: Sequence[int], now: float | None) -> list[float]:
        hist, mem = self._context(user, now, "")
        out = []
        for i in items:
            if self.mode == "retrieval":
                _, mem = self._context(user, now, self.item_line(i))
            prompt = self.role.prompts.rank_scored.format(
                user=self._user(user), history=hist, memories=mem, item=self._item(i))
            lp = self.client.score(prompt, (" yes", " no"), agent=f"user:{user}",
                                   purpose=f"agentcf:rank:{self.mode}").logprobs
            out.append(lp[0] - lp[1])
        return out

    # The recommender-agent protocol (agents/recsys/protocol.py), ranking only.
    def rank(self, requests: Sequence[RankRequest]) -> list[Ranking]:
        out = []
        for r in requests:
            if not self.scored:
                out.append(self._chat_rank(r))
                continue
            s = self.scores(r.user, r.candidates, r.now)
            order = sorted(range(len(s)), key=lambda j: (-s[j], j))[:r.k]
            out.append(Ranking(items=[r.candidates[j] for j in order]))
        return out

    def rate(self, requests: Sequence[Any]) -> list[Any]:
        raise TypeError(f"{self.name} does not rate")

    def explain(self, requests: Sequence[Any]) -> list[Any]:
        raise TypeError(f"{self.name} does not explain")

    def llm_usage(self) -> tuple[int, int, float]:
        t = self.client.usage.total
        return int(t.input_tokens), int(t.output_tokens), float(t.cost_usd)

    def close(self) -> None:
        pass
