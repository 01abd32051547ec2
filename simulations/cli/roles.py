"""``recarena roles new`` (scaffold a commented role file that validates as written) and
``recarena roles list`` (the shipped roles and teams, one line each)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_roles_commands", "list_roles", "scaffold"]

_USER = """\
# A user-side role: how one kind of simulated user behaves. Validate with
#   recarena validate {path}
# and use it from a scenario (population: {{role: {path}}}). Fields and defaults:
#   recarena schema --kind role
kind: user
name: {name}
description: {description}
instructions: >
  Describe who this user is and how they choose (used by brain: llm prompts).
# Fix a trait for every agent of the role (1-3) instead of scoring it from data:
traits: {{activity: null, conformity: null, diversity: null}}
memory:
  short_term_window: 8      # recent events kept
  shared: null              # name a shared store to share notes with other agents
planner:
  kind: static              # static | reactive | preactive | reflective (the last three: brain llm)
tools: [search_memory, item_info, similar_items]
brain:
  kind: utility             # utility (numeric, no LLM) | llm (needs an llm: block or --llm)
  # decision_mode: auto     # llm brain: structured (chat models) | scored (base models)
  # The shipped role's parameters, fitted on tuning users by bench/tune_utility.py
  # ({tuned}). Change what you study; to follow future re-tunings instead,
  # replace this file's fields by `extends: utility_user` and list only what differs.
  params:
{params}
# llm: {{backend: openai, model: gpt-4o-mini}}   # this role's own model (optional)
"""

_RECOMMENDER = """\
# A recommender role: an LLM agent on the recommending side. Validate with
#   recarena validate {path}
{use}
# Fields and defaults:
#   recarena schema --kind recommender
kind: recommender
name: {name}
description: {description}
# What it answers: ranking | rating | explanation | chat_reply | delegation (a team manager)
output: {output}
instructions: >
  Say what this agent is for and how it should decide.
# Tools it may call (user tools only ever see the user's past before the request's clock):
#   item_info similar_items search_catalog semantic_search kg_neighbours kg_paths kg_shared
#   user_profile user_history candidates
tools: {tools}
planner:
  kind: static              # static: each tool once with defaults; reactive: ReAct (chat models)
  max_steps: 3
memory:
  shared: null              # a shared store whose lessons fill {{lessons}}
  top_k: 3
brain:
  decision_mode: auto       # auto: scored with the local base model, structured otherwise
  max_repairs: 1
  reply_tokens: 64          # base models: length cap of free text
# llm: {{backend: openai, model: gpt-4o-mini}}   # default: the scenario's llm: or --llm
# Prompt templates (Python str.format; {{{{ }}}} is a literal brace). Each template may use only
# the variables listed above it; leave one out to use the default shown.
prompts:
{prompts}"""


def _block(text: str, indent: str = "    ") -> str:
    return "\n".join(indent + line if line else "" for line in text.splitlines())


def scaffold(name: str, kind: str, output: str, path: Path) -> str:
    """The text of a new role file (valid as written)."""
    description = f"One line saying what {name} does."
    if kind == "user":
        return _USER.format(name=name, description=description, path=path,
                            **_tuned_params())
    from agents.recsys.prompts import DEFAULTS
    from scenarios.recsys import BLOCK_TEMPLATES, RECSYS_TEMPLATE_VARIABLES

    parts = []
    for tname, variables in RECSYS_TEMPLATE_VARIABLES[output].items():
        if tname in BLOCK_TEMPLATES:  # a reasoning:/retrieval: block's: not scaffolded
            continue
        parts.append(f"  # variables: {', '.join(variables)}\n  {tname}: |-\n"
                     f"{_block(DEFAULTS[output][tname])}\n")
    tools = "[user_history, item_info]" if output != "delegation" else "[]"
    return _RECOMMENDER.format(name=name, description=description, output=output,
                               tools=tools, path=path, prompts="".join(parts),
                               use=_use(output, path))


def _tuned_params() -> dict[str, str]:
    """The shipped utility role's brain parameters as YAML lines (what the tuner wrote)."""
    import yaml

    from scenarios.loader import SHIPPED_ROLES

    src = SHIPPED_ROLES / "utility_user.yaml"
    data = yaml.safe_load(src.read_text(encoding="utf-8"))
    params = (data.get("brain") or {}).get("params") or {}
    lines = "\n".join(f"    {k}: {v!r}" for k, v in params.items())
    return {"params": lines, "tuned": f"scenarios/roles/{src.name}"}


