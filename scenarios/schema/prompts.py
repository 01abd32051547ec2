"""Prompt templates of the LLM brain: their variables, defaults and load-time checks."""

from __future__ import annotations

import string
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from scenarios.schema.base import FrozenModel

__all__ = [
    "DEFAULT_CONVERSATION_OPEN",
    "DEFAULT_CONVERSATION_TURN",
    "DEFAULT_INTERVIEW",
    "DEFAULT_PAGE",
    "DEFAULT_REFLECTION",
    "DEFAULT_SCORED_FEELING",
    "DEFAULT_SCORED_LEAVE",
    "DEFAULT_SCORED_MATCH",
    "DEFAULT_SCORED_RATING",
    "DEFAULT_SCORED_SATISFACTION",
    "DEFAULT_SCORED_SOCIAL_CHOICE",
    "DEFAULT_SCORED_SOCIAL_TEXT",
    "DEFAULT_SCORED_WATCH",
    "DEFAULT_SOCIAL_CHOICE",
    "DEFAULT_SOCIAL_SPEAK",
    "DEFAULT_SYSTEM",
    "PROMPT_VARIABLES",
    "SATISFACTION_WORDS",
    "TEMPLATE_VARIABLES",
    "PromptTemplates",
    "template_names",
]


PROMPT_VARIABLES: dict[str, str] = {
    "role": "the role's name",
    "instructions": "the role's instructions",
    "activity": "activity trait 1-3, in words",
    "conformity": "conformity trait 1-3, in words",
    "diversity": "diversity trait 1-3, in words",
    "liked_genres": "comma-separated liked genres",
    "disliked_genres": "comma-separated disliked genres",
    "liked_titles": "titles of liked items from the user's history",
    "disliked_titles": "titles of disliked items from the user's history",
    "memories": "retrieved memories, one per line (short-term and long-term)",
    "page": "the page number, 1-based",
    "max_pages": "the last page number",
    "items": "the page's items, one per line: id, title (year), genres, mean rating, description",
    "item_ids": "the page's item ids, comma-separated",
    "item": "one item, as a line of `items`",
    "watched": "titles watched this session with their ratings",
    "n_watched": "items watched: on this page (scored_leave), else this session",
    "n_shown": "items shown: on this page (scored_leave), else this session",
    "pages_seen": "pages seen this session",
    "reflection_input": "the memories being reflected on, one per line",
    "plan": "what the planner concluded for this step (empty with the default planner)",
    "target": "conversation: the movie the user is looking for, as a line of `items`",
    "said": "conversation: what the user said so far, one line each",
    "recommended": "conversation: this turn's recommendations, as lines of `items`",
    "turn": "conversation: the turn number, 1-based",
    "reply": "conversation: 'The recommender says: ...' and a newline when a recommender "
             "agent said something with its recommendations, else empty",
    "tick": "social world: the tick number within the round, 1-based",
    "activities": "social world: what the user may do now, comma-separated",
    "friends": "social world: ties free to chat, one per line: user id, tie strength",
    "heard": "social world: items heard about and not watched, as lines of `items` with "
             "who told and how",
    "recent": "social world: recent watches with their ratings, as lines of `items`",
    "mode": "social world: 'chat' or 'post'",
    "partner": "social world: the chat partner's user id (empty for a post)",
    "transcript": "social world: the chat so far, one line per turn: user id: text",
}

_PROFILE_VARS = ("role", "instructions", "activity", "conformity", "diversity",
                 "liked_genres", "disliked_genres", "liked_titles", "disliked_titles")
_PAGE_VARS = ("memories", "page", "max_pages", "items", "item_ids", "plan")
_SESSION_VARS = ("watched", "n_watched", "n_shown", "pages_seen")
_CONVERSATION_VARS = ("target", "said", "recommended", "turn", "plan", "reply")
_SOCIAL_VARS = ("memories", "tick", "heard", "recent")

