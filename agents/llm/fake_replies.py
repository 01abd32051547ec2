"""Plausible scripted answers for ``FakeChatModel``: every prompt the shipped roles send
gets an answer of the shape it asks for, built from what the prompt contains.

- reasoning and query roles: a rationale cites the last two history ids and names drama;
  a judge scores 7; queries are "drama romance" and "comedy";
- recommender roles: a manager delegates to each member of "Your team:" once (a member
  counts as asked once its ``[name]`` report is in the prompt), then finishes; rankings
  put first the candidates the prompt mentions most often (tool results and reports
  name them), then the rest in order; ratings, explanations and replies name the item;
- user roles: a page watches its first item; a conversation turn accepts the target when
  it is among the suggestions; interviews and reflections answer briefly;
- item agents (AgentCF) reflect with a fixed JSON description;
- ReAct planners call their first tool once, then finish;
- social users search for the first movie they heard about, else chat with their first
  free friend every third tick, post about a recent watch the tick after, and browse;
  a chat line or post mentions the first recent watch.

Use ``FakeChatModel(responses=plausible_reply)``. Deterministic: the same prompt always
gets the same answer (so record and replay agree).
"""

from __future__ import annotations

import json
import re

__all__ = ["plausible_reply"]

_ID_LINE = re.compile(r"^-?\s*([A-Za-z0-9_.-]+):", re.MULTILINE)


def _section(text: str, head: str) -> str:
    """The lines after ``head`` up to the next blank line or ``Xxx:`` heading line."""
    at = text.find(head)
    if at < 0:
        return ""
    lines = []
    for line in text[at + len(head):].lstrip("\n").splitlines():
        if not line.strip() or (line.rstrip().endswith(":") and not line.startswith("-")):
            break
        lines.append(line)
    return "\n".join(lines)


def _ranked(text: str) -> list[str]:
    ids = list(dict.fromkeys(_ID_LINE.findall(_section(text, "Candidates:"))))
    counts = {i: len(re.findall(rf"(?<![\w.-]){re.escape(i)}(?![\w.-])", text)) for i in ids}
    return sorted(ids, key=lambda i: (-counts[i], ids.index(i)))


def _delegation(text: str) -> dict[str, object]:
    team = [m.strip() for m in re.findall(r"^- ([A-Za-z0-9_.-]+):", _section(text, "Your team:"),
                                          re.MULTILINE)]
    for name in team:
        if f"[{name}]" not in text:
            return {"action": "delegate", "member": name,
                    "message": "What do you know that helps with this task?"}
    ranking = _ranked(text)
    return {"action": "finish", "ranking": ranking, "rating": 4,
            "explanation": "It matches the genres the user rated highly."}


_ITEM_LINE = re.compile(r"^- ([^\s|]+) \|", re.MULTILINE)


def _social_choice(text: str) -> dict[str, object]:
    allowed = re.search(r"One of: ([a-z, ]+)\.", text)
    can = set((allowed.group(1) if allowed else "browse").replace(" ", "").split(","))
    tick = int(m.group(1)) if (m := re.search(r"\(tick (\d+)\)", text)) else 1
    heard = _ITEM_LINE.findall(_section(text, "Movies your friends told you about:"))
    friends = re.findall(r"^- user (\d+)", _section(text, "Friends free to chat:"),
                         re.MULTILINE)
    recent = _ITEM_LINE.findall(_section(text, "You recently watched:"))
    if heard and "search" in can:
        return {"activity": "search", "item_id": heard[0], "reason": "a friend told me"}
    if tick % 3 == 0 and friends and "chat" in can:
        return {"activity": "chat", "partner": friends[0], "reason": "catch up"}
    if tick % 3 == 1 and recent and "post" in can:
        return {"activity": "post", "reason": "worth telling"}
    return {"activity": "browse" if "browse" in can else "idle", "reason": "see what's new"}


