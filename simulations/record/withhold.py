"""Traces that withhold user attributes (``output.withhold_attributes: true``).

User attributes (age, gender, occupation, zip code: every column of the dataset's user
file) reach a trace in two places only: the ``attrs`` of ``profile`` events, and the
phrase ``user ID (age 24, gender M, ...)`` that ``tools.history.describe_user`` writes
into recommender agents' prompts, their tool results (``user_profile``) and plan steps.
:class:`WithholdingRedactor` removes both from every line a run writes, before the
secrets are masked. What a language model writes in its own words (an answer that
repeats "as a 24-year-old technician") cannot be recognised exactly; keep such text out
as well with ``output.keep_prompts: false``. The run's LLM cache keeps prompts verbatim
(a replay needs them): it is not a trace, and not for sharing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from simulations.record.redact import Redactor
from tools.history import attribute_phrase

__all__ = ["WithholdingRedactor"]

# The attrs of a profile event: flat string values (no nested objects).
_ATTRS = re.compile(r'"attrs":\s*\{[^{}]*\}')
# Where describe_user starts its parenthesised attributes: "user ID (".
_USER = re.compile(r'user ([^\s"()\\]+) \(')


@dataclass(frozen=True)
class WithholdingRedactor(Redactor):
    """A :class:`Redactor` that also removes user attributes.

    ``phrases`` maps a user id to its attribute phrase as it appears inside a JSON string.
    """

    phrases: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_users(cls, base: Redactor, user_ids: Sequence[str],
                  attrs: Sequence[Mapping[str, str]]) -> WithholdingRedactor:
        """``base``'s secrets plus the attributes of these users (parallel sequences)."""
        phrases = {}
        for uid, a in zip(user_ids, attrs, strict=False):
            who = attribute_phrase(a)
            if who:
                phrases[uid] = json.dumps(who)[1:-1]
        return cls(literals=base.literals, phrases=phrases)

    def text(self, s: str) -> str:
        if '"attrs":' in s:
            s = _ATTRS.sub('"attrs":{}', s)
        if self.phrases and "user " in s:
            s = self._phrases(s)
        return super().text(s)

    def _phrases(self, s: str) -> str:
        out, pos = [], 0
        for m in _USER.finditer(s):
            who = self.phrases.get(m.group(1))
            if who is None or m.start() < pos:
                continue
            tail = who + ")"
            if s.startswith(tail, m.end()):
                # "user 42 (age 24, ...)" -> "user 42"
                out.append(s[pos:m.start()] + f"user {m.group(1)}")
                pos = m.end() + len(tail)
        if not out:
            return s
        out.append(s[pos:])
        return "".join(out)
