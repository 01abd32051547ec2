"""Prompt variables: how a profile, a page and memories read in a prompt.

The role YAML holds the templates (``PromptTemplates``); this module fills the variables
each template receives, as declared in ``scenarios.schema.TEMPLATE_VARIABLES``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from agents.brains.base import ConversationView, PageObservation, SessionSummary
from agents.profile import UserProfile
from scenarios.schema import TEMPLATE_VARIABLES
from tools.data_model import item_note
from tools.dataset import Catalog

__all__ = [
    "conversation_vars",
    "item_line",
    "page_vars",
    "profile_vars",
    "render",
    "session_vars",
]

_LEVEL = {
    "activity": {1: "low (watches few movies)", 2: "medium", 3: "high (watches a lot)"},
    "conformity": {1: "low (own opinions)", 2: "medium", 3: "high (agrees with the crowd)"},
    "diversity": {1: "low (sticks to favourite genres)", 2: "medium",
                  3: "high (likes variety)"},
}


def _titles(catalog: Catalog, ids: Iterable[str], n: int = 5) -> str:
    names = [catalog.titles[catalog.index[i]] for i in ids if i in catalog.index][:n]
    return "; ".join(names) or "none in particular"


def item_line(catalog: Catalog, item: int, mean_rating: float | None = None) -> str:
    """``id | Title (year) | genres | mean rating | description``, one line."""
    year = catalog.years[item]
    title = f"{catalog.titles[item]} ({year})" if year else catalog.titles[item]
    parts = [catalog.item_ids[item], title, ", ".join(catalog.genres[item]) or "unclassified"]
    if mean_rating is not None:
        parts.append(f"mean rating {mean_rating:.1f}/5")
    desc = catalog.descriptions[item]
    if desc and not desc.startswith(catalog.titles[item]):
        parts.append(desc)
    note = item_note(catalog, item)
    if note:
        parts.append(note)
    return " | ".join(parts)


def profile_vars(profile: UserProfile, catalog: Catalog, role: str,
                 instructions: str) -> dict[str, Any]:
    return {
        "role": role,
        "instructions": instructions.strip(),
        "activity": _LEVEL["activity"][profile.activity],
        "conformity": _LEVEL["conformity"][profile.conformity],
        "diversity": _LEVEL["diversity"][profile.diversity],
        "liked_genres": ", ".join(profile.liked_genres) or "no genre in particular",
        "disliked_genres": ", ".join(profile.disliked_genres) or "no genre in particular",
        "liked_titles": _titles(catalog, profile.liked_items),
        "disliked_titles": _titles(catalog, profile.disliked_items),
    }


def _memory_lines(obs: PageObservation) -> str:
    lines = []
    for m in obs.memory:
        rating = f", rated {m['rating']}" if m.get("rating") else ""
        lines.append(f"- page {m.get('page', '?')}: {m['action']} {m.get('title', m['item'])}"
                     f"{rating}")
    lines.extend(f"- {t}" for t in obs.recalled)
    return "\n".join(lines) or "- nothing yet"


def page_vars(obs: PageObservation, catalog: Catalog, item_mean: np.ndarray,
              max_pages: int) -> dict[str, Any]:
    return {
        "plan": f"Your plan for this page:\n{obs.guidance}\n\n" if obs.guidance else "",
        "memories": _memory_lines(obs),
        "page": obs.page,
        "max_pages": max_pages,
        "items": "\n".join(item_line(catalog, i, float(item_mean[i])) for i in obs.items),
        "item_ids": ", ".join(catalog.item_ids[i] for i in obs.items),
    }


def conversation_vars(view: ConversationView, catalog: Catalog,
                      item_mean: np.ndarray) -> dict[str, Any]:
    return {
        "target": item_line(catalog, view.target, float(item_mean[view.target])),
        "said": "\n".join(f"- {s}" for s in view.said) or "- nothing yet",
        "recommended": "\n".join(item_line(catalog, i, float(item_mean[i]))
                                 for i in view.recommended),
        "turn": view.turn,
        "plan": view.guidance,
        "reply": f"The recommender says: {view.reply.strip()}\n" if view.reply.strip() else "",
    }


def session_vars(s: SessionSummary, catalog: Catalog) -> dict[str, Any]:
    watched = "; ".join(f"{catalog.titles[i]} ({r}/5)"
                        for i, r in zip(s.watched, s.ratings, strict=True))
    return {"watched": watched or "nothing", "n_watched": len(s.watched), "n_shown": s.shown,
            "pages_seen": s.pages}


def render(template: str, name: str, values: dict[str, Any]) -> str:
    """Fill the role's template ``name`` with ``values``, which must be exactly the
    variables the schema promises that template (``TEMPLATE_VARIABLES``).

    The loader has already rejected any other variable in the template, so every
    ``{name}`` is filled: nothing reaches the model as literal text.
    """
    promised = set(TEMPLATE_VARIABLES[name])
    if set(values) != promised:
        # A programming error: the brain and the schema disagree about this template.
        missing, extra = sorted(promised - set(values)), sorted(set(values) - promised)
        raise RuntimeError(f"prompt {name}: variables missing {missing}, unexpected {extra}")
    return template.format_map(values)