def _use(output: str, path: Path) -> str:
    """Comment lines saying where the role goes, each a YAML line to copy."""
    if output == "delegation":  # load_agent refuses a manager on its own
        return ("# A delegation role manages a team: name it in a team file (kind: team) as\n"
                f"#   manager: {path}")
    return ("# Run it as a scenario arm (paths are relative to the scenario file):\n"
            f"#   - {{name: x, model: agent, agent: {path}, candidates: {{model: ease, n: 20}}}}\n"
            "# or name it under members: in a team file.")


def list_roles() -> list[dict[str, str]]:
    """Shipped roles and teams: name, kind, output (or brain), description, file."""
    import yaml

    from scenarios.loader import SHIPPED_ROLES, validate_file

    rows = []
    files = sorted(SHIPPED_ROLES.glob("*.yaml")) + sorted(
        (SHIPPED_ROLES.parent / "teams").glob("*.yaml"))
    for f in files:
        kind = validate_file(f)
        data: dict[str, Any] = yaml.safe_load(f.read_text(encoding="utf-8"))
        if kind in ("role", "user"):
            what = f"brain {data.get('brain', {}).get('kind', 'utility')}"
            kind = "user"
        elif kind == "team":
            what = f"{len(data.get('members', []))} members"
        elif kind == "item":
            what = f"inference {data.get('inference', 'basic')}"
        else:
            what = str(data.get("output"))
        rows.append({"name": str(data.get("name")), "kind": kind, "output": what,
                     "description": " ".join(str(data.get("description", "")).split()),
                     "file": str(f.relative_to(SHIPPED_ROLES.parent.parent))})
    return rows


def cmd_roles_new(a: argparse.Namespace) -> int:
    from scenarios.loader import validate_file

    if a.kind == "user" and a.output is not None:
        raise ValueError("--output: user roles have no output type (it is for --kind "
                         "recommender)")
    path = Path(a.dir) / f"{a.name}.yaml"
    if path.exists():
        raise ValueError(f"{path}: exists; choose another name or --dir")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(scaffold(a.name, a.kind, a.output or "ranking", path), encoding="utf-8")
    kind = validate_file(path)  # the scaffold must validate as written
    print(f"{path}: written ({kind}); edit it, then: recarena validate {path}")
    return 0


def cmd_roles_list(a: argparse.Namespace) -> int:
    rows = list_roles()
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['name']:<18} {r['kind']:<12} {r['output']:<14} {r['description']}")
    return 0


def add_roles_commands(command: Callable[[str, str], Any]) -> None:
    """Register ``roles new`` and ``roles list`` (``command(name, help)`` makes a parser)."""
    n = command("new", "write a commented role file that validates as written")
    n.add_argument("name", help="the role's name (letters, digits, _ . -); the file is "
                   "DIR/NAME.yaml", type=_name)
    n.add_argument("--kind", choices=["user", "recommender"], default="user",
                   help="user: a simulated user; recommender: an LLM recommender agent "
                   "(default: %(default)s)")
    n.add_argument("--output", choices=["ranking", "rating", "explanation", "chat_reply",
                                        "delegation"],
                   help="recommender roles: what it answers (default: ranking)")
    n.add_argument("--dir", default=".", help="folder to write into (default: .)")
    n.set_defaults(fn=cmd_roles_new)
    ls = command("list", "the shipped roles and teams, one line each (kind, output, "
                 "description)")
    ls.add_argument("--json", action="store_true", help="print as JSON")
    ls.set_defaults(fn=cmd_roles_list)


def _name(v: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9_.-]+", v):
        raise argparse.ArgumentTypeError(f"invalid role name {v!r}: use letters, digits, "
                                         "_ . -")
    return v
