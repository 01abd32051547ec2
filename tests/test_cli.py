"""The ``recarena`` command line: exit codes, one-line errors, run folders, downloads."""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scenarios.loader import load_scenario
from simulations.cli.main import build_parser, main
from simulations.record.trace import read_trace, strip_volatile
from simulations.run.runner import config_hash
from tests.shipped import shipped
from tools.dataset import load_dataset

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = shipped("quickstart.yaml")
MOVIELENS = shipped("movielens_feed.yaml")
ROLE = shipped("roles", "utility_user.yaml")


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()  # drop anything printed before
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), repr(err)
    return lines[0]


def quick_run_args(out: Path, seed: int = 3) -> list[str]:
    return ["run", str(QUICKSTART), "--users", "5", "--seed", str(seed), "--out", str(out),
            "--quiet"]


def stable_trace(run_dir: Path) -> list[dict[str, Any]]:
    return [strip_volatile(e) for e in read_trace(run_dir)]


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECARENA_DEBUG", raising=False)


@pytest.fixture(scope="module")
def seed3_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small quickstart run (5 users, seed 3), shared by the read-only tests."""
    out = tmp_path_factory.mktemp("runs") / "seed3"
    assert main(quick_run_args(out)) == 0
    return out


# ----------------------------------------------------------------------------- validate


def test_validate_good_files(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "validate", QUICKSTART, MOVIELENS, ROLE)
    assert rc == 0
    assert err == ""
    assert out.splitlines() == [f"{QUICKSTART}: ok (scenario)", f"{MOVIELENS}: ok (scenario)",
                                f"{ROLE}: ok (role)"]


def test_validate_bad_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: scenario\nname: t\nrecommenders:\n  - {name: a, model: nope}\n")
    rc, out, err = cli(capsys, "validate", bad)
    assert rc == 2
    assert out == ""
    line = assert_one_line(err)
    assert line.startswith(f"{bad}:4: recommenders.0.model: ")


def test_validate_reports_every_bad_file_and_still_checks_good_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty, listy = tmp_path / "empty.yaml", tmp_path / "list.yaml"
    empty.write_text("")
    listy.write_text("- 1\n")
    rc, out, err = cli(capsys, "validate", empty, QUICKSTART, listy)
    assert rc == 2
    assert out.splitlines() == [f"{QUICKSTART}: ok (scenario)"]
    lines = err.splitlines()
    assert len(lines) == 2 and "Traceback" not in err
    assert lines[0].startswith(f"{empty}:1: ") and lines[1].startswith(f"{listy}:1: ")


# ----------------------------------------------------------------------------- run: input errors


def test_run_bad_scenario(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: scenario\nname: t\nrecommenders:\n  - {name: a, model: pop}\n"
                   "environment:\n  max_pages: 0\n")
    rc, _, err = cli(capsys, "run", bad, "--out", tmp_path / "run", "--quiet")
    assert rc == 2
    assert assert_one_line(err).startswith(f"{bad}:6: environment.max_pages: ")
    assert not (tmp_path / "run").exists()


def test_run_missing_scenario_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    rc, _, err = cli(capsys, "run", missing)
    assert rc == 2
    assert assert_one_line(err).startswith(f"{missing}:1: ")


def test_run_movielens_without_data(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RECARENA_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # nothing may be written anywhere
    rc, _, err = cli(capsys, "run", MOVIELENS, "--quiet")
    assert rc == 2  # missing input, as the README says
    line = assert_one_line(err)
    assert "--data" in line and "RECARENA_DATA" in line
    path_line = 1 + MOVIELENS.read_text().splitlines().index("  path: null")
    assert line.startswith(f"{MOVIELENS}:{path_line}: dataset.path: no data folder given")
    assert list(tmp_path.iterdir()) == []


def test_run_with_missing_data_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    rc, _, err = cli(capsys, "run", QUICKSTART, "--data", missing, "--out", tmp_path / "run")
    assert rc == 2
    line = assert_one_line(err)
    assert line.startswith(f"{missing}:") and "no such data folder" in line
    assert not (tmp_path / "run").exists()


def test_run_into_existing_folder_leaves_it_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    keep = out / "notes.txt"
    keep.write_text("precious")
    rc, stdout, err = cli(capsys, *quick_run_args(out))
    assert rc == 2  # an invalid argument, as the README says
    line = assert_one_line(err)
    assert line == f"--out: {out} exists and is not an empty folder; choose another (a run " \
        "never writes into an earlier run)"
    assert stdout == ""
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert keep.read_text() == "precious"


def test_run_out_is_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    rc, _, err = cli(capsys, *quick_run_args(out))
    assert rc == 2 and assert_one_line(err).startswith(f"--out: {out} exists")
    assert out.read_text() == "x"


def test_run_rejects_zero_users(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "run"
    rc, _, err = cli(capsys, "run", QUICKSTART, "--users", "0", "--out", out, "--quiet")
    assert rc == 2
    assert "--users" in assert_one_line(err) or "size" in err
    assert not out.exists()


def test_a_scenario_that_validates_also_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    scn = tmp_path / "neg.yaml"
    text = QUICKSTART.read_text().replace("seed: 42", "seed: -1")
    assert "seed: -1" in text
    scn.write_text(text.replace("roles/synthetic_viewer.yaml", str(ROLE)))
    rc, _, err = cli(capsys, "validate", scn)
    if rc == 0:
        rc, _, err = cli(capsys, "run", scn, "--users", "2", "--out", tmp_path / "run", "--quiet")
        assert rc == 0, err
    else:  # or the file is rejected, naming the seed
        assert rc == 2 and assert_one_line(err).startswith(f"{scn}:")
        assert ": seed: " in err


@pytest.mark.parametrize("flag", ["--llm", "--replay"])
def test_llm_flags_on_a_role_without_an_llm_are_errors(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, flag: str) -> None:
    value = "openai" if flag == "--llm" else str(tmp_path)
    rc, out, err = cli(capsys, *quick_run_args(tmp_path / "run"), flag, value)
    assert rc == 2 and out == ""
    assert assert_one_line(err) == (
        f"{flag}: role 'synthetic_viewer' of {QUICKSTART} uses no LLM (brain: utility); drop "
        f"{flag} or use an llm role")
    assert not (tmp_path / "run").exists()


def test_more_users_than_the_data_has_is_an_error(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = cli(capsys, "run", QUICKSTART, "--users", "5000", "--out", tmp_path / "r",
                     "--quiet")
    assert rc == 2
    assert assert_one_line(err) == (
        "recarena: --users: 5000 users asked for, but the dataset has 300 users with history; "
        "ask for at most 300, or leave it out for all of them")
    scn = tmp_path / "big.yaml"
    scn.write_text("kind: scenario\nname: big\nrecommenders:\n  - {name: p, model: pop}\n"
                   "population:\n  size: 301\n")
    rc, _, err = cli(capsys, "run", scn, "--out", tmp_path / "r", "--quiet")
    assert rc == 2
    assert assert_one_line(err).startswith(
        f"{scn}:6: population.size: 301 users asked for, but the dataset has 300 users")
    rc, _, err = cli(capsys, "run", scn, "--users", "300", "--out", tmp_path / "r", "--quiet")
    assert rc == 0, err  # all of them is fine
    assert not err


def test_more_users_than_movielens_has(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                       ml100k: Path) -> None:
    rc, _, err = cli(capsys, "run", MOVIELENS, "--data", ml100k, "--users", "5000",
                     "--out", tmp_path / "r", "--quiet")
    # 751 of the 943 users rated before the leak-free split's global cutoff.
    assert rc == 2 and "the dataset has 751 users with history" in assert_one_line(err)
    assert not (tmp_path / "r").exists()


def test_an_llm_scenario_without_an_llm_block_fails_validation(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    scn = tmp_path / "llm.yaml"
    scn.write_text("kind: scenario\nname: t\nrecommenders:\n  - {name: p, model: pop}\n"
                   f"population:\n  role: {shipped('roles', 'llm_user.yaml')}\n")
    for argv in (["validate", scn], ["run", scn, "--out", tmp_path / "r", "--quiet"]):
        rc, _, err = cli(capsys, *argv)
        assert rc == 2
        assert assert_one_line(err).startswith(
            f"{scn}:6: llm: role 'llm_user' has brain: llm but neither it nor the scenario "
                "has an llm: block")
    assert not (tmp_path / "r").exists()


def test_alignment_llm_flags_need_the_llm_brain(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    for flag in ("--llm", "--replay"):
        rc, _, err = cli(capsys, "eval", "alignment", "--data", tmp_path, flag, "local")
        assert rc == 2
        assert assert_one_line(err) == f"eval alignment: {flag} applies to --brain llm only"


# ----------------------------------------------------------------------------- run: success


def test_quick_run_writes_a_complete_run_folder(seed3_run: Path) -> None:
    assert {p.name for p in seed3_run.iterdir()} == {"trace.jsonl", "manifest.json",
                                                     "summary.json", "items.jsonl",
                                                     "trace_index.sqlite", "reference.json",
                                                     "checkpoints.sqlite"}
    manifest = json.loads((seed3_run / "manifest.json").read_text())
    assert manifest["resumed"] == 0
    assert manifest["resume"]["seed"] == 3 and manifest["resume"]["users"] == 5
    summary = json.loads((seed3_run / "summary.json").read_text())
    events = read_trace(seed3_run)
    assert not events.truncated
    assert [e["seq"] for e in events] == list(range(len(events)))
    start, end = events[0], events[-1]
    assert start["type"] == "run_start" and end["type"] == "run_end"
    assert end["status"] == "completed" == manifest["status"] == summary["status"]

    assert manifest["seed"] == 3 == start["seed"] == summary["seed"]
    assert manifest["scenario"] == "quickstart"
    # The hash covers the resolved config recorded in the trace (seed and size overridden).
    assert start["config"]["seed"] == 3 and start["config"]["population"]["size"] == 5
    assert manifest["config_hash"] == config_hash(start["config"])
    assert manifest["versions"]["python"] == platform.python_version()
    assert {"recarena", "numpy", "pydantic"} <= set(manifest["versions"])
    assert manifest["events"] == len(events)

    scn = load_scenario(QUICKSTART).scenario
    arms = [r.name for r in scn.recommenders]
    rounds = scn.environment.rounds
    assert start["population"] == 5
    sessions = [e for e in events if e["type"] == "session_end"]
    assert len(sessions) == 5 * rounds * len(arms)
    assert {(e["arm"], e["round"]) for e in sessions} == {
        (a, r) for a in arms for r in range(1, rounds + 1)}
    assert set(summary["metrics"]["arms"]) == set(arms)


def test_same_seed_reproduces_the_trace(seed3_run: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert main(quick_run_args(again, seed=3)) == 0
    assert stable_trace(again) == stable_trace(seed3_run)
    hashes = [json.loads((d / "manifest.json").read_text())["config_hash"]
              for d in (seed3_run, again)]
    assert hashes[0] == hashes[1]


def test_another_seed_into_an_existing_empty_folder_with_json(
    capsys: pytest.CaptureFixture[str], seed3_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    out.mkdir()  # an existing but empty --out is fine
    rc, stdout, err = cli(capsys, *quick_run_args(out, seed=4), "--json")
    assert rc == 0, err
    assert err == ""  # --quiet: no progress bar
    res = json.loads(stdout)
    assert res["status"] == "completed"
    assert res["run_dir"] == str(out)
    assert res["events"] == len(read_trace(out))
    assert res["metrics"] == json.loads((out / "summary.json").read_text())["metrics"]

    # --seed changes the trace, and not just in the seed field: what users were shown.
    base, changed = stable_trace(seed3_run), stable_trace(out)
    assert changed != base
    pages = [e["items"] for e in base if e["type"] == "page"]
    other_pages = [e["items"] for e in changed if e["type"] == "page"]
    assert pages and other_pages and pages != other_pages
    assert json.loads((out / "manifest.json").read_text())["config_hash"] != json.loads(
        (seed3_run / "manifest.json").read_text())["config_hash"]


# ----------------------------------------------------------------------------- schema


def test_schema_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "schema")
    assert rc == 0 and err == ""
    schemas = json.loads(out)
    assert set(schemas) == {"scenario", "role", "recommender", "team", "item"}
    assert "training" in schemas["item"]["properties"]
    assert "recommenders" in schemas["scenario"]["properties"]
    rc, out, _ = cli(capsys, "schema", "--kind", "role")
    assert rc == 0
    assert json.loads(out) == schemas["role"]


# ----------------------------------------------------------------------------- trace summary


def test_trace_summary_of_missing_folder(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    missing = tmp_path / "no-run"
    rc, out, err = cli(capsys, "trace", "summary", missing)
    assert rc == 2
    assert str(missing) in assert_one_line(err)
    assert out == ""


def test_trace_summary_json(capsys: pytest.CaptureFixture[str], seed3_run: Path) -> None:
    rc, out, err = cli(capsys, "trace", "summary", seed3_run, "--json")
    assert rc == 0 and err == ""
    s = json.loads(out)
    assert s["status"] == "completed" and not s["reason"]
    assert s["scenario"] == "quickstart" and s["seed"] == 3
    events = read_trace(seed3_run)
    assert s["events"] == len(events) == sum(s["event_counts"].values())
    assert s["event_counts"]["run_start"] == 1 and s["event_counts"]["run_end"] == 1
    arms = [r.name for r in load_scenario(QUICKSTART).scenario.recommenders]
    assert list(s["metrics"]["arms"]) == arms
    for arm in arms:
        overall = s["metrics"]["arms"][arm]["overall"]
        assert 0.0 <= overall["watch_rate"] <= 1.0
        assert 1.0 <= overall["mean_rating"] <= 5.0
    # The metrics are what the run wrote, checked against the trace's metric events.
    summary = json.loads((seed3_run / "summary.json").read_text())
    assert s["metrics"].pop("source").startswith("summary.json")
    assert s["metrics"] == summary["metrics"]


def test_trace_summary_table(capsys: pytest.CaptureFixture[str], seed3_run: Path) -> None:
    rc, out, _ = cli(capsys, "trace", "summary", seed3_run)
    assert rc == 0
    assert "quickstart" in out and "completed" in out
    for arm in ("random", "pop", "ease"):
        assert arm in out


def test_trace_summary_of_an_unfinished_run(
    capsys: pytest.CaptureFixture[str], seed3_run: Path, tmp_path: Path
) -> None:
    lines = (seed3_run / "trace.jsonl").read_text().splitlines(keepends=True)
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "trace.jsonl").write_text("".join(lines[:50]))
    rc, out, _ = cli(capsys, "trace", "summary", cut, "--json")
    assert rc == 0
    assert json.loads(out)["status"] == "incomplete"
    (cut / "trace.jsonl").write_text("".join(lines[:50]) + lines[50][:20])  # a crash mid-line
    rc, out, _ = cli(capsys, "trace", "summary", cut / "trace.jsonl", "--json")
    assert rc == 0
    s = json.loads(out)
    assert s["status"] == "truncated" and s["events"] == 50


def test_trace_summary_of_a_corrupt_trace(
    capsys: pytest.CaptureFixture[str], seed3_run: Path, tmp_path: Path
) -> None:
    lines = (seed3_run / "trace.jsonl").read_text().splitlines(keepends=True)
    bad = tmp_path / "trace.jsonl"
    bad.write_text("".join(lines[:3]) + "{not json\n" + "".join(lines[3:6]))
    rc, _, err = cli(capsys, "trace", "summary", bad)
    assert rc == 2
    assert f"{bad}:4:" in assert_one_line(err)


# ----------------------------------------------------------------------------- data download


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure urllib goes straight to 127.0.0.1, never through a proxy."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server(tmp_path: Path, loopback: None) -> Iterator[tuple[Path, str]]:
    """An HTTP server on 127.0.0.1 (free port) serving a folder; shut down afterwards."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


