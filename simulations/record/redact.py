"""Secrets out of everything a run writes: traces, manifests, summaries, exports.

Two nets, applied to text (a JSON line is text too; every replacement keeps it valid JSON):

1. The values of environment variables that hold secrets: any variable whose name says
   key, token, secret, password or credential, and the variables an ``llm:`` block names
   in ``api_key_env``. Their values are replaced wherever they appear, also JSON-escaped.
2. Shapes of credentials wherever they come from (a key pasted into the wrong field of a
   scenario, an error echoing a header): OpenAI-style ``sk-`` keys, other providers' key
   prefixes, ``Bearer`` tokens, ``user:password@`` in URLs and ``?api_key=`` parameters.

Each pattern runs only when a substring it needs occurs, and one scan finds whether any
does, so a trace line without anything key-like costs one regex search (about 4 us for a
300-character line).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MASK", "Redactor", "secret_env_names"]

MASK = "***"
_SECRET_NAME = re.compile(r"(?i)(key|token|secret|passw(or)?d|credential)")
_MIN_SECRET_LEN = 8  # shorter values ("1", "true") would mask ordinary text

# (substrings one of which must occur, pattern, replacement)
_SHAPES: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    (("sk-", "pk-", "rk-"), re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}"), MASK),
    (("earer",), re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{8,}"), f"Bearer {MASK}"),
    (("://",), re.compile(r"(://)[^/\s@\"'\\<>]+@"), rf"\1{MASK}@"),
    (("=",), re.compile(r"(?i)([?&;](?:api[-_]?key|key|token|access[-_]?token|auth|sig|"
                        r"signature|password|secret)=)[^&;\s\"'\\#<>]+"), rf"\1{MASK}"),
    (("AKIA",), re.compile(r"\bAKIA[0-9A-Z]{16}\b"), MASK),
    (("ghp_", "gho_", "ghs_", "github_pat_"),
     re.compile(r"\b(?:gh[pos]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), MASK),
    (("hf_",), re.compile(r"\bhf_[A-Za-z0-9]{20,}"), MASK),
    (("AIza",), re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"), MASK),
    (("xox",), re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"), MASK),
)


# Any of the needles above: one scan of a line that holds nothing key-like.
_ANY = re.compile("|".join(re.escape(n) for needles, _, _ in _SHAPES for n in needles))


def secret_env_names(environ: Mapping[str, str], extra: Iterable[str] = ()) -> list[str]:
    """Names of the variables whose values must never be written."""
    names = {n for n in environ if _SECRET_NAME.search(n)}
    names.update(n for n in extra if n)
    return sorted(names)


@dataclass(frozen=True)
class Redactor:
    """Masks secrets in text. Build one per run with :meth:`from_environment`."""

    literals: tuple[str, ...] = ()

    @classmethod
    def from_environment(cls, extra_names: Iterable[str] = (),
                         environ: Mapping[str, str] | None = None) -> Redactor:
        """The secret values of the environment (and of ``extra_names``), longest first."""
        env = os.environ if environ is None else environ
        values: set[str] = set()
        for name in secret_env_names(env, extra_names):
            v = env.get(name, "").strip()
            if len(v) >= _MIN_SECRET_LEN:
                values.add(v)
                values.add(json.dumps(v)[1:-1])  # as it appears inside a JSON string
        return cls(tuple(sorted(values, key=len, reverse=True)))

    def text(self, s: str) -> str:
        """``s`` with every secret replaced by ``***``."""
        for v in self.literals:
            if v in s:
                s = s.replace(v, MASK)
        if _ANY.search(s) is None:
            return s
        for needles, pattern, repl in _SHAPES:
            if any(n in s for n in needles):
                s = pattern.sub(repl, s)
        return s

    def value(self, obj: Any) -> Any:
        """A JSON-like value with every string masked (keys included)."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {self.text(str(k)): self.value(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.value(v) for v in obj]
        return obj
