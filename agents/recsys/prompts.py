"""Default prompt templates of recommender roles, and rendering with exactly the declared
variables (``scenarios.recsys.RECSYS_TEMPLATE_VARIABLES``)."""

from __future__ import annotations

from typing import Any

from scenarios.recsys import RECSYS_TEMPLATE_VARIABLES, RecommenderRole

__all__ = ["BLOCK_DEFAULTS", "DEFAULTS", "SCORED_DEFAULTS", "render", "template"]

_SYSTEM = ("You are {role}, part of a movie recommender system. {instructions}\n"
           "Answer only in the format asked.")
_HISTORY = ("The user: {user}\nTheir ratings before now (oldest first):\n{history}\n")
_ABOUT = ("The user: {user}\nTheir last ratings (oldest first):\n{history}\n"
          "What you found out:\n{notes}\nLessons from earlier tasks:\n{lessons}\n")

DEFAULTS: dict[str, dict[str, str]] = {
    "ranking": {
        "system": _SYSTEM,
        "prompt": (_ABOUT + "Conversation so far: {context}\nTask: {task}\nCandidates:\n"
                   "{candidates}\nRank the candidates from the best recommendation for this "
                   "user to the worst, using only these ids: {candidate_ids}. Answer with "
                   'JSON only: {{"ranking": ["ID", "ID"], "reason": "..."}}'),
        "scored": ("The user: {user}\nTheir last ratings:\n{history}\n{context}\n"
                   "Candidate movie: {item}\nQuestion: Is the candidate a good "
                   "recommendation for this user? Answer yes or no.\nAnswer:"),
    },
    "rating": {
        "system": _SYSTEM,
        "prompt": (_ABOUT + "Task: {task}\nThe movie: {item}\nPredict the user's rating from "
                   "1 to 5. Answer with JSON only: "
                   '{{"rating": 4, "explanation": "..."}}'),
        "scored": ("The user: {user}\nTheir last ratings:\n{history}\nThe user watched: "
                   "{item}\nOn a scale of 1 to 5 stars, the user rates it:"),
    },
    "explanation": {
        "system": _SYSTEM,
        "prompt": (_ABOUT + "Task: {task}\nThe movie: {item}\nIn one or two sentences, "
                   "explain why this movie suits (or does not suit) this user. Answer with "
                   'JSON only: {{"explanation": "..."}}'),
    },
    "chat_reply": {
        "system": _SYSTEM,
        "prompt": (_ABOUT + "Conversation so far: {context}\nTask: {task}\n{answer}\n"
                   "{item}\nCandidates:\n{candidates}\nReply in one or two sentences. When "
                   "there are candidates, also rank them best first by id ({candidate_ids}). "
                   'Answer with JSON only: {{"reply": "...", "ranking": ["ID"]}}'),
        "scored": ("The user said: {context}\nThe user: {user}\nCandidate movie: {item}\n"
                   "Question: Is the candidate what the user is asking for? Answer yes or "
                   "no.\nAnswer:"),
    },
    "delegation": {
        "system": _SYSTEM,
        "prompt": (_ABOUT + "Conversation so far: {context}\nTask: {task}\n{item}\n"
                   "Candidates:\n{candidates}\nYour team:\n{members}\nEither ask one member "
                   "for what you still need, or finish with the answer to the task. Answer "
                   'with JSON only, either {{"action": "delegate", "member": "NAME", '
                   '"message": "what you ask"}} or {{"action": "finish", "ranking": ["ID"], '
                   '"rating": 4, "explanation": "..."}} (ranking: only ids of '
                   "{candidate_ids}, at most {k}; rating: 1-5 when asked to rate)."),
        "scored": ("Task: {task}\nTeam members:\n{members}\nReports so far:\n{notes}\n"
                   "The member to ask next (or finish):"),
        "scored_item": ("The user: {user}\nTheir last ratings:\n{history}\nTeam notes:\n"
                        "{notes}\n{context}\nCandidate movie: {item}\nQuestion: Is the "
                        "candidate a good recommendation for this user? Answer yes or no.\n"
                        "Answer:"),
    },
}


# Defaults of the templates a ranking role's reasoning: / retrieval: block uses (chat
# models: JSON answers).
BLOCK_DEFAULTS: dict[str, str] = {
    "rationale": (_HISTORY + "Task: before recommending, write a short rationale "
                  "(draft {draft}): which of these movies show what the user likes, and "
                  "which tastes (genres, eras, themes). Cite only ids from the list "
                  'above. Answer with JSON only: {{"rationale": "...", "cited": ["ID"], '
                  '"tastes": ["genre"]}}'),
    "judge": (_HISTORY + "A rationale about this user:\n{rationale}\nTask: judge whether "
              "the rationale is faithful to the ratings above (cites only movies in "
              "them, names tastes they show). Answer with JSON only: "
              '{{"score": 7}} (1 = unfaithful, 10 = faithful)'),
    "queries": (_HISTORY + "Task: write {n} short search queries (draft {draft}) for a "
                "movie catalogue that would find what this user wants to watch next: "
                "genres, themes, titles like those they liked. Answer with JSON only: "
                '{{"queries": ["...", "..."]}}'),
}

# Base models (scored mode) write free text, not JSON: the defaults of the templates they
# generate from end where the text should begin.
SCORED_DEFAULTS: dict[str, str] = {
    "rationale": (_HISTORY + "Which of these movies show what the user likes, and which "
                  "tastes (genres, eras, themes)? Draft {draft}.\nRationale: The user liked"),
    "judge": (_HISTORY + "A rationale about this user:\n{rationale}\nQuestion: Is the "
              "rationale faithful to the ratings above? Answer yes or no.\nAnswer:"),
    "queries": (_HISTORY + "Write {n} short search queries for a movie catalogue that "
                "would find what this user wants next (draft {draft}), one per line.\n"
                "Queries:\n1."),
}


def template(role: RecommenderRole, name: str, scored: bool = False) -> str:
    """The role's template ``name`` (its own, else the output type's default; with
    ``scored``, the base-model default where there is one)."""
    own = role.prompts.given().get(name)
    if own is not None:
        return own
    if scored and name in SCORED_DEFAULTS:
        return SCORED_DEFAULTS[name]
    if name in BLOCK_DEFAULTS:
        return BLOCK_DEFAULTS[name]
    return DEFAULTS[role.output][name]


def render(role: RecommenderRole, name: str, values: dict[str, Any],
           scored: bool = False) -> str:
    """Fill template ``name`` with exactly its declared variables (others are dropped;
    a missing one is a bug, raised as KeyError)."""
    allowed = RECSYS_TEMPLATE_VARIABLES[role.output][name]
    missing = [v for v in allowed if v not in values]
    if missing:
        raise KeyError(f"{role.name}: template {name!r} needs {', '.join(missing)}")
    return template(role, name, scored).format(**{v: values[v] for v in allowed})