GENRE_FLAGS = 19
TINY_ITEMS = [("1", "Toy Story (1995)", 3), ("2", "GoldenEye (1995)", 1),
              ("3", "Four Rooms (1995)", 16)]  # (id, title, index of the one genre flag)
TINY_DATA = [("1", "1", 5, 874965758), ("1", "2", 3, 876893171), ("2", "3", 4, 878542960),
             ("3", "1", 2, 876893119)]


def tiny_ml100k_files() -> dict[str, str]:
    items = []
    for iid, title, g in TINY_ITEMS:
        flags = ["1" if k == g else "0" for k in range(GENRE_FLAGS)]
        items.append("|".join([iid, title, "01-Jan-1995", "", "http://example.invalid", *flags]))
    return {
        "u.data": "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in TINY_DATA),
        "u.item": "\n".join(items) + "\n",
        "u.user": "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n",
    }


def make_zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return path


def closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_download_unpacks_a_loadable_dataset(
    capsys: pytest.CaptureFixture[str], server: tuple[Path, str], tmp_path: Path
) -> None:
    www, base = server
    make_zip(www / "ml-100k.zip", {f"ml-100k/{n}": t for n, t in tiny_ml100k_files().items()})
    dest = tmp_path / "data"
    rc, out, err = cli(capsys, "data", "download", "ml-100k", "--to", dest,
                       "--url", f"{base}/ml-100k.zip")
    assert rc == 0, err
    assert out.strip() == f"downloaded ml-100k to {dest / 'ml-100k'}"
    assert sorted(p.name for p in dest.iterdir()) == ["ml-100k"]  # no .part file left behind
    ds = load_dataset(dest / "ml-100k")
    assert ds.catalog.item_ids == ("1", "2", "3")
    assert ds.catalog.titles[0] == "Toy Story" and ds.catalog.genres[0] == ("Animation",)
    assert ds.user_ids == ("1", "2", "3")
    assert len(ds.interactions) == len(TINY_DATA)
    assert ds.interactions.rating.tolist() == [r for _, _, r, _ in TINY_DATA]
    assert ds.user_attrs[0]["occupation"] == "technician"
    # The parent folder works too (the loader looks for a nested ml-100k/).
    assert len(load_dataset(dest).interactions) == len(TINY_DATA)