# Exactly the variables each template is rendered with: the loader rejects any other
# name in a template, and the LLM brain renders every template with exactly this set
# (agents.brains.prompts.render checks it), so the two cannot drift apart.
TEMPLATE_VARIABLES: dict[str, tuple[str, ...]] = {
    "system": _PROFILE_VARS,
    "page": _PROFILE_VARS + _PAGE_VARS,
    "interview": _PROFILE_VARS + _SESSION_VARS,
    "reflection": (*_PROFILE_VARS, "reflection_input"),
    "scored_watch": _PROFILE_VARS + _PAGE_VARS + ("item",),
    # Also used to rate items outside any page (eval alignment): no page variables.
    "scored_rating": (*_PROFILE_VARS, "item"),
    "scored_leave": _PROFILE_VARS + _PAGE_VARS + ("n_watched", "n_shown"),
    "scored_feeling": _PROFILE_VARS + _PAGE_VARS + ("n_watched", "n_shown"),
    "scored_satisfaction": _PROFILE_VARS + _SESSION_VARS,
    "conversation_open": _PROFILE_VARS + _CONVERSATION_VARS,
    "conversation_turn": _PROFILE_VARS + _CONVERSATION_VARS,
    "scored_match": (*_PROFILE_VARS, "item", "target"),
    "social_choice": _PROFILE_VARS + _SOCIAL_VARS + ("activities", "friends"),
    "social_speak": _PROFILE_VARS + _SOCIAL_VARS + ("mode", "partner", "transcript"),
    "scored_social_choice": (*_PROFILE_VARS, "tick", "heard", "activities"),
    "scored_social_text": (*_PROFILE_VARS, "mode", "partner", "item", "transcript"),
}

# Scored answers are read as the most likely of these next words (satisfaction 1-10).
SATISFACTION_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine", "ten")

