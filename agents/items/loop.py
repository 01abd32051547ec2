"""AgentCF's training loop, shared by the deterministic control and the LLM agents.

For each training interaction (oldest first), the user agent chooses between the positive
item and a sampled negative, shown in a seeded order (``forward``); on a wrong choice
both sides reflect (``backward``: the user's description first, then the items' given the
updated user), on a right one a reinforcing update (or none). Every forward and backward
step is one trace event (``agentcf_forward``, ``agentcf_backward``) under
``agentcf/eE/uUSER/sSTEP``, plus one ``agentcf_parse_failure`` per reflection that gave
no valid description (its update was not applied); an epoch ends with ``agentcf_epoch``
(pairwise accuracy, reflections asked and how many failed to parse).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Backward", "Choice", "EpochStats", "Learner", "ParseFailure", "TrainStep",
           "train"]

Emit = Callable[..., None]


@dataclass(frozen=True)
class TrainStep:
    """One history interaction: ``positive`` was chosen; ``negative`` was not.

    ``swap``: the negative is shown first (seeded per step, so position says nothing).
    """

    user: int
    positive: int
    negative: int
    ts: float
    swap: bool


@dataclass(frozen=True)
class Choice:
    """A forward step: which item the user agent chose, and why."""

    chose: int
    explanation: str = ""
    failure: str | None = None  # the answer could not be read; the first shown is taken
    fields: dict[str, Any] = field(default_factory=dict)  # trace extras (scores...)


@dataclass(frozen=True)
class ParseFailure:
    """A reflection that gave no valid description: whose (``user`` or ``item ID``), why
    (the validation error of the last attempt), and the last raw answer."""

    agent: str
    error: str
    raw: str = ""
    attempts: int = 1


@dataclass(frozen=True)
class Backward:
    """A backward step: the new descriptions, and the reflections that failed to parse
    (their descriptions stay as they were; counted, traced, never skipped silently)."""

    reflections: int = 0
    failures: tuple[ParseFailure, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)


class Learner(Protocol):
    """What the loop drives: the control or the LLM agents."""

    def forward(self, step: TrainStep) -> Choice: ...

    def backward(self, step: TrainStep, choice: Choice, right: bool) -> Backward: ...


@dataclass
class EpochStats:
    epoch: int
    steps: int = 0
    right: int = 0
    reflections: int = 0
    parse_failures: int = 0
    choice_failures: int = 0

    @property
    def accuracy(self) -> float:
        return self.right / self.steps if self.steps else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "steps": self.steps, "right": self.right,
                "accuracy": round(self.accuracy, 4), "reflections": self.reflections,
                "parse_failures": self.parse_failures,
                "parse_failure_rate": (round(self.parse_failures / self.reflections, 4)
                                       if self.reflections else 0.0),
                "choice_failures": self.choice_failures}


def train(learner: Learner, steps: Sequence[TrainStep], epochs: int, *,
          emit: Emit | None = None, ids: Callable[[int], str] = str,
          users: Callable[[int], str] = str,
          on_step: Callable[[int], None] | None = None,
          on_epoch: Callable[[EpochStats], None] | None = None) -> list[EpochStats]:
    """Run ``epochs`` passes over ``steps`` (in the given, time-ordered order).

    ``ids``/``users`` turn dense indices into catalogue / dataset ids for the trace;
    ``on_epoch`` runs after each epoch's last step (the control writes its descriptions).
    """
    out = []
    for e in range(1, epochs + 1):
        st = EpochStats(e)
        for n, s in enumerate(steps):
            base = f"agentcf/e{e}/u{users(s.user)}/s{n}"
            shown = (s.negative, s.positive) if s.swap else (s.positive, s.negative)
            c = learner.forward(s)
            right = c.chose == s.positive
            st.steps += 1
            st.right += right
            st.choice_failures += c.failure is not None
            if emit is not None:
                emit("agentcf_forward", base + "/forward", epoch=e, user=users(s.user),
                     shown=[ids(i) for i in shown], positive=ids(s.positive),
                     chose=ids(c.chose), right=right, explanation=c.explanation,
                     failure=c.failure, **c.fields)
            b = learner.backward(s, c, right)
            st.reflections += b.reflections
            st.parse_failures += len(b.failures)
            if emit is not None:
                emit("agentcf_backward", base + "/backward", epoch=e, user=users(s.user),
                     right=right, reflections=b.reflections,
                     failures=[f.agent for f in b.failures], **b.fields)
                for k, f in enumerate(b.failures):  # one event each: what was not applied
                    emit("agentcf_parse_failure", f"{base}/failure{k}", epoch=e,
                         user=users(s.user), agent=f.agent, error=f.error, raw=f.raw,
                         attempts=f.attempts, applied=False)
            if on_step is not None:
                on_step(1)
        if on_epoch is not None:
            on_epoch(st)
        if emit is not None:
            emit("agentcf_epoch", f"agentcf/e{e}", **st.as_dict())
        out.append(st)
    return out