def test_download_refuses_a_non_empty_target(
    capsys: pytest.CaptureFixture[str], loopback: None, tmp_path: Path
) -> None:
    dest = tmp_path / "data"
    (dest / "ml-100k").mkdir(parents=True)
    (dest / "ml-100k" / "u.data").write_text("mine\n")
    url = f"http://127.0.0.1:{closed_loopback_port()}/ml-100k.zip"
    rc, _, err = cli(capsys, "data", "download", "ml-100k", "--to", dest, "--url", url)
    assert rc == 2  # an invalid argument
    assert assert_one_line(err) == (f"--to: {dest / 'ml-100k'} already exists and is not "
                                    "empty; nothing downloaded")  # before any connection
    assert (dest / "ml-100k" / "u.data").read_text() == "mine\n"


def test_download_from_a_closed_port(
    capsys: pytest.CaptureFixture[str], loopback: None, tmp_path: Path
) -> None:
    dest = tmp_path / "data"
    url = f"http://127.0.0.1:{closed_loopback_port()}/ml-100k.zip"
    rc, out, err = cli(capsys, "data", "download", "ml-100k", "--to", dest, "--url", url)
    assert rc == 1
    line = assert_one_line(err)
    assert line.startswith(f"cannot download {url}")
    assert out == ""
    assert not (dest / "ml-100k").exists()
    assert list(dest.glob("*.part")) == []