DEFAULT_SYSTEM = (
    "You are {role}, a person browsing a movie recommendation feed. {instructions}\n"
    "Your profile: activity {activity}; conformity {conformity}; diversity {diversity}.\n"
    "You like: {liked_genres}. You dislike: {disliked_genres}.\n"
    "Movies you loved: {liked_titles}. Movies you disliked: {disliked_titles}.\n"
    "Stay in character and answer only in the format asked."
)
DEFAULT_PAGE = (
    "What you remember:\n{memories}\n\n"
    "{plan}"
    "Page {page} of at most {max_pages}. The recommendations are:\n{items}\n\n"
    "For every item decide whether you watch it and how sure you are (confidence 0-1 that "
    "you would watch it). Give a 1-5 rating to each movie you "
    "watch (null if you skip), a short reason for each, how you feel about this page, and "
    "whether you leave the feed now. Refer to items only by their id ({item_ids}).\n"
    'Answer with JSON only: {{"items": [{{"item_id": "ID", "watch": true, "confidence": '
    '0.8, "rating": 4, "reason": "..."}}], "feeling": "...", "leave": false}}'
)
DEFAULT_INTERVIEW = (
    "You left the feed after {pages_seen} pages. You were shown {n_shown} movies and "
    "watched {n_watched}: {watched}.\n"
    "How satisfied are you with the recommendations, from 1 (not at all) to 10 (very), and "
    'why? Answer with JSON only: {{"satisfaction": 7, "reason": "..."}}'
)
DEFAULT_REFLECTION = (
    "Here are things you recently did and saw:\n{reflection_input}\n"
    "In one or two sentences, what have you learned about your taste and how satisfied "
    "are you with these recommendations?"
)
DEFAULT_CONVERSATION_OPEN = (
    "You want to watch this movie, but you must not name it or quote its title:\n{target}\n"
    "Tell a movie recommender in one or two sentences what you are looking for."
)
DEFAULT_CONVERSATION_TURN = (
    "You want to watch this movie (never name it):\n{target}\n"
    "So far you said:\n{said}\n"
    "Turn {turn}. The recommender suggests:\n{recommended}\n{reply}"
    "If the movie you want is among them, accept it by id. Otherwise reject them and say "
    "in one sentence what is wrong, without naming the movie; give up if you are tired of "
    'trying. Answer with JSON only: {{"accept": "ID or null", "give_up": false, '
    '"feedback": "..."}}'
)
DEFAULT_SOCIAL_CHOICE = (
    "You are on a movie social network (tick {tick}). What you remember:\n{memories}\n\n"
    "Movies your friends told you about:\n{heard}\n\nYou recently watched:\n{recent}\n\n"
    "Friends free to chat:\n{friends}\n\n"
    "What do you do now? One of: {activities}. browse: look at the recommender's page; "
    "search: look for a movie (give the id of one you heard about, or words to search); "
    "chat: talk with one of the friends above (give the user id); post: tell your "
    "followers about a movie you watched; idle: nothing.\n"
    'Answer with JSON only: {{"activity": "browse", "partner": null, "item_id": null, '
    '"query": "", "reason": "..."}}'
)
DEFAULT_SOCIAL_SPEAK = (
    "You are on a movie social network (tick {tick}). What you remember:\n{memories}\n\n"
    "You recently watched:\n{recent}\n\nMovies you heard about:\n{heard}\n\n"
    "You are writing a {mode} (partner: {partner}). So far:\n{transcript}\n\n"
    "Write one or two sentences, in character. List in mentions the ids of the movies "
    "you talk about (only ids from the lists above).\n"
    'Answer with JSON only: {{"text": "...", "mentions": ["ID"]}}'
)
# Scored decisions (base models): the answer is read from next-token log-probabilities.
DEFAULT_SCORED_WATCH = (
    "{role} likes {liked_genres} movies such as {liked_titles}, and dislikes "
    "{disliked_genres}.\nThe feed shows: {item}\nQuestion: Would {role} watch it? "
    "Answer yes or no.\nAnswer:"
)
DEFAULT_SCORED_RATING = (
    "{role} likes {liked_genres} movies such as {liked_titles}, and dislikes "
    "{disliked_genres}.\n{role} watched: {item}\nOn a scale of 1 to 5 stars, {role} "
    "rates it:"
)
DEFAULT_SCORED_LEAVE = (
    "{role} is browsing movie recommendations, page {page} of at most {max_pages}, and "
    "watched {n_watched} of the {n_shown} movies on this page.\nQuestion: Does {role} "
    "stop browsing now? Answer yes or no.\nAnswer:"
)
DEFAULT_SCORED_FEELING = (
    "{role} likes {liked_genres} movies such as {liked_titles}, and dislikes "
    "{disliked_genres}.\nThe feed showed {role} these movies:\n{items}\n{role} watched "
    "{n_watched} of these {n_shown}.\nQuestion: How does {role} feel about these "
    "recommendations? Answer pleased, mixed or bored.\nAnswer:"
)
DEFAULT_SCORED_SOCIAL_CHOICE = (
    "{role} likes {liked_genres} movies such as {liked_titles}. On a movie social network, "
    "friends told {role} about: {heard}\nQuestion: What does {role} do now, one of "
    "{activities}?\nAnswer:"
)
DEFAULT_SCORED_SOCIAL_TEXT = (
    "{role} likes {liked_genres} movies. {role} watched {item}.\n{transcript}"
    "In a {mode} (to {partner}), {role} writes about it: \""
)
DEFAULT_SCORED_SATISFACTION = (
    "{role} browsed {pages_seen} pages of movie recommendations and watched {n_watched} "
    "of {n_shown}: {watched}.\nOn a scale of "
    f"{SATISFACTION_WORDS[0]} to {SATISFACTION_WORDS[-1]}, {{role}}'s satisfaction is:"
)


def template_names(template: str) -> set[str]:
    """The variable names a ``str.format`` template refers to (``{a.b}`` counts as ``a``)."""
    names = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            names.add(field.split(".")[0].split("[")[0])
    return names


def _prompt_field(name: str, default: str, use: str) -> Any:
    return Field(default, description=f"{use} Variables: {', '.join(TEMPLATE_VARIABLES[name])}.")


DEFAULT_SCORED_MATCH = (
    "{role} is looking for this movie: {target}\nThe recommender suggests: {item}\n"
    "Question: Is the suggestion the movie {role} is looking for? Answer yes or no.\n"
    "Answer:"
)


