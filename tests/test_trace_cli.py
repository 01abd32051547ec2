"""`recarena trace ...` on small runs made here: the utility brain on the synthetic feed and
conversation, and LLM users answered by FakeChatModel. Every command in text and JSON, a
trace cut off mid-write, the index against a plain scan, and secrets kept out."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agents.llm import FakeChatModel
from scenarios.loader import LoadedScenario, load_scenario
from scenarios.schema import LLMConfig
from simulations.cli.main import main
from simulations.inspection.index import INDEX_FILENAME, Where, build_index, open_index
from simulations.inspection.items import ITEMS_FILENAME
from simulations.record.trace import read_trace
from simulations.run.runner import prepare, run
from tests.shipped import shipped

REPO = Path(__file__).resolve().parents[1]
Transcript = list[tuple[str, str]]


# ----------------------------------------------------------------------------- runs


def _utility(rounds: int = 2, **brain: float) -> LoadedScenario:
    loaded = load_scenario(shipped("quickstart.yaml"))
    scn = loaded.scenario.model_copy(update={
        "environment": loaded.scenario.environment.model_copy(update={"rounds": rounds}),
        "events": []})
    role = loaded.role
    if brain:
        role = role.model_copy(update={"brain": role.brain.model_copy(
            update={"params": role.brain.params.model_copy(update=brain)})})
    roles = (dataclasses.replace(loaded.roles[0], config=role),)
    return dataclasses.replace(loaded, scenario=scn, role=role, roles=roles)


def _llm(keep_prompts: bool = True, **llm: Any) -> LoadedScenario:
    loaded = load_scenario(shipped("llm_feed.yaml"))
    role = loaded.role.model_copy(update={"memory": loaded.role.memory.model_copy(
        update={"long_term": loaded.role.memory.long_term.model_copy(
            update={"embedder": "hash", "reflect_every": 4})})})
    scn = loaded.scenario.model_copy(update={
        "environment": loaded.scenario.environment.model_copy(
            update={"rounds": 1, "max_pages": 2}),
        "llm": LLMConfig(backend="fake", model="fake", concurrency=1, **llm),
        "recommenders": loaded.scenario.recommenders[:1],
        "output": loaded.scenario.output.model_copy(update={"keep_prompts": keep_prompts}),
    })
    roles = (dataclasses.replace(loaded.roles[0], config=role),)
    return dataclasses.replace(loaded, scenario=scn, role=role, roles=roles)


def _responder(garbage_first: int = 0) -> Callable[[Transcript], str]:
    """A fake user: watches the first item of a page, leaves on page 2; the first
    ``garbage_first`` answers are not JSON (so one decision fails after its repairs)."""
    calls = [0]

    def answer(t: Transcript) -> str:
        calls[0] += 1
        if calls[0] <= garbage_first:
            return "I would rather not say"
        last = t[-1][1]
        if "what have you learned" in last:
            return "I like comedies."
        if "satisfied" in last:
            return json.dumps({"satisfaction": 6, "reason": "fine picks"})
        ids = re.findall(r"Refer to items only by their id \(([^)]*)\)", last)[0].split(", ")
        return json.dumps({"items": [{"item_id": i, "watch": k == 0,
                                      "rating": 4 if k == 0 else None,
                                      "reason": f"because {i}"} for k, i in enumerate(ids)],
                           "feeling": "fine", "leave": "Page 2" in last})
    return answer


@pytest.fixture(scope="module")
def util_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("util") / "run"
    run(prepare(_utility(), users=6), out)
    return out


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FakeChatModel]:
    out = tmp_path_factory.mktemp("llm") / "run"
    fake = FakeChatModel(responses=_responder(garbage_first=3))
    run(prepare(_llm(), users=3), out, chat_model=fake)
    return out, fake


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["trace", *args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = _cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def _items(run_dir: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(x) for x in (run_dir / ITEMS_FILENAME).read_text().splitlines()]
    return {r["id"]: r for r in rows}


# ----------------------------------------------------------------------------- run folder


def test_run_writes_catalogue_and_a_fresh_index(util_run: Path) -> None:
    assert (util_run / ITEMS_FILENAME).is_file() and (util_run / INDEX_FILENAME).is_file()
    events = read_trace(util_run)
    with open_index(util_run) as ix:
        assert ix.end.complete and ix.end.events == len(events)
        assert ix.end.last_id == "run/end"
        assert ix.counts()["decision"] == sum(e["type"] == "decision" for e in events)
    n_items = next(e for e in events if e["type"] == "run_start")["n_items"]
    assert len(_items(util_run)) == n_items


def test_index_search_equals_a_plain_scan(util_run: Path) -> None:
    events = list(read_trace(util_run))
    user = next(e["user"] for e in events if e["type"] == "profile")
    item = next(e["item"] for e in events if e["type"] == "decision" and "item" in e)
    with open_index(util_run) as ix:
        assert ix.agent(user) == [e for e in events if e.get("user") == user]
        got = ix.search(where=[Where.parse("rating>=4"), Where.parse("action=watch")],
                        limit=None)
        assert got == [e for e in events if e.get("action") == "watch"
                       and (e.get("rating") or 0) >= 4]
        got = ix.search(item=item, limit=None)
        assert got == [e for e in events if e.get("item") == item or item in (
            e.get("items") if e["type"] == "page" else [])]
        genre = next(e["genres"][0] for e in events if e.get("genres"))
        got = ix.search(types=["decision"], where=[Where.parse(f"genres={genre}")], limit=None)
        assert got and got == [e for e in events if e["type"] == "decision"
                               and genre in e.get("genres", [])]
        assert ix.search(where=[Where.parse("rating=null"), Where.parse("action=skip")],
                         limit=None) == [e for e in events if e.get("action") == "skip"]
        title = _items(util_run)[item]["title"]
        by_title = ix.search(title, limit=None)
        assert any(e["type"] == "page" and item in e["items"] for e in by_title)


def test_index_is_rebuilt_when_the_trace_changes_and_for_old_runs(util_run: Path,
                                                                  tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(util_run / "trace.jsonl", old / "trace.jsonl")  # no index, no items.jsonl
    with open_index(old) as ix:
        n = ix.end.events
        item = next(e["item"] for e in ix.of_type("decision") if "item" in e)
        # The catalogue comes back from the recorded config (the synthetic world's seed).
        assert ix.title(item) .startswith(_items(util_run)[item]["title"])
    with (old / "trace.jsonl").open("a") as f:
        f.write(json.dumps({"type": "note", "id": "x", "seq": n}) + "\n")
    with open_index(old) as ix:
        assert ix.end.events == n + 1 and ix.end.last_type == "note"


def test_a_line_cut_inside_a_multibyte_character(tmp_path: Path) -> None:
    good = json.dumps({"type": "run_start", "id": "run", "seq": 0})
    cut = json.dumps({"type": "utterance", "id": "x", "text": "café"}, ensure_ascii=False)
    # The crash came inside "é" (two bytes in UTF-8).
    (tmp_path / "trace.jsonl").write_bytes((good + "\n").encode() + cut.encode()[:-3])
    with open_index(tmp_path) as ix:
        assert ix.end.events == 1 and ix.end.cut_line == 2 and not ix.end.complete
        assert "cut off mid-write at line 2" in (ix.end.describe() or "")


def test_corrupt_middle_line_is_an_input_error(util_run: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    lines = (util_run / "trace.jsonl").read_text().splitlines(keepends=True)
    lines[5] = "not json\n"
    (bad / "trace.jsonl").write_text("".join(lines))
    code, out, err = _cli(capsys, "summary", str(bad))
    assert code == 2 and out == ""
    assert re.fullmatch(r"recarena: .*trace\.jsonl:6: not a JSON event: .*\n", err)


def test_missing_run_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "agent", str(tmp_path / "nope"), "1")
    assert code == 2 and "no trace here" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------- summary


def test_summary_text_and_json(util_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = _json(capsys, "summary", str(util_run))
    assert s["status"] == "completed" and s["trace"]["complete"]
    assert s["population"] == {"synthetic_viewer": 6}
    assert s["config"]["scenario"] == "quickstart" and s["config"]["environment"]["rounds"] == 2
    assert [r["name"] for r in s["recommenders"]] == ["random", "pop", "ease"]
    arms = s["metrics"]["arms"]
    assert list(arms) == ["random", "pop", "ease"]  # the order they ran
    assert set(arms["pop"]["rounds"]) == {"1", "2"} and "synthetic_viewer" in arms["pop"]["roles"]
    assert s["llm"] is None and s["failures"]["total"] == 0
    code, out, _ = _cli(capsys, "summary", str(util_run))
    assert code == 0
    assert "metrics per round" in out and "pop r2" in out and "decision failures: none" in out


def test_summary_does_not_trust_an_edited_summary_json(util_run: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from simulations.analysis.metrics import compute_metrics

    copy = tmp_path / "copy"
    shutil.copytree(util_run, copy)
    summary = json.loads((copy / "summary.json").read_text())
    assert _json(capsys, "summary", str(copy))["metrics"]["source"].startswith("summary.json")
    summary["metrics"]["arms"]["pop"]["overall"]["watch_rate"] = 0.999
    (copy / "summary.json").write_text(json.dumps(summary))
    m = _json(capsys, "summary", str(copy))["metrics"]
    assert m.pop("source") == "computed from the trace"
    assert m["arms"]["pop"] == compute_metrics(read_trace(copy))["arms"]["pop"]


def test_summary_counts_llm_calls_and_failures(llm_run: tuple[Path, FakeChatModel],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, fake = llm_run
    s = _json(capsys, "summary", str(run_dir))
    calls = [e for e in read_trace(run_dir) if e["type"] == "llm_call"]
    assert s["llm"]["total"]["calls"] == len(calls) == len(fake.transcripts)
    assert s["llm"]["total"]["input_tokens"] == sum(c["input_tokens"] for c in calls)
    assert set(s["llm"]["by_purpose"]) >= {"page", "interview"}
    assert s["failures"]["total"] == 1 and s["failures"]["by"][0]["purpose"] == "page"
    code, out, _ = _cli(capsys, "summary", str(run_dir))
    assert code == 0 and "LLM calls" in out and "decision failures: 1" in out


# ----------------------------------------------------------------------------- agent


def test_agent_story_in_order_with_titles(util_run: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    events = list(read_trace(util_run))
    user = next(e["user"] for e in events if e["type"] == "profile")
    s = _json(capsys, "agent", str(util_run), f"u{user}")
    assert s["agent"] == user and s["profile"]["user"] == user
    assert [e["seq"] for e in s["events"]] == sorted(e["seq"] for e in s["events"])
    assert {e["user"] for e in s["events"]} == {user}
    items = _items(util_run)
    watched = [e for e in s["events"] if e.get("action") == "watch"]
    assert watched and all(s["items"][e["item"]]["title"] == items[e["item"]]["title"]
                           for e in watched)
    code, out, _ = _cli(capsys, "agent", str(util_run), user, "--no-pager")
    assert code == 0
    assert items[watched[0]["item"]]["title"] in out
    assert "interview: satisfaction" in out and "random · round 1" in out
    assert out.index("random · round 1") < out.index("pop · round 1")


def test_agent_story_of_an_llm_agent_shows_memories_and_calls(
        llm_run: tuple[Path, FakeChatModel], capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, _ = llm_run
    user = next(e["user"] for e in read_trace(run_dir)
                if e["type"] == "memory" and e["kind"] == "reflection")
    code, out, _ = _cli(capsys, "agent", str(run_dir), user, "--no-pager")
    assert code == 0
    assert "reflects: I like comedies." in out
    assert "recalls (long-term)" in out and "LLM call (page, chat)" in out
    assert "because " in out  # the model's reasons


def test_unknown_agent_is_an_input_error(util_run: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "agent", str(util_run), "no-such-user")
    assert code == 2 and out == "" and "no agent 'no-such-user'" in err


def test_conversation_story(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "conv"
    run(prepare(load_scenario(shipped("conversation.yaml")), users=4), out)
    user = next(e["user"] for e in read_trace(out) if e["type"] == "conversation_start")
    code, text, _ = _cli(capsys, "agent", str(out), user, "--no-pager")
    assert code == 0 and "hidden target" in text and "says:" in text and "suggests" in text
    rows = _json(capsys, "export", str(out), "--table", "decisions", "--out",
                 str(tmp_path / "d.csv"))
    assert rows["rows"] > 0


# ----------------------------------------------------------------------------- step


def test_step_shows_the_prompt_the_model_saw_and_its_raw_answer(
        llm_run: tuple[Path, FakeChatModel], capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, fake = llm_run
    calls = [e for e in read_trace(run_dir) if e["type"] == "llm_call"]
    # Every call's trace record is exactly what the model was sent and what it answered.
    sent = [[list(m) for m in t] for t in fake.transcripts]
    assert sorted(json.dumps(c["request"]["messages"]) for c in calls) == \
        sorted(json.dumps(t) for t in sent)
    page = next(c for c in calls if c["purpose"] == "page" and c["volatile"]["attempts"] == 1
                and "because" in c["response"]["text"])
    s = _json(capsys, "step", str(run_dir), page["id"])
    assert s["step"] == page["id"].rsplit("/", 1)[0]
    assert s["llm_calls"][0]["request"] == page["request"]
    decisions = [e for e in s["result"] if e["type"] == "decision" and "item" in e]
    assert len(decisions) == len(s["seen"][0]["items"])
    code, out, _ = _cli(capsys, "step", str(run_dir), page["id"], "--no-pager")
    assert code == 0 and "raw output" in out and "cache miss" in out
    assert "Refer to items only by their id" in out and "parsed result" in out


def test_step_of_a_failed_decision_shows_every_attempt(
        llm_run: tuple[Path, FakeChatModel], capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, _ = llm_run
    fail = next(e for e in read_trace(run_dir) if e["type"] == "decision_failure")
    s = _json(capsys, "step", str(run_dir), fail["id"])
    assert len(s["llm_calls"]) == 3
    assert all(c["response"]["text"] == "I would rather not say" for c in s["llm_calls"])
    assert s["llm_calls"][1]["request"]["messages"][-1][0] == "user"  # the repair prompt


def test_step_of_a_utility_decision_and_unknown_ids(util_run: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    page = next(e for e in read_trace(util_run) if e["type"] == "page")
    s = _json(capsys, "step", str(util_run), page["id"])
    assert s["llm_calls"] == [] and len(s["result"]) == len(page["items"]) + 1
    assert all("utility" in e["inputs"] for e in s["result"] if "item" in e)
    code, _, err = _cli(capsys, "step", str(util_run), page["id"] + "x")
    assert code == 2 and "no event" in err
    s = _json(capsys, "step", str(util_run), "run/end")
    assert s["event"]["type"] == "run_end"


def test_prompts_are_left_out_when_the_scenario_says_so(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "private"
    run(prepare(_llm(keep_prompts=False), users=2), out,
        chat_model=FakeChatModel(responses=_responder()))
    calls = [e for e in read_trace(out) if e["type"] == "llm_call"]
    assert calls and all("request" not in c and "response" not in c for c in calls)
    assert all(c["key"] and c["input_tokens"] > 0 for c in calls)
    # Rendered text (the templates are in the config; a rendered page prompt is not).
    assert "Page 1 of at most 2" not in (out / "trace.jsonl").read_text()
    code, text, _ = _cli(capsys, "step", str(out), calls[0]["id"], "--no-pager")
    assert code == 0 and "not kept" in text


# ----------------------------------------------------------------------------- search


def test_search_filters(util_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = list(read_trace(util_run))
    user = next(e["user"] for e in events if e["type"] == "profile")
    r = _json(capsys, "search", str(util_run), "--type", "decision", "--agent", user,
              "--where", "action=watch", "--limit", "1000")
    want = [e for e in events if e["type"] == "decision" and e.get("user") == user
            and e.get("action") == "watch"]
    assert r["events"] == want and not r["more"]
    r = _json(capsys, "search", str(util_run), "--type", "decision", "--limit", "3")
    assert len(r["events"]) == 3 and r["more"]
    r = _json(capsys, "search", str(util_run), "popularity pulls", "--limit", "1000")
    assert r["events"] and all("popularity pulls" in json.dumps(e) for e in r["events"])
    code, out, _ = _cli(capsys, "search", str(util_run), "--type", "interview", "--limit", "2")
    assert code == 0 and "interview: satisfaction" in out and "there are more" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--type", "nonsense"], "no 'nonsense' events"),
    (["--where", "rating"], "--where: expected FIELD=VALUE"),
    (["--limit", "0"], "--limit: must be at least 1"),
])
def test_search_rejects_bad_filters(util_run: Path, capsys: pytest.CaptureFixture[str],
                                    args: list[str], message: str) -> None:
    code, out, err = _cli(capsys, "search", str(util_run), *args)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


# ----------------------------------------------------------------------------- diff


def test_diff_of_a_run_with_itself_is_empty(util_run: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, "diff", str(util_run), str(util_run))
    assert d["config"] == [] and d["decisions"] == []
    assert d["agents"]["compared"] == 6 and d["agents"]["differing"] == 0
    assert all(v["delta"] in (0, None) for m in d["metrics"].values()
               for scope in m.values() for v in scope.values())


def test_diff_of_the_same_users_with_another_brain(util_run: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "picky"
    run(prepare(_utility(watch_threshold=1.5), users=6), other)
    d = _json(capsys, "diff", str(util_run), str(other))
    assert [c["path"] for c in d["config"]] == [
        "population.role.brain.params.watch_threshold",
        "population.roles[0].role.brain.params.watch_threshold"]
    assert d["agents"]["compared"] == 6 and d["agents"]["profiles_differ"] == 0
    assert d["agents"]["differing"] > 0 and d["decisions"]
    wa = d["metrics"]["pop"]["overall"]["watch_rate"]
    assert wa["b"] < wa["a"] and wa["delta"] == pytest.approx(wa["b"] - wa["a"])
    # A differing step is one where the two runs' decisions really differ.
    x = d["decisions"][0]
    assert x["a"] != x["b"]
    code, out, _ = _cli(capsys, "diff", str(util_run), str(other), "--no-pager")
    assert code == 0 and "watch_threshold" in out and "first differing step" in out


# ----------------------------------------------------------------------------- export


def test_export_tables_as_csv(util_run: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    import csv

    events = list(read_trace(util_run))
    items = _items(util_run)
    for table, n in [("decisions", sum(e["type"] == "decision" and "item" in e for e in events)),
                     ("pages", sum(e["type"] == "page" for e in events)),
                     ("agents", sum(e["type"] == "session_end" for e in events)),
                     ("llm_calls", 0)]:
        out = tmp_path / f"{table}.csv"
        r = _json(capsys, "export", str(util_run), "--table", table, "--out", str(out))
        rows = list(csv.DictReader(out.open()))
        assert r["rows"] == len(rows) == n
    rows = list(csv.DictReader((tmp_path / "decisions.csv").open()))
    for row in rows:
        assert row["title"] == items[row["item"]]["title"]
        assert row["genres"] == "|".join(items[row["item"]]["genres"])
    watched = [e for e in events if e.get("action") == "watch"]
    assert sum(r["action"] == "watch" for r in rows) == len(watched)
    agents = list(csv.DictReader((tmp_path / "agents.csv").open()))
    assert all(a["satisfaction"] and a["activity"] for a in agents)
    code, out, _ = _cli(capsys, "export", str(util_run), "--table", "pages")
    assert code == 0 and (util_run / "exports" / "pages.csv").is_file()


def test_export_parquet_keeps_lists(llm_run: tuple[Path, FakeChatModel],
                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    run_dir, fake = llm_run
    out = tmp_path / "calls.parquet"
    _json(capsys, "export", str(run_dir), "--table", "llm_calls", "--format", "parquet",
          "--out", str(out))
    t = pq.read_table(out).to_pylist()
    assert len(t) == len(fake.transcripts)
    assert all(r["prompt_kept"] and r["response"] for r in t)
    out = tmp_path / "pages.parquet"
    _json(capsys, "export", str(run_dir), "--table", "pages", "--format", "parquet", "--out",
          str(out))
    pages = pq.read_table(out).to_pylist()
    assert pages and all(isinstance(p["titles"], list) and len(p["titles"]) == p["n_items"]
                         for p in pages)


# ----------------------------------------------------------------------------- truncated


def test_every_command_reads_a_cut_trace_and_says_where_it_ends(
        util_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copy(util_run / ITEMS_FILENAME, cut / ITEMS_FILENAME)
    data = (util_run / "trace.jsonl").read_bytes()
    at = data.index(b"\n", len(data) // 2) + 40  # inside the line after the middle
    (cut / "trace.jsonl").write_bytes(data[:at])
    line = data[:at].count(b"\n") + 1
    complete = [json.loads(x) for x in data[:at].split(b"\n")[:-1]]
    where = f"cut off mid-write at line {line}"
    user = complete[-1].get("user") or next(e["user"] for e in complete
                                            if e["type"] == "profile")
    page = next(e["id"] for e in complete if e["type"] == "page")
    s = _json(capsys, "summary", str(cut))
    assert s["status"] == "truncated" and where in s["trace"]["note"]
    assert s["trace"]["last_seq"] == complete[-1]["seq"] and s["events"] == len(complete)
    for args in (["summary"], ["agent", user, "--no-pager"], ["step", page, "--no-pager"],
                 ["search", "--type", "page", "--no-pager"]):
        code, out, _ = _cli(capsys, args[0], str(cut), *args[1:])
        assert code == 0 and where in out.replace("\n", " ")
    code, out, _ = _cli(capsys, "diff", str(util_run), str(cut), "--no-pager")
    assert code == 0 and where in out.replace("\n", " ")
    code, out, err = _cli(capsys, "export", str(cut), "--table", "decisions",
                          "--out", str(tmp_path / "d.csv"))
    assert code == 0 and where in err
    code, out, err = _cli(capsys, "agent", str(cut), user, "--json")
    assert code == 0 and where in json.loads(out)["trace"]["note"] and where in err


# ----------------------------------------------------------------------------- secrets

PLANTED = "sk-" "planted0123456789abcdefSECRET"  # split: no key-shaped literal in source
PLANTED_TOKEN = "tok-planted-9f8e7d6c5b4a"
PLANTED_PASSWORD = "hunter2-planted-pw"


def test_secrets_never_reach_traces_or_exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    monkeypatch.setenv("MY_SERVICE_TOKEN", PLANTED_TOKEN)
    loaded = _llm(base_url=f"https://me:{PLANTED_PASSWORD}@llm.example.com/v1?api_key=abc123xyz")
    # A key pasted into the wrong field of the config.
    scn = loaded.scenario.model_copy(update={
        "description": f"my key is {PLANTED} and the token {PLANTED_TOKEN}"})
    loaded = dataclasses.replace(loaded, scenario=scn)
    out = tmp_path / "run"
    run(prepare(loaded, users=2), out, chat_model=FakeChatModel(responses=_responder()))
    pytest.importorskip("pyarrow")
    for table in ("decisions", "pages", "agents", "llm_calls"):
        for fmt in ("csv", "parquet"):
            assert main(["trace", "export", str(out), "--table", table, "--format", fmt]) == 0
    for cmd in (["summary"], ["search", "key", "--limit", "1000"]):
        code, text, _ = _cli(capsys, cmd[0], str(out), *cmd[1:], "--json")
        assert code == 0 and PLANTED not in text and PLANTED_TOKEN not in text
    # The LLM cache is the model's own record (replay needs the exact request) and the
    # memory store holds what agents remember: neither is a trace. Everything else is.
    files = [p for p in out.rglob("*") if p.is_file() and p.name != "llm_cache.sqlite"
             and "memory" not in p.relative_to(out).parts]
    assert {p.name for p in files} >= {"trace.jsonl", "manifest.json", "summary.json",
                                       INDEX_FILENAME, "llm_calls.csv", "llm_calls.parquet"}
    for p in files:
        blob = p.read_bytes()
        for secret in (PLANTED, PLANTED_TOKEN, PLANTED_PASSWORD, "abc123xyz"):
            assert secret.encode() not in blob, f"{secret} in {p.name}"
    start = next(e for e in read_trace(out) if e["type"] == "run_start")
    assert start["config"]["llm"]["base_url"] == \
        "https://***@llm.example.com/v1?api_key=***"
    assert start["config"]["description"] == "my key is *** and the token ***"


def test_index_built_from_an_unredacted_old_trace_still_exports_masked(
        util_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    old = tmp_path / "old"
    old.mkdir()
    lines = (util_run / "trace.jsonl").read_text().splitlines(keepends=True)
    dec = next(i for i, x in enumerate(lines) if '"type":"decision"' in x and '"item"' in x)
    d = json.loads(lines[dec])
    d["reason"] = f"key {PLANTED}"  # as a trace written before redaction could hold it
    lines[dec] = json.dumps(d) + "\n"
    (old / "trace.jsonl").write_text("".join(lines))
    build_index(old)
    out = tmp_path / "d.csv"
    assert main(["trace", "export", str(old), "--table", "decisions", "--out", str(out)]) == 0
    assert PLANTED not in out.read_text() and "key ***" in out.read_text()


def test_long_output_is_paged_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console
    from rich.pager import SystemPager

    from simulations.inspection.render import print_paged

    paged: list[str] = []
    monkeypatch.setattr(SystemPager, "show", lambda self, content: paged.append(content))
    lines = [f"line {k}" for k in range(30)]
    tty = Console(file=io.StringIO(), force_terminal=True, height=10, width=80, highlight=False)
    print_paged(tty, lines)
    assert len(paged) == 1 and "line 29" in paged[0]
    print_paged(tty, lines[:3])  # fits on the screen
    print_paged(tty, lines, pager=False)  # --no-pager
    pipe = Console(file=io.StringIO(), height=10, width=80, highlight=False)
    print_paged(pipe, lines)
    assert len(paged) == 1 and "line 29" in pipe.file.getvalue()  # type: ignore[attr-defined]