@pytest.mark.parametrize(
    ("name", "members", "message"),
    [
        ("no-data.zip", {"ml-100k/u.item": "x\n", "ml-100k/README": "hi\n"}, "has no u.data"),
        ("evil.zip", {"ml-100k/u.data": "1\t1\t1\t1\n", "../evil.txt": "gotcha\n"},
         "unsafe path in archive: ../evil.txt"),
        ("plain.zip", None, "not a zip archive"),
        ("absent.zip", {}, "File not found"),
    ],
    ids=["no-u.data", "path-traversal", "not-a-zip", "http-404"],
)
def test_download_of_a_bad_archive(
    capsys: pytest.CaptureFixture[str], server: tuple[Path, str], tmp_path: Path,
    name: str, members: dict[str, str] | None, message: str,
) -> None:
    www, base = server
    if members is None:
        (www / name).write_text("this is not a zip file\n")
    elif members:
        make_zip(www / name, members)
    dest = tmp_path / "deep" / "data"
    rc, _, err = cli(capsys, "data", "download", "ml-100k", "--to", dest,
                     "--url", f"{base}/{name}")
    assert rc == 1
    assert message in assert_one_line(err)
    assert not (dest / "ml-100k").exists()
    assert not (tmp_path / "deep" / "evil.txt").exists()
    assert list(dest.glob("*")) == []  # nothing extracted, no .part file