class PromptTemplates(FrozenModel):
    """Prompt templates (Python ``str.format``). Each template may use only its own
    variables (``TEMPLATE_VARIABLES``; meanings in ``PROMPT_VARIABLES``)."""

    system: str = _prompt_field("system", DEFAULT_SYSTEM, "System message of every chat.")
    page: str = _prompt_field("page", DEFAULT_PAGE, "Structured mode: one page, JSON answer.")
    interview: str = _prompt_field(
        "interview", DEFAULT_INTERVIEW, "Structured mode: exit interview, JSON answer.")
    reflection: str = _prompt_field(
        "reflection", DEFAULT_REFLECTION, "Structured mode: reflection on recent memories.")
    scored_watch: str = _prompt_field(
        "scored_watch", DEFAULT_SCORED_WATCH,
        "Scored mode: watch one item of the page? Answer read as ' yes' / ' no'.")
    scored_rating: str = _prompt_field(
        "scored_rating", DEFAULT_SCORED_RATING,
        "Scored mode: rating of a watched item, read as ' 1'..' 5'.")
    scored_leave: str = _prompt_field(
        "scored_leave", DEFAULT_SCORED_LEAVE,
        "Scored mode: leave after this page? Answer read as ' yes' / ' no'.")
    scored_feeling: str = _prompt_field(
        "scored_feeling", DEFAULT_SCORED_FEELING,
        "Scored mode: the page's feeling, read as ' pleased' / ' mixed' / ' bored'.")
    scored_satisfaction: str = _prompt_field(
        "scored_satisfaction", DEFAULT_SCORED_SATISFACTION,
        "Scored mode: satisfaction read as ' one'..' ten' (reported out of 10).")
    conversation_open: str = _prompt_field(
        "conversation_open", DEFAULT_CONVERSATION_OPEN,
        "Conversation: say what you are looking for (free text).")
    conversation_turn: str = _prompt_field(
        "conversation_turn", DEFAULT_CONVERSATION_TURN,
        "Conversation, structured mode: accept, reject with feedback or give up (JSON).")
    social_choice: str = _prompt_field(
        "social_choice", DEFAULT_SOCIAL_CHOICE,
        "Social world, structured mode: what to do at a tick (JSON).")
    social_speak: str = _prompt_field(
        "social_speak", DEFAULT_SOCIAL_SPEAK,
        "Social world, structured mode: one chat line or post, with the items it mentions "
        "(JSON).")
    scored_social_choice: str = _prompt_field(
        "scored_social_choice", DEFAULT_SCORED_SOCIAL_CHOICE,
        "Social world, scored mode: the activity, read as the most likely of ' browse', "
        "' search', ' chat', ' post', ' idle' (those allowed).")
    scored_social_text: str = _prompt_field(
        "scored_social_text", DEFAULT_SCORED_SOCIAL_TEXT,
        "Social world, scored mode: the model continues a chat line or post about the "
        "movie the user tells (chosen as the utility brain would), up to the closing quote.")
    scored_match: str = _prompt_field(
        "scored_match", DEFAULT_SCORED_MATCH,
        "Conversation, scored mode: is this suggestion the target? ' yes' / ' no'.")

    @field_validator("*")
    @classmethod
    def _known_variables(cls, v: str, info: ValidationInfo) -> str:
        try:
            names = template_names(v)
        except ValueError as e:
            raise ValueError(f"bad template: {e}") from None
        allowed = TEMPLATE_VARIABLES[str(info.field_name)]
        fields = [f for _, f, _, _ in string.Formatter().parse(v) if f]
        access = sorted({f for f in fields if "." in f or "[" in f})
        if access:
            # {items.upper} would send a bound method's repr (with a memory address) to the
            # model: the prompt, and so the replay key, would change from run to run.
            raise ValueError(f"{{{access[0]}}}: attribute and index access are not allowed "
                             "in templates; use the variable itself")
        unknown = sorted(names - set(allowed))
        if unknown:
            raise ValueError(f"variable(s) {', '.join(unknown)} not available in this "
                             f"template; it gets: {', '.join(allowed)}")
        return v