def plausible_reply(transcript: list[tuple[str, str]]) -> str:
    """An answer to the last user message of ``transcript`` (see the module doc); a
    repair turn gets the answer to the message it repairs."""
    # A repair turn ("Your answer was invalid: ...") is answered like the original ask.
    asks = [c for r, c in transcript if r == "user" and not c.startswith("Your answer was")]
    text = asks[-1] if asks else ""
    if '"action": "delegate"' in text:
        return json.dumps(_delegation(text))
    if '"action": "TOOL"' in text:  # the ReAct planner
        if "Observation:" in text:
            return json.dumps({"thought": "enough", "action": "final",
                               "answer": {"shortlist": [], "note": "looked it up"}})
        tools = re.findall(r"^- ([a-z_]+): ([a-z_]+)\((\w*)",
                           _section(text, "You can use these tools:"), re.MULTILINE)
        items = re.findall(r"^- ([^:\s]+):", _section(text, "Items:"), re.MULTILINE)
        if not tools:
            return json.dumps({"thought": "nothing to call", "action": "final"})
        name, _, arg = tools[0]
        return json.dumps({"thought": "look it up", "action": name,
                           "input": items[0] if arg == "item" and items else ""})
    if '"rationale": "...", "cited"' in text:  # a reasoning role's rationale
        hist = re.findall(r"^([^\s:]+): .*; (?:rated|watched)", _section(
            text, "Their ratings before now (oldest first):"), re.MULTILINE)
        return json.dumps({"rationale": "The user liked these; they favour dramas.",
                           "cited": hist[-2:], "tastes": ["Drama"]})
    if '{"score": 7}' in text:  # a reasoning role's judge
        return json.dumps({"score": 7})
    if '"queries": ["...", "..."]' in text:  # a query-generating role
        return json.dumps({"queries": ["drama romance", "comedy"]})
    if '"reply": "..."' in text:
        ranking = _ranked(text)
        if "judge this attempt" in text:
            reply = "Lesson: check the user's recent favourites before ranking."
        elif "into a recommendation task" in text:
            said = _section(text, "Conversation so far:") or "a movie"
            reply = f"The user is looking for {said.strip()[:120]}"
        else:
            reply = (f"Candidates {', '.join(ranking[:2])} fit this user best." if ranking
                     else "This user rates dramas highly.")
        return json.dumps({"reply": reply, "ranking": ranking})
    if '"ranking": ["ID", "ID"]' in text:
        return json.dumps({"ranking": _ranked(text), "reason": "closest to the user's taste"})
    if '"rating": 4, "explanation"' in text:
        return json.dumps({"rating": 4, "explanation": "close to what the user liked"})
    if '{"explanation": "..."}' in text:
        item = _section(text, "The movie:") or text.split("The movie:")[-1][:80]
        return json.dumps({"explanation": f"Recommended because it fits: {item.strip()}"})
    if '"item_id": "ID", "watch"' in text:
        m = re.search(r"only by their id \(([^)]*)\)", text)
        ids = [x.strip() for x in (m.group(1).split(",") if m else []) if x.strip()]
        return json.dumps({"items": [{"item_id": i, "watch": n == 0, "confidence": 0.5,
                                      "rating": 4 if n == 0 else None, "reason": "ok"}
                                     for n, i in enumerate(ids)],
                           "feeling": "fine", "leave": False})
    if '"activity": "browse"' in text:
        return json.dumps(_social_choice(text))
    if '"mentions": ["ID"]' in text:
        recent = _ITEM_LINE.findall(_section(text, "You recently watched:"))
        return json.dumps({"text": "I watched something worth telling." if recent
                           else "Nothing new from me.", "mentions": recent[:1]})
    if '{"description": "' in text:  # an item agent's (AgentCF) reflection
        return json.dumps({"description": "People who enjoy well-made films like the "
                                          "ones this user chose."})
    if '"satisfaction":' in text:
        return json.dumps({"satisfaction": 6, "reason": "some were good"})
    if '"accept": "ID or null"' in text:
        target = re.search(r"never name it\):\n([^\s|]+)", text)
        shown = _section(text, "The recommender suggests:")
        if target and re.search(rf"^{re.escape(target.group(1))}\b", shown, re.MULTILINE):
            return json.dumps({"accept": target.group(1), "give_up": False, "feedback": ""})
        return json.dumps({"accept": None, "give_up": False,
                           "feedback": "Not these; something more like what I described."})
    if "lesson" in text.lower():
        return "Lesson: check the user's recent favourites before ranking."
    return "The user wants a well-liked movie close to their favourite genres."