# ----------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["run"],
        ["validate"],
        ["data"],
        ["data", "download", "ml-100k"],
        ["data", "download", "ml-10m", "--to", "x"],
        ["trace"],
        ["trace", "summary"],
        ["eval"],
        ["schema", "--kind", "widget"],
        ["run", "x.yaml", "--seed", "abc"],
        ["validate", "x.yaml", "--bogus"],
    ],
    ids=lambda a: " ".join(a) or "(none)",
)
def test_bad_arguments(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    rc, out, err = cli(capsys, *argv)
    assert rc == 2
    assert assert_one_line(err).startswith("recarena")
    assert out == ""


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["data", "download", "-h"]])
def test_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    rc, out, err = cli(capsys, *argv)
    assert rc == 0
    assert out.startswith("usage: recarena") and err == ""


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import metadata

    rc, out, err = cli(capsys, "--version")
    assert rc == 0 and err == ""
    assert out == f"recarena {metadata.version('recarena')}\n"


def _parsers(parser: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, parser
    for name, sub in parser.commands.items():
        yield from _parsers(sub, (*path, name))


def test_every_command_and_option_is_described(capsys: pytest.CaptureFixture[str]) -> None:
    hidden = {("data", "download", "--url")}  # for mirrors and tests only
    parsers = list(_parsers(build_parser()))
    assert {" ".join(p) for p, _ in parsers} >= {
        "", "run", "validate", "schema", "data", "data download", "eval", "eval offline",
        "eval alignment", "trace", "trace summary"}
    n_options = 0
    for path, parser in parsers:
        if path:
            assert parser.description, f"recarena {' '.join(path)} has no description"
        for action in parser.options:
            name = action.option_strings[-1] if action.option_strings else action.dest
            if (*path, name) in hidden:
                assert action.help == argparse.SUPPRESS
                continue
            assert action.help and action.help != argparse.SUPPRESS, \
                f"recarena {' '.join(path)} {name} has no help"
            n_options += 1
        rc, out, _ = cli(capsys, *path, "--help")
        assert rc == 0 and out.startswith(f"usage: recarena {' '.join(path)}".rstrip())
        for name in parser.commands:
            assert name in out
    assert n_options > 30  # the walk really saw the options


def test_interrupt_exits_130(capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(path: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("scenarios.loader.validate_file", interrupted)
    rc, _, err = cli(capsys, "validate", QUICKSTART)
    assert rc == 130
    assert assert_one_line(err) == "recarena: interrupted"


def test_internal_error_is_one_line(capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: object) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr("scenarios.loader.validate_file", broken)
    rc, _, err = cli(capsys, "validate", QUICKSTART)
    assert rc == 1
    line = assert_one_line(err)
    assert "internal error: RuntimeError: boom" in line and "RECARENA_DEBUG" in line


# ----------------------------------------------------------------------------- entry point


def _console_script() -> str | None:
    local = Path(sys.executable).parent / "recarena"
    return str(local) if local.exists() else shutil.which("recarena")


def test_console_script_entry_point(tmp_path: Path) -> None:
    exe = _console_script()
    if exe is None:
        pytest.skip("the recarena console script is not installed")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: scenario\nname: t\nrecommenders: []\n")
    env = {k: v for k, v in os.environ.items() if k != "RECARENA_DEBUG"}
    proc = subprocess.run([exe, "validate", str(QUICKSTART), str(bad)], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stdout.splitlines() == [f"{QUICKSTART}: ok (scenario)"]
    assert assert_one_line(proc.stderr).startswith(f"{bad}:3: recommenders: ")


def test_replay_without_a_cache_is_an_input_error_before_any_work(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    scn = shipped("llm_feed.yaml")
    rc, _, err = cli(capsys, "run", str(scn), "--replay", str(tmp_path / "nothing"),
                     "--out", str(tmp_path / "out"))
    assert rc == 2 and err.startswith("--replay: no LLM cache at") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
